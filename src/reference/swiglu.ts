/**
 * CPU reference (float64) for shaders/swiglu.wgsl: h = silu(g) * u over n = M*F elements, with
 * silu(g) = g * sigmoid(g) (PyTorch's F.silu, Hugging Face Llama's `act_fn(gate_proj(x)) * up_proj(x)`).
 *
 * Gradient rule: the GPU overwrites activation gradients (dg, du) and accumulates parameter
 * gradients; SwiGLU has no parameters, so both of its gradients overwrite.
 */

/** sigmoid without overflow: exp is only taken of -|x| <= 0. */
export function sigmoid(x: number): number {
  const e = Math.exp(-Math.abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

export function silu(x: number): number {
  return x * sigmoid(x);
}

/** h[i] = silu(g[i]) * u[i]. g, u, h: [M, F] flattened, n = M*F. */
export function swigluForward(g: ArrayLike<number>, u: ArrayLike<number>, n = g.length): Float64Array {
  const h = new Float64Array(n);
  for (let i = 0; i < n; i++) h[i] = silu(g[i]) * u[i];
  return h;
}

/**
 * Backward in the fixed order (output gradients, inputs, dims):
 *   du = dh * silu(g)
 *   dg = dh * u * s * (1 + g * (1 - s)),  s = sigmoid(g)
 */
export function swigluBackward(
  dh: ArrayLike<number>,
  g: ArrayLike<number>,
  u: ArrayLike<number>,
  n = g.length,
): { dg: Float64Array; du: Float64Array } {
  const dg = new Float64Array(n);
  const du = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const s = sigmoid(g[i]);
    du[i] = dh[i] * g[i] * s;
    dg[i] = dh[i] * u[i] * s * (1 + g[i] * (1 - s));
  }
  return { dg, du };
}
