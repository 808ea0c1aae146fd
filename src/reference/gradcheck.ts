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

export function toF64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a);
}
