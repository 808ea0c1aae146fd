import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { CENTRAL_STEP as H, dot, numericGradient, probeIndices, toF64, worstRelError } from './gradcheck';
import { ropeBackward, ropeForward, ropeInvFreq, ropeTables, type RopeDims } from './rope';

describe('rope reference', () => {
  // Independent values: theta^(2i/D) correctly rounded to float32 from a 60-digit decimal
  // computation, then 1/that in float32; cos/sin of the float32 angle 4095 * inv_freq correctly
  // rounded. (PyTorch's float32 pow and cos are within an ulp of these.)
  it('inv_freq follows HF float32 arithmetic', () => {
    const f = Math.fround;
    const d64 = ropeInvFreq(64, 10000);
    expect(d64.length).toBe(32);
    expect(d64[0]).toBe(1);
    expect(d64[1]).toBe(f(0.7498942017555237));
    expect(d64[5]).toBe(f(0.23713736236095428));
    expect(d64[7]).toBe(f(0.1333521455526352));
    expect(d64[27]).toBe(f(0.00042169648804701865));
    expect(d64[31]).toBe(f(0.0001333521504420787));
    const d128 = ropeInvFreq(128, 500000);
    expect(d128[2]).toBe(f(0.663601279258728));
    expect(d128[6]).toBe(f(0.2922278344631195));
    expect(d128[62]).toBe(f(3.01385807688348e-6));
    expect(() => ropeInvFreq(7, 10000)).toThrow(/even/);
  });

  it('tables use the float32 angle position * inv_freq, as HF does', () => {
    const { cos, sin } = ropeTables(4096, 64, 10000);
    const at = (p: number, i: number) => p * 32 + i;
    expect(cos.length).toBe(4096 * 32);
    expect(cos[at(0, 3)]).toBe(1);
    expect(sin[at(0, 3)]).toBe(0);
    expect(cos[at(4095, 1)]).toBe(Math.fround(-0.09004636108875275));
    expect(sin[at(4095, 1)]).toBe(Math.fround(-0.9959375858306885));
    expect(cos[at(4095, 5)]).toBe(Math.fround(-0.9475278258323669));
    expect(sin[at(4095, 5)]).toBe(Math.fround(-0.3196732997894287));
    expect(cos[at(4095, 31)]).toBe(Math.fround(0.8545684218406677));
    expect(sin[at(4095, 31)]).toBe(Math.fround(0.519338846206665));
    // With a float64 angle cos[4095, 1] would be -0.08994..., a 1e-4 difference: the rounding of
    // the angle to float32 is part of HF's result.
    expect(Math.abs(cos[at(4095, 1)] - Math.cos(4095 * ropeInvFreq(64, 10000)[1]))).toBeGreaterThan(1e-4);
  });

  it('forward rotates each (i, i + D/2) pair of every head', () => {
    // One token at position 1, 2 heads, D = 4, hand-made tables (maxPos 2, D/2 = 2).
    const cos = [1, 1, 0, 0.5];
    const sin = [0, 0, 1, -0.5];
    const x = [1, 2, 3, 4, 5, 6, 7, 8];
    const out = ropeForward(x, cos, sin, { M: 1, nHeads: 2, D: 4, T: 1, pos0: 1 });
    // i=0: c=0, s=1: (1, 3) -> (1*0 - 3*1, 3*0 + 1*1) = (-3, 1); i=1: c=0.5, s=-0.5: (2, 4) -> (1+2, 2-1)
    expect([...out.subarray(0, 4)]).toEqual([-3, 3, 1, 1]);
    expect([...out.subarray(4, 8)]).toEqual([-7, 3 + 4, 5, 4 - 3]);
  });

  const GROUPED: RopeDims = { M: 2 * 5, nHeads: 3, D: 8, T: 5, pos0: 3 };
  it('backward matches finite differences (3 heads, D=8, T=5, B=2, pos0=3)', () => {
    const { M, nHeads, D } = GROUPED;
    const tables = ropeTables(16, D, 10000);
    const rng = new Rng(3);
    const x = toF64(rng.f32Array(M * nHeads * D));
    const r = toF64(rng.f32Array(M * nHeads * D)); // loss = sum(r * out), so dy = r
    const loss = () => dot(r, ropeForward(x, tables.cos, tables.sin, GROUPED));
    const dx = ropeBackward(r, tables.cos, tables.sin, GROUPED);
    const err = worstRelError(dx, numericGradient(loss, x, probeIndices(x.length, 60), H));
    console.log(`[gradcheck] rope grouped: dx rel err ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-7);
  });

  it('backward inverts forward (the rotation is orthogonal)', () => {
    const tables = ropeTables(16, 8, 10000);
    const x = toF64(new Rng(4).f32Array(GROUPED.M * 24));
    const back = ropeBackward(ropeForward(x, tables.cos, tables.sin, GROUPED), tables.cos, tables.sin, GROUPED);
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(back[i] - x[i]));
    // cos^2 + sin^2 = 1 only to float32 rounding of the tables (a few 1e-8).
    expect(worst).toBeLessThan(1e-6);
  });
});
