import { describe, expect, it } from 'vitest';
import { dropoutKey, dropoutKeep, dropoutScale, dropoutThreshold } from '../../reference/dropout';
import { contiguousGroups, lbcBackward, lbcBoost, lbcFloat32Error, lbcForward, officialGroups } from '../../reference/lbc';
import {
  expertDownBackwardInput,
  expertDownBackwardWeight,
  expertDownForward,
  loramoeBackward,
  loramoeForward,
  type LoramoeConfig,
} from '../../reference/loramoe';
import { matmul, type RefMatmulArgs } from '../../reference/matmul';
import { expectClose, F32_EPS, maxAbs, sumTolerance } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import { runOps, type Op } from '../op';
import { createTensor, readTensor, type Tensor } from '../tensor';
import { lbcBackwardOp, lbcImportanceOp, lbcLossOp } from './lbc';
import {
  expertChunk,
  expertDownBackwardInputOp,
  expertDownBackwardWeightOp,
  expertDownForwardOp,
  gateBackwardOp,
  routerBackwardOp,
  routerForwardOp,
  setDropout,
} from './loramoe';
import { matmulOp } from './matmul';

const u = F32_EPS;

interface Case {
  name: string;
  M: number;
  K: number;
  Nout: number;
  N: number;
  R: number;
  routed: boolean;
  /** LBC (routed cases): B sequences of T tokens, one data type per sequence, expert groups, padding. */
  lbc?: { B: number; T: number; types: number[]; groups: number[][]; valid: number[] };
}

const pad = (B: number, T: number, isPad: (b: number, t: number) => boolean) =>
  Array.from({ length: B * T }, (_, m) => (isPad(Math.floor(m / T), m % T) ? 0 : 1));

// Ragged everywhere: R = 3 (one partial chunk of 4), R = 4 (one full), R = 6 (full + partial), R = 5
// unrouted; M = 70 spans two workgroups of the row kernels.
const CASES: Case[] = [
  {
    name: 'M=7 K=13 Nout=11 N=4 R=3 official',
    M: 7, K: 13, Nout: 11, N: 4, R: 3, routed: true,
    lbc: { B: 1, T: 7, types: [1], groups: officialGroups(4), valid: pad(1, 7, (_, t) => t >= 5) },
  },
  {
    name: 'M=9 K=13 Nout=11 N=8 R=4 four groups',
    M: 9, K: 13, Nout: 11, N: 8, R: 4, routed: true,
    lbc: { B: 3, T: 3, types: [0, 3, 2], groups: contiguousGroups(8, 4), valid: pad(3, 3, (b, t) => b === 1 && t === 2) },
  },
  {
    name: 'M=70 K=9 Nout=5 N=2 R=6 official',
    M: 70, K: 9, Nout: 5, N: 2, R: 6, routed: true,
    lbc: { B: 7, T: 10, types: [0, 1, 1, 0, 1, 0, 0], groups: officialGroups(2), valid: pad(7, 10, (b, t) => t >= 10 - b) },
  },
  { name: 'M=7 K=13 Nout=11 plain LoRA N=1 R=5', M: 7, K: 13, Nout: 11, N: 1, R: 5, routed: false },
];

/**
 * First-order bounds on the float32 error of every GPU output, propagated op by op through the
 * schedule. Inputs are float32 values both sides read exactly. Rules: a sum of n products whose
 * absolute values total S (taken from the data: the largest row of |a|·|b|) carries at most
 * sumTolerance(n, S) = 2 n u S of its own rounding, plus the propagated input errors (err(a) times
 * the largest sum of |b| it meets); products and divisions add a few u relative. Softmax moves each
 * w_i by at most w_i * e_rel with e_rel = 2 * err(logits) + (N + 4) u (|dw_i| <= w_i (|dl_i| +
 * sum_k w_k |dl_k|), then exp, the sum and the division), so sums weighted by w gain e_rel, not N e_rel.
 */
