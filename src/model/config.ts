/**
 * Llama-family model configuration, parsed from a Hugging Face `config.json` (docs/ARCHITECTURE.md,
 * "Backbones").
 *
 * Dimension letters used across the model code:
 *   V vocab size, C hidden size, F feed-forward (intermediate) size, L layers,
 *   H query heads, KVH key/value heads (grouped-query attention: H / KVH query heads share one),
 *   D head dim (usually C / H).
 *
 * Supported `model_type`s: llama, mistral, qwen2. They share one block:
 *   x = x + o_proj(attn(rope(q_proj(rms(x))), rope(k_proj(rms(x))), v_proj(rms(x))))
 *   x = x + down_proj(silu(gate_proj(rms(x))) * up_proj(rms(x)))
 * and differ only in biases (qwen2: q/k/v biases; llama: all four attention projections when
 * `attention_bias`), RoPE scaling (llama3) and sliding-window attention (mistral, qwen2).
 *
 * Defaults for absent fields are those of the transformers config classes (LlamaConfig,
 * MistralConfig, Qwen2Config), so a config.json that transformers accepts means the same here.
 * Every refusal names the field and what was expected.
 */
import type { LlamaShape } from '../method/shapes';

export const SUPPORTED_MODEL_TYPES = ['llama', 'mistral', 'qwen2'] as const;
type ModelType = (typeof SUPPORTED_MODEL_TYPES)[number];

/** Llama 3.1-style RoPE frequency scaling (`rope_scaling.rope_type == "llama3"`). */
interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** Sliding-window attention: each position attends to itself and the `size - 1` positions before it. */
interface SlidingWindow {
  size: number;
  /** Indices of the layers that use the window (the others attend to the whole prefix). */
  layers: number[];
}

/** A backbone's configuration: the shape every floor uses (LlamaShape) and what loading needs besides. */
export interface ModelConfig extends LlamaShape {
  modelType: ModelType;
  /** null: plain RoPE. */
  ropeScaling: Llama3RopeScaling | null;
  maxPositionEmbeddings: number;
  /** o_proj has a bias (llama with attention_bias only). */
  attentionOutBias: boolean;
  /** Always false: biased MLPs are refused. */
  mlpBias: false;
  /** Always 'silu': other activations are refused. */
  hiddenAct: 'silu';
  bosTokenId: number[];
  eosTokenId: number[];
  /** `torch_dtype` (or `dtype` in newer transformers), e.g. "bfloat16"; null when absent. */
  torchDtype: string | null;
  /** null when no layer uses a sliding window. */
  slidingWindow: SlidingWindow | null;
}

/** Largest layer count accepted (the largest published Llama-family models have about 128). */
const MAX_LAYERS = 1024;

export class ConfigError extends Error {
  readonly field: string;
  constructor(fileName: string, field: string, message: string) {
    super(`${fileName}: ${message}`);
    this.name = 'ConfigError';
    this.field = field;
  }
}

