import { describe, expect, it } from 'vitest';
import { attentionBackward, attentionForward, type RefAttentionDims } from './attention';
import { dot, numericGradient, probeIndices, toF64 } from './gradcheck';
import { Rng } from '../util/random';

function sizes(d: RefAttentionDims): { nq: number; nk: number } {
  return { nq: d.B * d.Tq * d.H * d.D, nk: d.B * d.Tk * d.KVH * d.D };
}

describe('attention reference forward', () => {
  it('matches a hand computation (causal mask, softmax, scale)', () => {
    // B=1, T=2, H=KVH=1, D=1, scale=1/sqrt(1)=1. Row 0 sees only key 0: o0 = v0.
    const q = [0.5, -1.5];
    const k = [2, 0.25];
    const v = [3, -7];
    const { o, l } = attentionForward(q, k, v, { B: 1, Tq: 2, Tk: 2, H: 1, KVH: 1, D: 1 });
    const e0 = Math.exp(-1.5 * 2);
    const e1 = Math.exp(-1.5 * 0.25);
    expect(o[0]).toBeCloseTo(3, 14);
    expect(l[0]).toBeCloseTo(0.5 * 2, 14);
    expect(o[1]).toBeCloseTo((e0 * 3 + e1 * -7) / (e0 + e1), 14);
    expect(l[1]).toBeCloseTo(Math.log(e0 + e1), 14);
  });

  it('grouped heads equal full heads with keys/values repeated (HF repeat_kv)', () => {
    const [B, T, H, KVH, D] = [2, 5, 6, 2, 3];
    const rng = new Rng(11);
    const q = rng.f32Array(B * T * H * D);
    const k = rng.f32Array(B * T * KVH * D);
    const v = rng.f32Array(B * T * KVH * D);
    // repeat_kv: full head h takes key/value head floor(h / (H / KVH)).
    const rep = (x: Float32Array) => {
      const out = new Float64Array(B * T * H * D);
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++)
          for (let h = 0; h < H; h++)
            for (let i = 0; i < D; i++) out[((b * T + t) * H + h) * D + i] = x[((b * T + t) * KVH + Math.floor(h / (H / KVH))) * D + i];
      return out;
    };
    const grouped = attentionForward(q, k, v, { B, Tq: T, Tk: T, H, KVH, D });
    const full = attentionForward(q, rep(k), rep(v), { B, Tq: T, Tk: T, H, KVH: H, D });
    expect(Array.from(grouped.o)).toEqual(Array.from(full.o));
    expect(Array.from(grouped.l)).toEqual(Array.from(full.l));
  });

  it('a decode step (Tq=1, pos0>0, spare cache rows) equals the matching row of a full forward', () => {
    const [B, T, H, KVH, D, Tk] = [2, 6, 4, 2, 3, 9];
    const rng = new Rng(12);
    const q = rng.f32Array(B * T * H * D);
    const k = rng.f32Array(B * T * KVH * D);
    const v = rng.f32Array(B * T * KVH * D);
    const full = attentionForward(q, k, v, { B, Tq: T, Tk: T, H, KVH, D });
    // Cache [B, Tk, KVH*D] holding the T rows; unused rows are NaN and must never be read.
    const kc = new Float64Array(B * Tk * KVH * D).fill(NaN);
    const vc = new Float64Array(B * Tk * KVH * D).fill(NaN);
    for (let b = 0; b < B; b++) {
      kc.set(k.subarray(b * T * KVH * D, (b + 1) * T * KVH * D), b * Tk * KVH * D);
      vc.set(v.subarray(b * T * KVH * D, (b + 1) * T * KVH * D), b * Tk * KVH * D);
    }
    for (const pos0 of [0, 3, T - 1]) {
      const qs = new Float64Array(B * H * D);
      for (let b = 0; b < B; b++) qs.set(q.subarray((b * T + pos0) * H * D, (b * T + pos0 + 1) * H * D), b * H * D);
      const step = attentionForward(qs, kc, vc, { B, Tq: 1, Tk, pos0, H, KVH, D });
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < H * D; i++) expect(step.o[b * H * D + i]).toBeCloseTo(full.o[(b * T + pos0) * H * D + i], 14);
        for (let h = 0; h < H; h++) expect(step.l[b * H + h]).toBeCloseTo(full.l[(b * H + h) * T + pos0], 14);
      }
    }
  });

  it('rejects H not a multiple of KVH and queries past the key capacity', () => {
    expect(() => attentionForward([], [], [], { B: 1, Tq: 1, Tk: 1, H: 3, KVH: 2, D: 1 })).toThrow(/multiple of KVH/);
    expect(() => attentionForward([], [], [], { B: 1, Tq: 2, Tk: 4, pos0: 3, H: 1, KVH: 1, D: 1 })).toThrow(/exceeds the key capacity/);
  });
});