function bounds(c: Case, p: number, t: Record<string, ArrayLike<number>>, lbcErr: (errQ: number) => { loss: number; dZ: number }) {
  const { M, K, Nout, N, R } = c;
  const NR = N * R;
  const inv = dropoutScale(p);
  const abs = (a: ArrayLike<number>) => Float64Array.from(a, Math.abs);
  const ones = (n: number) => new Float64Array(n).fill(1);
  // Largest sum of |products| over the outputs of op(a)·op(b).
  const S = (a: ArrayLike<number>, b: ArrayLike<number>, args: RefMatmulArgs) => maxAbs(matmul(abs(a), abs(b), args));
  const scale = Math.abs(t.scale[0]);
  const mh = maxAbs(t.h), mg = maxAbs(t.g), mdG = maxAbs(t.dG), mdh = maxAbs(t.dh);
  // forward
  const eLogit = c.routed ? sumTolerance(K, S(t.x, t.Wr, { M, N, K, transB: true })) : 0;
  const eRelW = c.routed ? 2 * eLogit + (N + 4) * u : 0;
  const eW = eRelW; // w <= 1
  const eH = sumTolerance(K + 2, inv * S(t.x, t.A, { M, N: NR, K, transB: true }));
  const eG = scale * (eW * mh + eH) + 3 * u * mg;
  const eY =
    sumTolerance(K + NR + 1, S(t.x, t.W0, { M, N: Nout, K, transB: true }) + S(t.g, t.Bcat, { M, N: Nout, K: NR, transB: true })) +
    eG * S(ones(NR), t.Bcat, { M: 1, N: Nout, K: NR, transB: true });
  // backward
  const eDG = sumTolerance(Nout, S(t.dY, t.Bcat, { M, N: NR, K: Nout }));
  const eDBcat =
    sumTolerance(M + 1, S(t.dY, t.g, { M: Nout, N: NR, K: M, transA: true }) + maxAbs(t.dBcat0)) +
    eG * S(t.dY, ones(M), { M: Nout, N: 1, K: M, transA: true });
  const eDh = scale * (eW * mdG + eDG) + 3 * u * mdh;
  // LBC: Q sums T weights (each off by eW); dw gets I * dZ (I <= 1 + delta < 2).
  const errQ = c.lbc ? sumTolerance(c.lbc.T, c.lbc.T) + c.lbc.T * eW : 0;
  const lb = c.lbc ? lbcErr(errQ) : { loss: 0, dZ: 0 };
  const mdw = c.routed ? maxAbs(t.dw) : 0;
  const eDw = c.routed ? scale * (sumTolerance(R, R * mdG * mh) + R * (eDG * mh + mdG * eH)) + 2 * lb.dZ + 3 * u * mdw : 0;
  // dlogits = w (dw - s), s = sum_k w_k dw_k: |s| <= max|dw|, err(s) <= err(dw) + e_rel max|dw| + rounding.
  const eS = eDw + eRelW * mdw + sumTolerance(N, mdw);
  const eDl = c.routed ? eW * 2 * mdw + eDw + eS + 4 * u * mdw : 0;
  const eDWr = c.routed
    ? sumTolerance(M + 1, S(t.dlogits, t.x, { M: N, N: K, K: M, transA: true }) + maxAbs(t.dWr0)) + eDl * S(ones(M), t.x, { M: 1, N: K, K: M })
    : 0;
  const dxMag = maxAbs(t.dx);
  const eDx =
    sumTolerance(Nout, S(t.dY, t.W0, { M, N: K, K: Nout })) +
    (c.routed ? sumTolerance(N + 1, S(t.dlogits, t.Wr, { M, N: K, K: N }) + dxMag) + eDl * S(ones(N), t.Wr, { M: 1, N: K, K: N }) : 0) +
    sumTolerance(NR + 2, inv * S(t.dh, t.A, { M, N: K, K: NR }) + dxMag) + eDh * inv * S(ones(NR), t.A, { M: 1, N: K, K: NR });
  const eDA =
    sumTolerance(M + 2, inv * S(t.dh, t.x, { M: NR, N: K, K: M, transA: true }) + maxAbs(t.dA0)) +
    eDh * inv * S(ones(M), t.x, { M: 1, N: K, K: M });
  return { eW, eH, eG, eY, eDG, eDBcat, eDh, eDw, eDl, eDWr, eDx, eDA, lossErr: lb.loss };
}

