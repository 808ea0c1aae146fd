import { describe, expect, it } from 'vitest';
import { embeddingBackward, embeddingForward } from '../../reference/embedding';
import { expectClose, sumTolerance } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import { runOps } from '../op';
import { createTensor, readTensor, writeTensor } from '../tensor';
import { embeddingBackwardOp, embeddingBackwardPlan, embeddingForwardOp, embeddingPlanTensors } from './embedding';

/** M ids in [0, V) with repeats, plus `bad` ids >= V placed in the middle. */
function makeIds(rng: Rng, M: number, V: number, bad = 0): Uint32Array {
  const ids = new Uint32Array(M);
  for (let m = 0; m < M; m++) ids[m] = rng.int(Math.max(1, Math.min(V, Math.ceil(M / 2))));
  for (let k = 0; k < bad; k++) ids[Math.floor(M / 2) + k] = V + k * 7;
  return ids;
}

// [M, C, V, bad ids]: one value; ragged with an out-of-range id; rows wider than the 256-wide
// workgroup; a folded grid.
const CASES: Array<{ M: number; C: number; V: number; bad: number; maxGridDim?: number }> = [
  { M: 1, C: 1, V: 1, bad: 0 },
  { M: 7, C: 5, V: 11, bad: 1 },
  { M: 13, C: 300, V: 20, bad: 2 },
  { M: 40, C: 33, V: 50, bad: 1, maxGridDim: 3 },
];

describe('embedding backward plan', () => {
  it('groups rows by id in CSR form', () => {
    const plan = embeddingBackwardPlan(Uint32Array.from([5, 2, 5, 9, 2, 5]));
    expect([...plan.tokens]).toEqual([2, 5, 9]);
    expect([...plan.offsets]).toEqual([0, 2, 5, 6]);
    expect([...plan.positions]).toEqual([1, 4, 0, 2, 5, 3]);
    const empty = embeddingBackwardPlan(new Uint32Array(0));
    expect([...empty.tokens]).toEqual([]);
    expect([...empty.offsets]).toEqual([0]);
  });
});

