/**
 * Tiny random Llama models for tests: a shape with grouped key/value heads, float32-rounded random
 * weights under Hugging Face names, and adapters with non-zero B (a zero B would hide bugs in every
 * gradient but dB).
 */
import type { EncodedSample } from '../data/template';
import { defaultAdapterConfig } from '../loramoe/config';
import { type AdapterConfig } from '../method/adapter';
import { type AdapterSet, initAdapter } from '../loramoe/init';
import { expectedTensorNames, type ModelConfig, parseModelConfig } from '../model/config';
import { type AdapterWeights, type Weights } from '../reference/llama';
import { type LlamaShape } from '../method/shapes';
import { Rng } from '../util/random';

/** A Hugging Face config.json of a tiny Llama with grouped key/value heads (2 layers, 4 heads, 2 KV heads). */
export function tinyConfigJson(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 12,
    intermediate_size: 20,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 4,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    vocab_size: 23,
    tie_word_embeddings: true,
    hidden_act: 'silu',
    max_position_embeddings: 64,
    torch_dtype: 'float32',
    ...overrides,
  };
}

export const TINY_SHAPE: ModelConfig = parseModelConfig(tinyConfigJson());

/** The tiny model's configuration with config.json fields overridden (derived fields follow). */
export function tinyShape(overrides: Record<string, unknown>): ModelConfig {
  return parseModelConfig(tinyConfigJson(overrides));
}

/** Random float32 weights: norms near 1, matrices U(-0.5, 0.5)/sqrt(fan-in)·2 so activations stay O(1). */
export function randomWeights(s: ModelConfig, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float32Array>();
  for (const { name, shape } of expectedTensorNames(s)) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (name.endsWith('norm.weight')) out.set(name, rng.f32Array(n, 0.8, 1.2));
    else if (shape.length === 1) out.set(name, rng.f32Array(n, -0.1, 0.1));
    else if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') out.set(name, rng.f32Array(n, -1, 1));
    else {
      const b = 1.5 / Math.sqrt(shape[1]);
      out.set(name, rng.f32Array(n, -b, b));
    }
  }
  return out;
}

/** The official adapter defaults, for the tests of floors below loramoe/ (the CPU reference). */
export { defaultAdapterConfig };

/**
 * The tests' LoRAMoE adapter on the tiny model: 4 experts of rank 2 in two groups, alpha 4, the
 * LBC on (beta 0.5), no dropout; the official FFN targets unless `over` says otherwise.
 */
export function tinyMoe(over: Partial<AdapterConfig> = {}): AdapterConfig {
  return { ...defaultAdapterConfig('loramoe'), numExperts: 4, rank: 2, alpha: 4, groups: [[2, 3], [0, 1]], lbcBeta: 0.5, dropout: 0, ...over };
}

/** The official init, then B filled with random values so every gradient path is exercised. */
export function randomAdapter(s: LlamaShape, cfg: AdapterConfig, seed: number): AdapterSet {
  const set = initAdapter(s, cfg, seed);
  const rng = new Rng(seed + 1);
  for (const t of set.values()) t.b.set(rng.f32Array(t.b.length, -0.3, 0.3));
  return set;
}

export function toRefWeights(w: Map<string, Float32Array>): Weights {
  return new Map([...w].map(([k, v]) => [k, Float64Array.from(v)]));
}

export function toRefAdapter(a: AdapterSet): AdapterWeights {
  return new Map(
    [...a].map(([k, v]) => [k, { wr: v.wr ? Float64Array.from(v.wr) : null, a: Float64Array.from(v.a), b: Float64Array.from(v.b) }]),
  );
}

/** Data types of TINY_SAMPLES, in type-index order. */
export const TINY_TYPES = ['downstream task', 'world knowledge'];
/** Four encoded samples for the tiny model (ids below its vocabulary; BOS 1, separator 2, EOS 3): two of each type, one with a two-token prompt tail. */
export const TINY_SAMPLES: EncodedSample[] = [
  { ids: [1, 5, 9, 2, 14, 3], promptLength: 3, truncated: false, type: 'world knowledge' },
  { ids: [1, 6, 10, 2, 15, 16, 3], promptLength: 3, truncated: false, type: 'world knowledge' },
  { ids: [1, 7, 11, 2, 17, 3], promptLength: 3, truncated: false, type: 'downstream task' },
  { ids: [1, 8, 12, 13, 2, 18, 19, 3], promptLength: 4, truncated: false, type: 'downstream task' },
];