describe('LoRAMoE layer: whole forward and backward schedule on the GPU vs reference', () => {
  for (const c of CASES) {
    for (const p of [0, 0.25]) {
      it(`${c.name} p=${p}`, async () => {
        const ctx = await testGpu();
        const { M, K, Nout, N, R, routed } = c;
        const NR = N * R;
        const scale = 2.5;
        const seed = 0x9e3779b9 + M;
        const stream = 3;
        const cfg: LoramoeConfig = { M, K, Nout, N, R, scale, p, seed, stream, routed };
        const rng = new Rng(M * 7919 + N * 31 + R + p * 100);
        const x = rng.f32Array(M * K);
        const W0 = rng.f32Array(Nout * K);
        const Wr = rng.f32Array(N * K, -1.5, 1.5); // routing far from uniform
        const A = rng.f32Array(NR * K);
        const Bcat = rng.f32Array(Nout * NR); // non-zero: a zero B would hide bugs
        const dY = rng.f32Array(M * Nout);
        const dBcat0 = rng.f32Array(Nout * NR);
        const dWr0 = rng.f32Array(N * K);
        const dA0 = rng.f32Array(NR * K);
        const beta = 0.4;
        const boost = c.lbc ? lbcBoost(c.lbc.types, c.lbc.groups, N, 0.2) : null;

        const T = (name: string, shape: number[], data?: ArrayLike<number>) =>
          // Output buffers start with stale garbage: an overwrite that accumulates is caught.
          createTensor(ctx, name, shape, 'f32', data ?? rng.f32Array(shape.reduce((a, b) => a * b, 1), 5, 9));
        const tx = T('x', [M, K], x), tW0 = T('W0', [Nout, K], W0), tWr = T('Wr', [N, K], Wr);
        const tA = T('A', [NR, K], A), tB = T('Bcat', [Nout, NR], Bcat), tdY = T('dY', [M, Nout], dY);
        const ty = T('y', [M, Nout]), tw = T('w', [M, N]), th = T('h', [M, NR]), tg = T('g', [M, NR]);
        const tdG = T('dG', [M, NR]), tdh = T('dh', [M, NR]), tdw = T('dw', [M, N]), tdl = T('dlogits', [M, N]);
        const tdx = T('dx', [M, K]), tdB = T('dBcat', [Nout, NR], dBcat0), tdWr = T('dWr', [N, K], dWr0), tdA = T('dA', [NR, K], dA0);
        const lossIndex = 1;
        const tLoss = T('loss', [3], [7, 7, 7]);
        let lbcT: { valid: Tensor<'u32'>; boost: Tensor; q: Tensor; dZ: Tensor } | null = null;
        if (c.lbc && boost) {
          lbcT = {
            valid: createTensor(ctx, 'valid', [M], 'u32', c.lbc.valid),
            boost: T('boost', [c.lbc.B, N], boost),
            q: T('Q', [c.lbc.B, N]),
            dZ: T('dZ', [c.lbc.B, N]),
          };
        }
        const drop = { p, seed, stream };
        const ops: Op[] = [];
        // forward
        ops.push(matmulOp(ctx, { a: tx, b: tW0, c: ty, M, N: Nout, K, transB: true }));
        if (routed) ops.push(routerForwardOp(ctx, { x: tx, wr: tWr, w: tw, M, K, N }));
        ops.push(expertDownForwardOp(ctx, { x: tx, a: tA, w: routed ? tw : undefined, h: th, g: tg, M, K, N, R, scale, routed, ...drop }));
        ops.push(matmulOp(ctx, { a: tg, b: tB, c: ty, M, N: Nout, K: NR, transB: true, beta: 1 }));
        if (lbcT && c.lbc) {
          const d = { B: c.lbc.B, T: c.lbc.T, N };
          ops.push(lbcImportanceOp(ctx, { w: tw, valid: lbcT.valid, q: lbcT.q, ...d }));
          ops.push(lbcLossOp(ctx, { q: lbcT.q, boost: lbcT.boost, loss: tLoss, lossIndex, dZ: lbcT.dZ, beta, ...d }));
        }
        // backward
        ops.push(matmulOp(ctx, { a: tdY, b: tB, c: tdG, M, N: NR, K: Nout }));
        ops.push(matmulOp(ctx, { a: tdY, b: tg, c: tdB, M: Nout, N: NR, K: M, transA: true, beta: 1 }));
        ops.push(gateBackwardOp(ctx, { dG: tdG, h: th, w: routed ? tw : undefined, dh: tdh, dw: routed ? tdw : undefined, M, N, R, scale, routed }));
        if (lbcT && c.lbc) {
          ops.push(lbcBackwardOp(ctx, { valid: lbcT.valid, boost: lbcT.boost, dZ: lbcT.dZ, dw: tdw, B: c.lbc.B, T: c.lbc.T, N }));
        }
        if (routed) {
          ops.push(routerBackwardOp(ctx, { w: tw, dw: tdw, dLogits: tdl, M, N }));
          ops.push(matmulOp(ctx, { a: tdl, b: tx, c: tdWr, M: N, N: K, K: M, transA: true, beta: 1 }));
        }
        ops.push(matmulOp(ctx, { a: tdY, b: tW0, c: tdx, M, N: K, K: Nout }));
        if (routed) ops.push(matmulOp(ctx, { a: tdl, b: tWr, c: tdx, M, N: K, K: N, beta: 1 }));
        ops.push(expertDownBackwardInputOp(ctx, { dh: tdh, a: tA, dx: tdx, M, K, N, R, ...drop }));
        ops.push(expertDownBackwardWeightOp(ctx, { dh: tdh, x: tx, dA: tdA, M, K, N, R, ...drop }));
        await withValidation(ctx, () => runOps(ctx, ops));

        // reference
        const fwd = loramoeForward(x, W0, routed ? Wr : null, A, Bcat, cfg);
        let lbcRef: ReturnType<typeof lbcForward> | null = null;
        let dwExtra: Float64Array | undefined;
        const lbcDims = c.lbc ? { B: c.lbc.B, T: c.lbc.T, N, beta } : null;
        if (c.lbc && boost && lbcDims) {
          lbcRef = lbcForward(fwd.w, c.lbc.valid, boost, lbcDims);
          dwExtra = lbcBackward(1, c.lbc.valid, boost, lbcRef, lbcDims).dw;
        }
        const grads = loramoeBackward(dY, x, W0, routed ? Wr : null, A, Bcat, fwd, cfg, dwExtra);
        const plus = (a: Float64Array, b: ArrayLike<number>) => a.map((v, i) => v + b[i]);
        const wantDBcat = plus(grads.dBcat, dBcat0);
        const wantDA = plus(grads.dA, dA0);
        const wantDWr = grads.dWr ? plus(grads.dWr, dWr0) : null;

        const e = bounds(
          c,
          p,
          {
            x, W0, Wr, A, Bcat, dY, dBcat0, dWr0, dA0, scale: [scale],
            h: fwd.h, g: fwd.g, dG: grads.dG, dh: grads.dh, dBcat: wantDBcat, dA: wantDA, dx: grads.dx,
            dw: grads.dw ?? [], dlogits: grads.dlogits ?? [], dWr: wantDWr ?? [],
          },
          (errQ) => (lbcRef && boost && lbcDims ? lbcFloat32Error(lbcRef, boost, lbcDims, errQ) : { loss: 0, dZ: 0 }),
        );
        const tag = `${c.name} p=${p}`;
        expectClose(`${tag} y`, await readTensor(ctx, ty), fwd.y, { abs: e.eY });
        if (routed) expectClose(`${tag} w`, await readTensor(ctx, tw), fwd.w, { abs: e.eW });
        expectClose(`${tag} h`, await readTensor(ctx, th), fwd.h, { abs: e.eH });
        expectClose(`${tag} g`, await readTensor(ctx, tg), fwd.g, { abs: e.eG });
        expectClose(`${tag} dBcat`, await readTensor(ctx, tdB), wantDBcat, { abs: e.eDBcat });
        expectClose(`${tag} dh`, await readTensor(ctx, tdh), grads.dh, { abs: e.eDh });
        if (routed && grads.dw && grads.dlogits && wantDWr) {
          expectClose(`${tag} dw (gate + LBC)`, await readTensor(ctx, tdw), grads.dw, { abs: e.eDw });
          expectClose(`${tag} dlogits`, await readTensor(ctx, tdl), grads.dlogits, { abs: e.eDl });
          expectClose(`${tag} dWr`, await readTensor(ctx, tdWr), wantDWr, { abs: e.eDWr });
        }
        if (lbcRef) {
          const loss = await readTensor(ctx, tLoss);
          expectClose(`${tag} LBC loss`, [loss[lossIndex]], [lbcRef.loss], { abs: e.lossErr });
          expect([loss[0], loss[2]]).toEqual([7, 7]);
        }
        expectClose(`${tag} dx`, await readTensor(ctx, tdx), grads.dx, { abs: e.eDx });
        expectClose(`${tag} dA`, await readTensor(ctx, tdA), wantDA, { abs: e.eDA });
        if (!routed) {
          // Plain LoRA: the router's buffers are never touched.
          expect(Array.from(await readTensor(ctx, tWr))).toEqual(Array.from(Wr));
          expect(Array.from(await readTensor(ctx, tdWr))).toEqual(Array.from(dWr0));
        }
      });
    }
  }
});

