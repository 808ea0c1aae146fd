import { describe, expect, it } from 'vitest';
import { matmul } from '../../reference/matmul';
import { expectClose, maxAbs, sumTolerance } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import { runOps } from '../op';
import { createTensor, readTensor } from '../tensor';
import { chooseMatmulVariant, matmulOp, matmulVec4Fits, type MatmulVariant } from './matmul';

// Shapes: tile-aligned (32), ragged in every dimension, thin LoRA shapes (rank 4), a single row.
// The later ones fit the vec4 kernel in some or all layouts while staying ragged against its
// 8x8-per-thread and 64x64-per-workgroup tiles: N or M = 4 mod 8 (the upper vec4 half of a
// thread's columns or rows is clamped), K ragged where the weight-gradient layout allows it
// (its k loop's remainder), and more than one workgroup in both directions. The last ones are for
// the ragged kernel: every dimension 1, 3, 5, 4k+1 or 4k+3 (K < 4: no full step of 4, only the
// scalar tail; K = 4k+1, 4k+3: both loops), rows and columns past the 8x8 block and the 64x64
// workgroup tile at once.
const SHAPES: Array<[number, number, number]> = [
  [32, 32, 32],
  [7, 13, 5],
  [33, 65, 17],
  [64, 4, 48],
  [1, 37, 70],
  [13, 20, 12],
  [20, 12, 9],
  [68, 132, 36],
  [1, 44, 8],
  [1, 1, 1],
  [3, 5, 1],
  [5, 1, 3],
  [1, 3, 5],
  [9, 3, 7],
  [65, 67, 3],
  [71, 5, 13],
  [3, 69, 21],
  [17, 11, 4],
];

const LAYOUTS = [[false, true], [false, false], [true, false], [true, true]] as const;

