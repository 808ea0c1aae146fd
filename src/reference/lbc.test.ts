import { describe, expect, it } from 'vitest';
import { numericGradient, probeIndices } from './gradcheck';
import { softmaxRows } from './loramoe';
import { contiguousGroups, lbcBackward, lbcBoost, lbcForward, lbcGpuBoost, lbcOptimum, lbcTargetShares, officialGroups, type LbcDims } from './lbc';
import { LBC_DIRECTIONS, LBC_IMPORTANCES, type LbcDirection, type LbcImportance } from '../method/adapter';
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
    for (const direction of LBC_DIRECTIONS) {
      for (const importance of LBC_IMPORTANCES) {
        it(`finite differences, ${c.name}, ${direction} direction, ${importance} importance, unequal lengths`, () => {
          const rng = new Rng(c.B * 100 + c.N);
          const M = c.B * c.T;
          const d: LbcDims = { B: c.B, T: c.T, N: c.N, beta: 0.7, importance };
          const w = randomW(rng, M, c.N);
          // Sequence b has T-1-(b mod 2) real tokens (the first token of sequence 0 is padding too):
          // unequal lengths, so "sum" and "mean" differ.
          const valid = Array.from({ length: M }, (_, m) => (m % c.T >= c.T - 1 - (Math.floor(m / c.T) % 2) || m === 0 ? 0 : 1));
          const I = lbcBoost(c.types, c.groups(c.N), c.N, 0.2, direction);
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
          console.log(`[check] LBC ${c.name} ${direction}/${importance}: max rel err vs finite differences ${worst.toExponential(2)}`);
          expect(worst).toBeLessThan(1e-7);
        });
      }
    }
  }
});

describe('LBC variants', () => {
  it('own-group direction flips the sign of delta', () => {
    const I = lbcBoost([1, 0], officialGroups(4), 4, 0.1, 'own-group');
    expect(Array.from(I)).toEqual([0.9, 0.9, 1.1, 1.1, 1.1, 1.1, 0.9, 0.9].map(Math.fround));
    expect(() => lbcBoost([0], officialGroups(2), 2, 0.1, 'sideways' as LbcDirection)).toThrow(/direction must be official or own-group/);
  });

  it('mean importance divides each row of Q by its real tokens', () => {
    const rng = new Rng(5);
    const w = randomW(rng, 8, 2);
    const valid = [1, 1, 1, 0, 1, 0, 0, 0];
    const I = lbcBoost([0, 1], officialGroups(2), 2, 0.1);
    const sum = lbcForward(w, valid, I, { B: 2, T: 4, N: 2, beta: 1, importance: 'sum' });
    const mean = lbcForward(w, valid, I, { B: 2, T: 4, N: 2, beta: 1, importance: 'mean' });
    expect(mean.Q[0]).toBeCloseTo(sum.Q[0] / 3, 15);
    expect(mean.Q[3]).toBeCloseTo(sum.Q[3] / 1, 15);
    // Rows of mean-Q total 1 (softmax rows), rows of sum-Q total the lengths.
    expect(mean.Q[0] + mean.Q[1]).toBeCloseTo(1, 14);
    expect(sum.Q[0] + sum.Q[1]).toBeCloseTo(3, 14);
    expect(mean.loss).not.toBeCloseTo(sum.loss, 3);
  });

  it('at batch size 1 every importance rule gives the same loss (CV^2 is scale-free)', () => {
    const rng = new Rng(9);
    for (const direction of LBC_DIRECTIONS) {
      const w = randomW(rng, 7, 4);
      const valid = [1, 1, 1, 1, 1, 0, 0];
      const I = lbcBoost([1], officialGroups(4), 4, 0.3, direction);
      const losses = LBC_IMPORTANCES.map((importance) => lbcForward(w, valid, I, { B: 1, T: 7, N: 4, beta: 0.5, importance }).loss);
      // Equal up to the 1e-10 in the denominator, which does not scale with Q.
      expect(Math.abs(losses[1] - losses[0]) / losses[0]).toBeLessThan(1e-8);
      // The official code at batch 1 (no padding: the sequence is its own length) sums every
      // position, which is the sum rule over the five real tokens.
      const official = lbcForward(w.slice(0, 20), [1, 1, 1, 1, 1], I, { B: 1, T: 5, N: 4, beta: 0.5, importance: 'sum' }).loss;
      expect(official).toBe(losses[0]);
    }
  });

  it('the GPU boost (s folded into I) gives the same Z and gradient as the reference rule', () => {
    const rng = new Rng(11);
    const B = 3;
    const T = 5;
    const N = 4;
    const w = randomW(rng, B * T, N);
    const valid = [1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0];
    const I = lbcBoost([0, 1, 1], officialGroups(N), N, 0.2, 'own-group');
    const ref = lbcForward(w, valid, I, { B, T, N, beta: 1, importance: 'mean' });
    const folded = lbcForward(w, valid, lbcGpuBoost(I, valid, B, T, N, 'mean'), { B, T, N, beta: 1, importance: 'sum' });
    for (let j = 0; j < B * N; j++) expect(folded.Z[j]).toBeCloseTo(ref.Z[j], 7);
    expect(folded.loss).toBeCloseTo(ref.loss, 6);
  });
});

