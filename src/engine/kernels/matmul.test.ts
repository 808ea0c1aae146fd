import { describe, expect, it } from 'vitest';
import { matmul } from '../../reference/matmul';
import { expectClose, sumTolerance } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import { runOps } from '../op';
import { createTensor, readTensor } from '../tensor';
import { matmulOp } from './matmul';

// Shapes: tile-aligned (32), ragged in every dimension, thin LoRA shapes (rank 4), a single row.
const SHAPES: Array<[number, number, number]> = [
  [32, 32, 32],
  [7, 13, 5],
  [33, 65, 17],
  [64, 4, 48],
  [1, 37, 70],
];

describe('matmul kernel vs reference', () => {
  for (const [M, N, K] of SHAPES) {
    for (const [transA, transB] of [[false, true], [false, false], [true, false], [true, true]] as const) {
      it(`M=${M} N=${N} K=${K} transA=${transA} transB=${transB}`, async () => {
        const ctx = await testGpu();
        const rng = new Rng(M * 1000 + N * 10 + K);
        const a = rng.f32Array(M * K);
        const b = rng.f32Array(K * N);
        const c0 = rng.f32Array(M * N);
        const beta = transA ? 1 : 0; // exercise accumulation in the weight-gradient layout
        const alpha = 0.5;
        const tA = createTensor(ctx, 'A', [a.length], 'f32', a);
        const tB = createTensor(ctx, 'B', [b.length], 'f32', b);
        const tC = createTensor(ctx, 'C', [c0.length], 'f32', c0);
        await withValidation(ctx, () => runOps(ctx, [matmulOp(ctx, { a: tA, b: tB, c: tC, M, N, K, transA, transB, alpha, beta })]));
        const got = await readTensor(ctx, tC);
        const want = matmul(a, b, { M, N, K, transA, transB, alpha, beta }, c0);
        // |a|,|b| < 1: each output sums K products of magnitude < 1.
        expectClose(`matmul ${M}x${N}x${K} tA=${transA} tB=${transB}`, got, want, { abs: sumTolerance(K + 1, K) });
      });
    }
  }

  it('batched with a broadcast operand (stride 0)', async () => {
    const ctx = await testGpu();
    const rng = new Rng(7);
    const [batch, M, N, K] = [3, 9, 11, 6];
    const a = rng.f32Array(batch * M * K);
    const w = rng.f32Array(N * K);
    const tA = createTensor(ctx, 'A', [batch, M, K], 'f32', a);
    const tW = createTensor(ctx, 'W', [N, K], 'f32', w);
    const tC = createTensor(ctx, 'C', [batch, M, N]);
    runOps(ctx, [matmulOp(ctx, { a: tA, b: tW, c: tC, M, N, K, transB: true, batch, strideB: 0 })]);
    const got = await readTensor(ctx, tC);
    const want = new Float64Array(batch * M * N);
    for (let i = 0; i < batch; i++) {
      want.set(matmul(a.subarray(i * M * K, (i + 1) * M * K), w, { M, N, K, transB: true }), i * M * N);
    }
    expectClose('batched matmul', got, want, { abs: sumTolerance(K, K) });
  });

  it('rejects operands too small for the shape', async () => {
    const ctx = await testGpu();
    const t = createTensor(ctx, 'small', [4]);
    expect(() => matmulOp(ctx, { a: t, b: t, c: t, M: 4, N: 4, K: 4 })).toThrow(/small has 4 values, needs 16/);
  });
});
