import { describe, expect, it } from 'vitest';
import { accumulateForward, addForward, copyForward, fillForward, scaleForward } from '../../reference/elementwise';
import { F32_EPS, expectClose } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import { runOps, type Op } from '../op';
import { createTensor, readTensor, type Tensor } from '../tensor';
import { accumulateOp, addOp, copyOp, fillOp, scaleOp } from './elementwise';

// n: a single element, one short of a workgroup (256), ragged over several workgroups, and a size
// run with maxGridDim = 3 so the grid folds into y (8 workgroups as 3 x 3) as it does past 65535.
const CASES: Array<{ n: number; maxGridDim?: number }> = [{ n: 1 }, { n: 255 }, { n: 1000 }, { n: 256 * 7 + 5, maxGridDim: 3 }];

// Every result is one float32 rounding of an exact float64 value (add, scale) or two (accumulate:
// the product alpha*x, then the sum). WGSL requires + and * to be correctly rounded (relative error
// <= 2^-24 each); the tolerances allow twice that per rounding as headroom for hardware that
// flushes or rounds differently. fill and copy are exact. The tensors are one element longer than n to check nothing past n moves.

async function run(ctx: Awaited<ReturnType<typeof testGpu>>, op: Op, out: Tensor<'f32'>): Promise<Float32Array> {
  await withValidation(ctx, () => runOps(ctx, [op]));
  return readTensor(ctx, out);
}

describe('elementwise kernels vs reference', () => {
  for (const { n, maxGridDim } of CASES) {
    const tag = `n=${n}${maxGridDim ? ` folded grid (max ${maxGridDim} per dim)` : ''}`;

    it(`add ${tag}`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(n + 1);
      const a = rng.f32Array(n + 1, -4, 4);
      const b = rng.f32Array(n + 1, -4, 4);
      const sentinel = rng.f32Array(n + 1);
      const ta = createTensor(ctx, 'a', [n + 1], 'f32', a);
      const tb = createTensor(ctx, 'b', [n + 1], 'f32', b);
      const tout = createTensor(ctx, 'out', [n + 1], 'f32', sentinel);
      const got = await run(ctx, addOp(ctx, { a: ta, b: tb, out: tout, n, maxGridDim }), tout);
      const want = [...addForward(a, b, n), sentinel[n]];
      expectClose(`add ${tag}`, got, want, { abs: 0, rel: 2 * F32_EPS });
    });

    it(`accumulate ${tag}`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(n + 2);
      const x = rng.f32Array(n + 1, -4, 4);
      const y = rng.f32Array(n + 1, -4, 4);
      const alpha = -0.7;
      const tx = createTensor(ctx, 'x', [n + 1], 'f32', x);
      const ty = createTensor(ctx, 'y', [n + 1], 'f32', y);
      const got = await run(ctx, accumulateOp(ctx, { x: tx, y: ty, alpha, n, maxGridDim }), ty);
      const want = [...accumulateForward(y, x, Math.fround(alpha), n), y[n]];
      // |y| + |alpha x| <= 4 + 0.7 * 4
      expectClose(`accumulate ${tag}`, got, want, { abs: 4 * F32_EPS * (4 + 0.7 * 4) });
    });

    it(`fill ${tag}`, async () => {
      const ctx = await testGpu();
      const y = new Rng(n + 3).f32Array(n + 1);
      const ty = createTensor(ctx, 'y', [n + 1], 'f32', y);
      const got = await run(ctx, fillOp(ctx, { y: ty, value: 0.3, n, maxGridDim }), ty);
      const want = [...fillForward(Math.fround(0.3), n), y[n]];
      expectClose(`fill ${tag}`, got, want, { abs: 0 });
    });

    it(`scale ${tag}`, async () => {
      const ctx = await testGpu();
      const y = new Rng(n + 4).f32Array(n + 1, -4, 4);
      const alpha = 0.37;
      const ty = createTensor(ctx, 'y', [n + 1], 'f32', y);
      const got = await run(ctx, scaleOp(ctx, { y: ty, alpha, n, maxGridDim }), ty);
      const want = [...scaleForward(y, Math.fround(alpha), n), y[n]];
      expectClose(`scale ${tag}`, got, want, { abs: 0, rel: 2 * F32_EPS });
    });

    it(`copy ${tag}`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(n + 5);
      const x = rng.f32Array(n + 1);
      const y = rng.f32Array(n + 1);
      const tx = createTensor(ctx, 'x', [n + 1], 'f32', x);
      const ty = createTensor(ctx, 'y', [n + 1], 'f32', y);
      const got = await run(ctx, copyOp(ctx, { x: tx, y: ty, n, maxGridDim }), ty);
      const want = [...copyForward(x, n), y[n]];
      expectClose(`copy ${tag}`, got, want, { abs: 0 });
    });
  }

  it('n defaults to the output size', async () => {
    const ctx = await testGpu();
    const ty = createTensor(ctx, 'y', [300], 'f32', new Float32Array(300).fill(5));
    const got = await run(ctx, fillOp(ctx, { y: ty, value: -1 }), ty);
    expectClose('fill whole tensor', got, fillForward(-1, 300), { abs: 0 });
  });

  it('rejects wrong sizes, wrong dtypes and aliased buffers', async () => {
    const ctx = await testGpu();
    const big = createTensor(ctx, 'big', [10]);
    const small = createTensor(ctx, 'small', [4]);
    const ids = createTensor(ctx, 'ids', [10], 'u32');
    expect(() => addOp(ctx, { a: small, b: big, out: big })).toThrow(/add: a small has 4 values, needs 10/);
    expect(() => accumulateOp(ctx, { x: big, y: small, n: 5 })).toThrow(/accumulate: y small has 4 values, needs 5/);
    expect(() => copyOp(ctx, { x: ids, y: big })).toThrow(/copy: x ids must be f32, got u32/);
    expect(() => accumulateOp(ctx, { x: big, y: big })).toThrow(/big is both an input and the output/);
    expect(() => addOp(ctx, { a: big, b: small, out: big, n: 4 })).toThrow(/big is both an input and the output/);
    expect(() => fillOp(ctx, { y: big, value: 0, n: -1 })).toThrow(/n must be a non-negative integer/);
  });
});
