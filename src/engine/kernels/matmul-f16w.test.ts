/**
 * Half-precision weights (shaders/matmul_f16w.wgsl, the f16 forward of shaders/embedding.wgsl):
 * the GPU against the float64 reference run on the same weights rounded to f16.
 *
 * Tolerance: the reference reads exactly the values the kernel widens (roundToDtype('F16') is the
 * rounding writeTensor applies, and unpack2x16float widens exactly), so what is left is the
 * kernel's float32 arithmetic, the sumTolerance bound of the f32 kernels. The cost of f16 itself
 * (the rounding of the weights) is measured by tools/bench/half-weights.ts, not hidden in a
 * tolerance here.
 */
import { describe, expect, it } from 'vitest';
import { roundToDtype } from '../../io/dtypes';
import { embeddingForward } from '../../reference/embedding';
import { matmul } from '../../reference/matmul';
import { compare, expectClose, maxAbs, sumTolerance } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import { runOps } from '../op';
import { createTensor, readTensor } from '../tensor';
import { embeddingForwardOp } from './embedding';
import { f16wEntryPoint, matmulOp } from './matmul';

const half = (v: Float32Array) => roundToDtype('F16', v);
const abs = (v: Float32Array) => Float64Array.from(v, Math.abs);

describe('f16 tensors', () => {
  it('store two values per word, round to nearest even on write and read back exactly', async () => {
    const ctx = await testGpu();
    // An odd count (the last word's high half is padding), a subnormal, the largest finite half,
    // values that round, signed zero.
    const values = Float32Array.from([1, -2.5, 1 / 3, 6e-6, 65504, -0, 0.1, 1e-9, 3.14159]);
    const t = createTensor(ctx, 'half', [values.length], 'f16', values);
    expect(t.bytes).toBe(20);
    expect(t.buffer.size).toBe(20);
    const back = await readTensor(ctx, t);
    expect([...back]).toEqual([...half(values)]);
    expect(back[2]).not.toBe(values[2]); // 1/3 is not a half: the tensor really holds halves
    expect(Object.is(back[5], -0)).toBe(true);
    t.destroy();
  });
});

// [M, N, K]: aligned (the vec-load kernels main_nt4 and main_nn8 in the model's layouts, the
// any-shape kernel in the others); ragged everywhere (odd K: rows of a [N, K] weight start on odd
// halves, so the any-shape forward's two-word path and its one-half path both run); one row
// (decode); K < 4 (only the scalar tail); the demo's LM head (vocabulary 841, hidden 96: main_nt4
// forward, any-shape input gradient); rows and columns past the 8x8 block and the 64x64 workgroup
// tile with the vec-load kernels (N = 72 = 8·9, M = 70).
const SHAPES: Array<[number, number, number]> = [
  [32, 32, 32],
  [7, 13, 5],
  [33, 65, 17],
  [1, 37, 70],
  [9, 3, 3],
  [67, 841, 96],
  [70, 72, 20],
  [1, 16, 8],
];
const LAYOUTS = [[false, true], [false, false], [true, false], [true, true]] as const;