describe('matmul kernel vs reference', () => {
  for (const [M, N, K] of SHAPES) {
    for (const [transA, transB] of LAYOUTS) {
      const shape = { M, N, K, transA, transB, batch: 1, strideA: M * K, strideB: K * N, strideC: M * N };
      const fits = matmulVec4Fits(shape);
      const variants: MatmulVariant[] = fits ? ['scalar', 'ragged', 'vec4'] : ['scalar', 'ragged'];
      it(`M=${M} N=${N} K=${K} transA=${transA} transB=${transB} (${variants.join(', ')}; auto picks ${chooseMatmulVariant(shape)})`, async () => {
        expect(chooseMatmulVariant(shape)).toBe(fits ? 'vec4' : 'ragged');
        const ctx = await testGpu();
        const rng = new Rng(M * 1000 + N * 10 + K);
        const a = rng.f32Array(M * K);
        const b = rng.f32Array(K * N);
        const c0 = rng.f32Array(M * N);
        const beta = transA ? 1 : 0; // exercise accumulation in the weight-gradient layout
        const alpha = 0.5;
        const want = matmul(a, b, { M, N, K, transA, transB, alpha, beta }, c0);
        const tA = createTensor(ctx, 'A', [a.length], 'f32', a);
        const tB = createTensor(ctx, 'B', [b.length], 'f32', b);
        for (const variant of variants) {
          const tC = createTensor(ctx, 'C', [c0.length], 'f32', c0);
          await withValidation(ctx, () => runOps(ctx, [matmulOp(ctx, { a: tA, b: tB, c: tC, M, N, K, transA, transB, alpha, beta, variant })]));
          const got = await readTensor(ctx, tC);
          // |a|,|b| < 1: each output sums K products of magnitude < 1.
          expectClose(`matmul ${variant} ${M}x${N}x${K} tA=${transA} tB=${transB}`, got, want, { abs: sumTolerance(K + 1, K) });
          tC.destroy();
        }
      });
    }
  }

  for (const variant of ['scalar', 'ragged', 'vec4'] as const) {
    it(`batched with a broadcast operand (stride 0), ${variant}`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(7);
      const [batch, M, N, K] = variant === 'vec4' ? [3, 9, 12, 8] : [3, 9, 11, 6];
      const a = rng.f32Array(batch * M * K);
      const w = rng.f32Array(N * K);
      const tA = createTensor(ctx, 'A', [batch, M, K], 'f32', a);
      const tW = createTensor(ctx, 'W', [N, K], 'f32', w);
      const tC = createTensor(ctx, 'C', [batch, M, N]);
      await withValidation(ctx, () => runOps(ctx, [matmulOp(ctx, { a: tA, b: tW, c: tC, M, N, K, transB: true, batch, strideB: 0, variant })]));
      const got = await readTensor(ctx, tC);
      const want = new Float64Array(batch * M * N);
      for (let i = 0; i < batch; i++) {
        want.set(matmul(a.subarray(i * M * K, (i + 1) * M * K), w, { M, N, K, transB: true }), i * M * N);
      }
      expectClose(`batched matmul ${variant}`, got, want, { abs: sumTolerance(K, K) });
    });
  }

  it('chooses the ragged kernel for strides that are not multiples of 4, and refuses to force vec4 there', async () => {
    const ctx = await testGpu();
    const s = { M: 4, N: 4, K: 4, transB: true, batch: 2, strideA: 18, strideB: 16, strideC: 16 };
    expect(chooseMatmulVariant(s)).toBe('ragged');
    expect(chooseMatmulVariant({ ...s, strideA: 16 })).toBe('vec4');
    const t = createTensor(ctx, 't', [64]);
    expect(() => matmulOp(ctx, { a: t, b: t, c: createTensor(ctx, 'c', [64]), M: 4, N: 4, K: 5, transB: true, variant: 'vec4' })).toThrow(/vec4 variant needs/);
  });

  // Batched, every operand at a batch stride that is not a multiple of 4 (so no vec4 view of it
  // would be aligned), in the layouts the model batches (attention-like x · Wᵀ and the weight
  // gradient), with padding between batch entries that must not be read.
  for (const [transA, transB] of [[false, true], [true, false]] as const) {
    it(`batched at odd strides, ragged vs scalar, transA=${transA} transB=${transB}`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(11);
      const [batch, M, N, K] = [3, 10, 13, 7];
      const [strideA, strideB, strideC] = [M * K + 3, K * N + 1, M * N + 5];
      const shape = { M, N, K, transA, transB, batch, strideA, strideB, strideC };
      expect(chooseMatmulVariant(shape)).toBe('ragged');
      const a = rng.f32Array(batch * strideA);
      const b = rng.f32Array(batch * strideB);
      const c0 = rng.f32Array(batch * strideC);
      const want = Float64Array.from(c0);
      for (let i = 0; i < batch; i++) {
        const ci = c0.subarray(i * strideC, i * strideC + M * N);
        const wi = matmul(a.subarray(i * strideA, i * strideA + M * K), b.subarray(i * strideB, i * strideB + K * N), { M, N, K, transA, transB, alpha: 2, beta: 1 }, ci);
        want.set(wi, i * strideC);
      }
      const tA = createTensor(ctx, 'A', [a.length], 'f32', a);
      const tB = createTensor(ctx, 'B', [b.length], 'f32', b);
      for (const variant of ['scalar', 'ragged'] as const) {
        const tC = createTensor(ctx, 'C', [c0.length], 'f32', c0);
        const op = matmulOp(ctx, { a: tA, b: tB, c: tC, M, N, K, transA, transB, alpha: 2, beta: 1, batch, strideA, strideB, strideC, variant });
        await withValidation(ctx, () => runOps(ctx, [op]));
        // alpha 2 doubles each product's magnitude; C's padding between entries keeps its values.
        expectClose(`batched odd strides ${variant} tA=${transA} tB=${transB}`, await readTensor(ctx, tC), want, { abs: sumTolerance(K + 1, 2 * K + 1) });
        tC.destroy();
      }
    });
  }

  // The demo's LM head (vocabulary 841 = 4*210 + 1) as src/model/llama.ts calls it: logits = x · Wᵀ
  // (fits vec4: K = C = 96), dX = dlogits · W (K = V ragged along A's rows) and dW += dlogitsᵀ · x
  // (M = V ragged along A's rows), plus 4k+3 vocabularies. M = 67 rows: a partial block and tile.
  for (const V of [841, 843, 127]) {
    it(`LM head products with vocabulary ${V} take the ragged kernel (or vec4) and match the reference`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(V);
      const [M, C] = [67, 96];
      const x = rng.f32Array(M * C);
      const W = rng.f32Array(V * C);
      const dl = rng.f32Array(M * V);
      const g0 = rng.f32Array(V * C);
      const products = [
        { name: 'logits', a: x, b: W, dims: { M, N: V, K: C, transA: false, transB: true }, beta: 0, auto: 'vec4' },
        { name: 'dX', a: dl, b: W, dims: { M, N: C, K: V, transA: false, transB: false }, beta: 0, auto: 'ragged' },
        { name: 'dW', a: dl, b: x, dims: { M: V, N: C, K: M, transA: true, transB: false }, beta: 1, auto: 'ragged' },
      ] as const;
      for (const p of products) {
        const { M: pm, N: pn, K: pk } = p.dims;
        const shape = { ...p.dims, batch: 1, strideA: pm * pk, strideB: pk * pn, strideC: pm * pn };
        expect(chooseMatmulVariant(shape), p.name).toBe(p.auto);
        const c0 = p.beta ? g0 : rng.f32Array(pm * pn, 5, 9); // stale values that beta = 0 must ignore
        const tA = createTensor(ctx, 'A', [p.a.length], 'f32', p.a);
        const tB = createTensor(ctx, 'B', [p.b.length], 'f32', p.b);
        const tC = createTensor(ctx, 'C', [pm * pn], 'f32', c0);
        await withValidation(ctx, () => runOps(ctx, [matmulOp(ctx, { a: tA, b: tB, c: tC, ...p.dims, beta: p.beta })]));
        const want = matmul(p.a, p.b, { ...p.dims, beta: p.beta }, c0);
        // The bound of the cases above with the actual magnitude: the largest sum of |products|
        // over the outputs (about K/4 for uniform [-1, 1) data, not K), plus |beta * C0| < 1.
        const abs = (v: Float32Array) => Float64Array.from(v, Math.abs);
        const S = maxAbs(matmul(abs(p.a), abs(p.b), p.dims)) + p.beta;
        expectClose(`lm head V=${V} ${p.name} (auto: ${p.auto})`, await readTensor(ctx, tC), want, { abs: sumTolerance(pk + 1, S) });
        for (const t of [tA, tB, tC]) t.destroy();
      }
    });
  }

  it('rejects operands too small for the shape', async () => {
    const ctx = await testGpu();
    const t = createTensor(ctx, 'small', [4]);
    expect(() => matmulOp(ctx, { a: t, b: t, c: t, M: 4, N: 4, K: 4 })).toThrow(/small has 4 values, needs 16/);
  });
});
