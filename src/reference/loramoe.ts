/**
 * CPU reference (float64) for shaders/loramoe.wgsl: the LoRAMoE-adapted linear layer
 *
 *   y = x · W0ᵀ + scale * sum_i w_i(x) * B_i A_i dropout_i(x),   w(x) = softmax(x · Wrᵀ),  scale = alpha / r
 *
 * Dimension letters: M = B*T rows, K input features, Nout output features, N experts, R rank.
 * Tensors (row-major):
 *   x     [M, K]       layer input (the router sees it before dropout)
 *   W0    [Nout, K]    frozen backbone weight
 *   Wr    [N, K]       router weight (no bias); unused in plain-LoRA mode
 *   A     [N*R, K]     expert down-projections stacked: rows i*R .. i*R+R-1 are A_i
 *   Bcat  [Nout, N*R]  expert up-projections side by side: Bcat[o, i*R + r] = B_i[o, r]
 *   w     [M, N]       router weights (saved for backward)
 *   h     [M, N*R]     h[m, j] = sum_k A[j, k] * drop(x)[m, i(j), k],   i(j) = floor(j / R)
 *   g     [M, N*R]     g[m, j] = scale * w[m, i(j)] * h[m, j]   (so the combine is y += g · Bcatᵀ)
 * Each expert has its own dropout mask over x (src/reference/dropout.ts), regenerated in backward.
 *
 * Plain-LoRA mode (`routed: false`): N = 1 and w ≡ 1, no router, the same formulas otherwise.
 *
 * Gradient rule: these functions return fresh gradients. On the GPU parameter gradients (dWr, dA,
 * dBcat) accumulate (+=) into their buffers and activation gradients (dx, dG, dh, dw, dlogits)
 * overwrite, except that dx is assembled by accumulation from three terms within one backward.
 */
import { dropoutFactors, type DropoutSpec } from './dropout';
import { matmul } from './matmul';
import { checkExpertMask, type ExpertMask } from '../method/expert-mask';

export interface LoramoeConfig {
  M: number;
  K: number;
  Nout: number;
  N: number;
  R: number;
  /** alpha / r */
  scale: number;
  /** Dropout probability on the experts' input, in [0, 1); 0 for eval and inference. */
  p: number;
  /** u32; changes every training step. */
  seed: number;
  /** u32; fixed per adapted layer (see dropout.ts). Default 0. */
  stream?: number;
  /** false: plain LoRA (N = 1, w ≡ 1, no router). */
  routed: boolean;
  /** Experts knocked out at inference (logit minus infinity); default none. */
  mask?: ExpertMask;
}

/** What the forward saves for the backward. */
export interface LoramoeSaved {
  /** [M, N] router weights (all ones in plain-LoRA mode). */
  w: Float64Array;
  /** [M, N*R] expert down-projections of the dropped-out input. */
  h: Float64Array;
  /** [M, N*R] scale * w * h. */
  g: Float64Array;
}

export interface LoramoeGrads {
  /** [M, K] */
  dx: Float64Array;
  /** [N, K]; null in plain-LoRA mode. */
  dWr: Float64Array | null;
  /** [N*R, K] */
  dA: Float64Array;
  /** [Nout, N*R] */
  dBcat: Float64Array;
  /** [M, N*R] dLoss/dg */
  dG: Float64Array;
  /** [M, N*R] dLoss/dh */
  dh: Float64Array;
  /** [M, N] dLoss/dw including dwExtra; null in plain-LoRA mode. */
  dw: Float64Array | null;
  /** [M, N] dLoss/dlogits; null in plain-LoRA mode. */
  dlogits: Float64Array | null;
}

function checkLoramoeConfig(cfg: LoramoeConfig): void {
  for (const k of ['M', 'K', 'Nout', 'N', 'R'] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) throw new Error(`loramoe: ${k} must be a positive integer, got ${cfg[k]}`);
  }
  if (!cfg.routed && cfg.N !== 1) throw new Error(`loramoe: plain-LoRA mode (routed: false) needs N = 1, got N = ${cfg.N}`);
}

function dropoutSpec(cfg: LoramoeConfig): DropoutSpec {
  return { p: cfg.p, seed: cfg.seed, stream: cfg.stream ?? 0 };
}

/**
 * Router: w[m, :] = softmax(x[m] · Wrᵀ), max-subtracted. The experts in `mask` get logit minus
 * infinity (knockout), so weight exactly 0 and the rest renormalise. Returns w [M, N].
 */
