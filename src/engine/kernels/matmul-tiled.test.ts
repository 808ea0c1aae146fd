import { describe, expect, it } from 'vitest';
import { matmul } from '../../reference/matmul';
import { expectClose, sumTolerance } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import { TILED_MATMULS } from '../kernel-choices';
import { runOps } from '../op';
import { createTensor, readTensor } from '../tensor';
import { matmulOp, matmulVec4Fits } from './matmul';
import { tiledTile, tiledMatmulFits, tiledWorkgroupBytes } from './matmul-tiled';

// Shapes against the tiles (32x32 up to 128x64 outputs, K steps of 16 or 32): each variant meets
// - [130, 70, 37]: every dimension ragged, more than one tile of the largest variant in both
//   directions (130 = 128 + 2 rows, 70 = 64 + 6 columns) and a partial last K step: scalar loads.
// - [68, 72, 36]: multiples of 4 (vec4 loads in every layout) past a 64x64 tile in both directions,
//   K two and a quarter steps of 16.
// - [5, 12, 20]: less than one tile; vec4 loads where the layout's contiguous dimensions allow.
// - [1, 37, 70]: one row (decode), the scalar loads.
// - [3, 5, 1]: K = 1, everything far inside one tile.
// The model's three layouts; alpha 0.5 and, in the layout with transA, beta 1 (accumulation into C).
// Both transposed (tt) takes the fixed kernel (checked below).
const SHAPES: Array<[number, number, number]> = [
  [130, 70, 37],
  [68, 72, 36],
  [5, 12, 20],
  [1, 37, 70],
  [3, 5, 1],
];
const LAYOUTS = [[false, true], [false, false], [true, false]] as const;

