import { describe, expect, it } from 'vitest';
import { attentionBackward, attentionForward } from '../../reference/attention';
import { expectClose, F32_EPS, sumTolerance } from '../../test/compare';
import { testGpu, withValidation } from '../../test/gpu';
import { Rng } from '../../util/random';
import type { GpuContext } from '../gpu';
import { runOps } from '../op';
import { createTensor, readTensor } from '../tensor';
import {
  ATTENTION_MAX_KEYS,
  attentionBackwardDeltaOp,
  attentionBackwardKeyValueOp,
  attentionBackwardOps,
  attentionBackwardQueryOp,
  attentionForwardOp,
  attentionRowsFit,
  chooseAttentionBlock,
  chooseAttentionVariant,
  type AttentionDims,
  type AttentionVariant,
} from './attention';

interface Shape {
  B: number;
  T: number;
  H: number;
  KVH: number;
  D: number;
}

// Grouped heads, one key/value head, H = KVH with a ragged D, T past the workgroup size (64: key
// strides and backward chunks wrap, and the rows kernels' invocations span two workgroups), D past
// the workgroup size (the d stride wraps), the demo model's head (D = 24, 4 heads on 2), heads
// that span two and all four of the rows kernels' register chunks of 32 values (36, 100; D = 128
// is left out: it only compiles longer). Shapes with D % 4 == 0 run all three variants; the others
// (D = 5, odd) only the workgroup one, which the chooser falls back to.
const SHAPES: Shape[] = [
  { B: 2, T: 5, H: 4, KVH: 2, D: 8 },
  { B: 1, T: 13, H: 3, KVH: 1, D: 16 },
  { B: 2, T: 7, H: 2, KVH: 2, D: 5 },
  { B: 1, T: 70, H: 2, KVH: 1, D: 4 },
  { B: 1, T: 3, H: 2, KVH: 2, D: 70 },
  { B: 2, T: 20, H: 4, KVH: 2, D: 24 },
  { B: 1, T: 6, H: 2, KVH: 1, D: 36 },
  { B: 1, T: 5, H: 2, KVH: 2, D: 100 },
  { B: 1, T: 21, H: 6, KVH: 2, D: 64 },
  { B: 2, T: 9, H: 3, KVH: 3, D: 12 },
];

/**
 * The blocked kernels hold 8 query rows (or key rows) per invocation. Their pipelines are by far the
 * slowest to compile on a software adapter (10-20 s each), and a pipeline is one per head size
 * (HEAD_D4) and block shape (ROWS_H x ROWS_T, ROWS_K), not per T, B or group: so they are checked on
 * two pipelines' worth of shapes. D = 8 (two vec4s) with blocks of 8 tokens of one head, as every
 * training shape with T >= 8 has: T not a multiple of 8 (13, 70, 9: a last block with clamped,
 * unstored rows), T past the workgroup size (70, where the chooser picks blocked), GQA groups
 * G = 1, 2, 3 (G = 1: blocks of one head), B = 2. And D = 36 (the second register chunk of 32
 * values) with T = 5 < 8, a block of 5 tokens, G = 2 and B = 2. Block shapes of several heads are
 * the decode steps' (below).
 */
const BLOCKED_SHAPES: Shape[] = [
  { B: 1, T: 13, H: 3, KVH: 1, D: 8 },
  { B: 1, T: 70, H: 2, KVH: 1, D: 8 },
  { B: 2, T: 9, H: 3, KVH: 3, D: 8 },
  { B: 2, T: 5, H: 4, KVH: 2, D: 36 },
];

/** Variants checked per shape: the workgroup kernel on every shape, rows where the head fits, blocked on BLOCKED_SHAPES. */
function variantsFor(s: Shape): AttentionVariant[] {
  if (!attentionRowsFit(s.D)) return ['workgroup'];
  return BLOCKED_SHAPES.includes(s) ? ['blocked'] : ['workgroup', 'rows'];
}

const CHECKED: Shape[] = [...SHAPES, ...BLOCKED_SHAPES];

const u = F32_EPS;

