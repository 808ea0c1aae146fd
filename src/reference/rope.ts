/**
 * CPU reference for shaders/rope.wgsl (rotary position embedding, Hugging Face's rotate_half
 * convention) and the cos/sin tables the GPU kernel reads.
 *
 * For a head vector x of length D, half = D/2, i < half, position p:
 *   out[i]        = x[i]        cos[p, i] - x[i + half] sin[p, i]
 *   out[i + half] = x[i + half] cos[p, i] + x[i]        sin[p, i]
 * Rows of x [M, nHeads * D] are tokens; row m has position p = pos0 + (m % T).
 *
 * Gradient rule: RoPE has no parameters; its input gradient overwrites (activation gradient).
 */

export interface RopeDims {
  M: number;
  nHeads: number;
  D: number;
  T: number;
  pos0: number;
}

/**
 * inv_freq as Hugging Face computes it in float32 (`_compute_default_rope_parameters`):
 *   inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
 * Every step is a float32 operation: 2i / D is rounded to float32, base ** that is a float32 pow
 * (modelled as the correctly rounded value; PyTorch's powf is within an ulp of it), 1 / that is
 * rounded to float32. Length D/2.
 */
export function ropeInvFreq(D: number, theta: number): Float32Array {
  if (!Number.isInteger(D) || D <= 0 || D % 2 !== 0) throw new Error(`rope: head dim D must be a positive even integer, got ${D}`);
  const half = D / 2;
  const out = new Float32Array(half);
  const base = Math.fround(theta);
  for (let i = 0; i < half; i++) {
    const exponent = Math.fround((2 * i) / D);
    const pow = Math.fround(Math.pow(base, exponent));
    out[i] = Math.fround(1 / pow);
  }
  return out;
}

/**
 * cos/sin tables [maxPos, D/2] as Hugging Face's LlamaRotaryEmbedding.forward builds them in
 * float32: freqs = position * inv_freq (a float32 product: the matmul there has inner size 1),
 * then emb = cat(freqs, freqs), cos = emb.cos(), sin = emb.sin() (attention_scaling is 1 for the
 * default rope type). Only the first half is stored, the second is identical. cos and sin of the
 * float32 angle are correctly rounded to float32 here (PyTorch's are within an ulp).
 */
export function ropeTables(maxPos: number, D: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  if (!Number.isInteger(maxPos) || maxPos < 0) throw new Error(`rope: maxPos must be a non-negative integer, got ${maxPos}`);
  const invFreq = ropeInvFreq(D, theta);
  const half = D / 2;
  const cos = new Float32Array(maxPos * half);
  const sin = new Float32Array(maxPos * half);
  for (let p = 0; p < maxPos; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * invFreq[i]);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

function rotate(
  src: ArrayLike<number>,
  cos: ArrayLike<number>,
  sin: ArrayLike<number>,
  dims: RopeDims,
  sign: 1 | -1,
): Float64Array {
  const { M, nHeads, D, T, pos0 } = dims;
  const half = D / 2;
  const out = new Float64Array(M * nHeads * D);
  for (let m = 0; m < M; m++) {
    const p = pos0 + (m % T);
    for (let h = 0; h < nHeads; h++) {
      const base = (m * nHeads + h) * D;
      for (let i = 0; i < half; i++) {
        const c = cos[p * half + i];
        const s = sign * sin[p * half + i];
        const a = src[base + i];
        const b = src[base + i + half];
        out[base + i] = a * c - b * s;
        out[base + i + half] = b * c + a * s;
      }
    }
  }
  return out;
}

/** out = rope(x); x, out: [M, nHeads * D]; cos, sin: [maxPos, D/2]. */
export function ropeForward(x: ArrayLike<number>, cos: ArrayLike<number>, sin: ArrayLike<number>, dims: RopeDims): Float64Array {
  return rotate(x, cos, sin, dims, 1);
}

/**
 * Backward in the fixed order (output gradients, inputs, dims): the rotation is orthogonal, so
 * dx = R(p)^T dy, the rotation by -angle:
 *   dx[i] = dy[i] cos + dy[i + half] sin,  dx[i + half] = dy[i + half] cos - dy[i] sin
 */
export function ropeBackward(dy: ArrayLike<number>, cos: ArrayLike<number>, sin: ArrayLike<number>, dims: RopeDims): Float64Array {
  return rotate(dy, cos, sin, dims, -1);
}
