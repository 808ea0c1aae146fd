/**
 * Loads a Llama-family backbone from a Hugging Face model directory (docs/ARCHITECTURE.md,
 * "Backbones"), wherever it lives (FileSource: a folder, picked files, a URL):
 *   config.json                      parsed by parseModelConfig, plus what the model code does not
 *                                    implement yet refused here (RoPE scaling)
 *   model.safetensors                or model.safetensors.index.json {weight_map: {tensor: shard}}
 *                                    and its shards, each read once
 *   tokenizer.json + tokenizer_config.json
 *
 * Every expected tensor (expectedTensorNames) must be present with its exact shape and a float
 * dtype (F32, F16, BF16; converted to float32 exactly). Extra tensors do not fail the load:
 * a tied checkpoint's lm_head.weight and rotary `inv_freq` buffers are dropped, anything else is
 * dropped and listed in `warnings`.
 */
import { type FileSource, MemorySource, readJson } from '../io/files';
import {
  getTensorF32,
  isFloatDtype,
  parseSafetensors,
  type SafetensorsFile,
} from '../io/safetensors';
import { loadTokenizer, type TextTokenizer } from '../data/tokenizer';
import { ConfigError, expectedTensorNames, type ModelConfig, parseModelConfig } from './config';

export interface Backbone {
  config: ModelConfig;
  /** Float32 weights under their Hugging Face names (exactly expectedTensorNames(config)). */
  weights: Map<string, Float32Array>;
  tokenizer: TextTokenizer;
  /** tokenizer_config.json as read (chat template, special tokens). */
  tokenizerConfig: unknown;
  /** The source's label. */
  name: string;
  /** Things the load accepted but a user may want to know (ignored tensors, sliding window). */
  warnings: string[];
}

export interface LoadBackboneOptions {
  /**
   * Called as file bytes arrive. FileSource reads whole files, so each call reports one file read
   * completely: `loadedBytes === totalBytes` = that file's size.
   */
  onProgress?(loadedBytes: number, totalBytes: number, file: string): void;
}

const CONFIG_FILE = 'config.json';
const WEIGHTS_FILE = 'model.safetensors';
const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';
const TOKENIZER_FILE = 'tokenizer.json';
const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const dims = (shape: readonly number[]): string => `[${shape.join(', ')}]`;
/** A value from a file, as JSON for a message, shortened; values nested too deep for JSON.stringify are elided. */
const showJson = (v: unknown, max = 80): string => {
  try {
    return (JSON.stringify(v) ?? String(v)).slice(0, max);
  } catch {
    return Array.isArray(v) ? '[...]' : '{...}';
  }
};

/** Rotary-embedding buffers some checkpoints carry (recomputed from rope_theta, never loaded). */
const isRotaryBuffer = (name: string): boolean => /(^|\.)rotary_emb\.inv_freq$/.test(name);

/**
 * Why the RoPE settings are refused, or null for plain RoPE. Only plain RoPE is implemented: any
 * rope_scaling (or rope_parameters) other than null / type "default" is refused.
 */
function ropeScalingRefusal(json: unknown): { field: string; message: string } | null {
  if (!isObject(json)) return null;
  const check = (field: string, v: unknown, typeKeys: string[]) => {
    if (v === undefined || v === null) return null;
    let type: unknown = undefined;
    if (isObject(v)) for (const k of typeKeys) if (v[k] !== undefined && v[k] !== null) type = v[k];
    if (type === 'default') return null;
    const what = type === undefined ? showJson(v) : `type ${showJson(type)}`;
    return {
      field,
      message:
        `${field} is set (${what}): RoPE scaling is not supported yet; ` +
        'the model code implements plain RoPE only (rope_scaling must be null or absent)',
    };
  };
  return (
    check('rope_scaling', json.rope_scaling, ['rope_type', 'type']) ??
    (json.rope_theta === undefined ? check('rope_parameters', json.rope_parameters, ['rope_type']) : null)
  );
}

async function readFile(src: FileSource, path: string, opts: LoadBackboneOptions): Promise<Uint8Array> {
  const bytes = await src.readBytes(path);
  opts.onProgress?.(bytes.byteLength, bytes.byteLength, path);
  return bytes;
}

