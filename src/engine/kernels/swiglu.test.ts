import { describe, expect, it } from 'vitest';
import { swigluBackward, swigluForward } from '../../reference/swiglu';
import { F32_EPS, expectClose, maxAbs } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import { runOps } from '../op';
import { createTensor, readTensor } from '../tensor';
import { swigluBackwardOp, swigluForwardOp } from './swiglu';

// [M, F, gate range]: a single value, ragged (not a multiple of the 256-wide workgroup), a grid
// folded into y (maxGridDim 2), and a wide gate range that reaches the saturated sigmoid.
const CASES: Array<{ M: number; F: number; gmax: number; maxGridDim?: number }> = [
  { M: 1, F: 1, gmax: 4 },
  { M: 3, F: 37, gmax: 4 },
  { M: 5, F: 130, gmax: 4, maxGridDim: 2 },
  { M: 4, F: 33, gmax: 16 },
];

// Tolerances from WGSL's float32 accuracy: exp(x) is within 3 + 2|x| ulps, division 2.5 ulps,
// + and * 0.5 ulp each. sigmoid = 1/(1+e) or e/(1+e) with e = exp(-|g|): relative error at most
// RS = (3 + 2 gmax) + 1 + 2.5 ulps. h = g * s * u adds two roundings; du likewise.
// dg = dh * u * s * (1 + g (1 - s)) can cancel (near g = -1.28), so its bound is absolute: the
// error of (1 - s) is RS ulps of s plus one rounding, amplified by |g|, then the products.
function tolerances(gmax: number, scaleDhU: number) {
  const rs = 3 + 2 * gmax + 3.5;
  const rel = (rs + 4) * F32_EPS;
  return {
    h: { abs: 1e-30, rel },
    du: { abs: 1e-30, rel },
    dg: { abs: 2 * (rs + 4) * F32_EPS * scaleDhU * (1 + gmax), rel },
  };
}