const show = (v: unknown): string => {
  if (v === undefined) return 'nothing';
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return 'an object';
  let text: string;
  try {
    text = JSON.stringify(v);
  } catch {
    text = Array.isArray(v) ? '[...]' : String(v); // nested too deep for JSON.stringify (or a bigint)
  }
  return Array.isArray(v) ? `an array ${text.slice(0, 60)}` : text;
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** transformers' class defaults for fields a config.json may leave out. */
const MAX_POSITION_DEFAULTS: Record<ModelType, number> = { llama: 2048, mistral: 4096 * 32, qwen2: 32768 };

/** Reads fields of one JSON object, each refusal naming the field (with a prefix for nested objects). */
class Fields {
  constructor(
    private readonly obj: Record<string, unknown>,
    private readonly fileName: string,
    private readonly prefix = '',
  ) {}

  fail(field: string, message: string): never {
    throw new ConfigError(this.fileName, this.prefix + field, message);
  }

  name(field: string): string {
    return this.prefix + field;
  }

  has(field: string): boolean {
    return this.obj[field] !== undefined && this.obj[field] !== null;
  }

  raw(field: string): unknown {
    return this.obj[field];
  }

  /** An integer >= min; `fallback` when absent or null (required when no fallback). */
  int(field: string, min: number, fallback?: number): number {
    const v = this.obj[field];
    const expected = min === 1 ? 'a positive integer' : min === 0 ? 'a non-negative integer' : `an integer >= ${min}`;
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      this.fail(field, `${this.name(field)} is missing (expected ${expected})`);
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      this.fail(field, `${this.name(field)} must be ${expected}, found ${show(v)}`);
    }
    return v;
  }

  /** A finite number > 0; `fallback` when absent or null. */
  positive(field: string, fallback?: number): number {
    const v = this.obj[field];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      this.fail(field, `${this.name(field)} is missing (expected a positive number)`);
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      this.fail(field, `${this.name(field)} must be a positive number, found ${show(v)}`);
    }
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.obj[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') this.fail(field, `${this.name(field)} must be true or false, found ${show(v)}`);
    return v;
  }

  string(field: string): string | null {
    const v = this.obj[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') this.fail(field, `${this.name(field)} must be a string, found ${show(v)}`);
    return v;
  }

  /** A token id or a list of them (absent or null: empty). */
  tokenIds(field: string): number[] {
    const v = this.obj[field];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    for (const id of list) {
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
        this.fail(field, `${this.name(field)} must be a token id (a non-negative integer) or a list of them, found ${show(v)}`);
      }
    }
    return list as number[];
  }
}

function parseRopeScaling(v: unknown, field: string, fileName: string): Llama3RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (!isObject(v)) throw new ConfigError(fileName, field, `${field} must be null or an object, found ${show(v)}`);
  const f = new Fields(v, fileName, `${field}.`);
  const typeField = f.has('rope_type') ? 'rope_type' : 'type';
  const type = f.string(typeField);
  if (type === null || type === 'default') return null; // plain RoPE
  if (type !== 'llama3') {
    f.fail(typeField, `${f.name(typeField)} ${show(type)} is not supported (supported: "llama3", or null / "default" for plain RoPE)`);
  }
  const scaling: Llama3RopeScaling = {
    type: 'llama3',
    factor: f.positive('factor'),
    lowFreqFactor: f.positive('low_freq_factor'),
    highFreqFactor: f.positive('high_freq_factor'),
    originalMaxPositionEmbeddings: f.int('original_max_position_embeddings', 1),
  };
  if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
    f.fail(
      'high_freq_factor',
      `${f.name('high_freq_factor')} (${scaling.highFreqFactor}) must be greater than ${f.name('low_freq_factor')} (${scaling.lowFreqFactor})`,
    );
  }
  return scaling;
}

/**
 * Parses and checks a Hugging Face config.json (already JSON-decoded) of a llama, mistral or qwen2
 * model.
 */