describe('workgroup-memory tiled matmul vs reference', () => {
  it('every variant fits the default WebGPU limits (16 KiB of workgroup memory, 256 invocations)', async () => {
    const ctx = await testGpu();
    for (const v of TILED_MATMULS) {
      expect(tiledWorkgroupBytes(v)).toBeLessThanOrEqual(16384);
      expect(tiledMatmulFits(ctx.adapter, v), v).toBe(true);
    }
    expect(tiledTile('tiled-128x64')).toEqual({ rows: 128, cols: 64 });
  });

  // Two tests per variant (nt and nn; tn): a variant's 6 pipelines (3 layouts x scalar and vec4
  // loads) compile once in this file, about 1.5 s each on SwiftShader.
  for (const variant of TILED_MATMULS) for (const layouts of [LAYOUTS.slice(0, 2), LAYOUTS.slice(2)]) {
    const names = layouts.map(([ta, tb]) => `${ta ? 't' : 'n'}${tb ? 't' : 'n'}`).join(' and ');
    it(`${variant}: layouts ${names}, ragged and aligned shapes, partial tiles and K steps`, async () => {
      const ctx = await testGpu();
      let vec4Cases = 0;
      let scalarCases = 0;
      for (const [M, N, K] of SHAPES) {
        const rng = new Rng(M * 1000 + N * 10 + K);
        const a = rng.f32Array(M * K);
        const b = rng.f32Array(K * N);
        const c0 = rng.f32Array(M * N);
        const tA = createTensor(ctx, 'A', [a.length], 'f32', a);
        const tB = createTensor(ctx, 'B', [b.length], 'f32', b);
        for (const [transA, transB] of layouts) {
          const shape = { M, N, K, transA, transB, batch: 1, strideA: M * K, strideB: K * N, strideC: M * N };
          if (matmulVec4Fits(shape) && a.length >= 4 && b.length >= 4) vec4Cases++;
          else scalarCases++;
          const beta = transA ? 1 : 0;
          const want = matmul(a, b, { M, N, K, transA, transB, alpha: 0.5, beta }, c0);
          const tC = createTensor(ctx, 'C', [c0.length], 'f32', c0);
          await withValidation(ctx, () => runOps(ctx, [matmulOp(ctx, { a: tA, b: tB, c: tC, M, N, K, transA, transB, alpha: 0.5, beta, variant })]));
          // |a|, |b|, |c0| < 1: each output sums K products of magnitude < 1, plus beta * c0.
          expectClose(`${variant} ${M}x${N}x${K} tA=${transA} tB=${transB}`, await readTensor(ctx, tC), want, { abs: sumTolerance(K + 1, K + 1) });
          tC.destroy();
        }
        tA.destroy();
        tB.destroy();
      }
      // Both entry points ran: the aligned shapes took vec4 loads, the ragged ones scalar loads.
      expect(vec4Cases).toBeGreaterThan(0);
      expect(scalarCases).toBeGreaterThan(0);
    });
  }

  // Batched, as the model batches (a broadcast weight, stride 0) and at batch strides that are not
  // multiples of 4 with padding between entries that must be neither read nor written.
  it('both operands transposed take the fixed kernel whatever the variant', async () => {
    const ctx = await testGpu();
    const [M, N, K] = [12, 8, 16];
    const t = (n: number) => createTensor(ctx, 't', [n]);
    const [a, b, c] = [t(M * K), t(K * N), t(M * N)];
    const fixed = matmulOp(ctx, { a, b, c, M, N, K, transA: true, transB: true, variant: 'vec4' }).pipeline;
    const fixedTn = matmulOp(ctx, { a, b, c, M, N, K, transA: true, variant: 'vec4' }).pipeline;
    for (const variant of TILED_MATMULS) {
      expect(matmulOp(ctx, { a, b, c, M, N, K, transA: true, transB: true, variant }).pipeline, variant).toBe(fixed);
      // The same variant in a model layout is its own tiled pipeline (compiled by the tests above).
      expect(matmulOp(ctx, { a, b, c, M, N, K, transA: true, variant }).pipeline, variant).not.toBe(fixedTn);
    }
  });

  it('batched: a broadcast operand, and odd strides, every variant', async () => {
    const ctx = await testGpu();
    const rng = new Rng(5);
    for (const variant of TILED_MATMULS) {
      {
        const [batch, M, N, K] = [3, 9, 12, 8];
        const a = rng.f32Array(batch * M * K);
        const w = rng.f32Array(N * K);
        const tA = createTensor(ctx, 'A', [a.length], 'f32', a);
        const tW = createTensor(ctx, 'W', [w.length], 'f32', w);
        const tC = createTensor(ctx, 'C', [batch * M * N]);
        await withValidation(ctx, () => runOps(ctx, [matmulOp(ctx, { a: tA, b: tW, c: tC, M, N, K, transB: true, batch, strideB: 0, variant })]));
        const want = new Float64Array(batch * M * N);
        for (let i = 0; i < batch; i++) want.set(matmul(a.subarray(i * M * K, (i + 1) * M * K), w, { M, N, K, transB: true }), i * M * N);
        expectClose(`${variant} broadcast`, await readTensor(ctx, tC), want, { abs: sumTolerance(K, K) });
        for (const t of [tA, tW, tC]) t.destroy();
      }
      for (const [transA, transB] of [[false, true], [true, false]] as const) {
        const [batch, M, N, K] = [3, 10, 13, 7];
        const [strideA, strideB, strideC] = [M * K + 3, K * N + 1, M * N + 5];
        const a = rng.f32Array(batch * strideA);
        const b = rng.f32Array(batch * strideB);
        const c0 = rng.f32Array(batch * strideC);
        const want = Float64Array.from(c0);
        for (let i = 0; i < batch; i++) {
          const ci = c0.subarray(i * strideC, i * strideC + M * N);
          want.set(matmul(a.subarray(i * strideA, i * strideA + M * K), b.subarray(i * strideB, i * strideB + K * N), { M, N, K, transA, transB, alpha: 2, beta: 1 }, ci), i * strideC);
        }
        const tA = createTensor(ctx, 'A', [a.length], 'f32', a);
        const tB = createTensor(ctx, 'B', [b.length], 'f32', b);
        const tC = createTensor(ctx, 'C', [c0.length], 'f32', c0);
        const op = matmulOp(ctx, { a: tA, b: tB, c: tC, M, N, K, transA, transB, alpha: 2, beta: 1, batch, strideA, strideB, strideC, variant });
        await withValidation(ctx, () => runOps(ctx, [op]));
        expectClose(`${variant} odd strides tA=${transA} tB=${transB}`, await readTensor(ctx, tC), want, { abs: sumTolerance(K + 1, 2 * K + 1) });
        for (const t of [tA, tB, tC]) t.destroy();
      }
    }
  });
});