/**
 * The three register-blocked expert kernels alone against the reference, over every rank 1..16 and
 * expert count 1..8 with ragged sizes: M and K of 1, 3, 5, 4k+1, 4k+3 and multiples of 8 (the
 * blocks are 8 rows by 8 columns or CHUNK rank rows, the forward's k loop steps by 4), one model-
 * sized layer (two rank chunks per expert, K = 576) and the demo vocabulary's 841 as K. Dropout off,
 * at the training default p = 0.05 and at 0.3. Bounds as in `bounds` above, with the inputs exact:
 * h carries sumTolerance(K + 2, s S(x, Aᵀ)) (s = 1/(1-p), S the largest sum of |products|), g that
 * times scale * w plus 3 rounding units, and the accumulated dx, dA sumTolerance(n + 2, s S + |start|).
 */
describe('expert kernels (blocked, with dropout) vs reference over ranks 1..16, experts 1..8, ragged sizes', () => {
  const Ms = [1, 3, 9, 17, 70, 5, 24, 11];
  const Ks = [1, 3, 5, 13, 17, 31, 8, 33, 19, 4];
  const cases: Array<{ M: number; K: number; N: number; R: number; routed: boolean }> = [];
  for (let R = 1; R <= 16; R++) {
    // Every N in 1..8 twice over the 16 ranks; N = 1 once as plain LoRA (no router), once routed.
    const N = ((R * 5) % 8) + 1;
    cases.push({ M: Ms[R % Ms.length], K: Ks[R % Ks.length], N, R, routed: !(N === 1 && R === 8) });
  }
  cases.push({ M: 64, K: 576, N: 8, R: 16, routed: true }); // SmolLM2 q/k/v/gate/up input size
  cases.push({ M: 21, K: 841, N: 3, R: 4, routed: true });

  for (const c of cases) {
    for (const p of [0, 0.05, 0.3]) {
      const { M, K, N, R, routed } = c;
      it(`M=${M} K=${K} N=${N} R=${R}${routed ? '' : ' plain LoRA'} p=${p} (CHUNK ${expertChunk(R)})`, async () => {
        const ctx = await testGpu();
        const NR = N * R;
        const scale = 1.75;
        const cfg: LoramoeConfig = { M, K, Nout: 1, N, R, scale, p, seed: (0xdeadbeef ^ (M * 131 + K)) >>> 0, stream: R, routed };
        const rng = new Rng(M * 65537 + K * 257 + N * 17 + R + p * 1000);
        const x = rng.f32Array(M * K);
        const A = rng.f32Array(NR * K);
        const w = rng.f32Array(M * N, 0, 1);
        const dh = rng.f32Array(M * NR);
        const dx0 = rng.f32Array(M * K);
        const dA0 = rng.f32Array(NR * K);
        const T = (name: string, shape: number[], data?: Float32Array) =>
          createTensor(ctx, name, shape, 'f32', data ?? rng.f32Array(shape.reduce((a, b) => a * b, 1), 5, 9));
        const tx = T('x', [M, K], x), tA = T('A', [NR, K], A), tw = T('w', [M, N], w), tdh = T('dh', [M, NR], dh);
        const th = T('h', [M, NR]), tg = T('g', [M, NR]), tdx = T('dx', [M, K], dx0), tdA = T('dA', [NR, K], dA0);
        const drop = { p, seed: cfg.seed, stream: cfg.stream };
        await withValidation(ctx, () =>
          runOps(ctx, [
            expertDownForwardOp(ctx, { x: tx, a: tA, w: routed ? tw : undefined, h: th, g: tg, M, K, N, R, scale, routed, ...drop }),
            expertDownBackwardInputOp(ctx, { dh: tdh, a: tA, dx: tdx, M, K, N, R, ...drop }),
            expertDownBackwardWeightOp(ctx, { dh: tdh, x: tx, dA: tdA, M, K, N, R, ...drop }),
          ]),
        );
        const want = expertDownForward(x, A, routed ? w : null, cfg);
        const wantDx = expertDownBackwardInput(dh, A, cfg).map((v, i) => v + dx0[i]);
        const wantDA = expertDownBackwardWeight(dh, x, cfg).map((v, i) => v + dA0[i]);

        const inv = dropoutScale(p);
        const abs = (a: ArrayLike<number>) => Float64Array.from(a, Math.abs);
        const S = (a: ArrayLike<number>, b: ArrayLike<number>, args: RefMatmulArgs) => maxAbs(matmul(abs(a), abs(b), args));
        const eH = sumTolerance(K + 2, inv * S(x, A, { M, N: NR, K, transB: true }));
        const eG = scale * eH + 3 * u * maxAbs(want.g); // |w| <= 1
        const eDx = sumTolerance(NR + 2, inv * S(dh, A, { M, N: K, K: NR }) + maxAbs(dx0));
        const eDA = sumTolerance(M + 2, inv * S(dh, x, { M: NR, N: K, K: M, transA: true }) + maxAbs(dA0));
        const tag = `M=${M} K=${K} N=${N} R=${R} p=${p}`;
        expectClose(`${tag} h`, await readTensor(ctx, th), want.h, { abs: eH });
        expectClose(`${tag} g`, await readTensor(ctx, tg), want.g, { abs: eG });
        expectClose(`${tag} dx`, await readTensor(ctx, tdx), wantDx, { abs: eDx });
        expectClose(`${tag} dA`, await readTensor(ctx, tdA), wantDA, { abs: eDA });
        for (const t of [tx, tA, tw, tdh, th, tg, tdx, tdA]) t.destroy();
      });
    }
  }
});

