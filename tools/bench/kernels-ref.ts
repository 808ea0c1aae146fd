/**
 * CPU references (float64) for the kernel benchmark, each with a per-element error bound, so a
 * float32 result on any adapter can be judged without a hand-tuned tolerance per shape.
 *
 * `bound[i]` is the magnitude that float32 rounding errors of output i scale with: for a dot
 * product sum_k a_k b_k it is sum_k |a_k b_k| (the classic bound on summation error is
 * k * eps * sum |a_k b_k|; in practice it grows like sqrt(k)). `kEff` is the number of terms
 * accumulated along the longest path. checkAgainst() allows 8 * sqrt(kEff) * 2^-23 * bound
 * (+ 1e-6 absolute): comfortably above float32 rounding in any summation order, far below what
 * a wrong index, a missed term or a race produces.
 */

export interface Reference {
  ref: Float64Array;
  bound: Float64Array;
  kEff: number;
}

const EPS32 = 2 ** -23;

/** Worst |got - ref| / tolerance over all outputs (<= 1 passes; NaN or a length mismatch gives Infinity). */
export function checkAgainst(got: ArrayLike<number>, r: Reference): number {
  if (got.length !== r.ref.length) return Infinity;
  const rel = 8 * Math.sqrt(r.kEff) * EPS32;
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    const tol = rel * r.bound[i] + 1e-6;
    const e = Math.abs(got[i] - r.ref[i]) / tol;
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

/** op(X) as a row-major float64 [rows, cols] copy: X stored [rows, cols], or [cols, rows] when trans. */
function rowMajor(x: ArrayLike<number>, rows: number, cols: number, trans: boolean): Float64Array {
  const out = new Float64Array(rows * cols);
  if (!trans) {
    for (let i = 0; i < rows * cols; i++) out[i] = x[i];
  } else {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = x[c * rows + r];
  }
  return out;
}

/**
 * C = op(A) · op(B), [M, N]: op(A) is [M, K] (A stored [K, M] when transA), op(B) is [K, N]
 * (B stored [N, K] when transB), the layouts of shaders/matmul.wgsl.
 */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, M: number, N: number, K: number, transA: boolean, transB: boolean): Reference {
  const A = rowMajor(a, M, K, transA); // [M, K]
  const Bt = rowMajor(b, N, K, !transB); // op(B)ᵀ: [N, K]
  const ref = new Float64Array(M * N);
  const bound = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    const ai = i * K;
    for (let j = 0; j < N; j++) {
      const bj = j * K;
      let s = 0;
      let sa = 0;
      for (let k = 0; k < K; k++) {
        const p = A[ai + k] * Bt[bj + k];
        s += p;
        sa += Math.abs(p);
      }
      ref[i * N + j] = s;
      bound[i * N + j] = sa;
    }
  }
  return { ref, bound, kEff: K };
}

/**
 * The LoRAMoE expert forward of one projection (dropout off), as the model computes it:
 * h = x · Aᵀ [M, NR]; g[m, i*R + r] = scale * w[m, i] * h[m, i*R + r]; y = g · Bᵀ [M, Nout].
 * x [M, K], A [NR, K] (stacked A_i), w [M, N] router weights, B [Nout, NR] (stacked B_i).
 */
