/**
 * CPU reference (float64) for shaders/lbc.wgsl: LoRAMoE's localized balancing constraint (LBC) for
 * one adapted layer, plus the CPU helpers that build its boost matrix (used by the model too).
 *
 * Dimension letters: B sequences of T tokens, M = B*T rows, N experts.
 *   w      [M, N]   router weights of the layer (rows b*T .. b*T+T-1 belong to sequence b)
 *   valid  [M]      1 for a real token, 0 for padding
 *   I      [B, N]   boost: 1 + delta where expert n is in the group of sample b's data type, else 1 - delta
 *   Q      [B, N]   Q[b, n] = sum_t valid[b*T+t] * w[b*T+t, n]    (importance)
 *   Z      [B, N]   Q * I
 *   L               beta * var(Z) / (mean(Z)^2 + 1e-10), unbiased variance over the B*N values
 *
 * Unlike the official code, padding is excluded from Q (it sums over every position). The total
 * training loss adds L of every adapted layer (not averaged).
 *
 * Gradients: with n = B*N, D = mean^2 + 1e-10, V = var(Z) (sum_j (Z_j - mean) = 0 removes the mean's
 * contribution to dV):
 *   dL/dZ_j = beta * (2 (Z_j - mean) / ((n-1) D) - 2 V mean / (n D^2))
 *   dL/dw[m, n] = valid[m] * I[b, n] * dL/dZ[b, n],   b = floor(m / T)
 * The GPU adds dL/dw into the dw that gate_backward wrote (activation gradient, accumulated on
 * purpose within one backward); these functions return fresh values.
 */

export const LBC_EPS = 1e-10;

export interface LbcDims {
  B: number;
  T: number;
  N: number;
  /** Weight of the constraint in the loss (the official `blc_weight`). */
  beta: number;
}

export interface LbcSaved {
  /** [B, N] */
  Q: Float64Array;
  /** [B, N] */
  Z: Float64Array;
  mean: number;
  variance: number;
}

/**
 * Official binary grouping, indexed by data type: type 0 ("downstream task") -> experts N/2 .. N-1,
 * type 1 ("world knowledge") -> experts 0 .. N/2-1. N must be even.
 */
export function officialGroups(N: number): number[][] {
  if (!Number.isInteger(N) || N < 2 || N % 2 !== 0) {
    throw new Error(`LBC official grouping needs an even number of experts (at least 2), got N = ${N}`);
  }
  const half = N / 2;
  const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
  return [range(half, N), range(0, half)];
}

/**
 * General mapping of `types` data types onto as many equal contiguous groups: type t -> experts
 * t*N/types .. (t+1)*N/types - 1. N must be divisible by `types`. (The official grouping is this
 * with the two groups swapped.)
 */
export function contiguousGroups(N: number, types: number): number[][] {
  if (!Number.isInteger(types) || types < 1 || !Number.isInteger(N) || N < 1 || N % types !== 0) {
    throw new Error(`LBC contiguous grouping needs N divisible by the number of types, got N = ${N}, types = ${types}`);
  }
  const size = N / types;
  return Array.from({ length: types }, (_, t) => Array.from({ length: size }, (_, i) => t * size + i));
}

/**
 * Boost matrix I [B, N] (float32, as uploaded to the GPU): I[b, n] = 1 + delta if expert n is in
 * groups[types[b]], else 1 - delta. `groups[t]` lists the experts of data type t.
 */
export function lbcBoost(types: readonly number[], groups: readonly (readonly number[])[], N: number, delta: number): Float32Array {
  if (!Number.isInteger(N) || N < 1) throw new Error(`lbcBoost: N must be a positive integer, got ${N}`);
  if (!Number.isFinite(delta)) throw new Error(`lbcBoost: delta must be finite, got ${delta}`);
  for (const [t, g] of groups.entries()) {
    for (const n of g) {
      if (!Number.isInteger(n) || n < 0 || n >= N) throw new Error(`lbcBoost: group of type ${t} names expert ${n}, outside 0..${N - 1}`);
    }
  }
  const out = new Float32Array(types.length * N);
  types.forEach((t, b) => {
    if (!Number.isInteger(t) || t < 0 || t >= groups.length) {
      throw new Error(`lbcBoost: sample ${b} has data type ${t}, but groups are given for types 0..${groups.length - 1}`);
    }
    const inGroup = new Set(groups[t]);
    for (let n = 0; n < N; n++) out[b * N + n] = inGroup.has(n) ? 1 + delta : 1 - delta;
  });
  return out;
}

export function checkLbcDims(d: LbcDims, wLen: number, validLen: number, boostLen: number): void {
  const { B, T, N } = d;
  for (const [k, v] of [['B', B], ['T', T], ['N', N]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`LBC: ${k} must be a positive integer, got ${v}`);
  }
  if (B * N < 2) throw new Error(`LBC: the variance needs B*N >= 2 values, got B*N = ${B * N}`);
  if (wLen !== B * T * N) throw new Error(`LBC: w has ${wLen} values, needs B*T*N = ${B * T * N}`);
  if (validLen !== B * T) throw new Error(`LBC: valid has ${validLen} values, needs B*T = ${B * T}`);
  if (boostLen !== B * N) throw new Error(`LBC: boost has ${boostLen} values, needs B*N = ${B * N}`);
}

