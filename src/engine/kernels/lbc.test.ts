import { describe, expect, it } from 'vitest';
import { contiguousGroups, lbcBackward, lbcBoost, lbcFloat32Error, lbcForward, lbcGpuBoost, officialGroups, type LbcDims } from '../../reference/lbc';
import { LBC_DIRECTIONS, LBC_IMPORTANCES } from '../../method/adapter';
import { expectClose, F32_EPS, sumTolerance } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import { runOps } from '../op';
import { createTensor, readTensor } from '../tensor';
import { lbcBackwardOp, lbcImportanceOp, lbcLossOp } from './lbc';

/** Router-like weights rounded to float32: each row a softmax of random logits. */
function randomW(rng: Rng, M: number, N: number): Float32Array {
  const w = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    const e = Array.from({ length: N }, () => Math.exp(2 * rng.uniform(-1, 1)));
    const s = e.reduce((a, b) => a + b, 0);
    for (let n = 0; n < N; n++) w[m * N + n] = e[n] / s;
  }
  return w;
}

interface Case {
  name: string;
  B: number;
  T: number;
  N: number;
  types: number[];
  groups: number[][];
  gradScale: number;
}

// Ragged sizes; the last case has B*N = 160 > the loss workgroup (64), so its strided loops run.
const CASES: Case[] = [
  { name: 'official N=4 B=3 T=5', B: 3, T: 5, N: 4, types: [1, 0, 0], groups: officialGroups(4), gradScale: 1 },
  { name: 'three groups N=6 B=2 T=7', B: 2, T: 7, N: 6, types: [2, 1], groups: contiguousGroups(6, 3), gradScale: 0.5 },
  { name: 'official N=8 B=20 T=3', B: 20, T: 3, N: 8, types: Array.from({ length: 20 }, (_, b) => b % 2), groups: officialGroups(8), gradScale: 1 },
  { name: 'one sequence N=2 T=9', B: 1, T: 9, N: 2, types: [0], groups: officialGroups(2), gradScale: 1 },
];

