/**
 * The benchmark's TensorFlow.js peer (tools/bench/tfjs-peer.ts) computes the product's training
 * step: on tfjs's CPU backend, its CE, LBC, the gradient of every trainable tensor (autodiff) and
 * two AdamW steps (with the gradient clip active and weight decay on) match the float64 reference
 * (src/reference/llama.ts, src/reference/optimizer.ts) on a tiny Llama with grouped key/value heads.
 *
 * Tolerances. Inputs are float32 values both sides read exactly, so the difference is the peer's
 * float32 rounding (u = 2^-24) through ~60 ops per layer with sums of at most max(V, F, M) = 23
 * terms: ~1e-6 relative expected, as the GPU model test measures. Gradients are compared per tensor
 * relative to the tensor's largest magnitude with 1e-4 (the brief's bound for float32, room for
 * error growth through the softmaxes; any wrong path is O(1)). Losses: 1e-5 relative.
 * Parameters after AdamW: the update is lr * m̂ / (sqrt(v̂) + eps), about lr per element, computed
 * from gradients good to ~1e-6 relative, so its error is ~1e-6 * lr plus the float32 rounding of the
 * parameter (~3e-8 at |p| <= 0.5); 1e-3 * lr + 1e-7 leaves room for elements whose gradient is
 * small relative to their tensor (their m̂ / sqrt(v̂) is the most sensitive).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildPeerStep, type PeerBatch } from '../../tools/bench/tfjs-peer';
import { type Batch, makeBatch } from '../data/batch';
import { defaultAdapterConfig } from '../loramoe/config';
import { type AdapterConfig } from '../method/adapter';
import { PROJECTIONS } from '../method/shapes';
import type { AdapterSet } from '../loramoe/init';
import type { ModelConfig } from '../model/config';
import { type AdapterWeights, ReferenceLlama, type RefBatch } from '../reference/llama';
import { adamwStep, type AdamWSettings, clipGradNorm } from '../reference/optimizer';
import { relMaxError } from './compare';
import { randomAdapter, randomWeights, TINY_SHAPE, tinyMoe, toRefAdapter, toRefWeights } from './tiny-llama';

const B = 2;
const T = 6;
const typeIndex = (t: string) => (t === 'world knowledge' ? 1 : 0);

/** Two samples of the two data types; prompt tokens masked out of the loss, the second padded. */
function batch1(): Batch {
  return makeBatch(
    [
      { ids: [3, 7, 1, 19, 4, 8], promptLength: 2, truncated: false, type: 'world knowledge' },
      { ids: [5, 11, 2, 16], promptLength: 2, truncated: false, type: 'task' },
    ],
    B,
    T,
    0,
    typeIndex,
  );
}

function batch2(): Batch {
  return makeBatch(
    [
      { ids: [9, 14, 6, 22, 13], promptLength: 3, truncated: false, type: 'task' },
      { ids: [2, 17, 10, 12, 21, 1], promptLength: 1, truncated: false, type: 'world knowledge' },
    ],
    B,
    T,
    0,
    typeIndex,
  );
}

const refBatch = (b: PeerBatch): RefBatch => ({ B: b.B, T: b.T, ids: b.ids, targets: b.targets, valid: b.valid, types: b.types });

function maxAbsError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let err = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    err = Number.isNaN(d) ? Infinity : Math.max(err, d);
  }
  return err;
}

const PARTS = ['wr', 'a', 'b'] as const;