/** Importance Q, Z = Q * I and the loss. */
export function lbcForward(
  w: ArrayLike<number>,
  valid: ArrayLike<number>,
  boost: ArrayLike<number>,
  d: LbcDims,
): LbcSaved & { loss: number } {
  checkLbcDims(d, w.length, valid.length, boost.length);
  const { B, T, N, beta } = d;
  const n = B * N;
  const Q = new Float64Array(n);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const m = b * T + t;
      if (valid[m] === 0) continue;
      for (let e = 0; e < N; e++) Q[b * N + e] += w[m * N + e];
    }
  }
  const Z = Q.map((q, j) => q * boost[j]);
  let sum = 0;
  for (const z of Z) sum += z;
  const mean = sum / n;
  let ss = 0;
  for (const z of Z) ss += (z - mean) ** 2;
  const variance = ss / (n - 1);
  const loss = (beta * variance) / (mean * mean + LBC_EPS);
  return { loss, Q, Z, mean, variance };
}

/** dL/dZ [B, N] and dL/dw [M, N], both scaled by the upstream gradient dLoss (1 for the total loss). */
export function lbcBackward(
  dLoss: number,
  valid: ArrayLike<number>,
  boost: ArrayLike<number>,
  saved: LbcSaved,
  d: LbcDims,
): { dZ: Float64Array; dw: Float64Array } {
  const { B, T, N, beta } = d;
  checkLbcDims(d, B * T * N, valid.length, boost.length);
  const n = B * N;
  const D = saved.mean * saved.mean + LBC_EPS;
  const c1 = (2 * beta) / ((n - 1) * D);
  const c2 = (2 * beta * saved.variance * saved.mean) / (n * D * D);
  const dZ = saved.Z.map((z) => dLoss * (c1 * (z - saved.mean) - c2));
  const dw = new Float64Array(B * T * N);
  for (let m = 0; m < B * T; m++) {
    if (valid[m] === 0) continue;
    const b = Math.floor(m / T);
    for (let e = 0; e < N; e++) dw[m * N + e] = boost[b * N + e] * dZ[b * N + e];
  }
  return { dZ, dw };
}

/**
 * First-order bound on the float32 rounding error of the GPU's loss and dZ (shaders/lbc.wgsl, which
 * follows the same two-pass formulas), given `errQ`, a bound on the absolute error of every Q entry
 * as the GPU holds it. Each float32 operation adds at most u = 2^-24 relative error; a sum of n terms
 * adds sumTolerance's 2·n·u·Σ|terms|. The GPU tests use it to justify their tolerances.
 */
export function lbcFloat32Error(
  saved: LbcSaved & { loss: number },
  boost: ArrayLike<number>,
  d: LbcDims,
  errQ: number,
  gradScale = 1,
): { loss: number; dZ: number } {
  const u = 2 ** -24;
  const sumTol = (terms: number, magnitude: number) => 2 * Math.max(terms, 1) * u * magnitude;
  const n = d.B * d.N;
  const beta = Math.abs(d.beta);
  const { Z, mean, variance: V } = saved;
  let maxZ = 0;
  let maxI = 0;
  let maxDev = 0;
  let sumZ = 0;
  let sumDev = 0;
  for (let j = 0; j < n; j++) {
    maxZ = Math.max(maxZ, Math.abs(Z[j]));
    maxI = Math.max(maxI, Math.abs(boost[j]));
    maxDev = Math.max(maxDev, Math.abs(Z[j] - mean));
    sumZ += Math.abs(Z[j]);
    sumDev += Math.abs(Z[j] - mean);
  }
  const am = Math.abs(mean);
  const errZ = errQ * maxI + u * maxZ;
  const errMean = errZ + sumTol(n, sumZ) / n + u * am;
  const errDev = errZ + errMean + u * maxDev;
  const ss = V * (n - 1);
  const errSS = 2 * sumDev * errDev + sumTol(n, ss) + u * ss;
  const errV = errSS / (n - 1) + u * V;
  const D = mean * mean + LBC_EPS;
  const errD = 2 * am * errMean + 2 * u * D;
  const loss = beta * (errV / D + (V * errD) / (D * D)) + 3 * u * Math.abs(saved.loss);
  const c1 = (2 * beta) / ((n - 1) * D);
  const c2 = (2 * beta * V * am) / (n * D * D);
  const errC1 = c1 * (errD / D + 4 * u);
  const errC2 = ((2 * beta) / n) * ((errV * am) / (D * D) + (V * errMean) / (D * D) + (2 * V * am * errD) / (D * D * D)) + 6 * u * c2;
  const dZ = Math.abs(gradScale) * (c1 * errDev + errC1 * maxDev + errC2 + u * (c1 * maxDev + c2));
  return { loss, dZ };
}
