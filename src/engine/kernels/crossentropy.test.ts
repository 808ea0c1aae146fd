import { describe, expect, it } from 'vitest';
import { crossEntropyBackward, crossEntropyForward } from '../../reference/crossentropy';
import { expectClose, F32_EPS, maxAbs, sumTolerance } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import type { GpuContext } from '../gpu';
import { runOps, type Op } from '../op';
import { createTensor, readTensor, Tensor } from '../tensor';
import { ceBackwardOp, ceForwardOp, ceReduceOp, CE_ROWS_MAX_V, chooseCeForwardVariant, IGNORE_INDEX, setCeGradScale, type CeForwardVariant } from './crossentropy';

/**
 * Tolerances from float32 arithmetic (u = 2^-24), logits bounded by L in absolute value:
 * - lse = max + log(s), s = sum of V terms exp(x - max) in (0, 1] with s >= 1. The sum carries at
 *   most sumTolerance(V, s) absolute error (that bound includes the rounding of the terms, and the
 *   online rescaling multiplies partial sums by exact-ish exp factors), i.e. a relative error of
 *   sumTolerance(V, 1) in s and so an absolute error of the same size in log(s); log and the final
 *   addition add a few ulps of |lse| <= L + log V.
 * - rowLoss = lse - x adds one rounding of |rowLoss|; the mean adds sumTolerance(count, sum).
 * - dlogits: exp(x - lse) has relative error (lse error + a few ulps of |x - lse| <= 2L + log V +
 *   the exp's own ulps), times k = gradScale / count; p <= 1 so that is an absolute bound.
 */
function tolerances(V: number, L: number, count: number, gradScale: number, sumLoss: number) {
  const u = F32_EPS;
  const lse = sumTolerance(V, 1) + 8 * u * (L + Math.log(V));
  const rowLoss = lse + 4 * u * (2 * L + Math.log(V));
  const loss = count > 0 ? lse + sumTolerance(count, sumLoss) / count : 0;
  const k = count > 0 ? Math.abs(gradScale) / count : 0;
  const dlogits = k * (lse + 8 * u * (1 + 2 * L + Math.log(V)));
  return { lse, rowLoss, loss, dlogits };
}

interface CeCase {
  M: number;
  V: number;
  labels: number[];
  gradScale?: number;
  L?: number;
}

const VARIANTS: CeForwardVariant[] = ['workgroup', 'rows'];

/** Runs the case once per ce_forward variant. */
async function runCase(ctx: GpuContext, name: string, c: CeCase, seed: number): Promise<void> {
  for (const variant of VARIANTS) await runCaseWith(ctx, `${name} ${variant}`, c, seed, variant);
}