async function readJsonFile(src: FileSource, path: string, opts: LoadBackboneOptions, what: string): Promise<unknown> {
  if (!(await src.has(path))) throw new Error(`${src.label}: ${path} is missing (${what})`);
  const bytes = await readFile(src, path, opts);
  // Parsed through readJson on the bytes already read, so messages match the rest of the io layer.
  return readJson(new MemorySource(src.label, new Map([[path, bytes]])), path);
}

/** Parses config.json and refuses what the model code does not implement. */
function parseBackboneConfig(json: unknown, fileName: string): { config: ModelConfig; warnings: string[] } {
  const rope = ropeScalingRefusal(json);
  let config: ModelConfig;
  try {
    config = parseModelConfig(json, fileName);
  } catch (e) {
    // A rope_scaling type the parser does not know: the message is ours (nothing is supported yet).
    if (rope && e instanceof ConfigError && e.field.startsWith(rope.field)) throw new ConfigError(fileName, rope.field, rope.message);
    throw e;
  }
  if (rope) throw new ConfigError(fileName, rope.field, rope.message);
  const warnings: string[] = [];
  const w = config.slidingWindow;
  if (w !== null) {
    const active = w.size < config.maxPositionEmbeddings;
    warnings.push(
      `${fileName}: sliding-window attention of ${w.size} tokens in ${w.layers.length} of ${config.numLayers} layers` +
        (active
          ? ` (shorter than max_position_embeddings ${config.maxPositionEmbeddings}); it only matters past ${w.size} tokens, keep sequences within it`
          : ` (not shorter than max_position_embeddings ${config.maxPositionEmbeddings}, so it never applies)`),
    );
  }
  return { config, warnings };
}

interface Shard {
  file: string;
  /** Tensors this shard must hold according to the index (all of them for model.safetensors). */
  mapped: Set<string> | null;
}

/** The files holding the weights: model.safetensors, or the shards named by the index (validated). */
async function weightFiles(src: FileSource, expected: Set<string>, cfg: ModelConfig, opts: LoadBackboneOptions): Promise<Shard[]> {
  if (await src.has(WEIGHTS_INDEX_FILE)) {
    const index = await readJsonFile(src, WEIGHTS_INDEX_FILE, opts, 'the shard index');
    const where = `${src.label}/${WEIGHTS_INDEX_FILE}`;
    if (!isObject(index) || !isObject(index.weight_map)) {
      throw new Error(`${where}: expected an object with a "weight_map" object {tensor name: shard file}`);
    }
    const byFile = new Map<string, Set<string>>();
    for (const [tensor, file] of Object.entries(index.weight_map)) {
      if (typeof file !== 'string' || file === '') throw new Error(`${where}: weight_map[${JSON.stringify(tensor)}] must be a file name, found ${showJson(file)}`);
      if (file.startsWith('/') || file.split(/[\\/]/).includes('..')) {
        throw new Error(`${where}: shard file name ${JSON.stringify(file)} (for ${tensor}) must stay inside the model directory`);
      }
      let set = byFile.get(file);
      if (!set) byFile.set(file, (set = new Set()));
      set.add(tensor);
    }
    const unmapped = [...expected].filter((n) => !(n in (index.weight_map as Record<string, unknown>)));
    if (unmapped.length > 0) {
      throw new Error(
        `${where}: ${unmapped.length} expected tensor(s) are not in weight_map: ${listNames(unmapped)}` +
          (unmapped.includes('lm_head.weight') && !cfg.tieWordEmbeddings ? ' (tie_word_embeddings is false, so lm_head.weight is needed)' : ''),
      );
    }
    for (const file of byFile.keys()) {
      if (!(await src.has(file))) {
        throw new Error(`${where}: shard ${file} is missing from ${src.label} (it holds ${listNames([...byFile.get(file)!])})`);
      }
    }
    return [...byFile].map(([file, mapped]) => ({ file, mapped }));
  }
  if (await src.has(WEIGHTS_FILE)) return [{ file: WEIGHTS_FILE, mapped: null }];
  const bin = (await src.has('pytorch_model.bin')) || (await src.has('pytorch_model.bin.index.json'));
  throw new Error(
    `${src.label}: no ${WEIGHTS_FILE} or ${WEIGHTS_INDEX_FILE}` +
      (bin ? ' (pytorch_model.bin is not supported: convert the checkpoint to safetensors)' : ''),
  );
}

