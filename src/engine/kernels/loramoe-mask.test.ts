/**
 * The router forward (router_forward, and router_forward_vec4 where K % 4 == 0). Expert knockout:
 * the switched-off experts' logits count as minus infinity, so their weight is exactly 0 and the
 * others renormalise; checked against the float64 reference (src/reference/loramoe.ts routerForward
 * with the same mask) on both entry points, including experts past the first mask word. With no
 * expert off the router writes the same bytes as a router never given a mask. The vec4 entry point
 * writes the same bytes as the scalar one (each logit's additions in the same order).
 */
import { describe, expect, it } from 'vitest';
import { routerForward } from '../../reference/loramoe';
import { matmul } from '../../reference/matmul';
import { expectClose, F32_EPS, maxAbs, sumTolerance } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import { runOps } from '../op';
import { createTensor, readTensor } from '../tensor';
import { expertDownForwardOp, routerForwardOp, setExpertMask } from './loramoe';

describe('router_forward with experts knocked out vs reference', () => {
  const cases: { N: number; masks: number[][] }[] = [
    { N: 4, masks: [[1], [0, 1], [2, 3], [0, 1, 3]] },
    // Experts 33 and 39 live in the second mask word, 70 in the third.
    { N: 72, masks: [[0], [33, 39], [31, 32, 70], Array.from({ length: 71 }, (_, i) => i + 1)] },
  ];
  for (const [{ N, masks }, K] of cases.flatMap((c) => [[c, 5] as const, [c, 12] as const])) {
    it(`N=${N} K=${K}: masked weights are 0, the rest match the reference softmax over the experts left`, async () => {
      const ctx = await testGpu();
      const M = 67;
      const rng = new Rng(N);
      const x = rng.f32Array(M * K, -2, 2);
      const wr = rng.f32Array(N * K, -2, 2);
      const tx = createTensor(ctx, 'x', [M, K], 'f32', x);
      const twr = createTensor(ctx, 'Wr', [N, K], 'f32', wr);
      const tw = createTensor(ctx, 'w', [M, N]);
      const op = routerForwardOp(ctx, { x: tx, wr: twr, w: tw, M, K, N });
      // Softmax error bound (see loramoe.test.ts bounds()): 2 err(logits) + (N + 4) u, relative to w <= 1.
      const absSum = matmul(Float64Array.from(x, Math.abs), Float64Array.from(wr, Math.abs), { M, N, K, transB: true });
      const tol = 2 * sumTolerance(K, maxAbs(absSum)) + (N + 4) * F32_EPS;
      for (const mask of masks) {
        setExpertMask(ctx, [op], mask);
        await withValidation(ctx, () => runOps(ctx, [op]));
        const got = await readTensor(ctx, tw);
        const want = routerForward(x, wr, M, K, N, mask);
        expectClose(`w, experts ${mask.join(',')} off`, got, want, { abs: tol });
        for (let m = 0; m < M; m++) for (const e of mask) expect(got[m * N + e], `w[${m}, ${e}]`).toBe(0);
      }
      for (const t of [tx, twr, tw]) t.destroy();
    });
  }

  it('no expert off: the same bytes as a router never given a mask, also after a mask was cleared', async () => {
    const ctx = await testGpu();
    const [M, K, N] = [9, 7, 8];
    const rng = new Rng(3);
    const tx = createTensor(ctx, 'x', [M, K], 'f32', rng.f32Array(M * K, -3, 3));
    const twr = createTensor(ctx, 'Wr', [N, K], 'f32', rng.f32Array(N * K, -3, 3));
    const tw = createTensor(ctx, 'w', [M, N]);
    const plain = routerForwardOp(ctx, { x: tx, wr: twr, w: tw, M, K, N });
    runOps(ctx, [plain]);
    const before = new Uint8Array((await readTensor(ctx, tw)).buffer.slice(0));
    const masked = routerForwardOp(ctx, { x: tx, wr: twr, w: tw, M, K, N, mask: [4, 5, 6, 7] });
    runOps(ctx, [masked]);
    const off = await readTensor(ctx, tw);
    expect(off[4]).toBe(0);
    setExpertMask(ctx, [masked], []);
    runOps(ctx, [masked]);
    expect(new Uint8Array((await readTensor(ctx, tw)).buffer.slice(0))).toEqual(before);
    for (const t of [tx, twr, tw]) t.destroy();
  });

  it('refuses a mask of every expert, an expert out of range, and ops that are not routers', async () => {
    const ctx = await testGpu();
    const [M, K, N, R] = [2, 3, 4, 2];
    const t = (name: string, n: number) => createTensor(ctx, name, [n]);
    const x = t('x', M * K), wr = t('Wr', N * K), w = t('w', M * N), a = t('A', N * R * K), h = t('h', M * N * R), g = t('g', M * N * R);
    expect(() => routerForwardOp(ctx, { x, wr, w, M, K, N, mask: [0, 1, 2, 3] })).toThrow(/switches off all 4 experts; at least one must stay on/);
    const op = routerForwardOp(ctx, { x, wr, w, M, K, N });
    expect(() => setExpertMask(ctx, [op], [3, 1, 0, 2])).toThrow(/all 4 experts/);
    expect(() => setExpertMask(ctx, [op], [4])).toThrow(/expert 4 is outside 0\.\.3/);
    expect(() => setExpertMask(ctx, [op], [1.5])).toThrow(/expert 1\.5 is outside/);
    const down = expertDownForwardOp(ctx, { x, a, w, h, g, M, K, N, R, scale: 1 });
    expect(() => setExpertMask(ctx, [down], [1])).toThrow(/not a loramoe router op/);
  });
});