describe('dropout mask on the GPU equals the CPU mask bit for bit', () => {
  // Each kernel's sum is made to encode the mask bits exactly: with A ≡ 1, x ≡ 1 and powers of two
  // as the other factor, every partial sum is an integer below 2^24 (exact in float32), and the
  // final product by f32(1/(1-p)) is undone by one division and rounding. Every rank row of an
  // expert sees the same mask, so with R > 1 each one must decode to the same bits (the input
  // gradient sums R equal terms per expert: its integer is R times the pattern). Shapes: rank 1
  // (blocks of CHUNK 4 with clamped rank rows), 6 (one chunk of 8, partial) and 16 (two chunks per
  // expert); K = 17 and 19 (4k+1, 4k+3: the forward's scalar tail, a partial 8-column block).
  const decode = (v: number, p: number) => Math.round(v / Math.fround(dropoutScale(p)));
  const cpuBits = (seed: number, stream: number, p: number, m: number, e: number, k: number, N: number, K: number) =>
    dropoutKeep(dropoutKey(seed, stream), dropoutThreshold(p), m, e, k, N, K) ? 1 : 0;

  const shapes: Array<[number, number, number, number]> = [[11, 5, 17, 1], [13, 3, 19, 6], [9, 2, 17, 16]];
  for (const p of [0.05, 0.5, 0.3]) {
    for (const [M, N, K, R] of shapes) {
      it(`p=${p} M=${M} N=${N} K=${K} R=${R}: forward, input-gradient and weight-gradient kernels, and setDropout`, async () => {
        const ctx = await testGpu();
        // K, M <= 20 so sums of 2^k and 2^m stay exact; R * 2^N as well.
        const NR = N * R;
        const seed = 123456789;
        const stream = 7;
        const ones = (n: number) => new Float32Array(n).fill(1);
        const pow2 = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => 2 ** f(i));
        // forward: A[j, k] = 2^k, x ≡ 1  ->  h[m, j] = s * sum_k 2^k keep(m, i(j), k)
        const tx = createTensor(ctx, 'x', [M, K], 'f32', ones(M * K));
        const tA = createTensor(ctx, 'A', [NR, K], 'f32', pow2(NR * K, (i) => i % K));
        const tw = createTensor(ctx, 'w', [M, N], 'f32', ones(M * N));
        const th = createTensor(ctx, 'h', [M, NR]);
        const tg = createTensor(ctx, 'g', [M, NR]);
        // input grad: dh[m, j] = 2^i(j), A ≡ 1  ->  dx[m, k] = s * R * sum_i 2^i keep(m, i, k)
        const tdh = createTensor(ctx, 'dh', [M, NR], 'f32', pow2(M * NR, (i) => Math.floor((i % NR) / R)));
        const tA1 = createTensor(ctx, 'A1', [NR, K], 'f32', ones(NR * K));
        const tdx = createTensor(ctx, 'dx', [M, K]);
        // weight grad: dh[m, j] = 2^m, x ≡ 1  ->  dA[j, k] = s * sum_m 2^m keep(m, i(j), k)
        const tdhm = createTensor(ctx, 'dhm', [M, NR], 'f32', pow2(M * NR, (i) => Math.floor(i / NR)));
        const tdA = createTensor(ctx, 'dA', [NR, K]);
        const drop = { p, seed, stream };
        const ops = [
          expertDownForwardOp(ctx, { x: tx, a: tA, w: tw, h: th, g: tg, M, K, N, R, scale: 1, ...drop }),
          expertDownBackwardInputOp(ctx, { dh: tdh, a: tA1, dx: tdx, M, K, N, R, ...drop }),
          expertDownBackwardWeightOp(ctx, { dh: tdhm, x: tx, dA: tdA, M, K, N, R, ...drop }),
        ];
        const check = async (s: number) => {
          const zero = (t: Tensor) => createTensor(ctx, 'zero', t.shape).buffer;
          const enc = ctx.device.createCommandEncoder();
          enc.copyBufferToBuffer(zero(tdx), 0, tdx.buffer, 0, tdx.bytes);
          enc.copyBufferToBuffer(zero(tdA), 0, tdA.buffer, 0, tdA.bytes);
          ctx.device.queue.submit([enc.finish()]);
          await withValidation(ctx, () => runOps(ctx, ops));
          const [h, dx, dA] = [await readTensor(ctx, th), await readTensor(ctx, tdx), await readTensor(ctx, tdA)];
          let mismatches = 0;
          let dropped = 0;
          for (let m = 0; m < M; m++) {
            for (let i = 0; i < N; i++) {
              for (let k = 0; k < K; k++) {
                const want = cpuBits(s, stream, p, m, i, k, N, K);
                dropped += 1 - want;
                if (((decode(dx[m * K + k], p) / R) >> i) % 2 !== want) mismatches++;
                for (let j = i * R; j < (i + 1) * R; j++) {
                  if (((decode(h[m * NR + j], p) >> k) & 1) !== want) mismatches++;
                  if (((decode(dA[j * K + k], p) >> m) & 1) !== want) mismatches++;
                }
              }
            }
          }
          console.log(`[check] mask p=${p} M=${M} N=${N} K=${K} R=${R} seed=${s}: ${dropped} of ${M * N * K} dropped, ${mismatches} mismatching bits`);
          expect(mismatches).toBe(0);
          expect(dropped).toBeGreaterThan(0);
        };
        await check(seed);
        // A new step: only the seed changes, in place.
        setDropout(ctx, ops, { seed: seed + 1 });
        await check(seed + 1);
      });
    }
  }

  it('setDropout can turn dropout off for evaluation, and refuses other ops', async () => {
    const ctx = await testGpu();
    const [M, N, K, R] = [3, 2, 5, 2];
    const rng = new Rng(5);
    const x = rng.f32Array(M * K), A = rng.f32Array(N * R * K), w = rng.f32Array(M * N, 0, 1);
    const tx = createTensor(ctx, 'x', [M, K], 'f32', x);
    const tA = createTensor(ctx, 'A', [N * R, K], 'f32', A);
    const tw = createTensor(ctx, 'w', [M, N], 'f32', w);
    const th = createTensor(ctx, 'h', [M, N * R]);
    const tg = createTensor(ctx, 'g', [M, N * R]);
    const op = expertDownForwardOp(ctx, { x: tx, a: tA, w: tw, h: th, g: tg, M, K, N, R, scale: 1, p: 0.5, seed: 1 });
    setDropout(ctx, [op], { seed: 2, p: 0 });
    runOps(ctx, [op]);
    const h = await readTensor(ctx, th);
    const want = new Float64Array(M * N * R);
    for (let m = 0; m < M; m++) for (let j = 0; j < N * R; j++) for (let k = 0; k < K; k++) want[m * N * R + j] += A[j * K + k] * x[m * K + k];
    expectClose('h with dropout off', h, want, { abs: sumTolerance(K, K) });
    const router = routerForwardOp(ctx, { x: tx, wr: tA, w: tw, M, K, N });
    expect(() => setDropout(ctx, [router], { seed: 3 })).toThrow(/not a loramoe dropout op/);
    expect(() => setDropout(ctx, [op], { seed: -1 })).toThrow(/u32/);
    expect(() => setDropout(ctx, [op], { seed: 1, p: 1 })).toThrow(/\[0, 1\)/);
  });
});

