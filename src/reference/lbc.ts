/**
 * CPU reference (float64) for shaders/lbc.wgsl: LoRAMoE's localized balancing constraint (LBC) for
 * one adapted layer, the CPU helpers that build its boost matrix (used by the model too), and the
 * constraint's analytic optimum (where it pushes each sample's routing).
 *
 * Dimension letters: B sequences of T tokens, M = B*T rows, N experts.
 *   w      [M, N]   router weights of the layer (rows b*T .. b*T+T-1 belong to sequence b)
 *   valid  [M]      1 for a real token, 0 for padding
 *   len    [B]      len[b] = real tokens of sequence b
 *   I      [B, N]   boost. Direction "official" (the released code): 1 + delta where expert n is in
 *                   the group of sample b's data type, else 1 - delta. Direction "own-group": the
 *                   sign flipped (1 - delta in the own group, 1 + delta elsewhere).
 *   Q      [B, N]   importance. "sum":  Q[b, n] = sum_t valid[b*T+t] * w[b*T+t, n]
 *                                "mean": the same divided by len[b] (0 for a sequence with no tokens)
 *   Z      [B, N]   Q * I
 *   L               beta * var(Z) / (mean(Z)^2 + 1e-10), unbiased variance over the B*N values
 *
 * Unlike the official code, padding is excluded from Q (it sums over every position, padding
 * included, but trains one sample per device). Summing real tokens gives each row of Q its own
 * total, len[b], and the spread of lengths then enters var(Z); the per-sample mean makes every row
 * total 1, which keeps the official optimum for any batch and equals the official loss at B = 1
 * (CV^2 is scale-free). See docs/method.md, "The balancing constraint: which way it pushes".
 *
 * Which way it pushes: CV^2(Z) is smallest when the entries of Z are as equal as they can be, i.e.
 * Q ~ 1 / I. So the official boost (I large on the own group) drives a sample's weight *away* from
 * its own group, to (1 - delta) / 2 for two equal groups; the own-group direction drives it toward
 * it, to (1 + delta) / 2. lbcOptimum below gives the exact optimum for any groups and lengths.
 *
 * Gradients: with n = B*N, den = mean^2 + 1e-10, varZ = var(Z) (sum_j (Z_j - mean) = 0 removes the
 * mean's contribution to d varZ), s[b] = 1 ("sum") or 1 / len[b] ("mean"):
 *   dL/dZ_j = beta * (2 (Z_j - mean) / ((n-1) den) - 2 varZ mean / (n den^2))
 *   dL/dw[m, e] = valid[m] * s[b] * I[b, e] * dL/dZ[b, e],   b = floor(m / T), e an expert
 * The GPU kernels compute Q as the sum and take the boost with s folded in (lbcGpuBoost: I[b, e] *
 * s[b]), which gives the same Z and the same gradient for both rules. The GPU adds dL/dw into the
 * dw that gate_backward wrote (activation gradient, accumulated on purpose within one backward);
 * these functions return fresh values.
 */

import { LBC_DIRECTIONS, LBC_IMPORTANCES, type LbcDirection, type LbcImportance } from '../method/adapter';

const LBC_EPS = 1e-10;

