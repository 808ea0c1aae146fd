import { describe, expect, it } from 'vitest';
import { ConfigError, expectedTensorNames, parameterCount, parseModelConfig, slidingWindowActive } from './config';

/** SmolLM2-135M's config.json, written from its published facts (docs/ARCHITECTURE.md, "Backbones"). */
const SMOLLM2_135M = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  bos_token_id: 0,
  eos_token_id: 0,
  hidden_act: 'silu',
  hidden_size: 576,
  intermediate_size: 1536,
  max_position_embeddings: 8192,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 100000,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  vocab_size: 49152,
};

/** A Qwen2.5-0.5B-shaped config (q/k/v biases, tied embeddings). */
const QWEN25_05B = {
  model_type: 'qwen2',
  hidden_act: 'silu',
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  use_sliding_window: false,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  vocab_size: 151936,
  bos_token_id: 151643,
  eos_token_id: 151643,
};

const TINY = {
  model_type: 'llama',
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 50,
  rms_norm_eps: 1e-5,
};

function expectConfigError(json: unknown, field: string, ...patterns: (RegExp | string)[]): void {
  let err: unknown;
  try {
    parseModelConfig(json);
  } catch (e) {
    err = e;
  }
  expect(err, `expected an error about ${field}`).toBeInstanceOf(ConfigError);
  const ce = err as ConfigError;
  expect(ce.field).toBe(field);
  expect(ce.message.startsWith('config.json: ')).toBe(true);
  for (const p of patterns) {
    if (typeof p === 'string') expect(ce.message).toBe(p);
    else expect(ce.message).toMatch(p);
  }
}

describe('SmolLM2-135M', () => {
  const cfg = parseModelConfig(SMOLLM2_135M);

  it('parses every field', () => {
    expect(cfg).toEqual({
      modelType: 'llama',
      hiddenSize: 576,
      intermediateSize: 1536,
      numLayers: 30,
      numHeads: 9,
      numKvHeads: 3,
      headDim: 64,
      rmsNormEps: 1e-5,
      ropeTheta: 100000,
      ropeScaling: null,
      vocabSize: 49152,
      tieWordEmbeddings: true,
      maxPositionEmbeddings: 8192,
      attentionBias: false,
      attentionOutBias: false,
      mlpBias: false,
      hiddenAct: 'silu',
      bosTokenId: [0],
      eosTokenId: [0],
      torchDtype: 'bfloat16',
      slidingWindow: null,
    });
  });

  it('has 134,515,008 parameters (the published count, tied embeddings counted once)', () => {
    // embed 49152*576 = 28,311,552; per layer: q 576*576 + k,v 2*192*576 + o 576*576 = 884,736,
    // MLP 3*576*1536 = 2,654,208, two norms 1,152, so 3,540,096 * 30 = 106,202,880; final norm 576.
    expect(parameterCount(cfg)).toBe(134_515_008);
    expect(parameterCount({ ...cfg, tieWordEmbeddings: false })).toBe(134_515_008 + 49152 * 576);
  });

  it('lists the checkpoint tensors', () => {
    const names = expectedTensorNames(cfg);
    expect(names.length).toBe(1 + 30 * 9 + 1);
    expect(names[0]).toEqual({ name: 'model.embed_tokens.weight', shape: [49152, 576] });
    expect(names.slice(1, 10)).toEqual([
      { name: 'model.layers.0.input_layernorm.weight', shape: [576] },
      { name: 'model.layers.0.self_attn.q_proj.weight', shape: [576, 576] },
      { name: 'model.layers.0.self_attn.k_proj.weight', shape: [192, 576] },
      { name: 'model.layers.0.self_attn.v_proj.weight', shape: [192, 576] },
      { name: 'model.layers.0.self_attn.o_proj.weight', shape: [576, 576] },
      { name: 'model.layers.0.post_attention_layernorm.weight', shape: [576] },
      { name: 'model.layers.0.mlp.gate_proj.weight', shape: [1536, 576] },
      { name: 'model.layers.0.mlp.up_proj.weight', shape: [1536, 576] },
      { name: 'model.layers.0.mlp.down_proj.weight', shape: [576, 1536] },
    ]);
    expect(names[names.length - 1]).toEqual({ name: 'model.norm.weight', shape: [576] });
    expect(names.some((t) => t.name === 'lm_head.weight')).toBe(false);
    expect(new Set(names.map((t) => t.name)).size).toBe(names.length);
  });
});

