/**
 * CPU reference (float64) for shaders/matmul.wgsl: C = alpha * op(A) · op(B) + beta * C, where
 * op(A) is [M, K] (stored [K, M] when transA) and op(B) is [K, N] (stored [N, K] when transB).
 */
export interface RefMatmulArgs {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
}

export function matmul(a: ArrayLike<number>, b: ArrayLike<number>, args: RefMatmulArgs, c?: ArrayLike<number>): Float64Array {
  const { M, N, K } = args;
  const alpha = args.alpha ?? 1;
  const beta = args.beta ?? 0;
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = args.transA ? a[k * M + m] : a[m * K + k];
        const bv = args.transB ? b[n * K + k] : b[k * N + n];
        s += av * bv;
      }
      out[m * N + n] = alpha * s + (beta !== 0 && c ? beta * c[m * N + n] : 0);
    }
  }
  return out;
}