export interface LbcDims {
  B: number;
  T: number;
  N: number;
  /** Weight of the constraint in the loss (the official `blc_weight`). */
  beta: number;
  /** Importance rule; "sum" when absent (what the kernels compute from an unscaled boost). */
  importance?: LbcImportance;
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
 * Boost matrix I [B, N] (float32, as uploaded to the GPU). Official direction: I[b, n] = 1 + delta
 * if expert n is in groups[types[b]], else 1 - delta; own-group direction: the sign of delta flipped.
 * `groups[t]` lists the experts of data type t.
 */
export function lbcBoost(
  types: readonly number[],
  groups: readonly (readonly number[])[],
  N: number,
  delta: number,
  direction: LbcDirection = 'official',
): Float32Array {
  if (!Number.isInteger(N) || N < 1) throw new Error(`lbcBoost: N must be a positive integer, got ${N}`);
  if (!Number.isFinite(delta)) throw new Error(`lbcBoost: delta must be finite, got ${delta}`);
  for (const [t, g] of groups.entries()) {
    for (const n of g) {
      if (!Number.isInteger(n) || n < 0 || n >= N) throw new Error(`lbcBoost: group of type ${t} names expert ${n}, outside 0..${N - 1}`);
    }
  }
  if (!LBC_DIRECTIONS.includes(direction)) throw new Error(`lbcBoost: direction must be ${LBC_DIRECTIONS.join(' or ')}, got "${String(direction)}"`);
  const out = new Float32Array(types.length * N);
  types.forEach((t, b) => {
    if (!Number.isInteger(t) || t < 0 || t >= groups.length) {
      throw new Error(`lbcBoost: sample ${b} has data type ${t}, but groups are given for types 0..${groups.length - 1}`);
    }
    const inGroup = new Set(groups[t]);
    const own = direction === 'official' ? 1 + delta : 1 - delta;
    const other = direction === 'official' ? 1 - delta : 1 + delta;
    for (let n = 0; n < N; n++) out[b * N + n] = inGroup.has(n) ? own : other;
  });
  return out;
}

/** s[b]: 1 for "sum", 1 / len[b] for "mean" (0 for a sequence with no real token). [B] */
function lbcSampleScale(valid: ArrayLike<number>, B: number, T: number, importance: LbcImportance): Float64Array {
  if (!LBC_IMPORTANCES.includes(importance)) throw new Error(`LBC: importance must be ${LBC_IMPORTANCES.join(' or ')}, got "${String(importance)}"`);
  const s = new Float64Array(B).fill(1);
  if (importance === 'sum') return s;
  for (let b = 0; b < B; b++) {
    let len = 0;
    for (let t = 0; t < T; t++) if (valid[b * T + t] !== 0) len++;
    s[b] = len > 0 ? 1 / len : 0;
  }
  return s;
}

/**
 * The boost the GPU kernels take: I[b, n] * s[b] [B, N]. The kernels sum Q over real tokens, so
 * folding s into the boost gives them Z = Q * I under either importance rule, and the same gradient.
 */
export function lbcGpuBoost(boost: ArrayLike<number>, valid: ArrayLike<number>, B: number, T: number, N: number, importance: LbcImportance): Float32Array {
  if (boost.length !== B * N) throw new Error(`lbcGpuBoost: boost has ${boost.length} values, needs B*N = ${B * N}`);
  if (valid.length !== B * T) throw new Error(`lbcGpuBoost: valid has ${valid.length} values, needs B*T = ${B * T}`);
  const s = lbcSampleScale(valid, B, T, importance);
  const out = new Float32Array(B * N);
  for (let b = 0; b < B; b++) for (let n = 0; n < N; n++) out[b * N + n] = boost[b * N + n] * s[b];
  return out;
}

function checkLbcDims(d: LbcDims, wLen: number, validLen: number, boostLen: number): void {
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
  const scale = lbcSampleScale(valid, B, T, d.importance ?? 'sum');
  const Q = new Float64Array(n);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const m = b * T + t;
      if (valid[m] === 0) continue;
      for (let e = 0; e < N; e++) Q[b * N + e] += w[m * N + e];
    }
    for (let e = 0; e < N; e++) Q[b * N + e] *= scale[b];
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
  const den = saved.mean * saved.mean + LBC_EPS;
  const c1 = (2 * beta) / ((n - 1) * den);
  const c2 = (2 * beta * saved.variance * saved.mean) / (n * den * den);
  const dZ = saved.Z.map((z) => dLoss * (c1 * (z - saved.mean) - c2));
  const scale = lbcSampleScale(valid, B, T, d.importance ?? 'sum');
  const dw = new Float64Array(B * T * N);
  for (let m = 0; m < B * T; m++) {
    if (valid[m] === 0) continue;
    const b = Math.floor(m / T);
    for (let e = 0; e < N; e++) dw[m * N + e] = scale[b] * boost[b * N + e] * dZ[b * N + e];
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
  const { Z, mean, variance: varZ } = saved;
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
  const ss = varZ * (n - 1);
  const errSS = 2 * sumDev * errDev + sumTol(n, ss) + u * ss;
  const errVar = errSS / (n - 1) + u * varZ;
  const den = mean * mean + LBC_EPS;
  const errDen = 2 * am * errMean + 2 * u * den;
  const loss = beta * (errVar / den + (varZ * errDen) / (den * den)) + 3 * u * Math.abs(saved.loss);
  const c1 = (2 * beta) / ((n - 1) * den);
  const c2 = (2 * beta * varZ * am) / (n * den * den);
  const errC1 = c1 * (errDen / den + 4 * u);
  const errC2 = ((2 * beta) / n) * ((errVar * am) / (den * den) + (varZ * errMean) / (den * den) + (2 * varZ * am * errDen) / (den * den * den)) + 6 * u * c2;
  const dZ = Math.abs(gradScale) * (c1 * errDev + errC1 * maxDev + errC2 + u * (c1 * maxDev + c2));
  return { loss, dZ };
}

// ---------------------------------------------------------------------------------------------
// The analytic optimum: where the constraint alone settles each sample's routing.
// ---------------------------------------------------------------------------------------------

/** One sample (or `count` identical samples) of a batch whose optimum is asked for. */
export interface LbcOptimumSample {
  /** Data type, an index into `groups`. */
  type: number;
  /** The row total of Q: the sample's real tokens under "sum", 1 under "mean". */
  total: number;
  /** How many such samples the batch holds (default 1). */
  count?: number;
}

export interface LbcOptimum {
  /** [samples][N] Q at the optimum (rows total each sample's `total`). */
  Q: number[][];
  /** Per sample: the share of its router weight on its own group, sum over the group of Q / total. */
  ownShare: number[];
  /** True when every Q entry is positive (an interior optimum, reachable by a softmax router). */
  interior: boolean;
}

/**
 * The minimum of CV^2(Z) over Q with each row's total fixed (the constraint alone, no cross-entropy).
 * Minimising CV^2 is minimising S2 / S1^2 (S1 = sum Z, S2 = sum Z^2); with rows constrained to their
 * totals L_b, the stationarity conditions give, for A_b = sum_n 1/I[b,n] and C_b = sum_n 1/I[b,n]^2:
 *   Z[b, n] = rho + lambda_b / I[b, n],   lambda_b = (L_b - rho A_b) / C_b,
 *   rho = sum_b L_b^2 / C_b  /  sum_b L_b A_b / C_b           (from sum_b L_b lambda_b = 0)
 * so Q[b, n] = (rho + lambda_b / I[b, n]) / I[b, n]. When every row has the same A, C and L (groups
 * of one size and the "mean" rule), lambda = 0 and Z is constant: Q ~ 1 / I. Two equal groups then
 * give an own-group share of (1 - delta) / 2 (official) or (1 + delta) / 2 (own-group); K equal
 * groups give I_o^-1 / (I_o^-1 + (K-1) I_x^-1) with I_o, I_x the own and other boosts. Unequal
 * groups or unequal totals make the optimum depend on the whole batch, which this solves exactly.
 */
export function lbcOptimum(
  samples: readonly LbcOptimumSample[],
  groups: readonly (readonly number[])[],
  N: number,
  delta: number,
  direction: LbcDirection,
): LbcOptimum {
  if (samples.length === 0) throw new Error('lbcOptimum: no samples');
  const rows = samples.map((s, b) => {
    if (!(s.total > 0)) throw new Error(`lbcOptimum: sample ${b} has row total ${s.total}, needs > 0`);
    if ((s.count ?? 1) < 0) throw new Error(`lbcOptimum: sample ${b} has a negative count`);
    // float64 boosts (lbcBoost rounds to float32, as uploaded): the target is exact.
    if (!Number.isInteger(s.type) || s.type < 0 || s.type >= groups.length) throw new Error(`lbcOptimum: sample ${b} has data type ${s.type}, groups are given for 0..${groups.length - 1}`);
    const own = new Set(groups[s.type]);
    const sign = direction === 'official' ? 1 : -1;
    return Array.from({ length: N }, (_, n) => (own.has(n) ? 1 + sign * delta : 1 - sign * delta));
  });
  const A = rows.map((I) => I.reduce((a, x) => a + 1 / x, 0));
  const C = rows.map((I) => I.reduce((a, x) => a + 1 / (x * x), 0));
  let num = 0;
  let den = 0;
  samples.forEach((s, b) => {
    const c = s.count ?? 1;
    num += (c * s.total * s.total) / C[b];
    den += (c * s.total * A[b]) / C[b];
  });
  const rho = num / den;
  let interior = true;
  const Q = rows.map((I, b) => {
    const lambda = (samples[b].total - rho * A[b]) / C[b];
    return I.map((x) => {
      const q = (rho + lambda / x) / x;
      if (!(q > 0)) interior = false;
      return q;
    });
  });
  const ownShare = Q.map((q, b) => groups[samples[b].type].reduce((a, n) => a + q[n], 0) / samples[b].total);
  return { Q, ownShare, interior };
}

/**
 * Each data type's own-group share at the constraint's optimum under the "mean" rule, for a batch
 * whose types come in the proportions `typeCounts` (only the proportions matter; with groups of one
 * size they do not matter either). NaN for a type with no samples.
 */
export function lbcTargetShares(
  typeCounts: readonly number[],
  groups: readonly (readonly number[])[],
  N: number,
  delta: number,
  direction: LbcDirection,
): number[] {
  const present = typeCounts.map((c, t) => ({ type: t, total: 1, count: c })).filter((s) => s.count > 0);
  if (present.length === 0) return typeCounts.map(() => NaN);
  const opt = lbcOptimum(present, groups, N, delta, direction);
  const out = typeCounts.map(() => NaN);
  present.forEach((s, i) => (out[s.type] = opt.ownShare[i]));
  return out;
}
