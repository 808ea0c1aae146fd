import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { CENTRAL_STEP as H, dot, numericGradient, probeIndices, toF64, worstRelError } from './gradcheck';
import { rmsnormBackward, rmsnormForward } from './rmsnorm';

describe('rmsnorm reference', () => {
  it('forward matches the definition on a hand example', () => {
    // x = [3, 4]: mean square 12.5, eps 0.5 -> rstd = 1/sqrt(13)
    const { y, rstd } = rmsnormForward([3, 4], [2, -1], { M: 1, C: 2, eps: 0.5 });
    expect(rstd[0]).toBeCloseTo(1 / Math.sqrt(13), 15);
    expect(y[0]).toBeCloseTo((2 * 3) / Math.sqrt(13), 15);
    expect(y[1]).toBeCloseTo(-4 / Math.sqrt(13), 15);
  });

  for (const [M, C, eps] of [
    [1, 5, 1e-5],
    [3, 7, 1e-6],
    [4, 16, 0.1],
  ] as const) {
    it(`backward matches finite differences (M=${M}, C=${C}, eps=${eps})`, () => {
      const rng = new Rng(M * 10 + C);
      const x = toF64(rng.f32Array(M * C));
      const w = toF64(rng.f32Array(C, 0.5, 1.5));
      const r = toF64(rng.f32Array(M * C)); // loss = sum(r * y), so dy = r
      const loss = () => dot(r, rmsnormForward(x, w, { M, C, eps }).y);
      const { rstd } = rmsnormForward(x, w, { M, C, eps });
      const { dx, dw } = rmsnormBackward(r, x, w, rstd, { M, C });
      const errX = worstRelError(dx, numericGradient(loss, x, probeIndices(M * C), H));
      const errW = worstRelError(dw, numericGradient(loss, w, probeIndices(C), H));
      console.log(`[gradcheck] rmsnorm M=${M} C=${C}: dx rel err ${errX.toExponential(2)}, dw rel err ${errW.toExponential(2)}`);
      expect(errX).toBeLessThan(1e-7);
      expect(errW).toBeLessThan(1e-7);
    });
  }
});