/**
 * Minimises the constraint alone (no cross-entropy) over free per-token router logits, by Adam on
 * the reference gradient pushed through the softmax. Returns each sample's own-group share.
 */
function minimiseLbc(o: {
  types: number[];
  lengths: number[];
  groups: number[][];
  N: number;
  delta: number;
  direction: LbcDirection;
  importance: LbcImportance;
  seed: number;
  iterations?: number;
}): number[] {
  const { types, lengths, groups, N } = o;
  const B = types.length;
  const T = Math.max(...lengths);
  const M = B * T;
  const valid = Array.from({ length: M }, (_, m) => (m % T < lengths[Math.floor(m / T)] ? 1 : 0));
  const I = lbcBoost(types, groups, N, o.delta, o.direction);
  const d: LbcDims = { B, T, N, beta: 1, importance: o.importance };
  const rng = new Rng(o.seed);
  const logits = Float64Array.from({ length: M * N }, () => rng.uniform(-2, 2));
  const m1 = new Float64Array(M * N);
  const m2 = new Float64Array(M * N);
  const lr = 0.05;
  const iterations = o.iterations ?? 3000;
  for (let it = 1; it <= iterations; it++) {
    const w = softmaxRows(logits, M, N);
    const saved = lbcForward(w, valid, I, d);
    const { dw } = lbcBackward(1, valid, I, saved, d);
    for (let m = 0; m < M; m++) {
      let dot = 0;
      for (let n = 0; n < N; n++) dot += w[m * N + n] * dw[m * N + n];
      for (let n = 0; n < N; n++) {
        const j = m * N + n;
        const g = w[j] * (dw[j] - dot);
        m1[j] = 0.9 * m1[j] + 0.1 * g;
        m2[j] = 0.999 * m2[j] + 0.001 * g * g;
        const step = (m1[j] / (1 - 0.9 ** it)) / (Math.sqrt(m2[j] / (1 - 0.999 ** it)) + 1e-12);
        logits[j] -= lr * step;
      }
    }
  }
  const Q = lbcForward(softmaxRows(logits, M, N), valid, I, { ...d, importance: 'sum' }).Q;
  return types.map((t, b) => {
    let own = 0;
    let all = 0;
    for (let n = 0; n < N; n++) {
      all += Q[b * N + n];
      if (groups[t].includes(n)) own += Q[b * N + n];
    }
    return own / all;
  });
}

