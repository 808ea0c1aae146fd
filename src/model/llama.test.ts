/**
 * The whole model on the GPU against the float64 reference (src/reference/llama.ts) on a tiny
 * random Llama with grouped key/value heads: loss, and the gradient of every trainable tensor, for
 * LoRAMoE (with and without dropout, FFN and all targets), plain LoRA and full fine-tuning.
 *
 * Tolerance: each gradient tensor is compared relative to its largest magnitude. The GPU result
 * passes through ~60 float32 ops per layer, each with sums of at most max(V, F, M) = 23 terms
 * (u = 2^-24 each), so the expected relative error is ~1e-6 (measured: 1e-6 to 2e-6); 2e-5 leaves room for
 * error growth through the softmaxes while still catching any wrong path (which is O(1)).
 */
import { describe, expect, it } from 'vitest';
import { makeBatch } from '../data/batch';
import { roundToDtype } from '../io/dtypes';
import { runOps } from '../engine/op';
import { readTensor } from '../engine/tensor';
import { defaultAdapterConfig } from '../loramoe/config';
import { type AdapterConfig } from '../method/adapter';
import { PROJECTIONS } from '../method/shapes';
import { ReferenceLlama } from '../reference/llama';
import { relMaxError } from '../test/compare';
import { testGpu, withValidation } from '../test/gpu';
import { randomAdapter, randomWeights, TINY_SHAPE, tinyMoe, toRefAdapter, toRefWeights } from '../test/tiny-llama';
import type { ModelConfig } from './config';
import { LlamaGraph } from './llama';
import { backboneDtype, type WeightPrecision } from './tensor-plan';
import { GpuWeights } from './weights';

const B = 2;
const T = 5;

function batchFor() {
  const samples = [
    { ids: [3, 7, 1, 19, 4], promptLength: 2, truncated: false, type: 'world knowledge' },
    { ids: [5, 11, 2], promptLength: 1, truncated: false, type: 'task' },
  ];
  return makeBatch(samples, B, T, 0, (t) => (t === 'world knowledge' ? 1 : 0));
}

async function compareWithReference(label: string, shape: ModelConfig, cfg: AdapterConfig, dropout: number, precision: WeightPrecision = 'f32') {
  const ctx = await testGpu();
  const host = randomWeights(shape, 11);
  const adapter = cfg.mode === 'loramoe' || cfg.mode === 'lora' ? randomAdapter(shape, cfg, 12) : null;
  const weights = new GpuWeights(ctx, shape, host, cfg, adapter, T, precision);
  // With f16 matrices the reference runs on the values the GPU holds (the same rounding), so the
  // comparison keeps the f32 tolerance; what f16 itself costs is measured by tools/bench/half-weights.ts.
  const refHost = new Map([...host].map(([name, v]) => [name, backboneDtype(weights.get(name).shape, precision) === 'f16' ? roundToDtype('F16', v) : v]));
  const graph = new LlamaGraph(ctx, weights, { B, T, training: true });
  const batch = batchFor();
  const seed = 4242;
  graph.setBatch(batch);
  graph.setDropout(seed, dropout);
  await withValidation(ctx, () => runOps(ctx, [...graph.forwardOps, ...graph.backwardOps]));
  const losses = await graph.readLosses();

  const ref = new ReferenceLlama(shape, toRefWeights(refHost), cfg, adapter ? toRefAdapter(adapter) : new Map(), T);
  const refBatch = { B, T, ids: batch.ids, targets: batch.targets, valid: batch.valid, types: batch.types };
  const f = ref.forward(refBatch, { dropout, seed });
  const g = ref.backward(refBatch, f);
  console.log(`[check] ${label}: CE gpu ${losses.ce.toFixed(7)} ref ${f.ce.toFixed(7)}; LBC gpu ${losses.lbc.toExponential(6)} ref ${f.lbc.toExponential(6)}`);
  expect(losses.count).toBe(f.count);
  expect(Math.abs(losses.ce - f.ce)).toBeLessThan(1e-5 * Math.max(1, f.ce));
  expect(Math.abs(losses.lbc - f.lbc)).toBeLessThan(1e-5 * Math.max(1e-3, f.lbc));

  let worst = 0;
  let worstName = '';
  for (const p of graph.params) {
    const got = await readTensor(ctx, p.grad);
    let want: Float64Array | null | undefined;
    const m = /^(\d+\.[a-z_]+)\.(router|A|B)$/.exec(p.name);
    if (m) {
      const ga = g.adapter.get(m[1]);
      want = m[2] === 'router' ? ga?.wr : m[2] === 'A' ? ga?.a : ga?.b;
    } else {
      want = g.weights.get(p.name);
    }
    expect(want, `reference gradient for ${p.name}`).toBeTruthy();
    const e = relMaxError(got, want!);
    if (e > worst) {
      worst = e;
      worstName = p.name;
    }
    expect(e, `${label}: gradient of ${p.name}`).toBeLessThan(2e-5);
  }
  console.log(`[check] ${label}: ${graph.params.length} gradient tensors, worst relative error ${worst.toExponential(2)} (${worstName})`);
  graph.destroy();
  weights.destroy();
}

