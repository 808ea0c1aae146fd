import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { crossEntropyBackward, crossEntropyForward, IGNORE_INDEX } from './crossentropy';
import { numericGradient, probeIndices, toF64 } from './gradcheck';

function randomLabels(rng: Rng, M: number, V: number, ignored: number[]): Int32Array {
  const labels = new Int32Array(M);
  for (let m = 0; m < M; m++) labels[m] = rng.int(V);
  for (const m of ignored) labels[m] = IGNORE_INDEX;
  return labels;
}

describe('cross-entropy reference', () => {
  it('forward matches -log softmax written out directly', () => {
    const rng = new Rng(1);
    const [M, V] = [5, 7];
    const logits = rng.f32Array(M * V, -3, 3);
    const labels = randomLabels(rng, M, V, [2]);
    const r = crossEntropyForward(logits, labels, M, V);
    let sum = 0;
    for (const m of [0, 1, 3, 4]) {
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[m * V + v]);
      const nll = -Math.log(Math.exp(logits[m * V + labels[m]]) / z);
      expect(r.rowLoss[m]).toBeCloseTo(nll, 12);
      expect(r.lse[m]).toBeCloseTo(Math.log(z), 12);
      sum += nll;
    }
    expect(r.rowLoss[2]).toBe(0);
    expect(r.count).toBe(4);
    expect(r.invalid).toBe(0);
    expect(r.loss).toBeCloseTo(sum / 4, 12);
  });

  it('is stable for large logits (max subtracted)', () => {
    const logits = [1000, 1001, 999];
    const r = crossEntropyForward(logits, [1], 1, 3);
    const want = -Math.log(1 / (Math.exp(-1) + 1 + Math.exp(-2)));
    expect(r.loss).toBeCloseTo(want, 12);
  });

  it('all rows ignored: loss 0 and count 0, zero gradient; bad labels are counted as invalid', () => {
    const logits = new Rng(2).f32Array(3 * 4);
    const r = crossEntropyForward(logits, [IGNORE_INDEX, 4, -1], 3, 4);
    expect(r.loss).toBe(0);
    expect(r.count).toBe(0);
    expect(r.invalid).toBe(2);
    expect(Array.from(r.rowLoss)).toEqual([0, 0, 0]);
    const d = crossEntropyBackward(1, logits, [IGNORE_INDEX, 4, -1], r.lse, r.count, 3, 4);
    expect(d.every((x) => x === 0)).toBe(true);
  });

  for (const [M, V, ignored] of [[1, 3, []], [4, 5, [1]], [6, 11, [0, 5]], [3, 37, [2]]] as Array<[number, number, number[]]>) {
    it(`backward vs central differences M=${M} V=${V} ignored=[${ignored}]`, () => {
      const rng = new Rng(M * 100 + V);
      const logits = toF64(rng.f32Array(M * V, -2, 2));
      const labels = randomLabels(rng, M, V, ignored);
      // Scalar output: the weighted-sum loss is r · loss with a random upstream gradient r (= gradScale).
      const r = rng.uniform(0.5, 2);
      const loss = () => r * crossEntropyForward(logits, labels, M, V).loss;
      const fwd = crossEntropyForward(logits, labels, M, V);
      const d = crossEntropyBackward(r, logits, labels, fwd.lse, fwd.count, M, V);
      // h = 1e-5: the loss is O(1), so rounding contributes ~1e-16/h = 1e-11 to each difference
      // quotient and truncation ~h² · |f'''| ≈ 1e-10 relative; both well under the 1e-7 asserted.
      const num = numericGradient(loss, logits, probeIndices(M * V, 40), 1e-5);
      let worst = 0;
      for (const [i, g] of num) {
        const err = Math.abs(d[i] - g) / Math.max(1e-3, Math.abs(g));
        worst = Math.max(worst, err);
      }
      console.log(`[check] ce reference dlogits M=${M} V=${V}: max rel err vs FD ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-7);
      // Ignored rows get exactly zero gradient; each counted row's gradient sums to zero.
      for (const m of ignored) expect(d.subarray(m * V, (m + 1) * V).every((x) => x === 0)).toBe(true);
      for (let m = 0; m < M; m++) {
        let s = 0;
        for (let v = 0; v < V; v++) s += d[m * V + v];
        expect(Math.abs(s)).toBeLessThan(1e-14);
      }
    });
  }
});
