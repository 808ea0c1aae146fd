import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { adamwStep, clipGradNorm, clipScale, gradNorm, type AdamWSettings, type AdamWState } from './optimizer';

// Finite differences do not apply to an optimizer step (it is an update rule, not a loss). The
// reference is checked instead (1) against a second, independent float64 loop that follows the
// statement order of torch.optim.AdamW's single-tensor code (_single_tensor_adamw) and of
// clip_grad_norm_, over several steps, and (2) against values worked out by hand.

/** torch's code path, transcribed: in-place updates, lerp for m, step_size and addcdiv for p. */
function torchLoop(
  params: Float64Array[],
  gradsPerStep: Float64Array[][],
  s: AdamWSettings,
  maxNorm: number,
): Float64Array[] {
  const p = params.map((x) => Float64Array.from(x));
  const expAvg = p.map((x) => new Float64Array(x.length));
  const expAvgSq = p.map((x) => new Float64Array(x.length));
  let stepT = 0;
  for (const stepGrads of gradsPerStep) {
    const grads = stepGrads.map((g) => Float64Array.from(g));
    if (maxNorm > 0) {
      // clip_grad_norm_: total_norm = norm(stack([norm(g) for g in grads])); grads *= clamp(coef, max=1)
      const norms = grads.map((g) => Math.sqrt(g.reduce((a, x) => a + x * x, 0)));
      const totalNorm = Math.sqrt(norms.reduce((a, x) => a + x * x, 0));
      const clipCoef = maxNorm / (totalNorm + 1e-6);
      const clamped = Math.min(clipCoef, 1);
      for (const g of grads) for (let i = 0; i < g.length; i++) g[i] *= clamped;
    }
    stepT += 1;
    for (let j = 0; j < p.length; j++) {
      const param = p[j];
      const grad = grads[j];
      const ea = expAvg[j];
      const eas = expAvgSq[j];
      for (let i = 0; i < param.length; i++) param[i] *= 1 - s.lr * s.weightDecay; // param.mul_(1 - lr * wd)
      for (let i = 0; i < param.length; i++) ea[i] += (grad[i] - ea[i]) * (1 - s.beta1); // exp_avg.lerp_(grad, 1 - beta1)
      for (let i = 0; i < param.length; i++) eas[i] = eas[i] * s.beta2 + grad[i] * grad[i] * (1 - s.beta2); // mul_.addcmul_
      const biasCorrection1 = 1 - s.beta1 ** stepT;
      const biasCorrection2 = 1 - s.beta2 ** stepT;
      const stepSize = s.lr / biasCorrection1;
      const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
      for (let i = 0; i < param.length; i++) {
        const denom = Math.sqrt(eas[i]) / biasCorrection2Sqrt + s.eps;
        param[i] += -stepSize * (ea[i] / denom); // param.addcdiv_(exp_avg, denom, value=-step_size)
      }
    }
  }
  return p;
}

function referenceLoop(params: Float64Array[], gradsPerStep: Float64Array[][], s: AdamWSettings, maxNorm: number): Float64Array[] {
  let state: AdamWState[] = params.map((p) => ({ param: Float64Array.from(p), m: new Float64Array(p.length), v: new Float64Array(p.length) }));
  gradsPerStep.forEach((grads, k) => {
    const { scale } = clipGradNorm(grads, maxNorm);
    state = state.map((st, j) => adamwStep(st.param, grads[j], st.m, st.v, k + 1, s, scale));
  });
  return state.map((st) => st.param);
}

