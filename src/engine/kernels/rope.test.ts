import { describe, expect, it } from 'vitest';
import { ropeBackward, ropeForward, ropeTables } from '../../reference/rope';
import { expectClose, sumTolerance } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import { runOps } from '../op';
import { createTensor, readTensor, Tensor } from '../tensor';
import { ropeBackwardOp, ropeForwardOp } from './rope';

// Grouped shapes: several heads per row, several sequences per batch, pos0 > 0 (a continuation),
// a decode step (T = 1, one row per sequence, large pos0), SmolLM2's head dim 64 with a ragged pair
// count, and a folded grid.
const CASES: Array<{ B: number; T: number; nHeads: number; D: number; pos0: number; maxGridDim?: number }> = [
  { B: 2, T: 5, nHeads: 3, D: 8, pos0: 3 },
  { B: 1, T: 7, nHeads: 3, D: 64, pos0: 0 },
  { B: 3, T: 1, nHeads: 4, D: 16, pos0: 100 },
  { B: 2, T: 9, nHeads: 4, D: 8, pos0: 1, maxGridDim: 2 },
];
const MAX_POS = 128;
const THETA = 10000;

// Both sides read the same float32 x and tables. Each output is a*c - b*s: two products and a
// difference, each rounded (or fused), so the error is at most sumTolerance(2, |a| + |b|) with
// |a|, |b| < 1.
const TOL = { abs: sumTolerance(2, 2) };

describe('rope kernels vs reference', () => {
  for (const { B, T, nHeads, D, pos0, maxGridDim } of CASES) {
    const M = B * T;
    const tag = `B=${B} T=${T} heads=${nHeads} D=${D} pos0=${pos0}${maxGridDim ? ' folded grid' : ''}`;
    const dims = { M, nHeads, D, T, pos0 };

    for (const dir of ['forward', 'backward'] as const) {
      it(`${dir} ${tag}`, async () => {
        const ctx = await testGpu();
        const rng = new Rng(M * 100 + D + (dir === 'forward' ? 0 : 1));
        const tables = ropeTables(MAX_POS, D, THETA);
        const src = rng.f32Array(M * nHeads * D);
        const tsrc = createTensor(ctx, dir === 'forward' ? 'x' : 'dy', [M, nHeads * D], 'f32', src);
        const tdst = createTensor(ctx, dir === 'forward' ? 'out' : 'dx', [M, nHeads * D], 'f32', rng.f32Array(M * nHeads * D));
        const tcos = createTensor(ctx, 'cos', [MAX_POS, D / 2], 'f32', tables.cos);
        const tsin = createTensor(ctx, 'sin', [MAX_POS, D / 2], 'f32', tables.sin);
        const common = { cos: tcos, sin: tsin, maxPos: MAX_POS, maxGridDim, ...dims };
        const op = dir === 'forward' ? ropeForwardOp(ctx, { x: tsrc, out: tdst, ...common }) : ropeBackwardOp(ctx, { dy: tsrc, dx: tdst, ...common });
        await withValidation(ctx, () => runOps(ctx, [op]));
        const want = dir === 'forward' ? ropeForward(src, tables.cos, tables.sin, dims) : ropeBackward(src, tables.cos, tables.sin, dims);
        expectClose(`rope ${dir} ${tag}`, await readTensor(ctx, tdst), want, TOL);
        // In place (the training graph's use): the same rotation, written over the source.
        const tin = createTensor(ctx, 'in place', [M, nHeads * D], 'f32', src);
        const inPlace = dir === 'forward' ? ropeForwardOp(ctx, { x: tin, out: tin, ...common }) : ropeBackwardOp(ctx, { dy: tin, dx: tin, ...common });
        await withValidation(ctx, () => runOps(ctx, [inPlace]));
        expectClose(`rope ${dir} in place ${tag}`, await readTensor(ctx, tin), want, TOL);
      });
    }
  }

  it('setPos0 moves a decode step along the cache without rebuilding the op', async () => {
    const ctx = await testGpu();
    const [B, nHeads, D] = [2, 2, 8];
    const tables = ropeTables(MAX_POS, D, THETA);
    const x = new Rng(11).f32Array(B * nHeads * D);
    const tx = createTensor(ctx, 'x', [B, nHeads * D], 'f32', x);
    const tout = createTensor(ctx, 'out', [B, nHeads * D]);
    const tcos = createTensor(ctx, 'cos', [MAX_POS, D / 2], 'f32', tables.cos);
    const tsin = createTensor(ctx, 'sin', [MAX_POS, D / 2], 'f32', tables.sin);
    const op = ropeForwardOp(ctx, { x: tx, out: tout, cos: tcos, sin: tsin, M: B, nHeads, D, T: 1, maxPos: MAX_POS });
    for (const pos0 of [0, 9, MAX_POS - 1]) {
      op.setPos0(pos0);
      await withValidation(ctx, () => runOps(ctx, [op]));
      const want = ropeForward(x, tables.cos, tables.sin, { M: B, nHeads, D, T: 1, pos0 });
      expectClose(`rope decode pos0=${pos0}`, await readTensor(ctx, tout), want, TOL);
    }
    expect(() => op.setPos0(MAX_POS)).toThrow(/positions up to 128 .* past the cos\/sin tables \(maxPos=128\)/);
  });

  it('rejects bad shapes, short tensors and aliased buffers', async () => {
    const ctx = await testGpu();
    const x = createTensor(ctx, 'x', [4, 8]);
    const out = createTensor(ctx, 'out', [4, 8]);
    const cos = createTensor(ctx, 'cos', [8, 4]);
    const sin = createTensor(ctx, 'sin', [8, 4]);
    const sinShort = createTensor(ctx, 'sinShort', [7, 4]);
    const base = { x, out, cos, sin, M: 4, nHeads: 1, D: 8, T: 2, maxPos: 8 };
    expect(() => ropeForwardOp(ctx, { ...base, D: 7 })).toThrow(/D must be positive and even/);
    expect(() => ropeForwardOp(ctx, { ...base, T: 3 })).toThrow(/M=4 rows must be a multiple of T=3/);
    expect(() => ropeForwardOp(ctx, { ...base, sin: sinShort })).toThrow(/rope forward: sin sinShort has 28 values, needs \[maxPos=8, D\/2=4\] = 32/);
    expect(() => ropeForwardOp(ctx, { ...base, nHeads: 2 })).toThrow(/x x has 32 values, needs \[M=4, nHeads\*D=16\] = 64/);
    expect(() => ropeForwardOp(ctx, { ...base, pos0: 7 })).toThrow(/positions up to 8 \(pos0=7, T=2\) are past the cos\/sin tables/);
    const alias = new Tensor('alias', [4, 8], 'f32', x.buffer);
    expect(() => ropeForwardOp(ctx, { ...base, out: alias })).toThrow(/out alias shares its buffer with x \(pass the same tensor as x and out to rotate in place\)/);
    expect(() => ropeForwardOp(ctx, { ...base, out: x })).not.toThrow();
    expect(() => ropeBackwardOp(ctx, { dy: x, dx: out, cos, sin, M: 4, nHeads: 1, D: 8, T: 2, maxPos: 8 })).not.toThrow();
  });
});