describe('router_forward_vec4 (K % 4 == 0)', () => {
  // Experts in one group of eight, past it (11: a last group of three, rows clamped), 72 with a mask;
  // K from one vec4 to SmolLM2's 576 and the demo FFN's 256.
  const shapes = [
    { M: 67, K: 4, N: 1 },
    { M: 9, K: 12, N: 3 },
    { M: 70, K: 96, N: 8 },
    { M: 5, K: 576, N: 11 },
    { M: 33, K: 256, N: 72, mask: [3, 40] },
  ];
  for (const { M, K, N, mask } of shapes) {
    it(`M=${M} K=${K} N=${N}${mask ? ` experts ${mask.join(',')} off` : ''}: the same bytes as router_forward, and the reference`, async () => {
      const ctx = await testGpu();
      const rng = new Rng(M * 31 + K + N);
      const x = rng.f32Array(M * K, -2, 2);
      const wr = rng.f32Array(N * K, -2, 2);
      const tx = createTensor(ctx, 'x', [M, K], 'f32', x);
      const twr = createTensor(ctx, 'Wr', [N, K], 'f32', wr);
      const out = { scalar: createTensor(ctx, 'w scalar', [M, N]), vec4: createTensor(ctx, 'w vec4', [M, N]) };
      const ops = (['scalar', 'vec4'] as const).map((variant) => routerForwardOp(ctx, { x: tx, wr: twr, w: out[variant], M, K, N, mask, variant }));
      // The default picks the vec4 entry point wherever K allows.
      const keys: string[] = [];
      ctx.pipelines.onGet = (key) => keys.push(key);
      try {
        routerForwardOp(ctx, { x: tx, wr: twr, w: out.vec4, M, K, N });
      } finally {
        ctx.pipelines.onGet = null;
      }
      expect(keys[0]).toMatch(/^loramoe:router_forward_vec4:/);
      await withValidation(ctx, () => runOps(ctx, ops));
      const scalar = await readTensor(ctx, out.scalar);
      const vec4 = await readTensor(ctx, out.vec4);
      expect(new Uint8Array(vec4.buffer)).toEqual(new Uint8Array(scalar.buffer));
      const absSum = matmul(Float64Array.from(x, Math.abs), Float64Array.from(wr, Math.abs), { M, N, K, transB: true });
      const tol = 2 * sumTolerance(K, maxAbs(absSum)) + (N + 4) * F32_EPS;
      expectClose('w (vec4)', vec4, routerForward(x, wr, M, K, N, mask ?? []), { abs: tol });
      for (const t of [tx, twr, out.scalar, out.vec4]) t.destroy();
    });
  }

  it('refuses the vec4 variant when K is not a multiple of 4', async () => {
    const ctx = await testGpu();
    const [M, K, N] = [2, 6, 3];
    const tx = createTensor(ctx, 'x', [M, K]);
    const twr = createTensor(ctx, 'Wr', [N, K]);
    const tw = createTensor(ctx, 'w', [M, N]);
    expect(() => routerForwardOp(ctx, { x: tx, wr: twr, w: tw, M, K, N, variant: 'vec4' })).toThrow(/router_forward: the vec4 variant needs K % 4 == 0, got K = 6/);
    for (const t of [tx, twr, tw]) t.destroy();
  });
});
