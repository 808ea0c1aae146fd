/**
 * The size table against the buffers the model makes: for each adapter mode, training and
 * evaluation graphs of a few (B, T), GpuWeights, and the Generator's KV cache. Every planned tensor
 * is made under its name with its shape and dtype, nothing else is, and the bytes add up.
 */
import { describe, expect, it } from 'vitest';
import type { Tensor } from '../engine/tensor';
import { defaultAdapterConfig } from '../loramoe/config';
import { type AdapterConfig } from '../method/adapter';
import { PROJECTIONS } from '../method/shapes';
import { testGpu } from '../test/gpu';
import { randomAdapter, randomWeights, TINY_SHAPE } from '../test/tiny-llama';
import type { ModelConfig } from './config';
import { Generator } from './generate';
import { LlamaGraph } from './llama';
import { generatorPlan, graphPlan, type PlannedTensor, planBytes, runPlan, trainableTensors, type WeightPrecision, weightsPlan } from './tensor-plan';
import { GpuWeights } from './weights';

const MAX_POSITIONS = 12;

/** An untied head and biased attention projections: lm_head and the biases join the table. */
const BIASED: ModelConfig = { ...TINY_SHAPE, tieWordEmbeddings: false, attentionBias: true, attentionOutBias: true };

const configs: [string, AdapterConfig, ModelConfig, WeightPrecision?][] = [
  ['loramoe, FFN, LBC on', { ...defaultAdapterConfig('loramoe'), numExperts: 4, rank: 2, groups: [[2, 3], [0, 1]] }, TINY_SHAPE],
  ['loramoe, all projections, LBC off, biases', { ...defaultAdapterConfig('loramoe'), numExperts: 2, rank: 3, lbcBeta: 0, targets: [...PROJECTIONS], groups: [[1], [0]] }, BIASED],
  ['lora', { ...defaultAdapterConfig('lora'), rank: 2, targets: ['q_proj', 'v_proj', 'down_proj'] }, TINY_SHAPE],
  ['full, untied head, biases', defaultAdapterConfig('full'), BIASED],
  ['full, tied', defaultAdapterConfig('full'), TINY_SHAPE],
  ['none', defaultAdapterConfig('none'), TINY_SHAPE],
  ['loramoe, f16 backbone matrices, untied head, biases', { ...defaultAdapterConfig('loramoe'), numExperts: 2, rank: 3, targets: [...PROJECTIONS], groups: [[1], [0]] }, BIASED, 'f16'],
  ['none, f16 backbone matrices', defaultAdapterConfig('none'), TINY_SHAPE, 'f16'],
];

const shapes = [
  { B: 1, T: 1 },
  { B: 2, T: 5 },
  { B: 3, T: 12 },
];

function table(tensors: Iterable<Tensor>): Map<string, { shape: number[]; dtype: string; bytes: number }> {
  const out = new Map<string, { shape: number[]; dtype: string; bytes: number }>();
  for (const t of tensors) out.set(t.name, { shape: [...t.shape], dtype: t.dtype, bytes: t.bytes });
  return out;
}

function planned(plan: readonly PlannedTensor[]): Map<string, { shape: number[]; dtype: string; bytes: number }> {
  const out = new Map<string, { shape: number[]; dtype: string; bytes: number }>();
  for (const t of plan) {
    expect(out.has(t.name), `${t.name} planned twice`).toBe(false);
    out.set(t.name, { shape: [...t.shape], dtype: t.dtype, bytes: t.bytes });
  }
  return out;
}

describe('size table', () => {
  for (const [name, cfg, shape, precision] of configs) {
    it(`is what the model allocates: ${name}`, async () => {
      const ctx = await testGpu();
      const adapter = cfg.mode === 'loramoe' || cfg.mode === 'lora' ? randomAdapter(shape, cfg, 3) : null;
      const weights = new GpuWeights(ctx, shape, randomWeights(shape, 4), cfg, adapter, MAX_POSITIONS, precision);
      const inp = { shape: shape, adapter: cfg, maxPositions: MAX_POSITIONS, precision };
      if (precision === 'f16') {
        // Matrices halve; vectors (norms, biases) and the RoPE tables stay f32.
        const w = weightsPlan(inp);
        const dtypes = new Set(w.filter((t) => t.role === 'weights').map((t) => `${t.shape.length}:${t.dtype}`));
        expect(dtypes).toEqual(new Set(['2:f16', '1:f32', '2:f32']));
        expect(w.filter((t) => t.dtype === 'f16').every((t) => /^model\.|^lm_head/.test(t.name))).toBe(true);
      }
      try {
        // GpuWeights: the backbone, the RoPE tables and the adapter, under the plan's names.
        const made = table([...weights.backbone.values(), weights.cos, weights.sin, ...[...weights.adapter.values()].flatMap((t) => (t.wr ? [t.wr, t.a, t.b] : [t.a, t.b]))]);
        expect(made).toEqual(planned(weightsPlan(inp)));
        expect(planBytes(weightsPlan(inp))).toBe(weights.bytes);

        for (const { B, T } of shapes) {
          for (const training of [true, false]) {
            const g = { B, T, training };
            const graph = new LlamaGraph(ctx, weights, g);
            try {
              const plan = graphPlan(inp, g);
              expect(table(graph.tensors.values()), `B=${B} T=${T} training=${training}`).toEqual(planned(plan));
              expect(planBytes(plan)).toBe(graph.bytes);
              // runPlan is what the memory estimate sums: weights, graph and (training) the optimizer.
              const run = runPlan(inp, g);
              const optimizer = run.filter((t) => t.role === 'optimizer');
              expect(planBytes(run)).toBe(weights.bytes + graph.bytes + planBytes(optimizer));
              if (training) {
                expect(graph.params.map((p) => [p.name, [...p.param.shape]])).toEqual(trainableTensors(shape, cfg).map((t) => [t.name, [...t.shape]]));
                expect(graph.params.map((p) => p.grad.name)).toEqual(plan.filter((t) => t.role === 'gradients').map((t) => t.name));
              } else {
                expect(optimizer).toEqual([]);
              }
            } finally {
              graph.destroy();
            }
          }
        }

        // The Generator's KV cache: K and V [1, cap, KVH·D] per layer.
        const cap = 9;
        const gen = new Generator(ctx, weights, { maxLength: cap });
        try {
          const cache = generatorPlan(shape, cap).filter((t) => / [KV] cache$/.test(t.name));
          expect(cache).toHaveLength(2 * shape.numLayers);
          expect(planBytes(cache)).toBe(gen.cacheBytes);
        } finally {
          gen.destroy();
        }
      } finally {
        weights.destroy();
      }
    });
  }

  it('lists the weights alone without a graph', () => {
    const inp = { shape: TINY_SHAPE, adapter: defaultAdapterConfig('loramoe'), maxPositions: MAX_POSITIONS };
    expect(runPlan(inp, null)).toEqual(weightsPlan(inp));
    expect(new Set(runPlan(inp, null).map((t) => t.role))).toEqual(new Set(['weights', 'adapter']));
  });
});
