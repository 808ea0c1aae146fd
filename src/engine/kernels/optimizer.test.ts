import { describe, expect, it } from 'vitest';
import { adamwStep, clipGradNorm, type AdamWSettings, type AdamWState } from '../../reference/optimizer';
import { expectClose, F32_EPS, sumTolerance } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import { runOps } from '../op';
import { createTensor, readTensor, writeTensor, type Tensor } from '../tensor';
import {
  AdamWHyper,
  adamwOp,
  GRAD_CHUNK,
  gradNormFinalizeOp,
  gradSumsqOp,
  planGradClip,
  unitClipStats,
} from './optimizer';

const u = F32_EPS;

/**
 * Norm tolerance: the GPU sums N squares in float32 (per-thread sums, tree reductions, partials),
 * at most sumTolerance(N, norm²) absolute error on norm²; sqrt halves the relative error and adds
 * an ulp or two. The clip scale maxNorm / (norm + 1e-6) inherits that relative error plus 2 ulps.
 */
function normTol(N: number, norm: number): { abs: number; rel: number } {
  const rel = sumTolerance(N, 1) / 2 + 2 * u;
  return { abs: rel * norm, rel: rel + 2 * u };
}

// Ragged sizes: a single value, under one workgroup, exactly one chunk, one past a chunk, several
// chunks with a ragged tail.
const SIZES = [1, 37, GRAD_CHUNK, GRAD_CHUNK + 1, 5000];

describe('gradient norm kernels vs reference', () => {
  for (const maxNorm of [0, 1, 1e6]) {
    it(`global norm over tensors of sizes [${SIZES}] (maxNorm ${maxNorm})`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(3);
      const grads = SIZES.map((n) => rng.f32Array(n));
      const tensors = grads.map((g, i) => createTensor(ctx, `g${i}`, [g.length], 'f32', g));
      const plan = planGradClip(ctx, tensors, maxNorm);
      // Layout: each tensor's slots follow the previous tensor's ceil(n / GRAD_CHUNK) slots.
      expect(plan.offsets).toEqual([0, 1, 2, 3, 5]);
      expect(plan.partials.size).toBe(8);
      await withValidation(ctx, () => runOps(ctx, plan.ops));
      const stats = await readTensor(ctx, plan.stats);
      const ref = clipGradNorm(grads, maxNorm);
      const N = SIZES.reduce((a, b) => a + b, 0);
      const t = normTol(N, ref.norm);
      expectClose(`grad norm (maxNorm ${maxNorm})`, [stats[0]], [ref.norm], { abs: t.abs });
      expectClose(`clip scale (maxNorm ${maxNorm})`, [stats[1]], [ref.scale], { abs: 0, rel: t.rel });
      expect(Array.from(stats.subarray(2))).toEqual([0, 0]);
      if (maxNorm === 1) expect(stats[1]).toBeLessThan(0.1);
      if (maxNorm !== 1) expect(stats[1]).toBe(1);
      plan.destroy();
      for (const x of tensors) x.destroy();
    });
  }

  it('setMaxNorm changes the threshold without rebuilding; NaN and Inf raise nonFinite', async () => {
    const ctx = await testGpu();
    const g0 = createTensor(ctx, 'g0', [3], 'f32', [3, 0, 0]);
    const g1 = createTensor(ctx, 'g1', [1], 'f32', [4]);
    const plan = planGradClip(ctx, [g0, g1], 1);
    runOps(ctx, plan.ops);
    let s = await readTensor(ctx, plan.stats);
    // Hand values: norm sqrt(9 + 16) = 5, scale 1 / (5 + 1e-6) = 0.19999996 (rounded to float32).
    expect(s[0]).toBe(5);
    expect(s[1]).toBeCloseTo(0.19999996, 7);
    plan.setMaxNorm(2.5);
    runOps(ctx, plan.ops);
    s = await readTensor(ctx, plan.stats);
    expect(s[1]).toBeCloseTo(2.5 / 5.000001, 7);
    for (const bad of [NaN, Infinity, -Infinity]) {
      ctx.device.queue.writeBuffer(g1.buffer, 0, new Float32Array([bad]));
      runOps(ctx, plan.ops);
      s = await readTensor(ctx, plan.stats);
      expect(s[2], `nonFinite for ${bad}`).toBe(1);
    }
    // 1e20² overflows float32 although the gradient itself is finite: flagged too (documented).
    ctx.device.queue.writeBuffer(g1.buffer, 0, new Float32Array([1e20]));
    runOps(ctx, plan.ops);
    expect((await readTensor(ctx, plan.stats))[2]).toBe(1);
    plan.destroy();
    g0.destroy();
    g1.destroy();
  });
});