describe('matmul with f16 B vs reference', () => {
  for (const [M, N, K] of SHAPES) {
    it(`M=${M} N=${N} K=${K}, every layout`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(M * 7 + N * 3 + K);
      for (const [transA, transB] of LAYOUTS) {
        const a = rng.f32Array(M * K);
        const b = rng.f32Array(K * N);
        const c0 = rng.f32Array(M * N, 5, 9); // stale values beta = 0 must ignore
        const beta = transA ? 1 : 0;
        const alpha = 0.5;
        const dims = { M, N, K, transA, transB };
        const want = matmul(a, half(b), { ...dims, alpha, beta }, c0);
        const tA = createTensor(ctx, 'A', [a.length], 'f32', a);
        const tB = createTensor(ctx, 'B', [b.length], 'f16', b);
        const tC = createTensor(ctx, 'C', [c0.length], 'f32', c0);
        const entry = f16wEntryPoint({ ...dims, batch: 1, strideA: M * K, strideB: K * N, strideC: M * N });
        const expected = transA || K % 4 !== 0 ? 'main_ragged' : transB ? 'main_nt4' : N % 8 === 0 ? 'main_nn8' : 'main_ragged';
        expect(entry).toBe(expected);
        await withValidation(ctx, () => runOps(ctx, [matmulOp(ctx, { a: tA, b: tB, c: tC, ...dims, alpha, beta })]));
        const got = await readTensor(ctx, tC);
        const S = alpha * maxAbs(matmul(abs(a), abs(b), dims)) + beta * 9;
        expectClose(`f16 B ${entry} ${M}x${N}x${K} tA=${transA} tB=${transB}`, got, want, { abs: sumTolerance(K + 1, S) });
        for (const t of [tA, tB, tC]) t.destroy();
      }
    });
  }

  // The f32 result of the unrounded weights is outside the f32 tolerance: the test above can tell
  // a kernel that reads halves from one that somehow reads the f32 values.
  it('differs from the unrounded product by the rounding of the weights, not less', async () => {
    const ctx = await testGpu();
    const rng = new Rng(3);
    const [M, N, K] = [8, 16, 64];
    const a = rng.f32Array(M * K);
    const b = rng.f32Array(N * K);
    const tA = createTensor(ctx, 'A', [a.length], 'f32', a);
    const tB = createTensor(ctx, 'B', [b.length], 'f16', b);
    const tC = createTensor(ctx, 'C', [M * N]);
    await withValidation(ctx, () => runOps(ctx, [matmulOp(ctx, { a: tA, b: tB, c: tC, M, N, K, transB: true })]));
    const got = await readTensor(ctx, tC);
    const exact = matmul(a, b, { M, N, K, transB: true });
    const tol = { abs: sumTolerance(K, maxAbs(matmul(abs(a), abs(b), { M, N, K, transB: true }))) };
    expect(compare(got, exact, tol).failures).toBeGreaterThan(0);
  });

  // Odd strides take the any-shape kernel; strides of whole vec4s (and eight-half words) the
  // vec-load ones, in both weight layouts.
  for (const [batch, M, N, K, strideA, strideB, strideC, transB, entry] of [
    [3, 10, 13, 7, 10 * 7 + 3, 7 * 13 + 1, 10 * 13 + 5, true, 'main_ragged'],
    [3, 10, 16, 8, 10 * 8 + 4, 8 * 16 + 4, 10 * 16 + 3, true, 'main_nt4'],
    [3, 10, 16, 8, 10 * 8 + 4, 8 * 16 + 8, 10 * 16 + 3, false, 'main_nn8'],
  ] as const) {
  it(`batched (${entry}, transB=${transB}), with and without a broadcast weight`, async () => {
    const ctx = await testGpu();
    const rng = new Rng(5);
    expect(f16wEntryPoint({ M, N, K, transB, batch, strideA, strideB, strideC })).toBe(entry);
    for (const broadcast of [false, true]) {
      const a = rng.f32Array(batch * strideA);
      const b = rng.f32Array(batch * strideB);
      const c0 = rng.f32Array(batch * strideC);
      const sB = broadcast ? 0 : strideB;
      const want = Float64Array.from(c0);
      for (let i = 0; i < batch; i++) {
        const bi = half(b.subarray(i * sB, i * sB + K * N));
        const ci = matmul(a.subarray(i * strideA, i * strideA + M * K), bi, { M, N, K, transB, alpha: 2, beta: 1 }, c0.subarray(i * strideC, i * strideC + M * N));
        want.set(ci, i * strideC);
      }
      const tA = createTensor(ctx, 'A', [a.length], 'f32', a);
      const tB = createTensor(ctx, 'B', [b.length], 'f16', b);
      const tC = createTensor(ctx, 'C', [c0.length], 'f32', c0);
      const op = matmulOp(ctx, { a: tA, b: tB, c: tC, M, N, K, transB, alpha: 2, beta: 1, batch, strideA, strideB: sB, strideC });
      await withValidation(ctx, () => runOps(ctx, [op]));
      expectClose(`f16 B batched ${entry}, broadcast=${broadcast}`, await readTensor(ctx, tC), want, { abs: sumTolerance(K + 1, 2 * K + 1) });
      for (const t of [tA, tB, tC]) t.destroy();
    }
  });
  }

  it('refuses an f16 A or C', async () => {
    const ctx = await testGpu();
    const h = createTensor(ctx, 'h', [16], 'f16');
    const f = createTensor(ctx, 'f', [16]);
    expect(() => matmulOp(ctx, { a: h, b: f, c: f, M: 4, N: 4, K: 4 })).toThrow(/A \(h\) and C \(f\) must be f32, got f16 and f32/);
    expect(() => matmulOp(ctx, { a: f, b: f, c: h, M: 4, N: 4, K: 4 })).toThrow(/must be f32, got f32 and f16/);
  });
});

describe('embedding forward with an f16 table', () => {
  // Odd C: rows start on odd halves. An id past V gives a zero row.
  for (const [M, C, V] of [[7, 5, 11], [13, 96, 20]] as const) {
    it(`M=${M} C=${C} V=${V}`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(M + C + V);
      const E = rng.f32Array(V * C);
      const ids = Uint32Array.from({ length: M }, (_, m) => (m === 3 ? V + 2 : rng.int(V)));
      const tIds = createTensor(ctx, 'ids', [M], 'u32', ids);
      const tE = createTensor(ctx, 'E', [V, C], 'f16', E);
      const tOut = createTensor(ctx, 'out', [M, C], 'f32', rng.f32Array(M * C, 5, 9));
      await withValidation(ctx, () => runOps(ctx, [embeddingForwardOp(ctx, { ids: tIds, E: tE, out: tOut, M, C, V })]));
      // A copy: exact.
      expect([...(await readTensor(ctx, tOut))]).toEqual([...embeddingForward(ids, half(E), { M, C, V })]);
      for (const t of [tIds, tE, tOut]) t.destroy();
    });
  }
});