export function routerForward(x: ArrayLike<number>, Wr: ArrayLike<number>, M: number, K: number, N: number, mask: ExpertMask = []): Float64Array {
  const logits = matmul(x, Wr, { M, N, K, transB: true });
  for (const e of checkExpertMask(mask, N)) for (let m = 0; m < M; m++) logits[m * N + e] = -Infinity;
  return softmaxRows(logits, M, N);
}

/** The softmax of each row of `logits` [M, N], max-subtracted. Returns [M, N]. */
export function softmaxRows(logits: ArrayLike<number>, M: number, N: number): Float64Array {
  const w = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    let mx = -Infinity;
    for (let i = 0; i < N; i++) mx = Math.max(mx, logits[m * N + i]);
    let s = 0;
    for (let i = 0; i < N; i++) s += w[m * N + i] = Math.exp(logits[m * N + i] - mx);
    for (let i = 0; i < N; i++) w[m * N + i] /= s;
  }
  return w;
}

/**
 * Router backward through the softmax: dlogits[m, i] = w[m, i] * (dw[m, i] - sum_k w[m, k] dw[m, k]).
 * (The logits gradient then reaches Wr and x through two matmuls.)
 */
function routerBackward(dw: ArrayLike<number>, w: ArrayLike<number>, M: number, N: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    let s = 0;
    for (let k = 0; k < N; k++) s += w[m * N + k] * dw[m * N + k];
    for (let i = 0; i < N; i++) out[m * N + i] = w[m * N + i] * (dw[m * N + i] - s);
  }
  return out;
}

/**
 * Expert down-projection with per-expert dropout, and the gated copy:
 *   h[m, j] = sum_k A[j, k] * x[m, k] * f(m, i(j), k),   f = keep ? 1/(1-p) : 0
 *   g[m, j] = scale * w[m, i(j)] * h[m, j]               (w ≡ 1 when !routed; pass w = null)
 */
export function expertDownForward(
  x: ArrayLike<number>,
  A: ArrayLike<number>,
  w: ArrayLike<number> | null,
  cfg: LoramoeConfig,
): { h: Float64Array; g: Float64Array } {
  const { M, K, N, R, scale } = cfg;
  const f = dropoutFactors(dropoutSpec(cfg), M, N, K);
  const NR = N * R;
  const h = new Float64Array(M * NR);
  const g = new Float64Array(M * NR);
  for (let m = 0; m < M; m++) {
    for (let j = 0; j < NR; j++) {
      const i = Math.floor(j / R);
      let s = 0;
      for (let k = 0; k < K; k++) s += A[j * K + k] * x[m * K + k] * f[(m * N + i) * K + k];
      h[m * NR + j] = s;
      g[m * NR + j] = scale * (cfg.routed && w ? w[m * N + i] : 1) * s;
    }
  }
  return { h, g };
}

/**
 * Backward of g = scale * w * h:
 *   dh[m, j] = scale * w[m, i(j)] * dG[m, j]
 *   dw[m, i] = scale * sum_r dG[m, i*R + r] * h[m, i*R + r]      (null when !routed)
 */
function gateBackward(
  dG: ArrayLike<number>,
  h: ArrayLike<number>,
  w: ArrayLike<number> | null,
  cfg: LoramoeConfig,
): { dh: Float64Array; dw: Float64Array | null } {
  const { M, N, R, scale } = cfg;
  const NR = N * R;
  const dh = new Float64Array(M * NR);
  const dw = cfg.routed ? new Float64Array(M * N) : null;
  for (let m = 0; m < M; m++) {
    for (let i = 0; i < N; i++) {
      const wv = cfg.routed && w ? w[m * N + i] : 1;
      let s = 0;
      for (let r = 0; r < R; r++) {
        const j = m * NR + i * R + r;
        dh[j] = scale * wv * dG[j];
        s += dG[j] * h[j];
      }
      if (dw) dw[m * N + i] = scale * s;
    }
  }
  return { dh, dw };
}

/** dx part through the experts: out[m, k] = sum_j dh[m, j] * A[j, k] * f(m, i(j), k). */
export function expertDownBackwardInput(dh: ArrayLike<number>, A: ArrayLike<number>, cfg: LoramoeConfig): Float64Array {
  const { M, K, N, R } = cfg;
  const f = dropoutFactors(dropoutSpec(cfg), M, N, K);
  const NR = N * R;
  const out = new Float64Array(M * K);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let j = 0; j < NR; j++) s += dh[m * NR + j] * A[j * K + k] * f[(m * N + Math.floor(j / R)) * K + k];
      out[m * K + k] = s;
    }
  }
  return out;
}

