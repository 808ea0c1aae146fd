/**
 * CPU reference (float64) for shaders/optimizer.wgsl: torch.nn.utils.clip_grad_norm_ and one step
 * of torch.optim.AdamW (foreach = False, amsgrad = False, maximize = False).
 *
 * An optimizer has no backward: these functions return the new state and leave their inputs alone.
 */

export interface AdamWSettings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface AdamWState {
  param: Float64Array;
  m: Float64Array;
  v: Float64Array;
}

/**
 * One AdamW step t (1-based) on the gradient `grad · gradScale` (gradScale: the clip coefficient):
 *   p = p · (1 - lr·wd)
 *   m = b1·m + (1 - b1)·g
 *   v = b2·v + (1 - b2)·g²
 *   p = p - (lr / (1 - b1^t)) · m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 */
export function adamwStep(
  param: ArrayLike<number>,
  grad: ArrayLike<number>,
  m: ArrayLike<number>,
  v: ArrayLike<number>,
  step: number,
  s: AdamWSettings,
  gradScale = 1,
): AdamWState {
  const n = param.length;
  const out: AdamWState = { param: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  const bc1 = 1 - s.beta1 ** step;
  const bc2 = 1 - s.beta2 ** step;
  for (let i = 0; i < n; i++) {
    const g = grad[i] * gradScale;
    const mi = s.beta1 * m[i] + (1 - s.beta1) * g;
    const vi = s.beta2 * v[i] + (1 - s.beta2) * g * g;
    const p = param[i] * (1 - s.lr * s.weightDecay);
    out.m[i] = mi;
    out.v[i] = vi;
    out.param[i] = p - (s.lr / bc1) * (mi / (Math.sqrt(vi) / Math.sqrt(bc2) + s.eps));
  }
  return out;
}

/** Total 2-norm over all gradient tensors, as one concatenated vector. */
export function gradNorm(grads: readonly ArrayLike<number>[]): number {
  let s = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return Math.sqrt(s);
}

/** clip_grad_norm_'s coefficient: min(1, maxNorm / (norm + 1e-6)); 1 when maxNorm <= 0 (disabled). */
export function clipScale(norm: number, maxNorm: number): number {
  if (maxNorm <= 0) return 1;
  return Math.min(1, maxNorm / (norm + 1e-6));
}

export interface ClipResult {
  norm: number;
  scale: number;
  /** The norm is NaN or infinite: the GPU step skips the update. */
  nonFinite: boolean;
}

export function clipGradNorm(grads: readonly ArrayLike<number>[], maxNorm: number): ClipResult {
  const norm = gradNorm(grads);
  return { norm, scale: clipScale(norm, maxNorm), nonFinite: !Number.isFinite(norm) };
}
