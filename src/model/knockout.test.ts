/**
 * Expert knockout through the whole model: the evaluation graph and the generator with experts
 * switched off in every adapted projection, against the float64 reference model given the same
 * mask; and the graph with no expert off writing the same logits bytes as before any mask was set.
 */
import { describe, expect, it } from 'vitest';
import { makeBatch } from '../data/batch';
import { runOps } from '../engine/op';
import { readTensor } from '../engine/tensor';
import { defaultAdapterConfig } from '../loramoe/config';
import type { AdapterConfig } from '../method/adapter';
import { PROJECTIONS } from '../method/shapes';
import { ReferenceLlama } from '../reference/llama';
import { expectClose, maxAbs } from '../test/compare';
import { testGpu, withValidation } from '../test/gpu';
import { randomAdapter, randomWeights, TINY_SHAPE, tinyMoe, toRefAdapter, toRefWeights } from '../test/tiny-llama';
import { Generator } from './generate';
import { LlamaGraph } from './llama';
import { GpuWeights } from './weights';

const B = 2;
const T = 5;
// Evaluation graphs only: the LBC's beta plays no part.
const MOE = tinyMoe({ targets: [...PROJECTIONS] });

function batch() {
  const samples = [
    { ids: [3, 7, 1, 19, 4], promptLength: 2, truncated: false, type: 'world knowledge' },
    { ids: [5, 11, 2], promptLength: 1, truncated: false, type: 'task' },
  ];
  return makeBatch(samples, B, T, 0, (t) => (t === 'world knowledge' ? 1 : 0));
}

async function setup(cfg: AdapterConfig = MOE) {
  const ctx = await testGpu();
  const host = randomWeights(TINY_SHAPE, 21);
  const adapter = randomAdapter(TINY_SHAPE, cfg, 22);
  const weights = new GpuWeights(ctx, TINY_SHAPE, host, cfg, adapter, T);
  const ref = new ReferenceLlama(TINY_SHAPE, toRefWeights(host), cfg, toRefAdapter(adapter), T);
  return { ctx, weights, ref };
}

describe('expert knockout in the whole model vs reference', () => {
  it('evaluation graph: logits and CE with each group off, and with single experts off', async () => {
    const { ctx, weights, ref } = await setup();
    const graph = new LlamaGraph(ctx, weights, { B, T, training: false });
    const b = batch();
    graph.setBatch(b);
    graph.setDropout(0, 0);
    const refBatch = { B, T, ids: b.ids, targets: b.targets, valid: b.valid, types: b.types };
    const logitsOf = new Map<string, ArrayLike<number>>();
    for (const mask of [[], [0, 1], [2, 3], [3], [0, 2, 3]]) {
      graph.setExpertMask(mask);
      await withValidation(ctx, () => runOps(ctx, graph.forwardOps));
      const got = await readTensor(ctx, graph.logits);
      const losses = await graph.readLosses();
      const want = ref.forward(refBatch, { dropout: 0, seed: 0, expertMask: mask });
      expectClose(`logits, experts [${mask.join(',')}] off`, got, want.logits, { abs: 2e-5 * Math.max(1, maxAbs(want.logits)) });
      expect(Math.abs(losses.ce - want.ce)).toBeLessThan(1e-5 * Math.max(1, want.ce));
      for (const w of want.routing.values()) for (let m = 0; m < B * T; m++) for (const e of mask) expect(w[m * 4 + e]).toBe(0);
      logitsOf.set(mask.join(','), got);
    }
    // Knocking a group out changes the model's output (the experts' B are random, not zero).
    const [on, off] = [logitsOf.get('')!, logitsOf.get('0,1')!];
    expect(maxAbs(Array.from(on, (v, i) => v - off[i]))).toBeGreaterThan(1e-3);
    graph.destroy();
    weights.destroy();
  });

  it('no expert off: the same logits bytes as a graph never given a mask, and after a mask was cleared', async () => {
    const { ctx, weights } = await setup();
    const b = batch();
    const run = async (g: LlamaGraph) => {
      runOps(ctx, g.forwardOps);
      return new Uint8Array((await readTensor(ctx, g.logits)).buffer.slice(0));
    };
    const fresh = new LlamaGraph(ctx, weights, { B, T, training: false });
    fresh.setBatch(b);
    fresh.setDropout(0, 0);
    const never = await run(fresh);
    const other = new LlamaGraph(ctx, weights, { B, T, training: false });
    other.setBatch(b);
    other.setDropout(0, 0);
    other.setExpertMask([1, 2]);
    const knocked = await run(other);
    expect(knocked).not.toEqual(never);
    other.setExpertMask([]);
    expect(await run(other)).toEqual(never);
    fresh.destroy();
    other.destroy();
    weights.destroy();
  });

  it('generator: the first token\'s logits with a group off equal the reference\'s last row', async () => {
    const { ctx, weights, ref } = await setup();
    const gen = new Generator(ctx, weights, { maxLength: T });
    const prompt = [3, 7, 1];
    const params = { maxNewTokens: 1, temperature: 0, topK: 0, topP: 1, seed: 1, stopIds: [], useAdapter: true, returnRouting: true, returnLogits: true };
    // Back to none at the end: the generator's kept plans drop the mask again.
    for (const mask of [[], [2, 3], []]) {
      const res = await withValidation(ctx, () => gen.generate(prompt, { ...params, expertMask: mask }));
      const f = ref.forward({ B: 1, T: 3, ids: prompt, targets: new Int32Array(3), valid: new Uint32Array(3).fill(1), types: [-1] }, { dropout: 0, seed: 0, expertMask: mask });
      const V = TINY_SHAPE.vocabSize;
      const want = f.logits.slice(2 * V, 3 * V);
      expectClose(`generator logits, experts [${mask.join(',')}] off`, res.tokens[0].logits!, want, { abs: 2e-5 * Math.max(1, maxAbs(want)) });
      for (const w of res.tokens[0].routing!.values()) for (const e of mask) expect(w[e]).toBe(0);
    }
    // Decode steps (the generator's kept one-token plan) follow the mask too, and drop it again.
    const routed = async (mask: number[]) => (await gen.generate(prompt, { ...params, maxNewTokens: 2, expertMask: mask })).tokens.map((t) => [...t.routing!.values()].map((w) => w[2]));
    expect((await routed([2, 3])).flat().every((w) => w === 0)).toBe(true);
    expect((await routed([])).flat().every((w) => w > 0)).toBe(true);
    await expect(gen.generate(prompt, { ...params, expertMask: [0, 1, 2, 3] })).rejects.toThrow(/all 4 experts/);
    gen.destroy();
    weights.destroy();
  });

  it('refuses every expert off, and a mask on an adapter without a router', async () => {
    const { ctx, weights } = await setup();
    const graph = new LlamaGraph(ctx, weights, { B, T, training: false });
    expect(() => graph.setExpertMask([0, 1, 2, 3])).toThrow(/switches off all 4 experts/);
    graph.destroy();
    weights.destroy();
    const lora: AdapterConfig = { ...defaultAdapterConfig('lora'), rank: 2, alpha: 4, dropout: 0, targets: ['up_proj'] };
    const plain = await setup(lora);
    const g2 = new LlamaGraph(plain.ctx, plain.weights, { B, T, training: false });
    expect(() => g2.setExpertMask([0])).toThrow(/expert knockout needs a LoRAMoE adapter \(this one is lora\)/);
    g2.setExpertMask([]);
    g2.destroy();
    plain.weights.destroy();
  });
});