describe('attention reference backward vs finite differences', () => {
  const CASES: RefAttentionDims[] = [
    { B: 2, Tq: 5, Tk: 5, H: 4, KVH: 2, D: 3 }, // grouped heads
    { B: 1, Tq: 4, Tk: 4, H: 2, KVH: 2, D: 4 }, // H = KVH
    { B: 1, Tq: 3, Tk: 3, H: 3, KVH: 1, D: 2, scale: 0.8 }, // one key/value head, explicit scale
    { B: 2, Tq: 2, Tk: 7, pos0: 3, H: 2, KVH: 1, D: 3 }, // decode-style: keys 5, 6 unseen (zero gradient)
  ];
  for (const dims of CASES) {
    it(`B=${dims.B} Tq=${dims.Tq} Tk=${dims.Tk} pos0=${dims.pos0 ?? 0} H=${dims.H} KVH=${dims.KVH} D=${dims.D}`, () => {
      const { nq, nk } = sizes(dims);
      const rng = new Rng(dims.B * 100 + dims.Tq * 10 + dims.H);
      const q = toF64(rng.f32Array(nq));
      const k = toF64(rng.f32Array(nk));
      const v = toF64(rng.f32Array(nk));
      const r = toF64(rng.f32Array(nq)); // loss = sum(r * o), so dO = r
      const loss = () => dot(r, attentionForward(q, k, v, dims).o);
      const { o, l } = attentionForward(q, k, v, dims);
      const grads = attentionBackward(r, q, k, v, o, l, dims);
      let worst = 0;
      for (const [name, x, g] of [['dq', q, grads.dq], ['dk', k, grads.dk], ['dv', v, grads.dv]] as const) {
        const num = numericGradient(loss, x, probeIndices(x.length, 40));
        for (const [i, n] of num) {
          // Float64 both sides: central differences with h = 1e-6 are good to ~1e-9 absolute,
          // so relative to the gradient (floored at 1e-2 for near-zero entries) they agree to 1e-7.
          const err = Math.abs(g[i] - n) / Math.max(Math.abs(n), 1e-2);
          worst = Math.max(worst, err);
          expect(err, `${name}[${i}]: analytic ${g[i]}, numeric ${n}`).toBeLessThan(1e-7);
        }
      }
      console.log(`[check] attention backward FD ${JSON.stringify(dims)}: max rel err ${worst.toExponential(2)}`);
      if ((dims.pos0 ?? 0) + dims.Tq < dims.Tk) {
        // Keys past the last query's position are never attended: exactly zero gradient.
        const lastSeen = (dims.pos0 ?? 0) + dims.Tq - 1;
        const row = dims.KVH * dims.D;
        for (let b = 0; b < dims.B; b++) {
          for (let s = lastSeen + 1; s < dims.Tk; s++) {
            for (let i = 0; i < row; i++) {
              expect(grads.dk[(b * dims.Tk + s) * row + i]).toBe(0);
              expect(grads.dv[(b * dims.Tk + s) * row + i]).toBe(0);
            }
          }
        }
      }
    });
  }
});
