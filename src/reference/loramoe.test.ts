import { describe, expect, it } from 'vitest';
import { dropoutBits, dropoutFactors, dropoutKey, dropoutThreshold, hashMix } from './dropout';
import { dot, numericGradient, probeIndices, toF64 } from './gradcheck';
import { contiguousGroups, lbcBackward, lbcBoost, lbcForward, officialGroups, type LbcDims } from './lbc';
import { loramoeBackward, loramoeForward, type LoramoeConfig } from './loramoe';
import { Rng } from '../util/random';

/** lowbias32 written independently with BigInt, to check the Math.imul / >>> 0 version. */
function hashMixBig(v: number): number {
  const M32 = (1n << 32n) - 1n;
  let x = BigInt(v >>> 0);
  x ^= x >> 16n;
  x = (x * 0x7feb352dn) & M32;
  x ^= x >> 15n;
  x = (x * 0x846ca68bn) & M32;
  x ^= x >> 16n;
  return Number(x);
}

describe('dropout hash', () => {
  it('matches a BigInt implementation of the u32 arithmetic', () => {
    const rng = new Rng(1);
    const inputs = [0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, ...Array.from({ length: 200 }, () => rng.int(2 ** 32))];
    for (const v of inputs) expect(hashMix(v)).toBe(hashMixBig(v));
    // Index arithmetic wraps mod 2^32 like WGSL's u32.
    const big = (m: number, e: number, k: number, N: number, K: number) => Number((((BigInt(m) * BigInt(N) + BigInt(e)) * BigInt(K) + BigInt(k)) & 0xffffffffn));
    const key = dropoutKey(5, 2);
    for (const [m, e, k, N, K] of [[3, 1, 7, 4, 13], [70000, 7, 1500, 8, 9000], [123456, 3, 40000, 8, 49152]]) {
      expect(dropoutBits(key, m, e, k, N, K)).toBe(hashMixBig((hashMixBig(big(m, e, k, N, K)) ^ key) >>> 0));
    }
  });

  it('thresholds: p = 0 keeps all, p rounds to a fraction of 2^32', () => {
    expect(dropoutThreshold(0)).toBe(0);
    expect(dropoutThreshold(0.25)).toBe(2 ** 30);
    expect(dropoutThreshold(0.999999999999)).toBe(0xffffffff);
    expect(() => dropoutThreshold(1)).toThrow(/\[0, 1\)/);
    expect(() => dropoutThreshold(-0.1)).toThrow(/\[0, 1\)/);
    expect(() => dropoutKey(-1)).toThrow(/u32/);
    expect(Array.from(dropoutFactors({ p: 0, seed: 9 }, 2, 3, 4)).every((f) => f === 1)).toBe(true);
  });

  it('is deterministic per (seed, stream), drops about p, masks differ across seeds, streams and experts', () => {
    const [M, N, K] = [64, 8, 128];
    for (const p of [0.05, 0.25, 0.5]) {
      const a = dropoutFactors({ p, seed: 1234, stream: 3 }, M, N, K);
      const b = dropoutFactors({ p, seed: 1234, stream: 3 }, M, N, K);
      expect(b).toEqual(a);
      const dropped = a.filter((f) => f === 0).length / a.length;
      // n = 65536 Bernoulli(p) draws: standard deviation sqrt(p(1-p)/n) <= 0.002; allow 5 sigma.
      console.log(`[check] dropout p=${p}: dropped fraction ${dropped.toFixed(4)}`);
      expect(Math.abs(dropped - p)).toBeLessThan(0.01);
      for (const f of a) expect(f === 0 || f === 1 / (1 - p)).toBe(true);
      // Another seed, another stream: about p(1-p)*2 of the entries differ (independent masks).
      for (const other of [{ seed: 1235, stream: 3 }, { seed: 1234, stream: 4 }]) {
        const c = dropoutFactors({ p, ...other }, M, N, K);
        let diff = 0;
        for (let i = 0; i < a.length; i++) if ((a[i] === 0) !== (c[i] === 0)) diff++;
        expect(Math.abs(diff / a.length - 2 * p * (1 - p))).toBeLessThan(0.015);
      }
      // Experts of one row get different masks.
      let same = 0;
      for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) if ((a[(m * N + 0) * K + k] === 0) === (a[(m * N + 1) * K + k] === 0)) same++;
      expect(same / (M * K)).toBeLessThan(1 - p * (1 - p));
      // A row's mask does not depend on the number of rows.
      const small = dropoutFactors({ p, seed: 1234, stream: 3 }, 5, N, K);
      expect(small).toEqual(a.subarray(0, 5 * N * K));
    }
  });
});

interface Case {
  name: string;
  cfg: LoramoeConfig;
  /** LBC on top (routed only): sequences, tokens, data types, grouping. */
  lbc?: { B: number; T: number; types: number[]; groups: number[][]; valid: number[] };
}

