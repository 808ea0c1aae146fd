/**
 * CPU reference (float64) for shaders/attention.wgsl: causal self-attention with grouped key/value
 * heads (Llama / GQA), Hugging Face semantics.
 *
 *   q  [B, Tq, H*D]     queries (token rows, as out of q_proj)
 *   k  [B, Tk, KVH*D]   keys; Tk is the row capacity (a KV cache may hold unused rows)
 *   v  [B, Tk, KVH*D]   values
 *   o  [B, Tq, H*D]     output
 *   l  [B, H, Tq]       log-sum-exp of each softmax row (saved for the backward)
 *
 * Query t sits at absolute position pos0 + t and attends keys s = 0 .. pos0 + t. Head h reads
 * key/value head h / (H / KVH) (HF's repeat_kv). scale defaults to 1/sqrt(D).
 *
 * Gradient rule: dq, dk, dv are activation gradients and are returned fresh (the GPU overwrites
 * them); parameter gradients elsewhere accumulate, but attention has no parameters.
 */
export interface RefAttentionDims {
  B: number;
  /** Query rows per sequence. */
  Tq: number;
  /** Key/value rows per sequence in the K and V buffers (their capacity; row stride). */
  Tk: number;
  /** Absolute position of query 0 (tokens already in the cache); default 0. */
  pos0?: number;
  H: number;
  KVH: number;
  D: number;
  /** Score scale; default 1/sqrt(D) (Llama). */
  scale?: number;
}

interface Layout {
  B: number;
  Tq: number;
  Tk: number;
  pos0: number;
  H: number;
  KVH: number;
  D: number;
  scale: number;
  group: number;
}

function layout(dims: RefAttentionDims): Layout {
  const { B, Tq, Tk, H, KVH, D } = dims;
  const pos0 = dims.pos0 ?? 0;
  if (KVH <= 0 || H % KVH !== 0) throw new Error(`attention: H=${H} must be a multiple of KVH=${KVH}`);
  if (pos0 + Tq > Tk) throw new Error(`attention: pos0 + Tq = ${pos0 + Tq} exceeds the key capacity Tk = ${Tk}`);
  return { B, Tq, Tk, pos0, H, KVH, D, scale: dims.scale ?? 1 / Math.sqrt(D), group: H / KVH };
}

function need(a: ArrayLike<number>, n: number, what: string): void {
  if (a.length !== n) throw new Error(`attention reference: ${what} has ${a.length} values, expected ${n}`);
}

/** Offsets: (b, t, h, 0) in a [B, Tq, H*D] tensor and (b, s, kvh, 0) in a [B, Tk, KVH*D] tensor. */
function qOff(d: Layout, b: number, t: number, h: number): number {
  return (b * d.Tq + t) * d.H * d.D + h * d.D;
}
function kOff(d: Layout, b: number, s: number, kvh: number): number {
  return (b * d.Tk + s) * d.KVH * d.D + kvh * d.D;
}

/** Scores S_s = scale * q_t · k_s for s = 0 .. pos0 + t. */
function scores(q: ArrayLike<number>, k: ArrayLike<number>, d: Layout, b: number, t: number, h: number): Float64Array {
  const n = d.pos0 + t + 1;
  const kvh = Math.floor(h / d.group);
  const qo = qOff(d, b, t, h);
  const S = new Float64Array(n);
  for (let s = 0; s < n; s++) {
    const ko = kOff(d, b, s, kvh);
    let acc = 0;
    for (let i = 0; i < d.D; i++) acc += q[qo + i] * k[ko + i];
    S[s] = d.scale * acc;
  }
  return S;
}

/** Forward: returns o [B, Tq, H*D] and the row log-sum-exp l [B, H, Tq]. */
export function attentionForward(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: RefAttentionDims,
): { o: Float64Array; l: Float64Array } {
  const d = layout(dims);
  need(q, d.B * d.Tq * d.H * d.D, 'q');
  need(k, d.B * d.Tk * d.KVH * d.D, 'k');
  need(v, d.B * d.Tk * d.KVH * d.D, 'v');
  const o = new Float64Array(d.B * d.Tq * d.H * d.D);
  const l = new Float64Array(d.B * d.H * d.Tq);
  for (let b = 0; b < d.B; b++) {
    for (let h = 0; h < d.H; h++) {
      const kvh = Math.floor(h / d.group);
      for (let t = 0; t < d.Tq; t++) {
        const S = scores(q, k, d, b, t, h);
        let m = -Infinity;
        for (const x of S) m = Math.max(m, x);
        let sum = 0;
        for (const x of S) sum += Math.exp(x - m);
        const lse = m + Math.log(sum);
        l[(b * d.H + h) * d.Tq + t] = lse;
        const qo = qOff(d, b, t, h);
        for (let s = 0; s < S.length; s++) {
          const p = Math.exp(S[s] - lse);
          const ko = kOff(d, b, s, kvh);
          for (let i = 0; i < d.D; i++) o[qo + i] += p * v[ko + i];
        }
      }
    }
  }
  return { o, l };
}

/**
 * Backward: gradients of q, k, v given dO (the gradient of the loss with respect to o), the inputs
 * and the forward's saved o and l. P is recomputed as exp(S - l), as on the GPU.
 *   Dlt_t = dO_t · o_t,   dS_ts = P_ts (dO_t · v_s - Dlt_t)
 *   dq_t = scale sum_s dS_ts k_s,  dk_s = scale sum_{h,t} dS_ts q_t,  dv_s = sum_{h,t} P_ts dO_t
 * where the sums for dk and dv run over every query head of the key/value head's group (the
 * gradient of repeat_kv). Rows of dk, dv that no query sees are zero.
 */
export function attentionBackward(
  dO: ArrayLike<number>,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  o: ArrayLike<number>,
  l: ArrayLike<number>,
  dims: RefAttentionDims,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const d = layout(dims);
  const nq = d.B * d.Tq * d.H * d.D;
  const nk = d.B * d.Tk * d.KVH * d.D;
  need(dO, nq, 'dO');
  need(q, nq, 'q');
  need(k, nk, 'k');
  need(v, nk, 'v');
  need(o, nq, 'o');
  need(l, d.B * d.H * d.Tq, 'l');
  const dq = new Float64Array(nq);
  const dk = new Float64Array(nk);
  const dv = new Float64Array(nk);
  for (let b = 0; b < d.B; b++) {
    for (let h = 0; h < d.H; h++) {
      const kvh = Math.floor(h / d.group);
      for (let t = 0; t < d.Tq; t++) {
        const S = scores(q, k, d, b, t, h);
        const lse = l[(b * d.H + h) * d.Tq + t];
        const qo = qOff(d, b, t, h);
        let delta = 0;
        for (let i = 0; i < d.D; i++) delta += dO[qo + i] * o[qo + i];
        for (let s = 0; s < S.length; s++) {
          const p = Math.exp(S[s] - lse);
          const ko = kOff(d, b, s, kvh);
          let dov = 0;
          for (let i = 0; i < d.D; i++) dov += dO[qo + i] * v[ko + i];
          const ds = p * (dov - delta);
          for (let i = 0; i < d.D; i++) {
            dv[ko + i] += p * dO[qo + i];
            dq[qo + i] += d.scale * ds * k[ko + i];
            dk[ko + i] += d.scale * ds * q[qo + i];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