function listNames(names: readonly string[], max = 5): string {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/**
 * Reads the weights: every expected tensor with its exact shape and a float dtype, converted to
 * float32. Returns them with warnings about what was ignored.
 */
async function loadWeights(src: FileSource, cfg: ModelConfig, opts: LoadBackboneOptions): Promise<{ weights: Map<string, Float32Array>; warnings: string[] }> {
  const expectedList = expectedTensorNames(cfg);
  const expected = new Map(expectedList.map((t) => [t.name, t.shape]));
  const shards = await weightFiles(src, new Set(expected.keys()), cfg, opts);
  const weights = new Map<string, Float32Array>();
  const foundIn = new Map<string, string>();
  const warnings: string[] = [];
  const unknown: string[] = [];
  for (const shard of shards) {
    const bytes = await readFile(src, shard.file, opts);
    const where = `${src.label}/${shard.file}`;
    const file: SafetensorsFile = parseSafetensors(bytes, where);
    if (shard.mapped) {
      const absent = [...shard.mapped].filter((n) => !file.tensors.has(n));
      if (absent.length > 0) {
        throw new Error(`${where}: ${WEIGHTS_INDEX_FILE} maps ${absent.length} tensor(s) to this shard but it does not hold them: ${listNames(absent)}`);
      }
    }
    for (const [name, info] of file.tensors) {
      const prev = foundIn.get(name);
      if (prev !== undefined) throw new Error(`${where}: tensor ${name} is also in ${prev}; each tensor must be in one shard`);
      foundIn.set(name, shard.file);
      const shape = expected.get(name);
      if (shape === undefined) {
        if (name === 'lm_head.weight' && cfg.tieWordEmbeddings) {
          warnings.push(`${shard.file}: lm_head.weight ignored: tie_word_embeddings is true, the embedding is the output head`);
        } else if (!isRotaryBuffer(name)) {
          unknown.push(`${name} ${dims(info.shape)}`);
        }
        continue;
      }
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`${where}: tensor ${name} has shape ${dims(info.shape)}, expected ${dims(shape)} from ${CONFIG_FILE}`);
      }
      if (!isFloatDtype(info.dtype)) {
        throw new Error(`${where}: tensor ${name} has dtype ${info.dtype}; weights must be F32, F16 or BF16`);
      }
      weights.set(name, getTensorF32(file, bytes, name));
    }
  }
  if (unknown.length > 0) warnings.push(`${unknown.length} unknown tensor(s) ignored: ${listNames(unknown, 10)}`);
  const files = shards.map((s) => s.file).join(', ');
  if (!cfg.tieWordEmbeddings && !weights.has('lm_head.weight')) {
    throw new Error(
      `${src.label}: lm_head.weight is missing from ${files} but tie_word_embeddings is false in ${CONFIG_FILE} ` +
        '(a checkpoint without an output head needs tie_word_embeddings: true)',
    );
  }
  const missing = expectedList.filter((t) => !weights.has(t.name)).map((t) => `${t.name} ${dims(t.shape)}`);
  if (missing.length > 0) {
    throw new Error(`${src.label}: ${missing.length} tensor(s) missing from ${files}: ${listNames(missing)}`);
  }
  return { weights, warnings };
}

export async function loadBackbone(src: FileSource, opts: LoadBackboneOptions = {}): Promise<Backbone> {
  const configJson = await readJsonFile(src, CONFIG_FILE, opts, 'the model configuration');
  const { config, warnings } = parseBackboneConfig(configJson, `${src.label}/${CONFIG_FILE}`);

  // Tokenizer before the (large) weights: a wrong tokenizer fails fast.
  const tokJson = await readJsonFile(src, TOKENIZER_FILE, opts, 'the tokenizer');
  const tokenizerConfig = await readJsonFile(src, TOKENIZER_CONFIG_FILE, opts, 'special tokens and chat template');
  const tokenizer = loadTokenizer(tokJson, tokenizerConfig, `${src.label}/${TOKENIZER_FILE}`);
  if (tokenizer.size > config.vocabSize) {
    throw new Error(
      `${src.label}: ${TOKENIZER_FILE} has ${tokenizer.size} token ids (0..${tokenizer.size - 1}) but the embedding has ` +
        `vocab_size ${config.vocabSize} rows in ${CONFIG_FILE}: ids past ${config.vocabSize - 1} have no embedding`,
    );
  }

  const loaded = await loadWeights(src, config, opts);
  return {
    config,
    weights: loaded.weights,
    tokenizer,
    tokenizerConfig,
    name: src.label,
    warnings: [...warnings, ...loaded.warnings],
  };
}
