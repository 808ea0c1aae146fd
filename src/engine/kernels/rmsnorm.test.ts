import { describe, expect, it } from 'vitest';
import { rmsnormBackward, rmsnormForward } from '../../reference/rmsnorm';
import { F32_EPS, expectClose, maxAbs, sumTolerance } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import { runOps } from '../op';
import { createTensor, readTensor, writeTensor } from '../tensor';
import { chooseRmsnormVariant, rmsnormBackwardInputOp, rmsnormBackwardWeightOp, rmsnormForwardOp, RMSNORM_ROWS_MAX_C, type RmsnormVariant } from './rmsnorm';

// Shapes: single value; C below, equal to, and above the 64-wide workgroup (ragged); SmolLM2's
// width 576; many rows with maxGridDim 8 so rows fold into y (workgroup variant), more rows than
// 4 workgroups of 64 invocations with maxGridDim 4 (rows variant folds too); inputs scaled so that
// rows differ in magnitude from eps's. forward and backward_input run both variants on each.
const CASES: Array<{ M: number; C: number; scale: number; eps: number; maxGridDim?: number }> = [
  { M: 1, C: 1, scale: 1, eps: 1e-5 },
  { M: 3, C: 7, scale: 1, eps: 1e-5 },
  { M: 2, C: 64, scale: 4, eps: 1e-6 },
  { M: 5, C: 100, scale: 0.01, eps: 1e-5 },
  { M: 2, C: 576, scale: 1, eps: 1e-5 },
  { M: 70, C: 3, scale: 1, eps: 1e-5, maxGridDim: 8 },
  { M: 300, C: 5, scale: 1, eps: 1e-5, maxGridDim: 2 },
];

const VARIANTS: RmsnormVariant[] = ['workgroup', 'rows'];

// Float32 error model (u = 2^-24): the sum of C squares is off by at most 2(C+1)u relative
// (sumTolerance), the mean and + eps add a rounding each, inverseSqrt is within 2 ulps (WGSL), and
// the square root halves the relative error of its argument. So rstd is within
// ER = (C + 1 + 2 + 2)u relative; we allow sumTolerance(C + 6, 1) = 2(C + 6)u. y = w * (x * rstd)
// adds two roundings.
const rstdRel = (C: number) => sumTolerance(C + 6, 1);

function inputs(M: number, C: number, scale: number, seed: number) {
  const rng = new Rng(seed);
  const x = rng.f32Array(M * C, -scale, scale);
  const w = rng.f32Array(C, 0.5, 1.5);
  return { rng, x, w };
}