describe('AdamW and gradient clipping reference', () => {
  const settings: AdamWSettings = { lr: 3e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
  for (const maxNorm of [0, 0.5, 100]) {
    it(`matches torch's statement order over 5 steps (maxNorm ${maxNorm}: ${maxNorm === 0 ? 'disabled' : maxNorm < 1 ? 'active' : 'inactive'})`, () => {
      const rng = new Rng(17);
      const sizes = [7, 1, 12];
      const params = sizes.map((n) => Float64Array.from(rng.f32Array(n)));
      const grads = Array.from({ length: 5 }, () => sizes.map((n) => Float64Array.from(rng.f32Array(n, -0.5, 0.5))));
      // The clipping regime the test name claims holds at every step.
      for (const g of grads) expect(clipGradNorm(g, maxNorm).scale < 1).toBe(maxNorm === 0.5);
      const want = torchLoop(params, grads, settings, maxNorm);
      const got = referenceLoop(params, grads, settings, maxNorm);
      let worst = 0;
      for (let j = 0; j < sizes.length; j++) {
        for (let i = 0; i < sizes[j]; i++) worst = Math.max(worst, Math.abs(got[j][i] - want[j][i]) / Math.max(1e-3, Math.abs(want[j][i])));
      }
      console.log(`[check] adamw reference vs torch loop (maxNorm ${maxNorm}): max rel err ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-13);
      // The two paths also moved the parameters (the test is not comparing two no-ops).
      expect(Math.abs(got[0][0] - params[0][0])).toBeGreaterThan(1e-3);
    });
  }

  it('one element over 2 steps, worked out by hand', () => {
    // lr 0.1, beta1 0.5, beta2 0.75, eps 0.01, weight decay 1; p0 = 1, g1 = 2, g2 = -2.
    const s: AdamWSettings = { lr: 0.1, beta1: 0.5, beta2: 0.75, eps: 0.01, weightDecay: 1 };
    // Step 1: decay  p = 1 · (1 - 0.1·1)              = 0.9
    //         m = 0.5·0 + 0.5·2                         = 1
    //         v = 0.75·0 + 0.25·2²                      = 1
    //         bc1 = 1 - 0.5 = 0.5,  bc2 = 1 - 0.75 = 0.25,  step size 0.1/0.5 = 0.2
    //         denom = sqrt(1)/sqrt(0.25) + 0.01 = 2.01
    //         p = 0.9 - 0.2 · 1/2.01 = 0.9 - 0.0995024875621890... = 0.800497512437811
    const s1 = adamwStep([1], [2], [0], [0], 1, s);
    expect(s1.m[0]).toBe(1);
    expect(s1.v[0]).toBe(1);
    expect(s1.param[0]).toBeCloseTo(0.800497512437811, 14);
    // Step 2: decay  p = 0.800497512437811 · 0.9     = 0.7204477611940299
    //         m = 0.5·1 + 0.5·(-2)                      = -0.5
    //         v = 0.75·1 + 0.25·(-2)²                   = 1.75
    //         bc1 = 1 - 0.5² = 0.75,  bc2 = 1 - 0.75² = 0.4375,  step size 0.1/0.75 = 0.1333...
    //         denom = sqrt(1.75)/sqrt(0.4375) + 0.01 = sqrt(4) + 0.01 = 2.01
    //         p = 0.7204477611940299 + 0.1333... · 0.5/2.01 = 0.7204477611940299 + 0.0331674958540630
    //           = 0.7536152570480928
    const s2 = adamwStep(s1.param, [-2], s1.m, s1.v, 2, s);
    expect(s2.m[0]).toBe(-0.5);
    expect(s2.v[0]).toBe(1.75);
    expect(s2.param[0]).toBeCloseTo(0.7536152570480928, 14);
  });

  it('clipping worked out by hand', () => {
    // Two tensors [3] and [4]: total norm sqrt(9 + 16) = 5.
    expect(gradNorm([[3], [4]])).toBe(5);
    // maxNorm 1: coef = 1 / (5 + 1e-6) = 0.199999960000008, so the gradients become
    // 3 · 0.199999960000008 = 0.599999880000024 and 4 · 0.199999960000008 = 0.799999840000032.
    const c = clipGradNorm([[3], [4]], 1);
    expect(c.norm).toBe(5);
    expect(c.scale).toBeCloseTo(0.199999960000008, 15);
    expect(3 * c.scale).toBeCloseTo(0.599999880000024, 15);
    expect(c.nonFinite).toBe(false);
    // maxNorm 10: coef = 10 / 5.000001 > 1, clamped to 1. maxNorm 0: disabled, 1.
    expect(clipScale(5, 10)).toBe(1);
    expect(clipScale(5, 0)).toBe(1);
    expect(clipScale(5, -1)).toBe(1);
    // A clipped AdamW step: lr 0.01, betas (0.9, 0.999), eps 1e-8, no decay, p0 = 0.5, g = 3 → 0.59999988.
    // m = 0.1·g, v = 0.001·g², bias-corrected m/sqrt(v) = g/|g|: p = 0.5 - 0.01 · g/(g + 1e-8)
    //   = 0.5 - 0.01 · 0.59999988/0.59999989 = 0.4900000001666667 (eps makes it just short of 0.49).
    const st = adamwStep([0.5], [3], [0], [0], 1, { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }, c.scale);
    expect(st.param[0]).toBeCloseTo(0.4900000001666667, 14);
    // Non-finite gradients are reported.
    expect(clipGradNorm([[1, NaN]], 1).nonFinite).toBe(true);
    expect(clipGradNorm([[Infinity]], 0).nonFinite).toBe(true);
  });
});