const CASES: Case[] = [
  {
    name: 'N=4 R=3 official grouping, padding',
    cfg: { M: 6, K: 5, Nout: 7, N: 4, R: 3, scale: 2, p: 0, seed: 11, routed: true },
    lbc: { B: 2, T: 3, types: [1, 0], groups: officialGroups(4), valid: [1, 1, 0, 1, 1, 1] },
  },
  {
    name: 'N=6 R=2 three groups',
    cfg: { M: 4, K: 6, Nout: 3, N: 6, R: 2, scale: 0.5, p: 0, seed: 12, routed: true },
    lbc: { B: 4, T: 1, types: [0, 2, 1, 1], groups: contiguousGroups(6, 3), valid: [1, 1, 1, 1] },
  },
  { name: 'plain LoRA (N=1, unrouted)', cfg: { M: 5, K: 4, Nout: 6, N: 1, R: 3, scale: 1.5, p: 0, seed: 13, routed: false } },
  {
    name: 'dropout p=0.25, N=4 R=2, padding',
    cfg: { M: 6, K: 7, Nout: 5, N: 4, R: 2, scale: 1, p: 0.25, seed: 77, stream: 5, routed: true },
    lbc: { B: 3, T: 2, types: [0, 1, 0], groups: officialGroups(4), valid: [1, 0, 1, 1, 0, 1] },
  },
  { name: 'dropout p=0.5 plain LoRA', cfg: { M: 4, K: 6, Nout: 3, N: 1, R: 2, scale: 2, p: 0.5, seed: 5, routed: false } },
];

describe('LoRAMoE reference vs finite differences: loss = sum(r*y) + LBC(w)', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const { cfg } = c;
      const { M, K, Nout, N, R } = cfg;
      const rng = new Rng(M * 31 + N * 7 + R);
      const x = toF64(rng.f32Array(M * K));
      const W0 = toF64(rng.f32Array(Nout * K));
      const Wr = toF64(rng.f32Array(N * K, -2, 2)); // large enough that w is far from uniform
      const A = toF64(rng.f32Array(N * R * K));
      const Bcat = toF64(rng.f32Array(Nout * N * R)); // non-zero: a zero B would hide bugs
      const r = toF64(rng.f32Array(M * Nout));
      const lbcDims: LbcDims | null = c.lbc ? { B: c.lbc.B, T: c.lbc.T, N, beta: 0.8 } : null;
      const boost = c.lbc ? lbcBoost(c.lbc.types, c.lbc.groups, N, 0.3) : null;
      const total = () => {
        const f = loramoeForward(x, W0, cfg.routed ? Wr : null, A, Bcat, cfg);
        let L = dot(r, f.y);
        if (lbcDims && boost && c.lbc) L += lbcForward(f.w, c.lbc.valid, boost, lbcDims).loss;
        return L;
      };

      const fwd = loramoeForward(x, W0, cfg.routed ? Wr : null, A, Bcat, cfg);
      let dwExtra: Float64Array | undefined;
      if (lbcDims && boost && c.lbc) {
        const saved = lbcForward(fwd.w, c.lbc.valid, boost, lbcDims);
        dwExtra = lbcBackward(1, c.lbc.valid, boost, saved, lbcDims).dw;
      }
      const grads = loramoeBackward(r, x, W0, cfg.routed ? Wr : null, A, Bcat, fwd, cfg, dwExtra);

      const params: Array<[string, Float64Array, Float64Array | null]> = [
        ['x', x, grads.dx],
        ['A', A, grads.dA],
        ['Bcat', Bcat, grads.dBcat],
      ];
      if (cfg.routed) params.push(['Wr', Wr, grads.dWr]);
      for (const [name, p, g] of params) {
        expect(g, name).not.toBeNull();
        if (!g) continue;
        const num = numericGradient(total, p, probeIndices(p.length, 40), 1e-5);
        let worst = 0;
        let scale = 0;
        for (const v of g) scale = Math.max(scale, Math.abs(v));
        for (const [i, v] of num) worst = Math.max(worst, Math.abs(v - g[i]) / Math.max(Math.abs(g[i]), 1e-3 * scale));
        console.log(`[check] ${c.name} d${name}: max rel err vs finite differences ${worst.toExponential(2)}`);
        expect(worst, `d${name}`).toBeLessThan(1e-7);
      }
      if (cfg.routed) expect(grads.dw && grads.dlogits).toBeTruthy();
      else expect(grads.dWr).toBeNull();
    });
  }

  it('plain-LoRA mode needs N = 1', () => {
    const cfg: LoramoeConfig = { M: 1, K: 1, Nout: 1, N: 2, R: 1, scale: 1, p: 0, seed: 0, routed: false };
    expect(() => loramoeForward([1], [1], null, [1, 1], [1, 1], cfg)).toThrow(/N = 1/);
  });

  it('p = 0 forward equals the dense formula y = x W0ᵀ + scale sum_i w_i B_i A_i x', () => {
    const cfg: LoramoeConfig = { M: 3, K: 4, Nout: 2, N: 2, R: 2, scale: 3, p: 0, seed: 0, routed: true };
    const rng = new Rng(99);
    const [x, W0, Wr, A, Bcat] = [12, 8, 8, 16, 8].map((n) => toF64(rng.f32Array(n)));
    const { y, w } = loramoeForward(x, W0, Wr, A, Bcat, cfg);
    for (let m = 0; m < 3; m++) {
      for (let o = 0; o < 2; o++) {
        let want = 0;
        for (let k = 0; k < 4; k++) want += x[m * 4 + k] * W0[o * 4 + k];
        for (let i = 0; i < 2; i++) {
          for (let r = 0; r < 2; r++) {
            let ax = 0;
            for (let k = 0; k < 4; k++) ax += A[(i * 2 + r) * 4 + k] * x[m * 4 + k];
            want += 3 * w[m * 2 + i] * Bcat[o * 4 + i * 2 + r] * ax;
          }
        }
        expect(y[m * 2 + o]).toBeCloseTo(want, 12);
      }
      expect(w[m * 2] + w[m * 2 + 1]).toBeCloseTo(1, 14);
    }
  });
});