describe('loramoe dispatchers reject bad arguments with clear errors', () => {
  it('sizes, modes, aliasing, p', async () => {
    const ctx = await testGpu();
    const [M, K, N, R] = [4, 6, 3, 2];
    const t = (name: string, n: number) => createTensor(ctx, name, [n]);
    const x = t('x', M * K), wr = t('Wr', N * K), w = t('w', M * N), a = t('A', N * R * K);
    const h = t('h', M * N * R), g = t('g', M * N * R), small = t('small', 5);
    const dims = { M, K, N, R, scale: 1 };
    expect(() => routerForwardOp(ctx, { x, wr: small, w, M, K, N })).toThrow(/router_forward: Wr \(small\) has 5 values, needs N\*K = 18/);
    expect(() => expertDownForwardOp(ctx, { x, a, w, h: small, g, ...dims })).toThrow(/expert_down_forward: h \(small\) has 5 values, needs M\*N\*R = 24/);
    expect(() => expertDownForwardOp(ctx, { x, a, h, g, ...dims })).toThrow(/routed mode needs the router weights/);
    expect(() => expertDownForwardOp(ctx, { x, a, w, h, g, ...dims, routed: false })).toThrow(/plain-LoRA mode \(routed: false\) needs N = 1/);
    expect(() => expertDownForwardOp(ctx, { x, a, w, h, g: h, ...dims })).toThrow(/h and g are the same tensor/);
    expect(() => expertDownForwardOp(ctx, { x, a, w, h, g, ...dims, p: 1 })).toThrow(/\[0, 1\)/);
    expect(() => expertDownForwardOp(ctx, { x, a, w, h, g, ...dims, M: 0 })).toThrow(/M must be a positive integer/);
    expect(() => gateBackwardOp(ctx, { dG: g, h, dh: small, ...dims })).toThrow(/gate_backward: dh \(small\)/);
    expect(() => gateBackwardOp(ctx, { dG: g, h, dh: h, w, dw: w, ...dims })).toThrow(/dh and h are the same tensor/);
    expect(() => routerBackwardOp(ctx, { w, dw: small, dLogits: x, M, N })).toThrow(/router_backward: dw \(small\) has 5 values, needs M\*N = 12/);
    expect(() => expertDownBackwardInputOp(ctx, { dh: h, a: small, dx: x, M, K, N, R })).toThrow(/expert_down_backward_input: A \(small\) has 5 values, needs N\*R\*K = 36/);
    expect(() => expertDownBackwardWeightOp(ctx, { dh: h, x, dA: small, M, K, N, R })).toThrow(/expert_down_backward_weight: dA \(small\) has 5 values, needs N\*R\*K = 36/);
    const u32 = createTensor(ctx, 'ids', [M * K], 'u32');
    expect(() => routerForwardOp(ctx, { x: u32 as never, wr, w, M, K, N })).toThrow(/x \(ids\) must be f32/);
  });
});
