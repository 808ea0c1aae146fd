/**
 * Small-sample statistics over seeds: the mean with its 95% confidence interval (Student t), and
 * the paired comparison of two methods run on the same seeds.
 *
 * The rule for "beyond noise" (the experiment's tables): two methods differ on a figure when the
 * 95% confidence interval of their per-seed differences excludes zero, i.e. a two-sided paired
 * t-test at the 5% level. Pairing by seed removes what a seed does to both methods alike (the
 * adapter's initialisation, the data order, the dropout masks).
 */

/**
 * The 0.975 quantile of Student's t distribution for df = 1..30 (two-sided 95%), to four decimals
 * (the standard table; e.g. Abramowitz & Stegun 26.10).
 */
const T975: readonly number[] = [
  12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.306, 2.2622, 2.2281, 2.201, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.093, 2.086,
  2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
];

/** The 0.975 quantile of the standard normal. */
const Z975 = 1.959963984540054;

/**
 * The 0.975 quantile of Student's t with `df` degrees of freedom: the table for df <= 30, beyond it
 * the Cornish-Fisher expansion in 1/df (error below 1e-5 there). Throws for df < 1 or not an integer.
 */
export function tQuantile975(df: number): number {
  if (!Number.isInteger(df) || df < 1) throw new Error(`t quantile: degrees of freedom must be a positive integer, got ${df}`);
  if (df <= T975.length) return T975[df - 1];
  const z = Z975;
  const z3 = z ** 3;
  const z5 = z ** 5;
  const z7 = z ** 7;
  return z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df ** 2) + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df ** 3);
}

/** A figure over seeds: its mean and 95% confidence interval (null with fewer than two values). */
export interface MeanCI {
  mean: number;
  /** Half-width of the 95% interval: t(0.975, n - 1) * sd / sqrt(n); null for n < 2. */
  half: number | null;
  n: number;
}

/** Mean and 95% Student-t confidence interval of `values` (sample standard deviation, n - 1). */
export function meanCI(values: readonly number[]): MeanCI {
  const n = values.length;
  if (n === 0) return { mean: NaN, half: null, n: 0 };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, half: null, n };
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
  return { mean, half: (tQuantile975(n - 1) * Math.sqrt(variance)) / Math.sqrt(n), n };
}

/** A paired comparison: the mean per-seed difference a - b, its 95% interval, and whether it excludes 0. */
export interface PairedDifference extends MeanCI {
  /** The interval excludes zero: the difference is beyond the noise between seeds (paired t-test, 5%). */
  beyondNoise: boolean;
}

/** Paired difference of `a` and `b`, value i of each from the same seed. Throws on unequal lengths. */
export function pairedDifference(a: readonly number[], b: readonly number[]): PairedDifference {
  if (a.length !== b.length) throw new Error(`paired difference: ${a.length} values against ${b.length}; each seed needs both`);
  const d = meanCI(a.map((v, i) => v - b[i]));
  // Identical per-seed differences (sd 0) are beyond noise unless they are all zero.
  const beyondNoise = d.half !== null && (d.half === 0 ? d.mean !== 0 : Math.abs(d.mean) > d.half);
  return { ...d, beyondNoise };
}

/** "12.3% ± 4.5" style: a share as percent with its interval's half-width (no ± with one seed). */
export function formatPercentCI(c: MeanCI, digits = 1): string {
  if (!Number.isFinite(c.mean)) return '—';
  const m = `${(c.mean * 100).toFixed(digits)}%`;
  return c.half === null ? m : `${m} ± ${(c.half * 100).toFixed(digits)}`;
}