describe('qwen2', () => {
  it('has q/k/v biases and the published Qwen2.5-0.5B count (494,032,768)', () => {
    const cfg = parseModelConfig(QWEN25_05B);
    expect(cfg.attentionBias).toBe(true);
    expect(cfg.attentionOutBias).toBe(false);
    expect(cfg.headDim).toBe(64);
    expect(cfg.slidingWindow).toBeNull(); // use_sliding_window is false
    const names = expectedTensorNames(cfg).map((t) => t.name);
    expect(names).toContain('model.layers.3.self_attn.q_proj.bias');
    expect(names).toContain('model.layers.3.self_attn.v_proj.bias');
    expect(names).not.toContain('model.layers.3.self_attn.o_proj.bias');
    expect(expectedTensorNames(cfg).find((t) => t.name === 'model.layers.0.self_attn.k_proj.bias')?.shape).toEqual([128]);
    expect(parameterCount(cfg)).toBe(494_032_768);
  });

  it('records the sliding window for layers from max_window_layers on', () => {
    const cfg = parseModelConfig({ ...QWEN25_05B, num_hidden_layers: 4, use_sliding_window: true, sliding_window: 8, max_window_layers: 2 });
    expect(cfg.slidingWindow).toEqual({ size: 8, layers: [2, 3] });
    expect(slidingWindowActive(cfg, 8)).toBe(false);
    expect(slidingWindowActive(cfg, 9)).toBe(true);
    expect(slidingWindowActive(cfg, 9, 1)).toBe(false);
    expect(slidingWindowActive(cfg, 9, 2)).toBe(true);
  });

  it('reads layer_types when given', () => {
    const cfg = parseModelConfig({
      ...QWEN25_05B,
      num_hidden_layers: 3,
      use_sliding_window: true,
      sliding_window: 8,
      layer_types: ['sliding_attention', 'full_attention', 'sliding_attention'],
    });
    expect(cfg.slidingWindow).toEqual({ size: 8, layers: [0, 2] });
    expectConfigError({ ...QWEN25_05B, num_hidden_layers: 3, use_sliding_window: true, layer_types: ['x'] }, 'layer_types', /each of the 3 layers/);
  });
});

describe('mistral', () => {
  const base = { ...TINY, model_type: 'mistral' };
  it('records sliding_window and says when it is active', () => {
    const cfg = parseModelConfig({ ...base, sliding_window: 4096 });
    expect(cfg.slidingWindow).toEqual({ size: 4096, layers: [0, 1] });
    expect(slidingWindowActive(cfg, 4096)).toBe(false);
    expect(slidingWindowActive(cfg, 4097)).toBe(true);
    expect(cfg.attentionBias).toBe(false);
  });
  it('null turns it off; absent is transformers default 4096', () => {
    expect(parseModelConfig({ ...base, sliding_window: null }).slidingWindow).toBeNull();
    expect(parseModelConfig(base).slidingWindow?.size).toBe(4096);
    expect(slidingWindowActive(parseModelConfig({ ...base, sliding_window: null }), 1e6)).toBe(false);
  });
  it('llama has no sliding window', () => {
    expect(parseModelConfig({ ...TINY, sliding_window: 4 }).slidingWindow).toBeNull();
  });
});

