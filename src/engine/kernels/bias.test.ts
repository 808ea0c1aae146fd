import { describe, expect, it } from 'vitest';
import { expectClose, sumTolerance } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import { runOps } from '../op';
import { createTensor, readTensor } from '../tensor';
import { biasBackwardOp, biasForwardOp } from './bias';

describe('bias kernels vs reference', () => {
  for (const [M, O] of [[1, 1], [7, 13], [65, 70]] as const) {
    it(`M=${M} O=${O}`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(M * 31 + O);
      const y0 = rng.f32Array(M * O);
      const b = rng.f32Array(O);
      const dy = rng.f32Array(M * O);
      const db0 = rng.f32Array(O);
      const ty = createTensor(ctx, 'y', [M, O], 'f32', y0);
      const tb = createTensor(ctx, 'b', [O], 'f32', b);
      const tdy = createTensor(ctx, 'dy', [M, O], 'f32', dy);
      const tdb = createTensor(ctx, 'db', [O], 'f32', db0);
      await withValidation(ctx, () => runOps(ctx, [biasForwardOp(ctx, { y: ty, b: tb, M, O }), biasBackwardOp(ctx, { dy: tdy, db: tdb, M, O })]));
      const wantY = Float64Array.from(y0, (v, i) => v + b[i % O]);
      const wantDb = Float64Array.from(db0);
      for (let m = 0; m < M; m++) for (let o = 0; o < O; o++) wantDb[o] += dy[m * O + o];
      // One float32 addition per element; a column sum of M + 1 terms of magnitude < 1.
      expectClose('bias forward', await readTensor(ctx, ty), wantY, { abs: sumTolerance(1, 2) });
      expectClose('bias backward', await readTensor(ctx, tdb), wantDb, { abs: sumTolerance(M + 1, M + 1) });
    });
  }
  it('refuses a short bias', async () => {
    const ctx = await testGpu();
    const y = createTensor(ctx, 'y', [4, 3]);
    const b = createTensor(ctx, 'short', [2]);
    expect(() => biasForwardOp(ctx, { y, b, M: 4, O: 3 })).toThrow(/short has 2 values, needs \[O\] = 3/);
  });
});