describe('GPU model vs reference: loss and every gradient', () => {
  it('LoRAMoE on the FFN projections (official targets)', () => compareWithReference('loramoe ffn', TINY_SHAPE, tinyMoe(), 0));
  it('LoRAMoE on all projections, dropout 0.3', () => compareWithReference('loramoe all, dropout', TINY_SHAPE, tinyMoe({ targets: [...PROJECTIONS], dropout: 0.3 }), 0.3));
  it('LoRAMoE, own-group direction, sum importance', () =>
    compareWithReference('loramoe own-group sum', TINY_SHAPE, tinyMoe({ lbcDirection: 'own-group', lbcImportance: 'sum' }), 0));
  it('LoRAMoE, official direction, sum importance', () => compareWithReference('loramoe official sum', TINY_SHAPE, tinyMoe({ lbcImportance: 'sum' }), 0));
  it('plain LoRA', () => compareWithReference('lora', TINY_SHAPE, { ...defaultAdapterConfig('lora'), rank: 3, alpha: 6, dropout: 0, targets: [...PROJECTIONS] }, 0));
  it('full fine-tuning, untied head, attention biases', () =>
    compareWithReference('full', { ...TINY_SHAPE, tieWordEmbeddings: false, attentionBias: true, attentionOutBias: true }, defaultAdapterConfig('full'), 0));
  it('full fine-tuning, tied embeddings', () => compareWithReference('full tied', TINY_SHAPE, defaultAdapterConfig('full'), 0));
});

describe('GPU model with f16 backbone matrices vs reference on the same rounded weights', () => {
  it('LoRAMoE on the FFN projections', () => compareWithReference('loramoe ffn, f16 weights', TINY_SHAPE, tinyMoe(), 0, 'f16'));
  it('plain LoRA on every projection, untied head, attention biases', () =>
    compareWithReference('lora all, f16 weights', { ...TINY_SHAPE, tieWordEmbeddings: false, attentionBias: true, attentionOutBias: true }, { ...defaultAdapterConfig('lora'), rank: 3, alpha: 6, dropout: 0, targets: [...PROJECTIONS] }, 0, 'f16'));
  it('full fine-tuning refuses f16 weights', async () => {
    const ctx = await testGpu();
    expect(() => new GpuWeights(ctx, TINY_SHAPE, randomWeights(TINY_SHAPE, 1), defaultAdapterConfig('full'), null, T, 'f16')).toThrow(/full fine-tuning updates the backbone/);
  });
  it('refuses a weight past the f16 range, naming the tensor', async () => {
    const ctx = await testGpu();
    const host = randomWeights(TINY_SHAPE, 1);
    host.get('model.layers.1.mlp.up_proj.weight')![5] = -7e4;
    expect(() => new GpuWeights(ctx, TINY_SHAPE, host, defaultAdapterConfig('none'), null, T, 'f16')).toThrow(
      /tensor model\.layers\.1\.mlp\.up_proj\.weight holds -70000 at index 5, past the f16 range/,
    );
  });
});