/**
 * Float32 error budget for inputs in [-1, 1] (u = 2^-24), worst case:
 * - a score S = scale * q·k sums D products of magnitude <= 1: |S| <= scale*D, error dS <= scale *
 *   sumTolerance(D + 1, D) (the +1 for the scaling).
 * - exp(x) carries 3 + 2|x| ulps (WGSL's stated accuracy); here |x| = |S - max| or |S - L| <=
 *   2 scale D + log(keys), so a probability's relative error is relP = 2 dS + (3 + 2|x|) u.
 */
function budget(s: Shape, keys: number) {
  const scale = 1 / Math.sqrt(s.D);
  const dS = scale * sumTolerance(s.D + 1, s.D);
  const xmax = 2 * scale * s.D + Math.log(keys);
  const relP = 2 * dS + (3 + 2 * xmax) * u;
  return { scale, dS, xmax, relP };
}

/** O = sum p V / sum p with |V| <= 1: numerator and denominator each off by relP and by their sums' rounding. */
function tolO(s: Shape, keys: number): number {
  const { relP } = budget(s, keys);
  return 2 * relP + 2 * sumTolerance(keys, 1) + u;
}

/** L = max + log(sum p): the max's score error, the sum's relative error, log's 2^-21 absolute. */
function tolL(s: Shape, keys: number): number {
  const { dS, relP, xmax } = budget(s, keys);
  return dS + relP + sumTolerance(keys, 1) + 2 ** -21 + 3 * u * xmax;
}

/**
 * Largest sum over the queries of one key's group (all heads h of key/value head kvh, all t that
 * see key s) of P_ts = exp(S_ts - L_t): the weight that multiplies per-term errors in dK and dV
 * (at most G*T; usually a few).
 */
function maxKeyColumnP(s: Shape, q: ArrayLike<number>, k: ArrayLike<number>, l: ArrayLike<number>): number {
  const G = s.H / s.KVH;
  const scale = 1 / Math.sqrt(s.D);
  let worst = 0;
  for (let b = 0; b < s.B; b++)
    for (let kvh = 0; kvh < s.KVH; kvh++)
      for (let key = 0; key < s.T; key++) {
        let sum = 0;
        for (let h = kvh * G; h < (kvh + 1) * G; h++)
          for (let t = key; t < s.T; t++) {
            let dotqk = 0;
            for (let i = 0; i < s.D; i++) dotqk += q[((b * s.T + t) * s.H + h) * s.D + i] * k[((b * s.T + key) * s.KVH + kvh) * s.D + i];
            sum += Math.exp(scale * dotqk - l[(b * s.H + h) * s.T + t]);
          }
        worst = Math.max(worst, sum);
      }
  return worst;
}

/**
 * dS_ts = P (dO·V - Dlt) with |dO·V - Dlt| <= 2D: its error is P (2D relP + 2 sumTolerance(D, D)).
 * dQ sums dS K over keys with sum_s P = 1; dK, dV sum G*T terms weighted by sum P (maxKeyColumnP).
 */
function tolGrad(s: Shape, psum: number, terms: number, withDs: boolean): number {
  const { scale, relP } = budget(s, s.T);
  if (!withDs) return psum * (relP + u) + sumTolerance(terms + 2, psum); // dV: sum P dO, |dO| <= 1
  const perP = 2 * s.D * (relP + u) + 2 * sumTolerance(s.D, s.D);
  return scale * (psum * perP + sumTolerance(terms + 2, psum * 2 * s.D));
}

function nanArray(n: number): Float32Array {
  return new Float32Array(n).fill(NaN);
}

function dimsOf(s: Shape): AttentionDims {
  return { B: s.B, Tq: s.T, Tk: s.T, H: s.H, KVH: s.KVH, D: s.D };
}

function label(s: Shape): string {
  return `B=${s.B} T=${s.T} H=${s.H} KVH=${s.KVH} D=${s.D}`;
}