describe('defaults and optional fields', () => {
  it('fills transformers defaults', () => {
    const { rms_norm_eps: _, ...noEps } = TINY;
    const cfg = parseModelConfig({ ...noEps, num_key_value_heads: undefined });
    expect(cfg.numKvHeads).toBe(4);
    expect(cfg.ropeTheta).toBe(10000);
    expect(cfg.rmsNormEps).toBe(1e-6);
    expect(cfg.tieWordEmbeddings).toBe(false);
    expect(cfg.maxPositionEmbeddings).toBe(2048);
    expect(cfg.bosTokenId).toEqual([]);
    expect(cfg.torchDtype).toBeNull();
    expect(expectedTensorNames(cfg).at(-1)).toEqual({ name: 'lm_head.weight', shape: [50, 16] });
  });

  it('takes head_dim when present (not necessarily hidden / heads)', () => {
    const cfg = parseModelConfig({ ...TINY, head_dim: 8 });
    expect(cfg.headDim).toBe(8);
    const q = expectedTensorNames(cfg).find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight');
    const o = expectedTensorNames(cfg).find((t) => t.name === 'model.layers.0.self_attn.o_proj.weight');
    expect(q?.shape).toEqual([32, 16]);
    expect(o?.shape).toEqual([16, 32]);
    expect(parseModelConfig({ ...TINY, head_dim: null }).headDim).toBe(4);
  });

  it('token ids: a number or a list', () => {
    const cfg = parseModelConfig({ ...TINY, bos_token_id: 1, eos_token_id: [2, 7] });
    expect(cfg.bosTokenId).toEqual([1]);
    expect(cfg.eosTokenId).toEqual([2, 7]);
  });

  it('reads the newer dtype field', () => {
    expect(parseModelConfig({ ...TINY, dtype: 'float32' }).torchDtype).toBe('float32');
  });

  it('llama attention_bias adds all four attention biases', () => {
    const cfg = parseModelConfig({ ...TINY, attention_bias: true });
    const names = expectedTensorNames(cfg).map((t) => t.name);
    for (const p of ['q', 'k', 'v', 'o']) expect(names).toContain(`model.layers.1.self_attn.${p}_proj.bias`);
  });

  it('parses llama3 rope scaling (Llama 3.2 values)', () => {
    const cfg = parseModelConfig({
      ...TINY,
      rope_theta: 500000,
      rope_scaling: { factor: 32, high_freq_factor: 4, low_freq_factor: 1, original_max_position_embeddings: 8192, rope_type: 'llama3' },
    });
    expect(cfg.ropeTheta).toBe(500000);
    expect(cfg.ropeScaling).toEqual({ type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  });

  it('accepts the newer rope_parameters form', () => {
    const plain = parseModelConfig({ ...TINY, rope_parameters: { rope_type: 'default', rope_theta: 100000 } });
    expect(plain.ropeTheta).toBe(100000);
    expect(plain.ropeScaling).toBeNull();
    const l3 = parseModelConfig({
      ...TINY,
      rope_parameters: { rope_type: 'llama3', rope_theta: 500000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    });
    expect(l3.ropeScaling?.factor).toBe(8);
    expectConfigError({ ...TINY, rope_parameters: { rope_type: 'yarn', rope_theta: 1 } }, 'rope_parameters.rope_type', /"yarn" is not supported/);
  });
});

describe('refusals name the field and what was expected', () => {
  it('model_type', () => {
    expectConfigError({ ...TINY, model_type: 'gpt2' }, 'model_type', 'config.json: model_type "gpt2" is not supported (supported: llama, mistral, qwen2)');
    const { model_type: _, ...noType } = TINY;
    expectConfigError(noType, 'model_type', /model_type is missing \(supported: llama, mistral, qwen2\)/);
  });

  it('not an object', () => {
    expect(() => parseModelConfig([1])).toThrow(/config.json: expected a JSON object, found an array/);
    expect(() => parseModelConfig(null)).toThrow(/expected a JSON object/);
  });

  it('head counts', () => {
    expectConfigError({ ...SMOLLM2_135M, num_key_value_heads: 4 }, 'num_key_value_heads', 'config.json: num_key_value_heads (4) must divide num_attention_heads (9)');
    expectConfigError({ ...TINY, num_attention_heads: 3, num_key_value_heads: 3 }, 'num_attention_heads', /hidden_size \(16\) must be divisible by num_attention_heads \(3\)/);
    expectConfigError({ ...TINY, head_dim: 3, num_key_value_heads: 1 }, 'head_dim', /must be even/);
  });

  it('sizes must be positive integers', () => {
    expectConfigError({ ...TINY, hidden_size: '576' }, 'hidden_size', 'config.json: hidden_size must be a positive integer, found "576"');
    expectConfigError({ ...TINY, num_hidden_layers: 0 }, 'num_hidden_layers', /must be a positive integer, found 0/);
    expectConfigError({ ...TINY, intermediate_size: 1.5 }, 'intermediate_size', /found 1.5/);
    const { vocab_size: _, ...noVocab } = TINY;
    expectConfigError(noVocab, 'vocab_size', 'config.json: vocab_size is missing (expected a positive integer)');
    expectConfigError({ ...TINY, rms_norm_eps: -1 }, 'rms_norm_eps', /must be a positive number, found -1/);
    expectConfigError({ ...TINY, rope_theta: 'big' }, 'rope_theta', /must be a positive number, found "big"/);
    expectConfigError({ ...TINY, tie_word_embeddings: 'yes' }, 'tie_word_embeddings', /must be true or false/);
  });

  it('unsupported architecture features', () => {
    expectConfigError({ ...TINY, mlp_bias: true }, 'mlp_bias', /mlp_bias is true: biased MLP projections are not supported/);
    expectConfigError({ ...TINY, hidden_act: 'gelu' }, 'hidden_act', 'config.json: hidden_act "gelu" is not supported (expected "silu")');
    expectConfigError({ ...TINY, quantization_config: { quant_method: 'gptq' } }, 'quantization_config', /quantized checkpoints are not supported/);
  });

  it('rope_scaling', () => {
    expectConfigError({ ...TINY, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'rope_scaling.rope_type', /rope_scaling.rope_type "yarn" is not supported \(supported: "llama3"/);
    expectConfigError({ ...TINY, rope_scaling: { type: 'linear', factor: 2 } }, 'rope_scaling.type', /rope_scaling.type "linear" is not supported/);
    expectConfigError({ ...TINY, rope_scaling: 2 }, 'rope_scaling', /rope_scaling must be null or an object, found 2/);
    expectConfigError(
      { ...TINY, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4 } },
      'rope_scaling.original_max_position_embeddings',
      /rope_scaling.original_max_position_embeddings is missing/,
    );
    expectConfigError(
      { ...TINY, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 4, high_freq_factor: 1, original_max_position_embeddings: 8192 } },
      'rope_scaling.high_freq_factor',
      /must be greater than rope_scaling.low_freq_factor/,
    );
  });

  it('token ids', () => {
    expectConfigError({ ...TINY, eos_token_id: [1, 'x'] }, 'eos_token_id', /eos_token_id must be a token id/);
    expectConfigError({ ...TINY, bos_token_id: -1 }, 'bos_token_id', /non-negative integer/);
  });
});