describe('embedding kernels vs reference', () => {
  for (const { M, C, V, bad, maxGridDim } of CASES) {
    const tag = `M=${M} C=${C} V=${V} bad ids=${bad}${maxGridDim ? ' folded grid' : ''}`;

    it(`forward ${tag}`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(M * 100 + C);
      const ids = makeIds(rng, M, V, bad);
      const E = rng.f32Array(V * C);
      const tids = createTensor(ctx, 'ids', [M], 'u32', ids);
      const tE = createTensor(ctx, 'E', [V, C], 'f32', E);
      const tout = createTensor(ctx, 'out', [M, C], 'f32', rng.f32Array(M * C)); // stale values
      await withValidation(ctx, () => runOps(ctx, [embeddingForwardOp(ctx, { ids: tids, E: tE, out: tout, M, C, V, maxGridDim })]));
      // A gather: exact.
      expectClose(`embedding forward ${tag}`, await readTensor(ctx, tout), embeddingForward(ids, E, { M, C, V }), { abs: 0 });
    });

    it(`backward ${tag}`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(M * 100 + C + 1);
      const ids = makeIds(rng, M, V, bad);
      const dout = rng.f32Array(M * C);
      const dE0 = rng.f32Array(V * C); // dE accumulates onto what it held
      const tdout = createTensor(ctx, 'dout', [M, C], 'f32', dout);
      const tdE = createTensor(ctx, 'dE', [V, C], 'f32', dE0);
      const plan = embeddingBackwardPlan(ids);
      // Plan tensors sized for the worst case (maxU = M), larger than this batch's U.
      const planTensors = embeddingPlanTensors(ctx, M);
      const op = embeddingBackwardOp(ctx, { dout: tdout, dE: tdE, ...planTensors, M, C, V, plan, maxGridDim });
      await withValidation(ctx, () => runOps(ctx, [op]));
      const g = embeddingBackward(dout, ids, { M, C, V });
      const want = g.map((v, i) => v + dE0[i]);
      // Each dE value is dE0 plus a sum of (count of its id) dout values, all |.| < 1.
      let maxCount = 0;
      for (let u = 0; u < plan.tokens.length; u++) maxCount = Math.max(maxCount, plan.offsets[u + 1] - plan.offsets[u]);
      expectClose(`embedding backward ${tag}`, await readTensor(ctx, tdE), want, { abs: sumTolerance(maxCount + 1, maxCount + 1) });
    });
  }

  it('setPlan switches batches on one op; dE accumulates across them', async () => {
    const ctx = await testGpu();
    const [M, C, V] = [12, 6, 9];
    const rng = new Rng(42);
    const tdout = createTensor(ctx, 'dout', [M, C]);
    const tdE = createTensor(ctx, 'dE', [V, C]);
    const planTensors = embeddingPlanTensors(ctx, M);
    const op = embeddingBackwardOp(ctx, { dout: tdout, dE: tdE, ...planTensors, M, C, V });
    const want = new Float64Array(V * C);
    // A batch with many distinct ids, then one with few: stale plan entries past U must be ignored.
    for (const ids of [Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2]), Uint32Array.from([3, 3, 3, 3, 3, 3, 8, 8, 8, 8, 8, 8])]) {
      const dout = rng.f32Array(M * C);
      writeTensor(ctx, tdout, dout);
      op.setPlan(embeddingBackwardPlan(ids));
      await withValidation(ctx, () => runOps(ctx, [op]));
      embeddingBackward(dout, ids, { M, C, V }).forEach((v, i) => (want[i] += v));
    }
    expectClose('embedding backward two batches', await readTensor(ctx, tdE), want, { abs: sumTolerance(13, 13) });
  });

  it('rejects wrong tensors and inconsistent plans', async () => {
    const ctx = await testGpu();
    const [M, C, V] = [4, 3, 5];
    const ids = createTensor(ctx, 'ids', [M], 'u32');
    const idsF = createTensor(ctx, 'idsF', [M]);
    const E = createTensor(ctx, 'E', [V, C]);
    const out = createTensor(ctx, 'out', [M, C]);
    const small = createTensor(ctx, 'small', [C]);
    expect(() => embeddingForwardOp(ctx, { ids: idsF, E, out, M, C, V })).toThrow(/embedding forward: ids idsF must be u32, got f32/);
    expect(() => embeddingForwardOp(ctx, { ids, E: small, out, M, C, V })).toThrow(/E small has 3 values, needs \[V=5, C=3\] = 15/);
    const pt = embeddingPlanTensors(ctx, M, 2);
    expect(() => embeddingBackwardOp(ctx, { dout: small, dE: E, ...pt, M, C, V })).toThrow(/embedding backward: dout small has 3 values, needs \[M=4, C=3\] = 12/);
    const op = embeddingBackwardOp(ctx, { dout: out, dE: E, ...pt, M, C, V });
    expect(() => op.setPlan(embeddingBackwardPlan(Uint32Array.from([0, 1, 2, 3])))).toThrow(/the plan has 4 distinct ids, the op was built for at most maxU=2/);
    expect(() => op.setPlan(embeddingBackwardPlan(Uint32Array.from([0, 1, 0, 1, 0])))).toThrow(/covers 5 rows, the op was built for at most M=4/);
    const dup = { tokens: Uint32Array.from([1, 1]), offsets: Uint32Array.from([0, 1, 2]), positions: Uint32Array.from([0, 1]) };
    expect(() => op.setPlan(dup)).toThrow(/strictly increasing/);
    const badPos = { tokens: Uint32Array.from([1]), offsets: Uint32Array.from([0, 1]), positions: Uint32Array.from([4]) };
    expect(() => op.setPlan(badPos)).toThrow(/position 4 at 0 is outside M=4 rows/);
  });
});
