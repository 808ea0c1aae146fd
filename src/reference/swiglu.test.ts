import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { CENTRAL_STEP as H, dot, numericGradient, probeIndices, toF64, worstRelError } from './gradcheck';
import { sigmoid, silu, swigluBackward, swigluForward } from './swiglu';

describe('swiglu reference', () => {
  it('sigmoid and silu are stable for large |x|', () => {
    expect(sigmoid(0)).toBe(0.5);
    expect(sigmoid(1000)).toBe(1);
    expect(sigmoid(-1000)).toBe(0);
    expect(silu(-1000)).toBe(-0);
    expect(silu(1000)).toBe(1000);
    expect(sigmoid(-3)).toBeCloseTo(1 / (1 + Math.exp(3)), 15);
    expect(sigmoid(3)).toBeCloseTo(1 / (1 + Math.exp(-3)), 15);
  });

  for (const [n, lo, hi] of [
    [7, -3, 3],
    [40, -8, 8],
  ] as const) {
    it(`backward matches finite differences (n=${n}, g in [${lo}, ${hi}])`, () => {
      const rng = new Rng(n);
      const g = toF64(rng.f32Array(n, lo, hi));
      const u = toF64(rng.f32Array(n, -2, 2));
      const r = toF64(rng.f32Array(n)); // loss = sum(r * h), so dh = r
      const loss = () => dot(r, swigluForward(g, u));
      const { dg, du } = swigluBackward(r, g, u);
      const errG = worstRelError(dg, numericGradient(loss, g, probeIndices(n), H));
      const errU = worstRelError(du, numericGradient(loss, u, probeIndices(n), H));
      console.log(`[gradcheck] swiglu n=${n}: dg rel err ${errG.toExponential(2)}, du rel err ${errU.toExponential(2)}`);
      expect(errG).toBeLessThan(1e-7);
      expect(errU).toBeLessThan(1e-7);
    });
  }
});