/** Every (key, part) of a reference adapter map with its peer counterpart. */
function* pairs(peer: AdapterSet, ref: AdapterWeights): Generator<[string, Float32Array, Float64Array]> {
  expect([...peer.keys()].sort()).toEqual([...ref.keys()].sort());
  for (const [key, r] of ref) {
    const p = peer.get(key)!;
    for (const part of PARTS) {
      const want = r[part];
      if (!want) {
        expect(p[part], `${key}.${part} should be absent`).toBeNull();
        continue;
      }
      const got = p[part];
      expect(got, `${key}.${part}`).toBeTruthy();
      yield [`${key}.${part}`, got!, want];
    }
  }
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

describe('TensorFlow.js peer step vs the float64 reference (tfjs CPU backend)', () => {
  const cases: Array<[string, ModelConfig, AdapterConfig]> = [
    ['LoRAMoE on gate/up/down (4 experts, rank 2, LBC on)', TINY_SHAPE, tinyMoe()],
    ['LoRAMoE on every projection, untied head, attention biases', { ...TINY_SHAPE, tieWordEmbeddings: false, attentionBias: true, attentionOutBias: true }, tinyMoe({ targets: [...PROJECTIONS] })],
    ['plain LoRA on every projection', TINY_SHAPE, { ...defaultAdapterConfig('lora'), rank: 3, alpha: 6, dropout: 0, targets: [...PROJECTIONS] }],
  ];
  for (const [label, shape, cfg] of cases) {
    it(`CE, LBC and every gradient: ${label}`, async () => {
      const host = randomWeights(shape, 11);
      const adapter = randomAdapter(shape, cfg, 12);
      const batch = batch1();
      const before = tf.memory().numTensors;
      const peer = buildPeerStep(tf, shape, host, adapter, cfg);
      const got = await peer.lossAndGrads(batch);

      const ref = new ReferenceLlama(shape, toRefWeights(host), cfg, toRefAdapter(adapter), T);
      const f = ref.forward(refBatch(batch), { dropout: 0, seed: 0 });
      const g = ref.backward(refBatch(batch), f);
      const ceErr = Math.abs(got.ce - f.ce) / f.ce;
      const lbcErr = cfg.mode === 'loramoe' ? Math.abs(got.lbc - f.lbc) / f.lbc : Math.abs(got.lbc);
      console.log(`[check] ${label}: CE peer ${got.ce.toFixed(7)} ref ${f.ce.toFixed(7)} (rel err ${ceErr.toExponential(2)}); LBC peer ${got.lbc.toExponential(6)} ref ${f.lbc.toExponential(6)} (rel err ${lbcErr.toExponential(2)})`);
      expect(f.count).toBe(batch1().targetCount);
      expect(ceErr).toBeLessThan(1e-5);
      if (cfg.mode === 'loramoe') expect(f.lbc).toBeGreaterThan(0);
      expect(lbcErr).toBeLessThan(1e-5);

      let worst = 0;
      let worstName = '';
      let n = 0;
      for (const [name, gotG, wantG] of pairs(got.grads, g.adapter)) {
        const e = relMaxError(gotG, wantG);
        n++;
        if (e > worst) [worst, worstName] = [e, name];
        expect(e, `${label}: gradient of ${name}`).toBeLessThan(1e-4);
      }
      expect(n).toBe(peer.numTrainable);
      console.log(`[check] ${label}: ${n} gradient tensors, worst relative error ${worst.toExponential(2)} (${worstName})`);
      peer.dispose();
      expect(tf.memory().numTensors, 'tensors left after dispose()').toBe(before);
    });
  }

  it('two training steps (clip active, weight decay) match clip_grad_norm_ + torch AdamW, without leaking tensors', async () => {
    const shape = TINY_SHAPE;
    const cfg = tinyMoe();
    const host = randomWeights(shape, 21);
    const adapter = randomAdapter(shape, cfg, 22);
    const refWeights = toRefWeights(host);
    const batches = [batch1(), batch2()];

    // Reference: forward, backward, clip, AdamW, twice. maxGradNorm below the first norm so the
    // clip coefficient is < 1 on step 1.
    const first = new ReferenceLlama(shape, refWeights, cfg, toRefAdapter(adapter), T);
    const f0 = first.forward(refBatch(batches[0]), { dropout: 0, seed: 0 });
    const norm0 = clipGradNorm([...first.backward(refBatch(batches[0]), f0).adapter.values()].flatMap((t) => [t.wr!, t.a, t.b]), 0).norm;
    const settings: AdamWSettings & { maxGradNorm: number } = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 0.5 * norm0 };
    let params = toRefAdapter(adapter);
    const zeros = () => new Map([...params].map(([k, t]) => [k, { wr: t.wr ? new Float64Array(t.wr.length) : null, a: new Float64Array(t.a.length), b: new Float64Array(t.b.length) }]));
    let m: AdapterWeights = zeros();
    let v: AdapterWeights = zeros();
    const refSteps: { ce: number; lbc: number; norm: number; scale: number }[] = [];
    for (const [i, b] of batches.entries()) {
      const model = new ReferenceLlama(shape, refWeights, cfg, params, T);
      const f = model.forward(refBatch(b), { dropout: 0, seed: 0 });
      const g = model.backward(refBatch(b), f).adapter;
      const clip = clipGradNorm([...g.values()].flatMap((t) => [t.wr!, t.a, t.b]), settings.maxGradNorm);
      refSteps.push({ ce: f.ce, lbc: f.lbc, norm: clip.norm, scale: clip.scale });
      const next: AdapterWeights = new Map();
      const nm: AdapterWeights = new Map();
      const nv: AdapterWeights = new Map();
      for (const [key, p] of params) {
        const gk = g.get(key)!;
        const step = (part: 'wr' | 'a' | 'b') => adamwStep(p[part]!, gk[part]!, m.get(key)![part]!, v.get(key)![part]!, i + 1, settings, clip.scale);
        const [wr, a, bb] = [step('wr'), step('a'), step('b')];
        next.set(key, { wr: wr.param, a: a.param, b: bb.param });
        nm.set(key, { wr: wr.m, a: a.m, b: bb.m });
        nv.set(key, { wr: wr.v, a: a.v, b: bb.v });
      }
      [params, m, v] = [next, nm, nv];
    }
    expect(refSteps[0].scale).toBeLessThan(1);

    const before = tf.memory().numTensors;
    const peer = buildPeerStep(tf, shape, host, adapter, cfg, { train: settings });
    // Steady state: after the first step (which also builds the per-T RoPE tables and causal mask),
    // a step leaves exactly as many tensors as it found.
    let held = -1;
    for (const [i, b] of batches.entries()) {
      const r = await peer.step(b);
      const want = refSteps[i];
      console.log(
        `[check] AdamW step ${r.step}: CE peer ${r.ce.toFixed(7)} ref ${want.ce.toFixed(7)}; LBC peer ${r.lbc.toExponential(6)} ref ${want.lbc.toExponential(6)}; ` +
          `grad norm peer ${r.gradNorm.toFixed(7)} ref ${want.norm.toFixed(7)} (clip ${want.scale.toFixed(4)})`,
      );
      expect(r.step).toBe(i + 1);
      expect(r.skipped).toBe(false);
      expect(Math.abs(r.ce - want.ce) / want.ce).toBeLessThan(1e-5);
      expect(Math.abs(r.lbc - want.lbc) / want.lbc).toBeLessThan(1e-5);
      expect(Math.abs(r.gradNorm - want.norm) / want.norm).toBeLessThan(1e-5);
      if (held < 0) held = tf.memory().numTensors;
      else expect(tf.memory().numTensors, `tensors held after step ${r.step}`).toBe(held);
    }

    const state = await peer.readState();
    const paramTol = 1e-3 * settings.lr + 1e-7;
    let worstP = 0;
    let worstMoment = 0;
    let moved = 0;
    for (const [name, got, want] of pairs(state.params, params)) {
      const e = maxAbsError(got, want);
      worstP = Math.max(worstP, e);
      expect(e, `parameter ${name} after 2 steps`).toBeLessThan(paramTol);
    }
    for (const [, got, want] of pairs(state.params, toRefAdapter(adapter))) moved = Math.max(moved, maxAbsError(got, want));
    for (const [label, gotSet, wantSet] of [['m', state.m, m], ['v', state.v, v]] as const) {
      for (const [name, got, want] of pairs(gotSet, wantSet)) {
        const e = relMaxError(got, want);
        worstMoment = Math.max(worstMoment, e);
        expect(e, `AdamW ${label} of ${name}`).toBeLessThan(1e-4);
      }
    }
    console.log(`[check] after 2 AdamW steps: parameters max abs err ${worstP.toExponential(2)} (tol ${paramTol.toExponential(2)}; largest change ${moved.toExponential(2)}), moments max rel err ${worstMoment.toExponential(2)}`);
    expect(moved).toBeGreaterThan(1e-3);
    peer.dispose();
    expect(tf.memory().numTensors, 'tensors left after dispose()').toBe(before);
  });

  it('skips the update when the gradient is not finite, as the product does', async () => {
    const cfg = tinyMoe();
    const host = randomWeights(TINY_SHAPE, 31);
    host.get('model.norm.weight')![0] = NaN;
    const adapter = randomAdapter(TINY_SHAPE, cfg, 32);
    const peer = buildPeerStep(tf, TINY_SHAPE, host, adapter, cfg);
    const r = await peer.step(batch1());
    expect(r.skipped).toBe(true);
    expect(r.step).toBe(1);
    const state = await peer.readState();
    for (const [name, got, want] of pairs(state.params, toRefAdapter(adapter))) expect(maxAbsError(got, want), name).toBe(0);
    for (const [, t] of state.m) expect(t.a.every((x) => x === 0)).toBe(true);
    peer.dispose();
  });

  it('refuses expert dropout (the peer does not implement it)', () => {
    const cfg = tinyMoe({ dropout: 0.05 });
    expect(() => buildPeerStep(tf, TINY_SHAPE, randomWeights(TINY_SHAPE, 1), randomAdapter(TINY_SHAPE, cfg, 2), cfg)).toThrow(/dropout/);
  });
});
