/**
 * Comparison of GPU (float32) results against the float64 reference.
 *
 * Tolerances: inputs are float32 values that both sides read exactly, so the difference is the
 * GPU's float32 rounding. A sum of n terms carries at most about n·u·Σ|terms| of error (u = 2^-24,
 * recursive summation); `sumTolerance` states that bound with a factor 2 for the rounding of the
 * terms themselves. Transcendentals (exp, log, sin) add a few ulps relative to the value, covered by
 * the relative part. Every comparison prints its worst error, so a tolerance can be judged by eye.
 */
import { expect } from 'vitest';

export const F32_EPS = 2 ** -24;

/** Bound on float32 error of a sum of `terms` products whose absolute values sum to `magnitude`. */
export function sumTolerance(terms: number, magnitude: number): number {
  return 2 * Math.max(terms, 1) * F32_EPS * magnitude;
}

export interface Tolerance {
  abs: number;
  rel?: number;
}

export interface CompareReport {
  maxAbs: number;
  maxRel: number;
  worstIndex: number;
}

export function compare(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance): CompareReport & { failures: number } {
  if (got.length !== want.length) throw new Error(`length mismatch: got ${got.length}, want ${want.length}`);
  let maxAbs = 0;
  let maxRel = 0;
  let worstIndex = -1;
  let failures = 0;
  let worstExcess = -Infinity;
  const rel = tol.rel ?? 0;
  for (let i = 0; i < got.length; i++) {
    const g = got[i];
    const w = want[i];
    const d = Math.abs(g - w);
    const bound = tol.abs + rel * Math.abs(w);
    if (!(d <= bound)) failures++; // NaN fails too
    if (Number.isNaN(d) || d > maxAbs) maxAbs = Number.isNaN(d) ? Infinity : d;
    if (w !== 0) maxRel = Math.max(maxRel, d / Math.abs(w));
    const excess = Number.isNaN(d) ? Infinity : d - bound;
    if (excess > worstExcess) {
      worstExcess = excess;
      worstIndex = i;
    }
  }
  return { maxAbs, maxRel, worstIndex, failures };
}

/** Asserts `got` ≈ `want` elementwise and logs the worst error. */
export function expectClose(label: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance): CompareReport {
  const r = compare(got, want, tol);
  const where = r.worstIndex >= 0 ? ` worst at [${r.worstIndex}]: got ${got[r.worstIndex]}, want ${want[r.worstIndex]}` : '';
  console.log(
    `[check] ${label}: n=${got.length} max abs err ${r.maxAbs.toExponential(2)}, max rel err ${r.maxRel.toExponential(2)} ` +
      `(tol abs ${tol.abs.toExponential(2)}${tol.rel ? ` rel ${tol.rel.toExponential(2)}` : ''})`,
  );
  expect(r.failures, `${label}: ${r.failures} of ${got.length} values outside tolerance;${where}`).toBe(0);
  return r;
}

/** Largest |got - want| over the tensor, relative to its largest |want| (NaN counts as infinite). */
export function relMaxError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length, 'length').toBe(want.length);
  let scale = 0;
  let err = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    const d = Math.abs(got[i] - want[i]);
    err = Number.isNaN(d) ? Infinity : Math.max(err, d);
  }
  return err / Math.max(scale, 1e-12);
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
