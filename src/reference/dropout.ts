/**
 * Stateless dropout mask shared bit for bit by the CPU reference and shaders/loramoe.wgsl
 * (`hash_mix`, `dropout_key`, `dropout_keep` there).
 *
 * Why stateless: the backward kernels regenerate the forward's mask from the same integers instead
 * of storing an [M, N, K] mask, and the reference computes the identical mask, so tests compare
 * GPU and CPU exactly even with dropout on.
 *
 * Definition (all arithmetic on u32, wrapping mod 2^32):
 *   mix(v)      = lowbias32 (a bijection on u32 with near-ideal avalanche):
 *                 v ^= v >> 16; v *= 0x7feb352d; v ^= v >> 15; v *= 0x846ca68b; v ^= v >> 16
 *   key         = mix(mix(seed) ^ stream)         seed: changes every step; stream: fixed per
 *                                                 adapted layer, so layers that see the same x
 *                                                 (gate_proj and up_proj) draw independent masks
 *   idx         = (m * N + e) * K + k             row m, expert e, input feature k
 *   bits        = mix(mix(idx) ^ key)
 *   keep        = threshold == 0 || bits >= threshold,   threshold = round(p * 2^32) (clamped)
 * so P(drop) = threshold / 2^32 ≈ p, and p = 0 keeps everything (eval and inference).
 * A kept value is scaled by 1 / (1 - p) (inverted dropout), as torch.nn.Dropout does.
 * The mask of row m does not depend on the batch size M: only on seed, stream, N and K.
 */

/** lowbias32: x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16 (u32). */
export function hashMix(v: number): number {
  let x = v >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Per-step, per-layer key: mix(mix(seed) ^ stream). */
export function dropoutKey(seed: number, stream = 0): number {
  checkU32('seed', seed);
  checkU32('stream', stream);
  return hashMix((hashMix(seed) ^ stream) >>> 0);
}

/** u32 threshold for drop probability p in [0, 1): an entry is dropped when its hash < threshold. */
export function dropoutThreshold(p: number): number {
  checkP(p);
  if (p === 0) return 0;
  return Math.min(0xffffffff, Math.round(p * 2 ** 32));
}

/** Scale of a kept entry: 1 / (1 - p). */
export function dropoutScale(p: number): number {
  checkP(p);
  return 1 / (1 - p);
}

/** The 32 hash bits of entry (m, e, k) of a layer with N experts and K input features. */
export function dropoutBits(key: number, m: number, e: number, k: number, N: number, K: number): number {
  const idx = (Math.imul(Math.imul(m, N) + e, K) + k) >>> 0;
  return hashMix((hashMix(idx) ^ key) >>> 0);
}

/** Whether entry (m, e, k) is kept (true) or dropped; threshold from dropoutThreshold. */
export function dropoutKeep(key: number, threshold: number, m: number, e: number, k: number, N: number, K: number): boolean {
  return threshold === 0 || dropoutBits(key, m, e, k, N, K) >= threshold;
}

export interface DropoutSpec {
  p: number;
  seed: number;
  stream?: number;
}

/**
 * Factor applied to x[m, k] as seen by expert e: 1/(1-p) when kept, 0 when dropped, as a dense
 * Float64Array [M, N, K] (tests and the reference only; the GPU never materialises it).
 */
export function dropoutFactors(spec: DropoutSpec, M: number, N: number, K: number): Float64Array {
  const key = dropoutKey(spec.seed, spec.stream ?? 0);
  const thr = dropoutThreshold(spec.p);
  const s = dropoutScale(spec.p);
  const out = new Float64Array(M * N * K);
  for (let m = 0; m < M; m++) {
    for (let e = 0; e < N; e++) {
      for (let k = 0; k < K; k++) {
        out[(m * N + e) * K + k] = dropoutKeep(key, thr, m, e, k, N, K) ? s : 0;
      }
    }
  }
  return out;
}

function checkP(p: number): void {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout probability must be in [0, 1), got ${p}`);
}

function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`dropout ${name} must be a u32, got ${v}`);
}
