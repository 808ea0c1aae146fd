import { describe, expect, it } from 'vitest';
import { matmul } from '../../reference/matmul';
import { expectClose, sumTolerance } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import { runOps } from '../op';
import { createTensor, readTensor } from '../tensor';
import { chooseMatmulVariant, matmulOp, matmulVec4Fits, type MatmulVariant } from './matmul';

// Shapes: tile-aligned (32), ragged in every dimension, thin LoRA shapes (rank 4), a single row.
// The later ones fit the vec4 kernel in some or all layouts while staying ragged against its
// 8x8-per-thread and 64x64-per-workgroup tiles: N or M = 4 mod 8 (the upper vec4 half of a
// thread's columns or rows is clamped), K ragged where the weight-gradient layout allows it
// (its k loop's remainder), and more than one workgroup in both directions.
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
];

const LAYOUTS = [[false, true], [false, false], [true, false], [true, true]] as const;

describe('matmul kernel vs reference', () => {
  for (const [M, N, K] of SHAPES) {
    for (const [transA, transB] of LAYOUTS) {
      const shape = { M, N, K, transA, transB, batch: 1, strideA: M * K, strideB: K * N, strideC: M * N };
      const fits = matmulVec4Fits(shape);
      const variants: MatmulVariant[] = fits ? ['scalar', 'vec4'] : ['scalar'];
      it(`M=${M} N=${N} K=${K} transA=${transA} transB=${transB} (${variants.join(', ')}; auto picks ${chooseMatmulVariant(shape)})`, async () => {
        expect(chooseMatmulVariant(shape)).toBe(fits ? 'vec4' : 'scalar');
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

  for (const variant of ['scalar', 'vec4'] as const) {
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

  it('chooses the scalar kernel for strides that are not multiples of 4, and refuses to force vec4 there', async () => {
    const ctx = await testGpu();
    const s = { M: 4, N: 4, K: 4, transB: true, batch: 2, strideA: 18, strideB: 16, strideC: 16 };
    expect(chooseMatmulVariant(s)).toBe('scalar');
    expect(chooseMatmulVariant({ ...s, strideA: 16 })).toBe('vec4');
    const t = createTensor(ctx, 't', [64]);
    expect(() => matmulOp(ctx, { a: t, b: t, c: createTensor(ctx, 'c', [64]), M: 4, N: 4, K: 5, transB: true, variant: 'vec4' })).toThrow(/vec4 variant needs/);
  });

  it('rejects operands too small for the shape', async () => {
    const ctx = await testGpu();
    const t = createTensor(ctx, 'small', [4]);
    expect(() => matmulOp(ctx, { a: t, b: t, c: t, M: 4, N: 4, K: 4 })).toThrow(/small has 4 values, needs 16/);
  });
});