async function gpuForward(ctx: GpuContext, q: Float32Array, k: Float32Array, v: Float32Array, dims: AttentionDims, variant?: AttentionVariant) {
  const nq = dims.B * dims.Tq * dims.H * dims.D;
  const tq = createTensor(ctx, 'Q', [q.length], 'f32', q);
  const tk = createTensor(ctx, 'K', [k.length], 'f32', k);
  const tv = createTensor(ctx, 'V', [v.length], 'f32', v);
  // NaN-filled outputs: every value must be overwritten.
  const to = createTensor(ctx, 'O', [nq], 'f32', nanArray(nq));
  const tl = createTensor(ctx, 'L', [dims.B * dims.H * dims.Tq], 'f32', nanArray(dims.B * dims.H * dims.Tq));
  await withValidation(ctx, () => runOps(ctx, [attentionForwardOp(ctx, { q: tq, k: tk, v: tv, o: to, l: tl, dims, variant })]));
  const out = { o: await readTensor(ctx, to), l: await readTensor(ctx, tl) };
  for (const t of [tq, tk, tv, to, tl]) t.destroy();
  return out;
}

describe('attention forward kernel vs reference', () => {
  // One test per shape and variant: each variant is its own pipelines to compile, so a test stays
  // small on a software adapter.
  for (const s of CHECKED) {
    for (const variant of variantsFor(s)) {
      it(`${label(s)}, ${variant}${variant === chooseAttentionVariant(dimsOf(s)) ? ' (auto picks it)' : ''}`, async () => {
        expect(chooseAttentionVariant(dimsOf(s))).toBe(attentionRowsFit(s.D) ? (s.T >= 64 ? 'blocked' : 'rows') : 'workgroup');
        const ctx = await testGpu();
        const rng = new Rng(s.B * 1000 + s.T * 100 + s.H * 10 + s.D);
        const q = rng.f32Array(s.B * s.T * s.H * s.D);
        const k = rng.f32Array(s.B * s.T * s.KVH * s.D);
        const v = rng.f32Array(s.B * s.T * s.KVH * s.D);
        const dims = dimsOf(s);
        const want = attentionForward(q, k, v, dims);
        const got = await gpuForward(ctx, q, k, v, dims, variant);
        expectClose(`attention ${variant} O ${label(s)}`, got.o, want.o, { abs: tolO(s, s.T) });
        expectClose(`attention ${variant} L ${label(s)}`, got.l, want.l, { abs: tolL(s, s.T) });
      });
    }
  }

  // Capacity 12 would pick the rows variant (forced here), 300 the workgroup one (with a 512-key
  // workgroup row).
  // Blocked decode steps have Tq < 8 rows per sequence and head, so their blocks take several heads
  // of a group (Tq = 1: G heads; Tq = 3, G = 2: 3 tokens x 2 heads), unlike the full forward's 8
  // tokens of one head.
  const decodeCases: [number, AttentionVariant, Shape][] = [
    [12, 'rows', { B: 2, T: 9, H: 4, KVH: 2, D: 8 }],
    [12, 'workgroup', { B: 2, T: 9, H: 4, KVH: 2, D: 8 }],
    [12, 'blocked', { B: 2, T: 9, H: 4, KVH: 2, D: 8 }],
    [300, 'auto', { B: 2, T: 9, H: 4, KVH: 2, D: 8 }],
  ];
  for (const [Tk, variant, s] of decodeCases) {
    it(`decode steps (Tq=1 and Tq=3, pos0>0, cache capacity Tk=${Tk} > pos0+Tq) match the full forward, ${variant}, ${label(s)}`, async () => {
      const ctx = await testGpu();
      // Tk: cache capacity; rows T.. are NaN and must never be read
      const rng = new Rng(99);
      const q = rng.f32Array(s.B * s.T * s.H * s.D);
      const k = rng.f32Array(s.B * s.T * s.KVH * s.D);
      const v = rng.f32Array(s.B * s.T * s.KVH * s.D);
      const row = s.KVH * s.D;
      const kc = nanArray(s.B * Tk * row);
      const vc = nanArray(s.B * Tk * row);
      for (let b = 0; b < s.B; b++) {
        kc.set(k.subarray(b * s.T * row, (b + 1) * s.T * row), b * Tk * row);
        vc.set(v.subarray(b * s.T * row, (b + 1) * s.T * row), b * Tk * row);
      }
      const full = await gpuForward(ctx, q, k, v, dimsOf(s), variant === 'auto' ? 'workgroup' : variant);
      const qrow = s.H * s.D;
      for (const Tq of [1, 3]) {
        const pos0 = s.T - Tq;
        // Queries at positions pos0 .. T-1 of each sequence.
        const qs = new Float32Array(s.B * Tq * qrow);
        for (let b = 0; b < s.B; b++) qs.set(q.subarray((b * s.T + pos0) * qrow, (b * s.T + s.T) * qrow), b * Tq * qrow);
        const dims: AttentionDims = { B: s.B, Tq, Tk, pos0, H: s.H, KVH: s.KVH, D: s.D };
        if (variant === 'auto') expect(chooseAttentionVariant(dims)).toBe('workgroup');
        // Tq = 3: 3 tokens times the largest divisor of G with 3 * rowsH <= 8 (G = 2: 2, G = 3: 1).
        const G = s.H / s.KVH;
        if (variant === 'blocked') expect(chooseAttentionBlock(dims)).toEqual(Tq === 1 ? { rowsH: G, rowsT: 1 } : { rowsH: G % 2 === 0 ? 2 : 1, rowsT: 3 });
        const step = await gpuForward(ctx, qs, kc, vc, dims, variant);
        const want = attentionForward(qs, kc, vc, dims);
        expectClose(`decode O Tq=${Tq} pos0=${pos0}`, step.o, want.o, { abs: tolO(s, s.T) });
        expectClose(`decode L Tq=${Tq} pos0=${pos0}`, step.l, want.l, { abs: tolL(s, s.T) });
        // Same keys, same reduction order (workgroup and rows: same thread assignment; blocked: the
        // same key chunks, a row's arithmetic independent of its block): bit-identical to the full
        // forward.
        const lastO = new Float32Array(s.B * Tq * qrow);
        const lastL = new Float32Array(s.B * s.H * Tq);
        for (let b = 0; b < s.B; b++) {
          lastO.set(full.o.subarray((b * s.T + pos0) * qrow, (b * s.T + s.T) * qrow), b * Tq * qrow);
          for (let h = 0; h < s.H; h++) {
            const from = (b * s.H + h) * s.T + pos0;
            lastL.set(full.l.subarray(from, from + Tq), (b * s.H + h) * Tq);
          }
        }
        expect(Array.from(step.o)).toEqual(Array.from(lastO));
        expect(Array.from(step.l)).toEqual(Array.from(lastL));
      }
    });
  }
});