describe('LBC optimum: where the constraint alone pushes', () => {
  // A batch of mixed types and unequal lengths, 8 experts in the official two groups.
  const types = [1, 0, 0, 1, 0, 1];
  const lengths = [3, 12, 5, 9, 2, 7];
  for (const delta of [0.1, 0.5]) {
    for (const direction of LBC_DIRECTIONS) {
      // Two equal groups: the closed form, written out here rather than taken from lbcOptimum.
      const expected = direction === 'official' ? (1 - delta) / 2 : (1 + delta) / 2;
      it(`mean importance, delta ${delta}, ${direction}: every sample settles at ${expected} on its own group`, () => {
        const shares = minimiseLbc({ types, lengths, groups: officialGroups(8), N: 8, delta, direction, importance: 'mean', seed: 17 });
        console.log(`[check] LBC optimum ${direction} delta ${delta} (mean): ${shares.map((x) => x.toFixed(4)).join(' ')}`);
        for (const s of shares) expect(s).toBeCloseTo(expected, 3);
        const analytic = lbcOptimum(types.map((type) => ({ type, total: 1 })), officialGroups(8), 8, delta, direction);
        for (const s of analytic.ownShare) expect(s).toBeCloseTo(expected, 12);
      });
    }
  }

  it('sum importance: the shorter sample is pushed toward its high-boost group, whatever its type', () => {
    const groups = officialGroups(8);
    // World knowledge (type 1) 3 tokens beside a downstream task (type 0) of 12 tokens, delta 0.1.
    const a = minimiseLbc({ types: [1, 0], lengths: [3, 12], groups, N: 8, delta: 0.1, direction: 'official', importance: 'sum', seed: 3 });
    const b = minimiseLbc({ types: [1, 0], lengths: [12, 3], groups, N: 8, delta: 0.1, direction: 'official', importance: 'sum', seed: 4 });
    console.log(`[check] LBC optimum, sum, lengths 3/12: ${a.map((x) => x.toFixed(4)).join(' ')}; 12/3: ${b.map((x) => x.toFixed(4)).join(' ')}`);
    expect(a[0]).toBeCloseTo(0.568, 2);
    expect(a[1]).toBeCloseTo(0.443, 2);
    // Swapping the lengths swaps the shares.
    expect(b[0]).toBeCloseTo(a[1], 3);
    expect(b[1]).toBeCloseTo(a[0], 3);
    const analytic = lbcOptimum([{ type: 1, total: 3 }, { type: 0, total: 12 }], groups, 8, 0.1, 'official').ownShare;
    expect(a[0]).toBeCloseTo(analytic[0], 3);
    expect(a[1]).toBeCloseTo(analytic[1], 3);
    // The mean rule removes the dependence: both at the official (1 - delta) / 2.
    const c = minimiseLbc({ types: [1, 0], lengths: [3, 12], groups, N: 8, delta: 0.1, direction: 'official', importance: 'mean', seed: 3 });
    for (const s of c) expect(s).toBeCloseTo(0.45, 3);
  });

  it('K groups of unequal sizes: the minimiser agrees with the analytic optimum', () => {
    // Three types over 8 experts: groups of 1, 3 and 4 experts.
    const groups = [[0], [1, 2, 3], [4, 5, 6, 7]];
    const types = [0, 1, 2, 2, 1, 0, 2];
    const lengths = [4, 6, 3, 8, 5, 2, 7];
    for (const direction of LBC_DIRECTIONS) {
      const shares = minimiseLbc({ types, lengths, groups, N: 8, delta: 0.3, direction, importance: 'mean', seed: 23, iterations: 4000 });
      const opt = lbcOptimum(types.map((type) => ({ type, total: 1 })), groups, 8, 0.3, direction);
      expect(opt.interior).toBe(true);
      console.log(`[check] LBC optimum, unequal groups, ${direction}: minimised ${shares.map((x) => x.toFixed(4)).join(' ')}; analytic ${opt.ownShare.map((x) => x.toFixed(4)).join(' ')}`);
      shares.forEach((s, b) => expect(s).toBeCloseTo(opt.ownShare[b], 3));
      // Per-type targets from type counts give the same numbers.
      const targets = lbcTargetShares([2, 2, 3], groups, 8, 0.3, direction);
      types.forEach((t, b) => expect(targets[t]).toBeCloseTo(opt.ownShare[b], 12));
    }
  });

  it('K equal groups: the closed form I_o^-1 / (I_o^-1 + (K-1) I_x^-1)', () => {
    const K = 4;
    const delta = 0.2;
    for (const direction of LBC_DIRECTIONS) {
      const [own, other] = direction === 'official' ? [1 + delta, 1 - delta] : [1 - delta, 1 + delta];
      const expected = 1 / own / (1 / own + (K - 1) / other);
      const targets = lbcTargetShares([5, 1, 0, 2], contiguousGroups(8, K), 8, delta, direction);
      expect(targets[0]).toBeCloseTo(expected, 12);
      expect(targets[1]).toBeCloseTo(expected, 12);
      expect(targets[2]).toBeNaN();
    }
  });
});