async function runCaseWith(ctx: GpuContext, name: string, c: CeCase, seed: number, variant: CeForwardVariant): Promise<void> {
  const { M, V } = c;
  const L = c.L ?? 4;
  const gradScale = c.gradScale ?? 1;
  const rng = new Rng(seed);
  const logits = rng.f32Array(M * V, -L, L);
  const labels = Int32Array.from(c.labels);
  const tLogits = createTensor(ctx, 'logits', [M, V], 'f32', logits);
  const tLabels = createTensor(ctx, 'labels', [M], 'i32', labels);
  const tLse = createTensor(ctx, 'lse', [M]);
  // Pre-fill outputs with garbage: every entry point must overwrite.
  const tRowLoss = createTensor(ctx, 'rowLoss', [M], 'f32', new Float32Array(M).fill(123));
  const tStats = createTensor(ctx, 'stats', [4], 'f32', [7, 7, 7, 7]);
  const tD = createTensor(ctx, 'dlogits', [M, V], 'f32', new Float32Array(M * V).fill(NaN));
  const ops: Op[] = [
    ceForwardOp(ctx, { logits: tLogits, labels: tLabels, lse: tLse, rowLoss: tRowLoss, V, variant }),
    ceReduceOp(ctx, { labels: tLabels, rowLoss: tRowLoss, stats: tStats, V }),
    ceBackwardOp(ctx, { logits: tLogits, labels: tLabels, lse: tLse, stats: tStats, dlogits: tD, V, gradScale }),
  ];
  await withValidation(ctx, () => runOps(ctx, ops));
  const [lse, rowLoss, stats, d] = await Promise.all([readTensor(ctx, tLse), readTensor(ctx, tRowLoss), readTensor(ctx, tStats), readTensor(ctx, tD)]);

  const ref = crossEntropyForward(logits, labels, M, V);
  const refD = crossEntropyBackward(gradScale, logits, labels, ref.lse, ref.count, M, V);
  const sumLoss = ref.rowLoss.reduce((a, b) => a + Math.abs(b), 0);
  const tol = tolerances(V, L, ref.count, gradScale, sumLoss);
  expectClose(`${name} lse`, lse, ref.lse, { abs: tol.lse });
  expectClose(`${name} rowLoss`, rowLoss, ref.rowLoss, { abs: tol.rowLoss });
  expectClose(`${name} loss`, [stats[0]], [ref.loss], { abs: tol.loss });
  expect(Array.from(stats.subarray(1))).toEqual([ref.count, ref.invalid, 0]);
  expectClose(`${name} dlogits`, d, refD, { abs: tol.dlogits });
  // In place (ce_backward_inplace, as the training graph runs it): the logits become their gradient.
  const tIn = createTensor(ctx, 'logits in place', [M, V], 'f32', logits);
  await withValidation(ctx, () =>
    runOps(ctx, [
      ceForwardOp(ctx, { logits: tIn, labels: tLabels, lse: tLse, rowLoss: tRowLoss, V, variant }),
      ceReduceOp(ctx, { labels: tLabels, rowLoss: tRowLoss, stats: tStats, V }),
      ceBackwardOp(ctx, { logits: tIn, labels: tLabels, lse: tLse, stats: tStats, dlogits: tIn, V, gradScale }),
    ]),
  );
  expectClose(`${name} dlogits in place`, await readTensor(ctx, tIn), refD, { abs: tol.dlogits });
  for (const t of [tLogits, tLabels, tLse, tRowLoss, tStats, tD, tIn]) t.destroy();
}

function labelsWith(rng: Rng, M: number, V: number, ignored: number[]): number[] {
  const out = Array.from({ length: M }, () => rng.int(V));
  for (const m of ignored) out[m] = IGNORE_INDEX;
  return out;
}