describe('attention backward kernels vs reference', () => {
  for (const s of CHECKED) {
    for (const variant of variantsFor(s)) {
      it(`${label(s)}, ${variant}`, async () => {
        const ctx = await testGpu();
        const rng = new Rng(s.B * 1000 + s.T * 100 + s.H * 10 + s.D + 7);
        const nq = s.B * s.T * s.H * s.D;
        const nk = s.B * s.T * s.KVH * s.D;
        const nrow = s.B * s.H * s.T;
        const dims = dimsOf(s);
        const q = rng.f32Array(nq);
        const k = rng.f32Array(nk);
        const v = rng.f32Array(nk);
        const dO = rng.f32Array(nq);
        // Both sides read the same float32 O and L (the reference forward's, rounded), so the
        // comparison measures the backward kernels alone.
        const fwd = attentionForward(q, k, v, dims);
        const o = Float32Array.from(fwd.o);
        const l = Float32Array.from(fwd.l);
        const want = attentionBackward(dO, q, k, v, o, l, dims);
        const wantDlt = new Float64Array(nrow);
        for (let b = 0; b < s.B; b++)
          for (let h = 0; h < s.H; h++)
            for (let t = 0; t < s.T; t++) {
              let acc = 0;
              for (let i = 0; i < s.D; i++) acc += dO[((b * s.T + t) * s.H + h) * s.D + i] * o[((b * s.T + t) * s.H + h) * s.D + i];
              wantDlt[(b * s.H + h) * s.T + t] = acc;
            }

        const t = {
          q: createTensor(ctx, 'Q', [nq], 'f32', q),
          k: createTensor(ctx, 'K', [nk], 'f32', k),
          v: createTensor(ctx, 'V', [nk], 'f32', v),
          o: createTensor(ctx, 'O', [nq], 'f32', o),
          l: createTensor(ctx, 'L', [nrow], 'f32', l),
          dO: createTensor(ctx, 'dO', [nq], 'f32', dO),
          dlt: createTensor(ctx, 'Dlt', [nrow], 'f32', nanArray(nrow)),
          dq: createTensor(ctx, 'dQ', [nq], 'f32', nanArray(nq)),
          dk: createTensor(ctx, 'dK', [nk], 'f32', nanArray(nk)),
          dv: createTensor(ctx, 'dV', [nk], 'f32', nanArray(nk)),
        };
        await withValidation(ctx, () => runOps(ctx, attentionBackwardOps(ctx, { ...t, dims, variant })));
        const [dlt, dq, dk, dv] = await Promise.all([readTensor(ctx, t.dlt), readTensor(ctx, t.dq), readTensor(ctx, t.dk), readTensor(ctx, t.dv)]);

        const G = s.H / s.KVH;
        const psum = maxKeyColumnP(s, q, k, l);
        expectClose(`attention Dlt ${label(s)}`, dlt, wantDlt, { abs: sumTolerance(s.D, s.D) });
        expectClose(`attention ${variant} dQ ${label(s)}`, dq, want.dq, { abs: tolGrad(s, 1, s.T, true) });
        expectClose(`attention ${variant} dK ${label(s)}`, dk, want.dk, { abs: tolGrad(s, psum, G * s.T, true) });
        expectClose(`attention ${variant} dV ${label(s)}`, dv, want.dv, { abs: tolGrad(s, psum, G * s.T, false) });
        for (const x of Object.values(t)) x.destroy();
      });
    }
  }

  it('entry points run separately give the same result as attentionBackwardOps', async () => {
    const ctx = await testGpu();
    const s: Shape = { B: 1, T: 6, H: 4, KVH: 2, D: 3 };
    const dims = dimsOf(s);
    const rng = new Rng(5);
    const nq = s.B * s.T * s.H * s.D;
    const nk = s.B * s.T * s.KVH * s.D;
    const nrow = s.B * s.H * s.T;
    const q = rng.f32Array(nq);
    const k = rng.f32Array(nk);
    const v = rng.f32Array(nk);
    const dO = rng.f32Array(nq);
    const fwd = attentionForward(q, k, v, dims);
    const mk = (name: string, n: number, data?: Float32Array) => createTensor(ctx, name, [n], 'f32', data ?? nanArray(n));
    const tq = mk('Q', nq, q);
    const tk = mk('K', nk, k);
    const tv = mk('V', nk, v);
    const to = mk('O', nq, Float32Array.from(fwd.o));
    const tl = mk('L', nrow, Float32Array.from(fwd.l));
    const tdo = mk('dO', nq, dO);
    const tdlt = mk('Dlt', nrow);
    const tdq = mk('dQ', nq);
    const tdk = mk('dK', nk);
    const tdv = mk('dV', nk);
    const common = { dO: tdo, q: tq, k: tk, v: tv, l: tl, dlt: tdlt, dims };
    await withValidation(ctx, () => {
      runOps(ctx, [attentionBackwardDeltaOp(ctx, { dO: tdo, o: to, dlt: tdlt, dims })]);
      runOps(ctx, [attentionBackwardKeyValueOp(ctx, { ...common, dk: tdk, dv: tdv })]);
      runOps(ctx, [attentionBackwardQueryOp(ctx, { ...common, dq: tdq })]);
    });
    const want = attentionBackward(dO, q, k, v, Float32Array.from(fwd.o), Float32Array.from(fwd.l), dims);
    const G = s.H / s.KVH;
    const psum = maxKeyColumnP(s, q, k, Float32Array.from(fwd.l));
    expectClose('separate dQ', await readTensor(ctx, tdq), want.dq, { abs: tolGrad(s, 1, s.T, true) });
    expectClose('separate dK', await readTensor(ctx, tdk), want.dk, { abs: tolGrad(s, psum, G * s.T, true) });
    expectClose('separate dV', await readTensor(ctx, tdv), want.dv, { abs: tolGrad(s, psum, G * s.T, false) });
  });
});