describe('rmsnorm kernels vs reference', () => {
  for (const { M, C, scale, eps, maxGridDim } of CASES) {
    const tag = `M=${M} C=${C} |x|<${scale} eps=${eps}${maxGridDim ? ' folded grid' : ''}`;

    it(`forward ${tag}`, async () => {
      const ctx = await testGpu();
      const { rng, x, w } = inputs(M, C, scale, M * 1000 + C);
      const tx = createTensor(ctx, 'x', [M, C], 'f32', x);
      const tw = createTensor(ctx, 'w', [C], 'f32', w);
      const ty = createTensor(ctx, 'y', [M, C], 'f32', rng.f32Array(M * C)); // stale values
      const tr = createTensor(ctx, 'rstd', [M], 'f32', rng.f32Array(M));
      const want = rmsnormForward(x, w, { M, C, eps: Math.fround(eps) });
      for (const variant of VARIANTS) {
        await withValidation(ctx, () => runOps(ctx, [rmsnormForwardOp(ctx, { x: tx, w: tw, y: ty, rstd: tr, M, C, eps, maxGridDim, variant })]));
        expectClose(`rmsnorm forward ${variant} rstd ${tag}`, await readTensor(ctx, tr), want.rstd, { abs: 0, rel: rstdRel(C) });
        expectClose(`rmsnorm forward ${variant} y ${tag}`, await readTensor(ctx, ty), want.y, { abs: 1e-30, rel: rstdRel(C) + 2 * F32_EPS });
        // Stale values again before the next variant, so each one must overwrite everything.
        writeTensor(ctx, ty, rng.f32Array(M * C));
        writeTensor(ctx, tr, rng.f32Array(M));
      }
    });

    it(`backward_input ${tag}`, async () => {
      const ctx = await testGpu();
      const { rng, x, w } = inputs(M, C, scale, M * 1000 + C + 1);
      const dy = rng.f32Array(M * C);
      // The saved rstd is a float32 tensor: both sides use the same float32 values.
      const rstd = Float32Array.from(rmsnormForward(x, w, { M, C, eps }).rstd);
      const tx = createTensor(ctx, 'x', [M, C], 'f32', x);
      const tw = createTensor(ctx, 'w', [C], 'f32', w);
      const tdy = createTensor(ctx, 'dy', [M, C], 'f32', dy);
      const tr = createTensor(ctx, 'rstd', [M], 'f32', rstd);
      const tdx = createTensor(ctx, 'dx', [M, C], 'f32', rng.f32Array(M * C)); // overwritten
      const want = rmsnormBackward(dy, x, w, rstd, { M, C });
      // dx = r (g - xhat * S / C) with g = w dy, xhat = x r, S = sum_c g xhat. Per row: xhat
      // carries one rounding, g one, S the error of a C-term sum (2Cu of sum|g xhat|) plus one
      // rounding per term, the product xhat * mean and the difference a few more, r one.
      let abs = 0;
      for (let m = 0; m < M; m++) {
        let gmax = 0;
        let xhmax = 0;
        let T = 0;
        for (let c = 0; c < C; c++) {
          const g = Math.abs(w[c] * dy[m * C + c]);
          const xh = Math.abs(x[m * C + c] * rstd[m]);
          gmax = Math.max(gmax, g);
          xhmax = Math.max(xhmax, xh);
          T += g * xh;
        }
        T /= C;
        abs = Math.max(abs, rstd[m] * (4 * F32_EPS * gmax + xhmax * T * (2 * (C + 4) * F32_EPS + 8 * F32_EPS)));
      }
      abs += 2 * F32_EPS * maxAbs(want.dx);
      for (const variant of VARIANTS) {
        const op = rmsnormBackwardInputOp(ctx, { dy: tdy, x: tx, w: tw, rstd: tr, dx: tdx, M, C, maxGridDim, variant });
        await withValidation(ctx, () => runOps(ctx, [op]));
        expectClose(`rmsnorm backward_input ${variant} dx ${tag}`, await readTensor(ctx, tdx), want.dx, { abs });
        writeTensor(ctx, tdx, rng.f32Array(M * C));
      }
    });

    it(`backward_weight ${tag}`, async () => {
      const ctx = await testGpu();
      const { rng, x, w } = inputs(M, C, scale, M * 1000 + C + 2);
      const dy = rng.f32Array(M * C);
      const rstd = Float32Array.from(rmsnormForward(x, w, { M, C, eps }).rstd);
      const dw0 = rng.f32Array(C); // dw accumulates onto what it held
      const tx = createTensor(ctx, 'x', [M, C], 'f32', x);
      const tdy = createTensor(ctx, 'dy', [M, C], 'f32', dy);
      const tr = createTensor(ctx, 'rstd', [M], 'f32', rstd);
      const tdw = createTensor(ctx, 'dw', [C], 'f32', dw0);
      const op = rmsnormBackwardWeightOp(ctx, { dy: tdy, x: tx, rstd: tr, dw: tdw, M, C, maxGridDim });
      await withValidation(ctx, () => runOps(ctx, [op]));
      const ref = rmsnormBackward(dy, x, w, rstd, { M, C }).dw;
      const want = ref.map((v, c) => v + dw0[c]);
      // dw[c] = dw0[c] + sum of M terms dy * (x * r), each term with two roundings.
      let abs = 0;
      for (let c = 0; c < C; c++) {
        let mag = Math.abs(dw0[c]);
        for (let m = 0; m < M; m++) mag += Math.abs(dy[m * C + c] * x[m * C + c] * rstd[m]);
        abs = Math.max(abs, sumTolerance(M + 3, mag));
      }
      expectClose(`rmsnorm backward_weight dw ${tag}`, await readTensor(ctx, tdw), want, { abs });
    });
  }

  it('picks the rows variant up to RMSNORM_ROWS_MAX_C values per row', () => {
    expect(chooseRmsnormVariant(96)).toBe('rows');
    expect(chooseRmsnormVariant(RMSNORM_ROWS_MAX_C)).toBe('rows');
    expect(chooseRmsnormVariant(RMSNORM_ROWS_MAX_C + 1)).toBe('workgroup');
  });

  it('forward, backward_input and backward_weight chain in one submission', async () => {
    const ctx = await testGpu();
    const [M, C, eps] = [4, 9, 1e-5];
    const { rng, x, w } = inputs(M, C, 1, 99);
    const dy = rng.f32Array(M * C);
    const tx = createTensor(ctx, 'x', [M, C], 'f32', x);
    const tw = createTensor(ctx, 'w', [C], 'f32', w);
    const ty = createTensor(ctx, 'y', [M, C]);
    const tr = createTensor(ctx, 'rstd', [M]);
    const tdy = createTensor(ctx, 'dy', [M, C], 'f32', dy);
    const tdx = createTensor(ctx, 'dx', [M, C]);
    const tdw = createTensor(ctx, 'dw', [C]);
    await withValidation(ctx, () =>
      runOps(ctx, [
        rmsnormForwardOp(ctx, { x: tx, w: tw, y: ty, rstd: tr, M, C, eps }),
        rmsnormBackwardInputOp(ctx, { dy: tdy, x: tx, w: tw, rstd: tr, dx: tdx, M, C }),
        rmsnormBackwardWeightOp(ctx, { dy: tdy, x: tx, rstd: tr, dw: tdw, M, C }),
      ]),
    );
    const f = rmsnormForward(x, w, { M, C, eps: Math.fround(eps) });
    const b = rmsnormBackward(dy, x, w, f.rstd, { M, C });
    // Loose bounds: this checks the saved rstd feeds backward, the tight checks are above.
    expectClose('rmsnorm chain dx', await readTensor(ctx, tdx), b.dx, { abs: 1e-5 });
    expectClose('rmsnorm chain dw', await readTensor(ctx, tdw), b.dw, { abs: 1e-5 });
  });

  it('rejects tensors of the wrong size', async () => {
    const ctx = await testGpu();
    const x = createTensor(ctx, 'x', [3, 4]);
    const w = createTensor(ctx, 'w', [4]);
    const wShort = createTensor(ctx, 'wShort', [3]);
    const rstd = createTensor(ctx, 'rstd', [3]);
    const rShort = createTensor(ctx, 'rShort', [2]);
    const y = createTensor(ctx, 'y', [3, 4]);
    expect(() => rmsnormForwardOp(ctx, { x, w: wShort, y, rstd, M: 3, C: 4, eps: 1e-5 })).toThrow(/rmsnorm forward: w wShort has 3 values, needs \[C=4\] = 4/);
    expect(() => rmsnormForwardOp(ctx, { x, w, y, rstd: rShort, M: 3, C: 4, eps: 1e-5 })).toThrow(/rstd rShort has 2 values, needs \[M=3\] = 3/);
    expect(() => rmsnormForwardOp(ctx, { x, w, y: x, rstd, M: 3, C: 4, eps: 1e-5 })).toThrow(/output x shares its buffer with x/);
    expect(() => rmsnormBackwardInputOp(ctx, { dy: w, x, w, rstd, dx: y, M: 3, C: 4 })).toThrow(/backward_input: dy w has 4 values, needs \[M=3, C=4\] = 12/);
    expect(() => rmsnormBackwardWeightOp(ctx, { dy: y, x, rstd, dw: wShort, M: 3, C: 4 })).toThrow(/backward_weight: dw wShort has 3 values/);
  });
});