describe('cross-entropy kernels vs reference', () => {
  // Ragged vocabularies (37, 1000: not multiples of the 256-thread workgroup), one exactly 256,
  // V = 1 (loss and gradient exactly 0), single rows; some rows ignored.
  const cases: Array<[string, number, number, number[], number]> = [
    ['V=37', 5, 37, [1, 3], 1],
    ['V=1000', 4, 1000, [2], 1],
    ['V=256 gradScale', 3, 256, [], 0.25],
    ['V=1', 2, 1, [], 1],
    ['M=1 V=300', 1, 300, [], 1],
  ];
  for (const [name, M, V, ignored, gradScale] of cases) {
    it(`${name} M=${M} ignored=[${ignored}]`, async () => {
      const ctx = await testGpu();
      await runCase(ctx, name, { M, V, labels: labelsWith(new Rng(M + V), M, V, ignored), gradScale }, M * 31 + V);
    });
  }

  it('labels at the ends of the vocabulary', async () => {
    const ctx = await testGpu();
    await runCase(ctx, 'edge labels', { M: 3, V: 300, labels: [0, 299, 150] }, 5);
  });

  it('all rows ignored: loss 0 (not NaN), count 0, zero gradient', async () => {
    const ctx = await testGpu();
    await runCase(ctx, 'all ignored', { M: 3, V: 37, labels: [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX] }, 9);
  });

  it('out-of-range labels are ignored and counted in stats[2]', async () => {
    const ctx = await testGpu();
    await runCase(ctx, 'invalid labels', { M: 6, V: 37, labels: [5, 37, -1, IGNORE_INDEX, 2_000_000_000, 36] }, 11);
  });

  it('picks the rows variant of ce_forward up to CE_ROWS_MAX_V logits per row', () => {
    expect(chooseCeForwardVariant(900)).toBe('rows');
    expect(chooseCeForwardVariant(CE_ROWS_MAX_V)).toBe('rows');
    expect(chooseCeForwardVariant(49152)).toBe('workgroup');
  });

  it('more rows than one workgroup of the rows variant (M=70, V=37), both variants', async () => {
    const ctx = await testGpu();
    await runCase(ctx, 'M=70', { M: 70, V: 37, labels: labelsWith(new Rng(70), 70, 37, [0, 69]) }, 70);
  });

  for (const variant of VARIANTS) it(`large logits stay finite (max subtracted), ${variant}`, async () => {
    const ctx = await testGpu();
    const M = 2;
    const V = 50;
    const logits = new Float32Array(M * V).map((_, i) => 80 + (i % 7)); // exp(86) overflows f32
    const tLogits = createTensor(ctx, 'logits', [M, V], 'f32', logits);
    const tLabels = createTensor(ctx, 'labels', [M], 'i32', [3, 4]);
    const tLse = createTensor(ctx, 'lse', [M]);
    const tRowLoss = createTensor(ctx, 'rowLoss', [M]);
    runOps(ctx, [ceForwardOp(ctx, { logits: tLogits, labels: tLabels, lse: tLse, rowLoss: tRowLoss, V, variant })]);
    const ref = crossEntropyForward(logits, [3, 4], M, V);
    // |lse| ~ 87: a few ulps of it (8 u · 87 ≈ 4e-5) plus the sum's relative error.
    expectClose('large logits lse', await readTensor(ctx, tLse), ref.lse, { abs: sumTolerance(V, 1) + 8 * F32_EPS * 90 });
    expectClose('large logits rowLoss', await readTensor(ctx, tRowLoss), ref.rowLoss, { abs: sumTolerance(V, 1) + 16 * F32_EPS * 90 });
  });

  for (const variant of VARIANTS) it(`row chunks with rowOffset match the whole batch; setCeGradScale rescales the backward (${variant} forward)`, async () => {
    const ctx = await testGpu();
    const rng = new Rng(21);
    const [M, V, chunk] = [7, 37, 3];
    const L = 4;
    const logits = rng.f32Array(M * V, -L, L);
    const labels = Int32Array.from(labelsWith(rng, M, V, [4]));
    const tLabels = createTensor(ctx, 'labels', [M], 'i32', labels);
    const tLse = createTensor(ctx, 'lse', [M]);
    const tRowLoss = createTensor(ctx, 'rowLoss', [M]);
    const tStats = createTensor(ctx, 'stats', [4]);
    // One reused chunk buffer of `chunk` rows: the last chunk (1 row) uses only its start.
    const tChunk = createTensor(ctx, 'logitsChunk', [chunk, V]);
    const tD = createTensor(ctx, 'dlogitsChunk', [chunk, V]);
    const starts = [0, 3, 6];
    const fwd = starts.map((r0) => ceForwardOp(ctx, { logits: tChunk, labels: tLabels, lse: tLse, rowLoss: tRowLoss, V, rows: Math.min(chunk, M - r0), rowOffset: r0, variant }));
    const bwd = starts.map((r0) => ceBackwardOp(ctx, { logits: tChunk, labels: tLabels, lse: tLse, stats: tStats, dlogits: tD, V, rows: Math.min(chunk, M - r0), rowOffset: r0, gradScale: 1 }));
    const loadChunk = (r0: number) => {
      const rows = Math.min(chunk, M - r0);
      const buf = new Float32Array(chunk * V);
      buf.set(logits.subarray(r0 * V, (r0 + rows) * V));
      ctx.device.queue.writeBuffer(tChunk.buffer, 0, buf);
    };
    await withValidation(ctx, () => {
      starts.forEach((r0, i) => {
        loadChunk(r0);
        runOps(ctx, [fwd[i]]);
      });
      runOps(ctx, [ceReduceOp(ctx, { labels: tLabels, rowLoss: tRowLoss, stats: tStats, V })]);
    });
    const gradScale = 0.125;
    for (const op of bwd) setCeGradScale(ctx, op, gradScale);
    const d = new Float32Array(M * V);
    for (let i = 0; i < starts.length; i++) {
      const r0 = starts[i];
      const rows = Math.min(chunk, M - r0);
      loadChunk(r0);
      runOps(ctx, [bwd[i]]);
      d.set((await readTensor(ctx, tD)).subarray(0, rows * V), r0 * V);
    }
    const ref = crossEntropyForward(logits, labels, M, V);
    const sumLoss = ref.rowLoss.reduce((a, b) => a + Math.abs(b), 0);
    const tol = tolerances(V, L, ref.count, gradScale, sumLoss);
    const stats = await readTensor(ctx, tStats);
    expectClose('chunked lse', await readTensor(ctx, tLse), ref.lse, { abs: tol.lse });
    expectClose('chunked loss', [stats[0]], [ref.loss], { abs: tol.loss });
    expect(stats[1]).toBe(ref.count);
    expectClose('chunked dlogits (gradScale 1/8)', d, crossEntropyBackward(gradScale, logits, labels, ref.lse, ref.count, M, V), { abs: tol.dlogits });
    expect(maxAbs(d)).toBeGreaterThan(0);
  });

  it('rejects wrong-sized or wrongly typed tensors with clear errors', async () => {
    const ctx = await testGpu();
    const logits = createTensor(ctx, 'logits', [3, 10]);
    const labels = createTensor(ctx, 'labels', [3], 'i32');
    const fLabels = createTensor(ctx, 'floatLabels', [3]);
    const lse = createTensor(ctx, 'lse', [3]);
    const shortLse = createTensor(ctx, 'shortLse', [2]);
    const rowLoss = createTensor(ctx, 'rowLoss', [3]);
    const stats = createTensor(ctx, 'stats', [4]);
    const small = createTensor(ctx, 'smallStats', [2]);
    const d = createTensor(ctx, 'dlogits', [3, 9]);
    expect(() => ceForwardOp(ctx, { logits, labels, lse, rowLoss, V: 10, rows: 4 })).toThrow(/logits logits has 30 values, needs rows·V = 4·10 = 40/);
    expect(() => ceForwardOp(ctx, { logits, labels: fLabels, lse, rowLoss, V: 10 })).toThrow(/labels floatLabels must be i32/);
    expect(() => ceForwardOp(ctx, { logits, labels, lse: shortLse, rowLoss, V: 10 })).toThrow(/lse shortLse has 2 values, needs rowOffset \+ rows = 3/);
    expect(() => ceForwardOp(ctx, { logits, labels, lse, rowLoss, V: 10, rows: 1, rowOffset: 3 })).toThrow(/labels labels has 3 values, needs rowOffset \+ rows = 4/);
    expect(() => ceReduceOp(ctx, { labels, rowLoss, stats: small, V: 10 })).toThrow(/stats smallStats has 2 values, needs 4/);
    expect(() => ceBackwardOp(ctx, { logits, labels, lse, stats, dlogits: d, V: 10 })).toThrow(/dlogits dlogits has 27 values, needs rows·V = 3·10 = 30/);
    const alias = new Tensor('alias', [3, 10], 'f32', logits.buffer);
    expect(() => ceBackwardOp(ctx, { logits, labels, lse, stats, dlogits: alias, V: 10 })).toThrow(/dlogits alias shares a buffer with logits logits but is a different tensor/);
    // In place is a ceBackwardOp too: its gradient scale can be changed.
    expect(() => setCeGradScale(ctx, ceBackwardOp(ctx, { logits, labels, lse, stats, dlogits: logits, V: 10 }), 0.5)).not.toThrow();
    const all: Tensor[] = [logits, labels, fLabels, lse, shortLse, rowLoss, stats, small, d];
    const op = ceForwardOp(ctx, { logits, labels, lse, rowLoss, V: 10 });
    expect(() => setCeGradScale(ctx, op, 2)).toThrow(/is not a ceBackwardOp/);
    for (const t of all) t.destroy();
  });
});