describe('attention dispatcher errors', () => {
  it('names the tensor and the expected size, and rejects unsupported shapes', async () => {
    const ctx = await testGpu();
    const dims: AttentionDims = { B: 1, Tq: 4, Tk: 4, H: 2, KVH: 1, D: 3 };
    const mk = (name: string, n: number) => createTensor(ctx, name, [n]);
    const q = mk('Q', 24);
    const kv = mk('KV', 12);
    const o = mk('O', 24);
    const l = mk('L', 8);
    const small = mk('tooSmall', 23);
    expect(() => attentionForwardOp(ctx, { q: small, k: kv, v: kv, o, l, dims })).toThrow(
      /attention forward: Q tooSmall has 23 values, needs 24 \(\[B, Tq, H\*D\] = \[1, 4, 6\]\)/,
    );
    expect(() => attentionForwardOp(ctx, { q, k: mk('K8', 24), v: small, o, l, dims: { ...dims, Tk: 8 } })).toThrow(/V tooSmall has 23 values, needs 24/);
    expect(() => attentionForwardOp(ctx, { q, k: kv, v: kv, o, l: mk('L7', 7), dims })).toThrow(/L L7 has 7 values, needs 8 \(\[B, H, Tq\] = \[1, 2, 4\]\)/);
    expect(() => attentionForwardOp(ctx, { q, k: kv, v: kv, o, l, dims: { ...dims, H: 3, KVH: 2 } })).toThrow(/H=3 query heads must be a multiple of KVH=2/);
    expect(() => attentionForwardOp(ctx, { q, k: kv, v: kv, o, l, dims: { ...dims, Tq: 1, pos0: 4 } })).toThrow(/K\/V hold only Tk=4 rows/);
    const big = mk('bigKV', ATTENTION_MAX_KEYS + 1);
    expect(() =>
      attentionForwardOp(ctx, { q: mk('q1', 1), k: big, v: big, o: mk('o1', 1), l: mk('l1', 1), dims: { B: 1, Tq: 1, Tk: ATTENTION_MAX_KEYS + 1, pos0: ATTENTION_MAX_KEYS, H: 1, KVH: 1, D: 1 } }),
    ).toThrow(/attends up to pos0 \+ Tq = 2049 keys; the forward holds at most 2048/);

    const bw = { dO: q, q, k: kv, v: kv, o, l, dlt: l, dq: o, dk: kv, dv: mk('dV', 12) };
    expect(() => attentionBackwardOps(ctx, { ...bw, dims: { ...dims, Tq: 1, pos0: 3 } })).toThrow(/training shapes only \(pos0 = 0 and Tq = Tk\), got pos0=3 Tq=1 Tk=4/);
    expect(() => attentionBackwardQueryOp(ctx, { ...bw, dims: { ...dims, Tk: 6 } })).toThrow(/training shapes only/);
    expect(() => attentionBackwardKeyValueOp(ctx, { ...bw, dv: mk('dV11', 11), dims })).toThrow(/backward_keyvalue: dV dV11 has 11 values, needs 12/);
    expect(() => attentionBackwardDeltaOp(ctx, { dO: q, o, dlt: mk('dlt3', 3), dims })).toThrow(/Dlt dlt3 has 3 values, needs 8 \(\[B, H, Tq\] = \[1, 2, 4\]\)/);
    // The rows and blocked variants need D % 4 == 0 (here D = 3).
    expect(() => attentionForwardOp(ctx, { q, k: kv, v: kv, o, l, dims, variant: 'rows' })).toThrow(/rows variant needs D % 4 == 0/);
    expect(() => attentionForwardOp(ctx, { q, k: kv, v: kv, o, l, dims, variant: 'blocked' })).toThrow(/blocked variant needs D % 4 == 0/);
    expect(() => attentionBackwardKeyValueOp(ctx, { ...bw, dims, variant: 'blocked' })).toThrow(/blocked variant needs D % 4 == 0/);
    expect(() => attentionBackwardQueryOp(ctx, { ...bw, dims, variant: 'rows' })).toThrow(/rows variant needs D % 4 == 0/);
  });
});