describe('LBC kernels vs reference', () => {
  // Every direction and importance rule, on padded batches whose sequences have unequal lengths.
  // The kernels sum Q over real tokens and take the boost with the importance scale folded in
  // (lbcGpuBoost); the reference computes each rule directly.
  for (const c of CASES) {
    for (const direction of LBC_DIRECTIONS) {
      for (const importance of LBC_IMPORTANCES) {
        it(`${c.name}, ${direction} direction, ${importance} importance`, async () => {
          const ctx = await testGpu();
          const { B, T, N } = c;
          const M = B * T;
          const rng = new Rng(B * 1000 + T * 10 + N);
          const w = randomW(rng, M, N);
          // Padding: the tail of every other sequence, and every sequence's last token.
          const valid = Uint32Array.from({ length: M }, (_, m) => (m % T === T - 1 || (Math.floor(m / T) % 2 === 1 && m % T >= T / 2) ? 0 : 1));
          const boost = lbcBoost(c.types, c.groups, N, 0.15, direction);
          const gpuBoost = lbcGpuBoost(boost, valid, B, T, N, importance);
          const d: LbcDims = { B, T, N, beta: 0.3, importance };
          const dw0 = rng.f32Array(M * N);
          const lossIndex = 2;

          const tw = createTensor(ctx, 'w', [M, N], 'f32', w);
          const tValid = createTensor(ctx, 'valid', [M], 'u32', valid);
          const tBoost = createTensor(ctx, 'boost', [B, N], 'f32', gpuBoost);
          const tQ = createTensor(ctx, 'Q', [B, N], 'f32', rng.f32Array(B * N)); // stale values: overwritten
          const tLoss = createTensor(ctx, 'loss', [4], 'f32', [10, 11, 12, 13]);
          const tdZ = createTensor(ctx, 'dZ', [B, N], 'f32', rng.f32Array(B * N));
          const tdw = createTensor(ctx, 'dw', [M, N], 'f32', dw0);
          await withValidation(ctx, () =>
            runOps(ctx, [
              lbcImportanceOp(ctx, { w: tw, valid: tValid, q: tQ, B, T, N }),
              lbcLossOp(ctx, { q: tQ, boost: tBoost, loss: tLoss, lossIndex, dZ: tdZ, beta: d.beta, gradScale: c.gradScale, B, T, N }),
              lbcBackwardOp(ctx, { valid: tValid, boost: tBoost, dZ: tdZ, dw: tdw, B, T, N }),
            ]),
          );

          const ref = lbcForward(w, valid, boost, d);
          const { dZ, dw } = lbcBackward(c.gradScale, valid, boost, ref, d);
          // The kernel's Q is the sum over real tokens: at most T weights in [0, 1].
          const qSum = lbcForward(w, valid, boost, { ...d, importance: 'sum' }).Q;
          const errQ = sumTolerance(T, T);
          expectClose(`${c.name} Q`, await readTensor(ctx, tQ), qSum, { abs: errQ });
          // Z on the GPU is Q_sum * I', I' = float32(I * s): Q's error times I', plus one rounding
          // of I' (relative 2^-24, i.e. at most 2^-24 * max Q_sum on Z per unit of I'), which the
          // bound takes as extra error on Q.
          let maxI = 0;
          for (const v of gpuBoost) maxI = Math.max(maxI, Math.abs(v));
          let maxQ = 0;
          for (const v of qSum) maxQ = Math.max(maxQ, Math.abs(v));
          const err = lbcFloat32Error(ref, gpuBoost, d, errQ + F32_EPS * maxQ, c.gradScale);
          const loss = await readTensor(ctx, tLoss);
          expectClose(`${c.name} loss`, [loss[lossIndex]], [ref.loss], { abs: err.loss });
          expect(Array.from(loss).filter((_, i) => i !== lossIndex)).toEqual([10, 11, 13]);
          expectClose(`${c.name} dZ`, await readTensor(ctx, tdZ), dZ, { abs: err.dZ });
          // dw = dw0 + I' * dZ: dZ's error times I', I''s rounding times |dZ|, two roundings of the result.
          const want = dw.map((v, i) => v + dw0[i]);
          let maxW = 0;
          for (const v of want) maxW = Math.max(maxW, Math.abs(v));
          let maxDz = 0;
          for (const v of dZ) maxDz = Math.max(maxDz, Math.abs(v));
          expectClose(`${c.name} dw`, await readTensor(ctx, tdw), want, { abs: maxI * err.dZ + F32_EPS * maxI * maxDz + 2 * F32_EPS * maxW });
          for (let m = 0; m < M; m++) if (!valid[m]) for (let n = 0; n < N; n++) expect(dw[m * N + n]).toBe(0);
        });
      }
    }
  }

  it('rejects wrong sizes and dtypes with clear errors', async () => {
    const ctx = await testGpu();
    const w = createTensor(ctx, 'w', [6, 4]);
    const valid = createTensor(ctx, 'valid', [6], 'u32');
    const validF = createTensor(ctx, 'validF32', [6]);
    const q = createTensor(ctx, 'Q', [2, 4]);
    const small = createTensor(ctx, 'small', [3]);
    const loss = createTensor(ctx, 'loss', [2]);
    const dims = { B: 2, T: 3, N: 4 };
    expect(() => lbcImportanceOp(ctx, { w: small, valid, q, ...dims })).toThrow(/w \(small\) has 3 values, needs B\*T\*N = 24/);
    expect(() => lbcImportanceOp(ctx, { w, valid: validF as never, q, ...dims })).toThrow(/valid \(validF32\) must be u32/);
    expect(() => lbcImportanceOp(ctx, { w, valid, q, B: 1, T: 6, N: 1 })).toThrow(/B\*N >= 2/);
    expect(() => lbcLossOp(ctx, { q, boost: q, loss, lossIndex: 2, dZ: small, beta: 1, ...dims })).toThrow(/dZ \(small\) has 3 values/);
    expect(() => lbcLossOp(ctx, { q, boost: q, loss, lossIndex: 2, dZ: w, beta: 1, ...dims })).toThrow(/loss \(loss\) has 2 values, needs lossIndex\+1 = 3/);
    expect(() => lbcBackwardOp(ctx, { valid, boost: q, dZ: q, dw: q, ...dims })).toThrow(/dw \(Q\) has 8 values, needs B\*T\*N = 24/);
    expect(() => lbcBackwardOp(ctx, { valid, boost: q, dZ: w, dw: w, ...dims })).toThrow(/dw and dZ are the same tensor/);
  });
});
