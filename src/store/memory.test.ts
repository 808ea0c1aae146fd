/**
 * The memory estimate against the real allocations: for each mode, the bytes the estimate predicts
 * for the weights (GpuWeights.bytes), the graph (LlamaGraph.bytes) and the optimizer
 * (Trainer.optimizerBytes) equal what the engine allocates on a real WebGPU adapter, byte for byte.
 * Also: which tensor breaks which limit, and the estimate on a real-size config (SmolLM2-135M).
 */
import { describe, expect, it } from 'vitest';
import type { EncodedSample } from '../data/template';
import { defaultAdapterConfig } from '../loramoe/config';
import { type AdapterConfig } from '../method/adapter';
import { initAdapter } from '../loramoe/init';
import { parameterCount, parseModelConfig } from '../model/config';
import { GpuWeights } from '../model/weights';
import { testGpu } from '../test/gpu';
import { randomWeights, TINY_SHAPE } from '../test/tiny-llama';
import { defaultTrainSettings, Trainer } from '../train/trainer';
import { estimateMemory, formatBytes, formatCount } from './memory';

const TYPES = ['downstream task', 'world knowledge'];
const SAMPLES: EncodedSample[] = [
  { ids: [1, 5, 9, 2, 14, 3], promptLength: 3, truncated: false, type: 'world knowledge' },
  { ids: [1, 7, 11, 2, 17, 3], promptLength: 3, truncated: false, type: 'downstream task' },
];

const configs: [string, AdapterConfig][] = [
  ['loramoe (FFN, LBC on)', { ...defaultAdapterConfig('loramoe'), numExperts: 4, rank: 2, groups: [[2, 3], [0, 1]] }],
  ['loramoe (all projections, LBC off)', { ...defaultAdapterConfig('loramoe'), numExperts: 2, rank: 3, lbcBeta: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], groups: [[1], [0]] }],
  ['lora', { ...defaultAdapterConfig('lora'), rank: 2, targets: ['q_proj', 'v_proj', 'down_proj'] }],
  ['full', defaultAdapterConfig('full')],
];

describe('memory estimate', () => {
  for (const [name, cfg] of configs) {
    it(`matches the engine's allocations exactly: ${name}`, async () => {
      const ctx = await testGpu();
      const B = 3;
      const T = 7;
      const maxPositions = 16;
      const adapter = cfg.mode === 'full' ? null : initAdapter(TINY_SHAPE, cfg, 1);
      const weights = new GpuWeights(ctx, TINY_SHAPE, randomWeights(TINY_SHAPE, 2), cfg, adapter, maxPositions);
      const trainer = new Trainer(ctx, weights, SAMPLES, (t) => TYPES.indexOf(t), TYPES, { ...defaultTrainSettings(), batchSize: B, maxLength: T, steps: 2 }, 0);
      try {
        const est = estimateMemory({ config: TINY_SHAPE, adapter: cfg, batchSize: B, seqLen: T, maxPositions, training: true });
        expect(est.weightsBytes).toBe(weights.bytes);
        expect(est.graphBytes).toBe(trainer.graph.bytes);
        expect(est.bytes.optimizer).toBe(trainer.optimizerBytes);
        expect(est.total).toBe(weights.bytes + trainer.graph.bytes + trainer.optimizerBytes);
        const trainable = trainer.graph.params.reduce((n, p) => n + p.param.size, 0);
        expect(est.trainableParams).toBe(trainable);
        expect(est.bytes.gradients).toBe(trainable * 4);
      } finally {
        trainer.destroy();
        weights.destroy();
      }
    });
  }

  it('counts inference (no graph) as the weights alone', () => {
    const cfg = defaultAdapterConfig('none');
    const est = estimateMemory({ config: TINY_SHAPE, adapter: cfg, batchSize: 1, seqLen: 8, maxPositions: 8, training: false });
    expect(est.bytes.activations + est.bytes.gradients + est.bytes.optimizer + est.bytes.adapter).toBe(0);
    expect(est.total).toBe(est.weightsBytes);
  });

  it('names the tensor that does not fit, and which limit it breaks', () => {
    // SmolLM2-135M's shape: vocabulary 49152, so the logits [B*T, V] grow fastest.
    const smol = parseModelConfig({
      model_type: 'llama', hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3,
      rms_norm_eps: 1e-5, rope_theta: 100000, vocab_size: 49152, tie_word_embeddings: true, max_position_embeddings: 8192,
    });
    expect(formatCount(parameterCount(smol))).toBe('135M');
    const input = { config: smol, adapter: defaultAdapterConfig('loramoe'), batchSize: 4, seqLen: 256, maxPositions: 2048, training: true };
    const limits = { maxStorageBufferBindingSize: 128 * 2 ** 20, maxBufferSize: 256 * 2 ** 20 };
    const est = estimateMemory(input, limits);
    // logits: 4*256*49152*4 bytes = 192 MiB: over the binding limit (their gradient overwrites them: no second buffer).
    expect(est.tooLarge.map((t) => t.tensor).sort()).toEqual(['logits']);
    expect(est.tooLarge[0]).toMatchObject({ limitName: 'maxStorageBufferBindingSize', bytes: 4 * 256 * 49152 * 4, shape: [1024, 49152] });
    expect(est.largest[0].name).toMatch(/logits/);
    // Twice the batch: over maxBufferSize too.
    const big = estimateMemory({ ...input, batchSize: 8 }, limits);
    expect(big.tooLarge.find((t) => t.tensor === 'logits')?.limitName).toBe('maxBufferSize');
    // A batch of 1 fits. 8 experts of rank 4 and their routers on the three FFN projections of 30
    // layers: 30 * (2 * (8*576 + 32*576 + 1536*32) + (8*1536 + 32*1536 + 576*32)) = 6,727,680 values.
    const small = estimateMemory({ ...input, batchSize: 1 }, limits);
    expect(small.tooLarge).toEqual([]);
    expect(small.trainableParams).toBe(6_727_680);
    // The weights are float32 on the GPU whatever the checkpoint's dtype.
    expect(small.bytes.weights).toBeGreaterThanOrEqual(parameterCount(smol) * 4);
  });

  it('formats sizes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 2 ** 30)).toBe('3.0 GiB');
    expect(formatCount(1234)).toBe('1.2K');
    expect(formatCount(12)).toBe('12');
  });
});
