/**
 * CPU reference (float64) for shaders/embedding.wgsl, the token embedding:
 *   out[m, c] = E[ids[m], c]   (ids: [M], E: [V, C], out: [M, C]; an id >= V gives a zero row)
 *
 * Gradient rule: parameter gradients accumulate on the GPU (dE +=); the reference returns this
 * call's contribution dE[v, c] = sum over rows m with ids[m] = v of dout[m, c].
 */
export interface EmbeddingDims {
  M: number;
  C: number;
  V: number;
}

export function embeddingForward(ids: ArrayLike<number>, E: ArrayLike<number>, dims: EmbeddingDims): Float64Array {
  const { M, C, V } = dims;
  const out = new Float64Array(M * C);
  for (let m = 0; m < M; m++) {
    const id = ids[m];
    if (id >= V) continue;
    for (let c = 0; c < C; c++) out[m * C + c] = E[id * C + c];
  }
  return out;
}

/** Backward in the fixed order (output gradients, inputs, dims): the scatter-add of dout rows. */
export function embeddingBackward(dout: ArrayLike<number>, ids: ArrayLike<number>, dims: EmbeddingDims): Float64Array {
  const { M, C, V } = dims;
  const dE = new Float64Array(V * C);
  for (let m = 0; m < M; m++) {
    const id = ids[m];
    if (id >= V) continue;
    for (let c = 0; c < C; c++) dE[id * C + c] += dout[m * C + c];
  }
  return dE;
}
