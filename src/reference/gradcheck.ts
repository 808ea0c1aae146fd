/**
 * Central finite differences, the check every reference backward in this folder must pass:
 * d loss / d x[i] ≈ (loss(x + h e_i) - loss(x - h e_i)) / 2h, all in float64.
 */
export function numericGradient(loss: () => number, x: Float64Array, indices: Iterable<number>, h = 1e-6): Map<number, number> {
  const out = new Map<number, number>();
  for (const i of indices) {
    const orig = x[i];
    x[i] = orig + h;
    const up = loss();
    x[i] = orig - h;
    const down = loss();
    x[i] = orig;
    out.set(i, (up - down) / (2 * h));
  }
  return out;
}

/** Indices to probe: all when small, else a deterministic spread of `count`. */
export function probeIndices(n: number, count = 24): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const out: number[] = [];
  for (let j = 0; j < count; j++) out.push(Math.floor((j * (n - 1)) / (count - 1)));
  return out;
}

/** Weighted-sum loss sum_i r[i] * y[i]: its gradient with respect to y is r, any upstream gradient. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Step for central differences on O(1) functions: truncation error grows as H^2 and the loss's
 * rounding error (about 1e-16 * |loss| / H) as 1/H; 1e-5 balances them (near cbrt(eps)).
 */
export const CENTRAL_STEP = 1e-5;

/**
 * Largest |analytic - numeric| over the probed indices, relative to the largest |analytic| among
 * them. Relative to the gradient's scale rather than per element: a tiny component would otherwise
 * be swamped by the loss's own rounding (1e-16 * |loss| / h), which no correct backward can beat.
 */
export function worstRelError(analytic: ArrayLike<number>, numeric: Map<number, number>): number {
  let worst = 0;
  let scale = 1e-12;
  for (const [i, n] of numeric) {
    worst = Math.max(worst, Math.abs(analytic[i] - n));
    scale = Math.max(scale, Math.abs(analytic[i]));
  }
  return worst / scale;
}

export function toF64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a);
}
