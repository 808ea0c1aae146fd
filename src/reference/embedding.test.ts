import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { embeddingBackward, embeddingForward } from './embedding';
import { dot, numericGradient, probeIndices, toF64 } from './gradcheck';

const H = 1e-5;

describe('embedding reference', () => {
  it('forward gathers rows and zeroes out-of-range ids', () => {
    const E = [1, 2, 3, 4, 5, 6]; // V = 3, C = 2
    expect([...embeddingForward([2, 0, 7, 2], E, { M: 4, C: 2, V: 3 })]).toEqual([5, 6, 1, 2, 0, 0, 5, 6]);
  });

  it('backward (wrt E) matches finite differences, with repeated, unused and out-of-range ids', () => {
    const [M, C, V] = [9, 3, 6];
    const ids = [4, 1, 4, 0, 9, 4, 1, 5, 0]; // 4 three times, 2 and 3 unused, 9 >= V
    const rng = new Rng(1);
    const E = toF64(rng.f32Array(V * C));
    const r = toF64(rng.f32Array(M * C)); // loss = sum(r * out), so dout = r
    const loss = () => dot(r, embeddingForward(ids, E, { M, C, V }));
    const dE = embeddingBackward(r, ids, { M, C, V });
    const numeric = numericGradient(loss, E, probeIndices(V * C, V * C), H);
    let worst = 0;
    let scale = 1e-12;
    for (const [i, n] of numeric) {
      worst = Math.max(worst, Math.abs(dE[i] - n));
      scale = Math.max(scale, Math.abs(dE[i]));
    }
    console.log(`[gradcheck] embedding: dE rel err ${(worst / scale).toExponential(2)}`);
    expect(worst / scale).toBeLessThan(1e-7);
    // Unused ids get exactly zero gradient.
    for (const v of [2, 3]) for (let c = 0; c < C; c++) expect(dE[v * C + c]).toBe(0);
  });
});
