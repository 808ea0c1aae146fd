/**
 * The model shapes the benchmarks measure: the shipped demo backbone and SmolLM2-135M (its
 * config.json as published; random weights are enough for speed and memory).
 */
import { type ModelConfig, parseModelConfig } from '../../src/model/config';

export const DEMO_CONFIG_JSON = {
  model_type: 'llama',
  hidden_size: 96,
  intermediate_size: 256,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 841,
  tie_word_embeddings: true,
  hidden_act: 'silu',
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
};

export const SMOLLM2_135M_CONFIG_JSON = {
  model_type: 'llama',
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  vocab_size: 49152,
  tie_word_embeddings: true,
  hidden_act: 'silu',
  max_position_embeddings: 8192,
  rms_norm_eps: 1e-5,
  rope_theta: 100000,
};

/** A shape's config, optionally with fewer layers (per-layer costs are identical). */
export function benchConfig(json: Record<string, unknown>, layers?: number): ModelConfig {
  return parseModelConfig(layers === undefined ? json : { ...json, num_hidden_layers: layers });
}
