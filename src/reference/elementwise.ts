/**
 * CPU reference (float64) for shaders/elementwise.wgsl. Each function returns the new output as a
 * Float64Array of length n and leaves its inputs untouched (the GPU versions of accumulate, scale
 * and fill update y in place). These are linear maps with no parameters, so their backward passes
 * are the obvious ones (add: da = db = dout; accumulate: dx = alpha * dy; scale: dy *= alpha) and
 * the model writes them with these same helpers.
 */

/** out = a + b */
export function addForward(a: ArrayLike<number>, b: ArrayLike<number>, n = a.length): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
  return out;
}

/** y + alpha * x (the GPU's y += alpha * x) */
export function accumulateForward(y: ArrayLike<number>, x: ArrayLike<number>, alpha: number, n = y.length): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = y[i] + alpha * x[i];
  return out;
}

/** value everywhere (the GPU's y = value, value rounded to float32 there) */
export function fillForward(value: number, n: number): Float64Array {
  return new Float64Array(n).fill(value);
}

/** alpha * y (the GPU's y *= alpha) */
export function scaleForward(y: ArrayLike<number>, alpha: number, n = y.length): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = alpha * y[i];
  return out;
}

/** a copy of x */
export function copyForward(x: ArrayLike<number>, n = x.length): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = x[i];
  return out;
}
