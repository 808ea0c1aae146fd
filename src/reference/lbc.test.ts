import { describe, expect, it } from 'vitest';
import { numericGradient, probeIndices } from './gradcheck';
import { contiguousGroups, lbcBackward, lbcBoost, lbcForward, officialGroups, type LbcDims } from './lbc';
import { Rng } from '../util/random';

/** Random router weights: each row a softmax of random logits, like the real w. */
function randomW(rng: Rng, M: number, N: number): Float64Array {
  const w = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    let s = 0;
    for (let n = 0; n < N; n++) s += w[m * N + n] = Math.exp(2 * rng.uniform(-1, 1));
    for (let n = 0; n < N; n++) w[m * N + n] /= s;
  }
  return w;
}

describe('LBC boost helpers', () => {
  it('official grouping: type 1 boosts the first half, type 0 the second half', () => {
    expect(officialGroups(4)).toEqual([[2, 3], [0, 1]]);
    const I = lbcBoost([1, 0], officialGroups(4), 4, 0.1);
    expect(Array.from(I)).toEqual([1.1, 1.1, 0.9, 0.9, 0.9, 0.9, 1.1, 1.1].map(Math.fround));
  });

  it('official grouping rejects an odd number of experts', () => {
    expect(() => officialGroups(5)).toThrow(/even number of experts/);
    expect(() => officialGroups(1)).toThrow(/even number of experts/);
  });

  it('general K types to K groups, and arbitrary groups', () => {
    expect(contiguousGroups(6, 3)).toEqual([[0, 1], [2, 3], [4, 5]]);
    expect(() => contiguousGroups(7, 3)).toThrow(/divisible/);
    const I = lbcBoost([2, 0, 1], contiguousGroups(6, 3), 6, 0.25);
    expect(Array.from(I)).toEqual([
      0.75, 0.75, 0.75, 0.75, 1.25, 1.25,
      1.25, 1.25, 0.75, 0.75, 0.75, 0.75,
      0.75, 0.75, 1.25, 1.25, 0.75, 0.75,
    ]);
    // Uneven, overlapping groups are allowed.
    expect(Array.from(lbcBoost([0], [[0, 2]], 3, 0.5))).toEqual([1.5, 0.5, 1.5]);
    expect(() => lbcBoost([2], contiguousGroups(4, 2), 4, 0.1)).toThrow(/data type 2/);
    expect(() => lbcBoost([0], [[4]], 4, 0.1)).toThrow(/expert 4/);
  });
});

describe('LBC reference', () => {
  it('loss by hand: Z = [1, 2, 3, 4] gives var/mean^2 = (5/3)/6.25', () => {
    // One sequence of one token, weights [1,2,3,4] (not a softmax, the formula does not care).
    const { loss, mean, variance } = lbcForward([1, 2, 3, 4], [1], [1, 1, 1, 1], { B: 1, T: 1, N: 4, beta: 0.5 });
    expect(mean).toBe(2.5);
    expect(variance).toBeCloseTo(5 / 3, 14);
    expect(loss).toBeCloseTo((0.5 * 5) / 3 / (6.25 + 1e-10), 14);
  });

  it('padding rows do not count', () => {
    const rng = new Rng(3);
    const d: LbcDims = { B: 2, T: 3, N: 2, beta: 1 };
    const w = randomW(rng, 6, 2);
    const valid = [1, 1, 0, 1, 0, 0];
    const I = lbcBoost([0, 1], officialGroups(2), 2, 0.1);
    const a = lbcForward(w, valid, I, d);
    const w2 = w.slice();
    for (const m of [2, 4, 5]) w2.set([0.9, 0.1], m * 2); // change only padding rows
    expect(lbcForward(w2, valid, I, d).loss).toBe(a.loss);
    expect(a.Q[0]).toBeCloseTo(w[0] + w[2], 15);
  });

  it('rejects B*N < 2 and mismatched sizes', () => {
    expect(() => lbcForward([1], [1], [1], { B: 1, T: 1, N: 1, beta: 1 })).toThrow(/B\*N >= 2/);
    expect(() => lbcForward([1, 2, 3], [1], [1, 1], { B: 1, T: 1, N: 2, beta: 1 })).toThrow(/w has 3 values/);
  });

  const cases: Array<{ name: string; B: number; T: number; N: number; types: number[]; groups: (N: number) => number[][] }> = [
    { name: 'official grouping', B: 3, T: 4, N: 4, types: [1, 0, 1], groups: officialGroups },
    { name: 'three types, three groups', B: 4, T: 3, N: 6, types: [2, 0, 1, 2], groups: (N) => contiguousGroups(N, 3) },
    { name: 'one sequence', B: 1, T: 5, N: 2, types: [0], groups: officialGroups },
  ];
  for (const c of cases) {
    it(`finite differences, ${c.name}, with padding rows`, () => {
      const rng = new Rng(c.B * 100 + c.N);
      const M = c.B * c.T;
      const d: LbcDims = { B: c.B, T: c.T, N: c.N, beta: 0.7 };
      const w = randomW(rng, M, c.N);
      // Last token of every sequence is padding (and the first one of sequence 0 too).
      const valid = Array.from({ length: M }, (_, m) => (m % c.T === c.T - 1 || m === 0 ? 0 : 1));
      const I = lbcBoost(c.types, c.groups(c.N), c.N, 0.2);
      const dLoss = 1.3;
      const saved = lbcForward(w, valid, I, d);
      const { dw } = lbcBackward(dLoss, valid, I, saved, d);
      const num = numericGradient(() => dLoss * lbcForward(w, valid, I, d).loss, w, probeIndices(w.length, 60));
      let worst = 0;
      for (const [i, g] of num) {
        const err = Math.abs(g - dw[i]) / Math.max(Math.abs(dw[i]), 1e-3);
        worst = Math.max(worst, err);
        if (valid[Math.floor(i / c.N)] === 0) expect(dw[i]).toBe(0);
      }
      console.log(`[check] LBC ${c.name}: max rel err vs finite differences ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-7);
    });
  }
});