export function parseModelConfig(json: unknown, fileName = 'config.json'): ModelConfig {
  if (!isObject(json)) throw new ConfigError(fileName, '', `expected a JSON object, found ${show(json)}`);
  const f = new Fields(json, fileName);

  const modelType = json.model_type;
  if (modelType === undefined || modelType === null) {
    f.fail('model_type', `model_type is missing (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
  }
  if (typeof modelType !== 'string' || !(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    f.fail('model_type', `model_type ${show(modelType)} is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
  }
  const type = modelType as ModelType;

  if (f.has('quantization_config')) {
    f.fail('quantization_config', 'quantization_config is present: quantized checkpoints are not supported (expected F32, F16 or BF16 weights)');
  }

  const hiddenSize = f.int('hidden_size', 1);
  const intermediateSize = f.int('intermediate_size', 1);
  const numLayers = f.int('num_hidden_layers', 1);
  // Far beyond any model a browser can hold; refusing early keeps per-layer lists bounded.
  if (numLayers > MAX_LAYERS) f.fail('num_hidden_layers', `num_hidden_layers (${numLayers}) is more than the ${MAX_LAYERS} layers supported`);
  const numHeads = f.int('num_attention_heads', 1);
  const numKvHeads = f.int('num_key_value_heads', 1, numHeads);
  if (numHeads % numKvHeads !== 0) {
    f.fail('num_key_value_heads', `num_key_value_heads (${numKvHeads}) must divide num_attention_heads (${numHeads})`);
  }
  let headDim: number;
  if (f.has('head_dim')) {
    headDim = f.int('head_dim', 1);
  } else {
    if (hiddenSize % numHeads !== 0) {
      f.fail(
        'num_attention_heads',
        `hidden_size (${hiddenSize}) must be divisible by num_attention_heads (${numHeads}) when head_dim is absent`,
      );
    }
    headDim = hiddenSize / numHeads;
  }
  if (headDim % 2 !== 0) f.fail('head_dim', `head dim (${headDim}) must be even for rotary embeddings`);

  const hiddenAct = f.string('hidden_act') ?? 'silu';
  if (hiddenAct !== 'silu') f.fail('hidden_act', `hidden_act ${show(hiddenAct)} is not supported (expected "silu")`);

  let attentionBias = false;
  let attentionOutBias = false;
  if (type === 'qwen2') {
    attentionBias = true; // Qwen2 always has q/k/v biases and no o_proj bias
  } else if (type === 'llama') {
    attentionBias = attentionOutBias = f.bool('attention_bias', false);
    if (f.bool('mlp_bias', false)) {
      f.fail('mlp_bias', 'mlp_bias is true: biased MLP projections are not supported (expected false or absent)');
    }
  }

  // RoPE: rope_theta / rope_scaling, or the newer rope_parameters {rope_type, rope_theta, ...}.
  const params = json.rope_parameters;
  let ropeTheta: number;
  let ropeScaling: Llama3RopeScaling | null;
  if (isObject(params) && !f.has('rope_theta')) {
    const pf = new Fields(params, fileName, 'rope_parameters.');
    ropeTheta = pf.positive('rope_theta', 10000);
    ropeScaling = parseRopeScaling(params, 'rope_parameters', fileName);
  } else {
    ropeTheta = f.positive('rope_theta', 10000);
    ropeScaling = parseRopeScaling(json.rope_scaling, 'rope_scaling', fileName);
  }

  const maxPositionEmbeddings = f.int('max_position_embeddings', 1, MAX_POSITION_DEFAULTS[type]);

  let slidingWindow: SlidingWindow | null = null;
  // Built only where a window needs the list (not for llama: num_hidden_layers may be any safe integer).
  const all = (): number[] => Array.from({ length: numLayers }, (_, i) => i);
  if (type === 'mistral') {
    // MistralConfig's default is 4096; null turns the window off (Mistral 7B v0.2 and later).
    const size = json.sliding_window === null ? null : f.int('sliding_window', 1, 4096);
    if (size !== null) slidingWindow = { size, layers: all() };
  } else if (type === 'qwen2' && f.bool('use_sliding_window', false)) {
    const size = json.sliding_window === null ? null : f.int('sliding_window', 1, 4096);
    if (size !== null) {
      let layers: number[];
      const layerTypes = json.layer_types;
      if (layerTypes !== undefined && layerTypes !== null) {
        if (
          !Array.isArray(layerTypes) ||
          layerTypes.length !== numLayers ||
          !layerTypes.every((t) => t === 'sliding_attention' || t === 'full_attention')
        ) {
          f.fail('layer_types', `layer_types must list "sliding_attention" or "full_attention" for each of the ${numLayers} layers`);
        }
        const lt = layerTypes as string[];
        layers = all().filter((i) => lt[i] === 'sliding_attention');
      } else {
        // Qwen2: layers from max_window_layers on use the window.
        const from = f.int('max_window_layers', 0, 28);
        layers = all().filter((i) => i >= from);
      }
      if (layers.length > 0) slidingWindow = { size, layers };
    }
  }

  return {
    modelType: type,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: f.positive('rms_norm_eps', 1e-6),
    ropeTheta,
    ropeScaling,
    vocabSize: f.int('vocab_size', 1),
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
    maxPositionEmbeddings,
    attentionBias,
    attentionOutBias,
    mlpBias: false,
    hiddenAct: 'silu',
    bosTokenId: f.tokenIds('bos_token_id'),
    eosTokenId: f.tokenIds('eos_token_id'),
    torchDtype: f.string('torch_dtype') ?? f.string('dtype'),
    slidingWindow,
  };
}

/**
 * Whether the sliding window changes attention for sequences of `seqLen` tokens (in `layer`, or in
 * any layer): only when a sequence is longer than the window.
 */
export function slidingWindowActive(cfg: ModelConfig, seqLen: number, layer?: number): boolean {
  const w = cfg.slidingWindow;
  if (w === null || seqLen <= w.size) return false;
  return layer === undefined ? w.layers.length > 0 : w.layers.includes(layer);
}

export interface ExpectedTensor {
  /** Hugging Face checkpoint name. */
  name: string;
  /** PyTorch layout: Linear weights are [out, in]. */
  shape: number[];
}

/**
 * The tensors a checkpoint of this config must hold, with their shapes, in model order:
 * model.embed_tokens.weight [V, C]; per layer input_layernorm [C], self_attn.{q,k,v,o}_proj
 * ([H*D, C], [KVH*D, C], [KVH*D, C], [C, H*D], plus biases when the model has them),
 * post_attention_layernorm [C], mlp.{gate,up}_proj [F, C], mlp.down_proj [C, F];
 * model.norm.weight [C]; lm_head.weight [V, C] unless tied to the embedding.
 */
export function expectedTensorNames(cfg: ModelConfig): ExpectedTensor[] {
  const { hiddenSize: C, intermediateSize: F, vocabSize: V, numHeads: H, numKvHeads: KVH, headDim: D } = cfg;
  const out: ExpectedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [V, C] }];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    out.push({ name: `${p}input_layernorm.weight`, shape: [C] });
    out.push({ name: `${p}self_attn.q_proj.weight`, shape: [H * D, C] });
    if (cfg.attentionBias) out.push({ name: `${p}self_attn.q_proj.bias`, shape: [H * D] });
    out.push({ name: `${p}self_attn.k_proj.weight`, shape: [KVH * D, C] });
    if (cfg.attentionBias) out.push({ name: `${p}self_attn.k_proj.bias`, shape: [KVH * D] });
    out.push({ name: `${p}self_attn.v_proj.weight`, shape: [KVH * D, C] });
    if (cfg.attentionBias) out.push({ name: `${p}self_attn.v_proj.bias`, shape: [KVH * D] });
    out.push({ name: `${p}self_attn.o_proj.weight`, shape: [C, H * D] });
    if (cfg.attentionOutBias) out.push({ name: `${p}self_attn.o_proj.bias`, shape: [C] });
    out.push({ name: `${p}post_attention_layernorm.weight`, shape: [C] });
    out.push({ name: `${p}mlp.gate_proj.weight`, shape: [F, C] });
    out.push({ name: `${p}mlp.up_proj.weight`, shape: [F, C] });
    out.push({ name: `${p}mlp.down_proj.weight`, shape: [C, F] });
  }
  out.push({ name: 'model.norm.weight', shape: [C] });
  if (!cfg.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [V, C] });
  return out;
}

/** Number of parameters of the backbone (a tied lm_head counted once, with the embedding). */
export function parameterCount(cfg: ModelConfig): number {
  let n = 0;
  for (const t of expectedTensorNames(cfg)) n += t.shape.reduce((a, b) => a * b, 1);
  return n;
}