interface Param {
  param: Tensor;
  grad: Tensor;
  m: Tensor;
  v: Tensor;
}

describe('AdamW kernel vs reference', () => {
  const settings: AdamWSettings = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
  const sizes = [5, 300, 2500];
  const STEPS = 3;
  for (const [what, maxNorm] of [['active', 1], ['inactive', 1e4], ['disabled', 0]] as const) {
    it(`3 steps, clipping ${what} (maxNorm ${maxNorm}), zeroGrad`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(99);
      const p0 = sizes.map((n) => rng.f32Array(n));
      const params: Param[] = sizes.map((n, i) => ({
        param: createTensor(ctx, `p${i}`, [n], 'f32', p0[i]),
        grad: createTensor(ctx, `g${i}`, [n]),
        m: createTensor(ctx, `m${i}`, [n]),
        v: createTensor(ctx, `v${i}`, [n]),
      }));
      const hyper = new AdamWHyper(ctx);
      const plan = planGradClip(ctx, params.map((p) => p.grad), maxNorm);
      const adam = params.map((p) => adamwOp(ctx, { ...p, hyper, stats: plan.stats, zeroGrad: true }));
      let ref: AdamWState[] = p0.map((p) => ({ param: Float64Array.from(p), m: new Float64Array(p.length), v: new Float64Array(p.length) }));
      let last = { norm: 0, scale: 1, nonFinite: false };
      for (let t = 1; t <= STEPS; t++) {
        const grads = sizes.map((n) => rng.f32Array(n));
        grads.forEach((g, i) => writeTensor(ctx, params[i].grad, g));
        hyper.set(t, settings);
        await withValidation(ctx, () => runOps(ctx, [...plan.ops, ...adam]));
        last = clipGradNorm(grads, maxNorm);
        const scale = last.scale;
        ref = ref.map((st, i) => adamwStep(st.param, grads[i], st.m, st.v, t, settings, scale));
      }
      if (what === 'active') expect(last.scale).toBeLessThan(0.1);
      else expect(last.scale).toBe(1);
      const stats = await readTensor(ctx, plan.stats);
      const N = sizes.reduce((a, b) => a + b, 0);
      const nt = normTol(N, last.norm);
      expectClose(`adamw ${what}: last norm`, [stats[0]], [last.norm], { abs: nt.abs });
      expectClose(`adamw ${what}: last scale`, [stats[1]], [last.scale], { abs: 0, rel: nt.rel });
      // Tolerances over STEPS steps, |g| <= 1 scaled by s (scale relative error gRel):
      //  m: each step rounds a lerp (a few ulps of max(|m|, |g|)) and inherits gRel of g.
      //  v: the same for g² (2 gRel).
      //  param: each step rounds the decay and the update (a few ulps of |p| <= 1 + lr·STEPS),
      //  and the ratio m / (sqrt(v)/bc2 + eps) carries an absolute error of a few tens of ulps
      //  (m's absolute error over sqrt(v̂) >= max|g|/sqrt(t); the common scale s cancels).
      const gRel = nt.rel;
      const s = last.scale;
      const tolM = STEPS * (gRel + 4 * u) * s;
      const tolV = STEPS * (2 * gRel + 6 * u) * s * s;
      const tolP = STEPS * (4 * u * (1 + settings.lr * STEPS) + 32 * u * settings.lr);
      for (let i = 0; i < sizes.length; i++) {
        expectClose(`adamw ${what} p${i} [${sizes[i]}]`, await readTensor(ctx, params[i].param), ref[i].param, { abs: tolP });
        expectClose(`adamw ${what} m${i}`, await readTensor(ctx, params[i].m), ref[i].m, { abs: tolM });
        expectClose(`adamw ${what} v${i}`, await readTensor(ctx, params[i].v), ref[i].v, { abs: tolV });
        const g = await readTensor(ctx, params[i].grad);
        expect(g.every((x) => x === 0), `grad ${i} zeroed`).toBe(true);
      }
      plan.destroy();
      hyper.destroy();
      for (const p of params) for (const x of Object.values(p)) (x as Tensor).destroy();
    });
  }

  it('without zeroGrad the gradient is kept; non-finite gradients skip the update but still zero', async () => {
    const ctx = await testGpu();
    const n = 40;
    const rng = new Rng(5);
    const p0 = rng.f32Array(n);
    const g0 = rng.f32Array(n);
    const param = createTensor(ctx, 'p', [n], 'f32', p0);
    const grad = createTensor(ctx, 'g', [n], 'f32', g0);
    const m = createTensor(ctx, 'm', [n]);
    const v = createTensor(ctx, 'v', [n]);
    const hyper = new AdamWHyper(ctx);
    const settings: AdamWSettings = { lr: 0.05, beta1: 0.8, beta2: 0.9, eps: 1e-6, weightDecay: 0 };
    hyper.set(1, settings);
    const unit = unitClipStats(ctx);
    await withValidation(ctx, () => runOps(ctx, [adamwOp(ctx, { param, grad, m, v, hyper, stats: unit })]));
    expect(Array.from(await readTensor(ctx, grad))).toEqual(Array.from(g0));
    const ref = adamwStep(p0, g0, new Float64Array(n), new Float64Array(n), 1, settings);
    const after1 = await readTensor(ctx, param);
    expectClose('adamw unit stats, no zeroGrad', after1, ref.param, { abs: 4 * u + 32 * u * settings.lr });

    // A NaN in the gradient: the finalize flags it, adamw leaves p, m, v alone and zeroes grad.
    const gBad = Float32Array.from(g0);
    gBad[7] = NaN;
    ctx.device.queue.writeBuffer(grad.buffer, 0, gBad);
    const mBefore = await readTensor(ctx, m);
    const plan = planGradClip(ctx, [grad], 1);
    hyper.set(2, settings);
    runOps(ctx, [...plan.ops, adamwOp(ctx, { param, grad, m, v, hyper, stats: plan.stats, zeroGrad: true })]);
    const stats = await readTensor(ctx, plan.stats);
    expect(stats[2]).toBe(1);
    expect(Array.from(await readTensor(ctx, param))).toEqual(Array.from(after1));
    expect(Array.from(await readTensor(ctx, m))).toEqual(Array.from(mBefore));
    expect((await readTensor(ctx, grad)).every((x) => x === 0)).toBe(true);
    plan.destroy();
    hyper.destroy();
    for (const x of [param, grad, m, v, unit]) x.destroy();
  });

  it('rejects wrong-sized, aliased or invalid arguments with clear errors', async () => {
    const ctx = await testGpu();
    const p = createTensor(ctx, 'p', [10]);
    const g = createTensor(ctx, 'g', [10]);
    const gShort = createTensor(ctx, 'gShort', [9]);
    const m = createTensor(ctx, 'm', [10]);
    const v = createTensor(ctx, 'v', [10]);
    const stats = createTensor(ctx, 'stats', [4]);
    const small = createTensor(ctx, 'small', [1]);
    const hyper = new AdamWHyper(ctx);
    expect(() => adamwOp(ctx, { param: p, grad: gShort, m, v, hyper, stats })).toThrow(/grad gShort has 9 values, expected 10 \(the size of param p\)/);
    expect(() => adamwOp(ctx, { param: p, grad: p, m, v, hyper, stats })).toThrow(/five different tensors/);
    expect(() => adamwOp(ctx, { param: p, grad: g, m, v, hyper, stats: small })).toThrow(/stats small has 1 values, needs 4/);
    expect(() => gradSumsqOp(ctx, { grad: g, partials: small, offset: 1 })).toThrow(/partials small has 1 values, needs offset \+ groups = 1 \+ 1/);
    expect(() => gradNormFinalizeOp(ctx, { partials: small, count: 2, stats, maxNorm: 1 })).toThrow(/partials small has 1 values, needs count = 2/);
    expect(() => planGradClip(ctx, [], 1)).toThrow(/no gradient tensors/);
    expect(() => hyper.set(0, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 })).toThrow(/step must be an integer >= 1/);
    expect(() => hyper.set(1, { lr: 1e-3, beta1: 1, beta2: 0.999, eps: 1e-8, weightDecay: 0 })).toThrow(/beta1 must be in \[0, 1\)/);
    hyper.destroy();
    for (const x of [p, g, gShort, m, v, stats, small]) x.destroy();
  });
});
