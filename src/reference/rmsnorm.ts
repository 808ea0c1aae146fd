/**
 * CPU reference (float64) for shaders/rmsnorm.wgsl, Hugging Face's LlamaRMSNorm:
 *   rstd[m] = 1 / sqrt(mean_c(x[m, c]^2) + eps),  y[m, c] = w[c] * x[m, c] * rstd[m]
 * x, y, dy, dx: [M, C]; w, dw: [C]; rstd: [M] (saved by forward for backward).
 *
 * Gradient rule: activation gradients overwrite (dx), parameter gradients accumulate on the GPU
 * (dw +=). The reference returns this call's contribution to dw; the GPU adds it to what dw held.
 */
export interface RmsnormDims {
  M: number;
  C: number;
}

export function rmsnormForward(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  dims: RmsnormDims & { eps: number },
): { y: Float64Array; rstd: Float64Array } {
  const { M, C, eps } = dims;
  const y = new Float64Array(M * C);
  const rstd = new Float64Array(M);
  for (let m = 0; m < M; m++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[m * C + c] ** 2;
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[m] = r;
    for (let c = 0; c < C; c++) y[m * C + c] = w[c] * x[m * C + c] * r;
  }
  return { y, rstd };
}

/**
 * Backward in the fixed order (output gradients, inputs, saved stats, dims). With xhat = x * rstd:
 *   dx[m, c] = rstd[m] * (w[c] dy[m, c] - xhat[m, c] * mean_c'(w[c'] dy[m, c'] xhat[m, c']))
 *   dw[c]    = sum_m dy[m, c] * xhat[m, c]
 * (d rstd / d x[m, c] = -rstd^3 x[m, c] / C gives the second term of dx.)
 */
export function rmsnormBackward(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  rstd: ArrayLike<number>,
  dims: RmsnormDims,
): { dx: Float64Array; dw: Float64Array } {
  const { M, C } = dims;
  const dx = new Float64Array(M * C);
  const dw = new Float64Array(C);
  for (let m = 0; m < M; m++) {
    const r = rstd[m];
    let s = 0;
    for (let c = 0; c < C; c++) s += w[c] * dy[m * C + c] * x[m * C + c] * r;
    const mean = s / C;
    for (let c = 0; c < C; c++) {
      const i = m * C + c;
      const xhat = x[i] * r;
      dx[i] = r * (w[c] * dy[i] - xhat * mean);
      dw[c] += dy[i] * xhat;
    }
  }
  return { dx, dw };
}