/** dA[j, k] = sum_m dh[m, j] * x[m, k] * f(m, i(j), k). */
export function expertDownBackwardWeight(dh: ArrayLike<number>, x: ArrayLike<number>, cfg: LoramoeConfig): Float64Array {
  const { M, K, N, R } = cfg;
  const f = dropoutFactors(dropoutSpec(cfg), M, N, K);
  const NR = N * R;
  const out = new Float64Array(NR * K);
  for (let j = 0; j < NR; j++) {
    const i = Math.floor(j / R);
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let m = 0; m < M; m++) s += dh[m * NR + j] * x[m * K + k] * f[(m * N + i) * K + k];
      out[j * K + k] = s;
    }
  }
  return out;
}

/**
 * Whole forward, in the GPU's op order: y = x·W0ᵀ; w = router(x); h, g = expert_down(x); y += g·Bcatᵀ.
 * Returns y [M, Nout] and the saved tensors. Wr may be null in plain-LoRA mode.
 */
export function loramoeForward(
  x: ArrayLike<number>,
  W0: ArrayLike<number>,
  Wr: ArrayLike<number> | null,
  A: ArrayLike<number>,
  Bcat: ArrayLike<number>,
  cfg: LoramoeConfig,
): LoramoeSaved & { y: Float64Array } {
  checkLoramoeConfig(cfg);
  const { M, K, Nout, N, R } = cfg;
  let w: Float64Array;
  if (cfg.routed) {
    if (!Wr) throw new Error('loramoeForward: routed mode needs Wr');
    w = routerForward(x, Wr, M, K, N, cfg.mask);
  } else {
    w = new Float64Array(M).fill(1);
  }
  const { h, g } = expertDownForward(x, A, w, cfg);
  const y = matmul(x, W0, { M, N: Nout, K, transB: true });
  const yl = matmul(g, Bcat, { M, N: Nout, K: N * R, transB: true });
  for (let i = 0; i < y.length; i++) y[i] += yl[i];
  return { y, w, h, g };
}

/**
 * Whole backward given dY [M, Nout], in the GPU's op order. `dwExtra` [M, N] is added to dw before
 * the softmax backward (the LBC gradient dL_lbc/dw). Returns fresh gradients (see the rule above).
 */
export function loramoeBackward(
  dY: ArrayLike<number>,
  x: ArrayLike<number>,
  W0: ArrayLike<number>,
  Wr: ArrayLike<number> | null,
  A: ArrayLike<number>,
  Bcat: ArrayLike<number>,
  saved: LoramoeSaved,
  cfg: LoramoeConfig,
  dwExtra?: ArrayLike<number>,
): LoramoeGrads {
  checkLoramoeConfig(cfg);
  const { M, K, Nout, N, R } = cfg;
  const NR = N * R;
  // a. dG = dY · Bcat;  dBcat = dYᵀ · g
  const dG = matmul(dY, Bcat, { M, N: NR, K: Nout });
  const dBcat = matmul(dY, saved.g, { M: Nout, N: NR, K: M, transA: true });
  // b. gate backward
  const { dh, dw } = gateBackward(dG, saved.h, saved.w, cfg);
  // c. LBC (or any other) gradient with respect to w
  if (dw && dwExtra) {
    if (dwExtra.length !== M * N) throw new Error(`loramoeBackward: dwExtra has ${dwExtra.length} values, needs M*N = ${M * N}`);
    for (let i = 0; i < dw.length; i++) dw[i] += dwExtra[i];
  }
  // d. softmax backward; e. router weight and input gradients
  let dlogits: Float64Array | null = null;
  let dWr: Float64Array | null = null;
  const dx = matmul(dY, W0, { M, N: K, K: Nout });
  if (cfg.routed && dw) {
    if (!Wr) throw new Error('loramoeBackward: routed mode needs Wr');
    dlogits = routerBackward(dw, saved.w, M, N);
    dWr = matmul(dlogits, x, { M: N, N: K, K: M, transA: true });
    const dxr = matmul(dlogits, Wr, { M, N: K, K: N });
    for (let i = 0; i < dx.length; i++) dx[i] += dxr[i];
  }
  // f, g. through the expert down-projections (same dropout mask as the forward)
  const dxe = expertDownBackwardInput(dh, A, cfg);
  for (let i = 0; i < dx.length; i++) dx[i] += dxe[i];
  const dA = expertDownBackwardWeight(dh, x, cfg);
  return { dx, dWr, dA, dBcat, dG, dh, dw, dlogits };
}