export function loraRef(x: Float32Array, A: Float32Array, w: Float32Array, B: Float32Array, M: number, K: number, N: number, R: number, Nout: number, scale: number): Reference {
  const NR = N * R;
  const h = matmulRef(x, A, M, NR, K, false, true);
  const g = new Float64Array(M * NR);
  const gb = new Float64Array(M * NR);
  for (let m = 0; m < M; m++) {
    for (let j = 0; j < NR; j++) {
      const s = scale * w[m * N + Math.floor(j / R)];
      g[m * NR + j] = s * h.ref[m * NR + j];
      gb[m * NR + j] = Math.abs(s) * h.bound[m * NR + j];
    }
  }
  const ref = new Float64Array(M * Nout);
  const bound = new Float64Array(M * Nout);
  for (let m = 0; m < M; m++) {
    for (let o = 0; o < Nout; o++) {
      let s = 0;
      let sb = 0;
      for (let j = 0; j < NR; j++) {
        const bv = B[o * NR + j];
        s += g[m * NR + j] * bv;
        // g's own rounding (bounded by gb) carried through, plus this sum's rounding.
        sb += (gb[m * NR + j] + Math.abs(g[m * NR + j])) * Math.abs(bv);
      }
      ref[m * Nout + o] = s;
      bound[m * Nout + o] = sb;
    }
  }
  return { ref, bound, kEff: K + NR };
}

/** w = softmax(x · Wrᵀ) per row: x [M, K], Wr [N, K]. */
export function routerRef(x: Float32Array, wr: Float32Array, M: number, K: number, N: number): Reference {
  const logits = matmulRef(x, wr, M, N, K, false, true);
  const ref = new Float64Array(M * N);
  const bound = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    let mx = -Infinity;
    let lb = 0;
    for (let i = 0; i < N; i++) {
      mx = Math.max(mx, logits.ref[m * N + i]);
      lb = Math.max(lb, logits.bound[m * N + i]);
    }
    let sum = 0;
    for (let i = 0; i < N; i++) sum += Math.exp(logits.ref[m * N + i] - mx);
    for (let i = 0; i < N; i++) {
      const p = Math.exp(logits.ref[m * N + i] - mx) / sum;
      ref[m * N + i] = p;
      // A logit error d moves p_i by at most 2 p_i d; exp and the division add a few ulps of p_i.
      bound[m * N + i] = p * (2 * lb + 1 + Math.abs(logits.ref[m * N + i] - mx));
    }
  }
  return { ref, bound, kEff: K };
}

/**
 * Causal attention with grouped key/value heads, B = 1: q [T, H*D], k and v [T, KVH*D],
 * o [T, H*D] = softmax(scale · q kᵀ, causal) v per head; head h reads kv head h / (H / KVH).
 */
export function attentionRef(q: Float32Array, k: Float32Array, v: Float32Array, T: number, H: number, KVH: number, D: number, scale: number): Reference {
  const G = H / KVH;
  const ref = new Float64Array(T * H * D);
  const bound = new Float64Array(T * H * D);
  const s = new Float64Array(T);
  const sb = new Float64Array(T);
  for (let h = 0; h < H; h++) {
    const kvh = Math.floor(h / G);
    for (let t = 0; t < T; t++) {
      let mx = -Infinity;
      let maxB = 0;
      for (let j = 0; j <= t; j++) {
        let d = 0;
        let da = 0;
        for (let e = 0; e < D; e++) {
          const p = q[t * H * D + h * D + e] * k[j * KVH * D + kvh * D + e];
          d += p;
          da += Math.abs(p);
        }
        s[j] = scale * d;
        sb[j] = Math.abs(scale) * da;
        mx = Math.max(mx, s[j]);
        maxB = Math.max(maxB, sb[j] + Math.abs(s[j] - mx));
      }
      let sum = 0;
      for (let j = 0; j <= t; j++) {
        s[j] = Math.exp(s[j] - mx);
        sum += s[j];
      }
      for (let e = 0; e < D; e++) {
        let o = 0;
        let ob = 0;
        for (let j = 0; j <= t; j++) {
          const p = s[j] / sum;
          const vv = v[j * KVH * D + kvh * D + e];
          o += p * vv;
          ob += p * Math.abs(vv);
        }
        ref[t * H * D + h * D + e] = o;
        // Score errors move each p_j by at most 2 p_j maxB (plus exp's ulps); the sum adds its own.
        bound[t * H * D + h * D + e] = (2 * maxB + 2) * ob;
      }
    }
  }
  return { ref, bound, kEff: D + T };
}