describe('swiglu kernels vs reference', () => {
  for (const { M, F, gmax, maxGridDim } of CASES) {
    const tag = `M=${M} F=${F} |g|<${gmax}${maxGridDim ? ' folded grid' : ''}`;

    it(`forward ${tag}`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(M * 100 + F);
      const g = rng.f32Array(M * F, -gmax, gmax);
      const u = rng.f32Array(M * F, -2, 2);
      const tg = createTensor(ctx, 'g', [M, F], 'f32', g);
      const tu = createTensor(ctx, 'u', [M, F], 'f32', u);
      const th = createTensor(ctx, 'h', [M, F], 'f32', rng.f32Array(M * F)); // stale values must be overwritten
      await withValidation(ctx, () => runOps(ctx, [swigluForwardOp(ctx, { g: tg, u: tu, h: th, M, F, maxGridDim })]));
      const got = await readTensor(ctx, th);
      expectClose(`swiglu forward ${tag}`, got, swigluForward(g, u), tolerances(gmax, 0).h);
    });

    it(`backward ${tag}`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(M * 100 + F + 1);
      const g = rng.f32Array(M * F, -gmax, gmax);
      const u = rng.f32Array(M * F, -2, 2);
      const dh = rng.f32Array(M * F);
      const tg = createTensor(ctx, 'g', [M, F], 'f32', g);
      const tu = createTensor(ctx, 'u', [M, F], 'f32', u);
      const tdh = createTensor(ctx, 'dh', [M, F], 'f32', dh);
      const tdg = createTensor(ctx, 'dg', [M, F], 'f32', rng.f32Array(M * F));
      const tdu = createTensor(ctx, 'du', [M, F], 'f32', rng.f32Array(M * F));
      const op = swigluBackwardOp(ctx, { dh: tdh, g: tg, u: tu, dg: tdg, du: tdu, M, F, maxGridDim });
      await withValidation(ctx, () => runOps(ctx, [op]));
      const want = swigluBackward(dh, g, u);
      const tol = tolerances(gmax, maxAbs(dh) * maxAbs(u));
      expectClose(`swiglu backward dg ${tag}`, await readTensor(ctx, tdg), want.dg, tol.dg);
      expectClose(`swiglu backward du ${tag}`, await readTensor(ctx, tdu), want.du, tol.du);
      // dg written over dh (the model's use).
      const tin = createTensor(ctx, 'dh in place', [M, F], 'f32', dh);
      await withValidation(ctx, () => runOps(ctx, [swigluBackwardOp(ctx, { dh: tin, g: tg, u: tu, dg: tin, du: tdu, M, F, maxGridDim })]));
      expectClose(`swiglu backward dg in place ${tag}`, await readTensor(ctx, tin), want.dg, tol.dg);
      expectClose(`swiglu backward du in place ${tag}`, await readTensor(ctx, tdu), want.du, tol.du);
    });
  }

  it('saturated gates give finite, exact limits (safe sigmoid)', async () => {
    const ctx = await testGpu();
    const g = Float32Array.from([-1000, -100, -88, -30, -10, -0.5, 0, 0.5, 10, 30, 88, 100, 1000, 1e30, -1e30]);
    const n = g.length;
    const rng = new Rng(5);
    const u = rng.f32Array(n, -2, 2);
    const dh = rng.f32Array(n);
    const tg = createTensor(ctx, 'g', [1, n], 'f32', g);
    const tu = createTensor(ctx, 'u', [1, n], 'f32', u);
    const tdh = createTensor(ctx, 'dh', [1, n], 'f32', dh);
    const th = createTensor(ctx, 'h', [1, n]);
    const tdg = createTensor(ctx, 'dg', [1, n]);
    const tdu = createTensor(ctx, 'du', [1, n]);
    await withValidation(ctx, () =>
      runOps(ctx, [
        swigluForwardOp(ctx, { g: tg, u: tu, h: th, M: 1, F: n }),
        swigluBackwardOp(ctx, { dh: tdh, g: tg, u: tu, dg: tdg, du: tdu, M: 1, F: n }),
      ]),
    );
    const h = await readTensor(ctx, th);
    const dg = await readTensor(ctx, tdg);
    const du = await readTensor(ctx, tdu);
    for (const a of [h, dg, du]) expect([...a].every(Number.isFinite), `non-finite in ${[...a].join(', ')}`).toBe(true);
    // exp(-30) carries up to 63 ulps (3 + 2|x|); values below ~1e-30 may be flushed to zero.
    const tol = { abs: 1e-30, rel: 128 * F32_EPS };
    const want = swigluBackward(dh, g, u);
    expectClose('swiglu forward saturated', h, swigluForward(g, u), tol);
    expectClose('swiglu backward du saturated', du, want.du, tol);
    expectClose('swiglu backward dg saturated', dg, want.dg, tol);
  });

  it('rejects tensors of the wrong size or dtype', async () => {
    const ctx = await testGpu();
    const t = createTensor(ctx, 'g', [2, 3]);
    const small = createTensor(ctx, 'hsmall', [5]);
    const ids = createTensor(ctx, 'ids', [6], 'u32');
    expect(() => swigluForwardOp(ctx, { g: t, u: t, h: small, M: 2, F: 3 })).toThrow(/swiglu forward: h hsmall has 5 values, needs \[M=2, F=3\] = 6/);
    expect(() => swigluBackwardOp(ctx, { dh: ids, g: t, u: t, dg: small, du: small, M: 2, F: 3 })).toThrow(/dh ids must be f32/);
    expect(() => swigluForwardOp(ctx, { g: t, u: t, h: t, M: 2, F: 3 })).toThrow(/output g shares its buffer with g/);
    expect(() => swigluBackwardOp(ctx, { dh: t, g: t, u: small, dg: t, du: small, M: 1, F: 5 })).toThrow(/output g shares its buffer with g/);
  });
});
