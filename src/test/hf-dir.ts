/**
 * Tiny Hugging Face model directories for tests: config.json (tinyConfigJson), the weights as one
 * model.safetensors or as shards with model.safetensors.index.json, a hand-built word-level
 * tokenizer.json and tokenizer_config.json. Built in memory (for MemorySource) and optionally
 * written to a folder (for DirectorySource).
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { FileEntry } from '../io/browser-files';
import type { FloatDtype } from '../io/dtypes';
import { type TensorToWrite, writeSafetensors } from '../io/safetensors';
import { expectedTensorNames, type ModelConfig, parseModelConfig } from '../model/config';
import { randomWeights, tinyConfigJson } from './tiny-llama';

/** The special tokens of the tiny tokenizer, at ids 0..3 (Llama order, plus a pad token). */
const TINY_SPECIAL_TOKENS = ['<unk>', '<s>', '</s>', '<pad>'] as const;

/** The 19 words of the tiny tokenizer, ids 4..22 (23 ids in all, the tiny model's vocab_size). */
const TINY_WORDS = [
  'the', 'a', 'cat', 'dog', 'sat', 'on', 'mat', 'is', 'big', 'small',
  'red', 'blue', 'what', 'color', 'sky', 'yes', 'no', '.', '?',
] as const;

/**
 * A word-level tokenizer.json: WordLevel model over the special tokens and TINY_WORDS, plus
 * `extraWords` words `w0`, `w1`, ... (ids from 23 on, to make a tokenizer bigger than a vocabulary),
 * split on whitespace and punctuation (the Whitespace pre-tokenizer).
 */
export function tinyTokenizerJson(extraWords = 0): Record<string, unknown> {
  const tokens: string[] = [...TINY_SPECIAL_TOKENS, ...TINY_WORDS];
  for (let i = 0; i < extraWords; i++) tokens.push(`w${i}`);
  const vocab: Record<string, number> = {};
  tokens.forEach((t, id) => {
    vocab[t] = id;
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: TINY_SPECIAL_TOKENS.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
  };
}

export function tinyTokenizerConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    bos_token: '<s>',
    eos_token: '</s>',
    pad_token: '<pad>',
    unk_token: '<unk>',
    model_max_length: 64,
    tokenizer_class: 'PreTrainedTokenizerFast',
    ...overrides,
  };
}

export interface TinyHfOptions {
  /** Overrides of tinyConfigJson() (e.g. tie_word_embeddings: false). */
  config?: Record<string, unknown>;
  /** Dtype the weights are written in (default F32). */
  dtype?: FloatDtype;
  /** 1 (default): model.safetensors; more: that many shards plus model.safetensors.index.json. */
  shards?: number;
  seed?: number;
  /** Extra words in the tokenizer (ids from 23 on). */
  extraWords?: number;
  /** Edits the list of tensors before it is written (drop, reshape, add extras). */
  mutate?: (tensors: TensorToWrite[]) => TensorToWrite[];
}

export interface TinyHf {
  /** Relative path -> bytes. */
  files: Map<string, Uint8Array>;
  /** The float32 weights the files were written from (before any F16/BF16 rounding). */
  weights: Map<string, Float32Array>;
  config: ModelConfig;
}

const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v, null, 2));

export function shardName(i: number, n: number): string {
  const pad = (k: number) => String(k).padStart(5, '0');
  return `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
}

/** Builds the files of a tiny Hugging Face model directory in memory. */
export function tinyHfFiles(opts: TinyHfOptions = {}): TinyHf {
  const configJson = tinyConfigJson(opts.config ?? {});
  const config = parseModelConfig(configJson);
  const weights = randomWeights(config, opts.seed ?? 7);
  const dtype = opts.dtype ?? 'F32';
  let tensors: TensorToWrite[] = expectedTensorNames(config).map(({ name, shape }) => ({
    name,
    dtype,
    shape,
    data: weights.get(name)!,
  }));
  if (opts.mutate) tensors = opts.mutate(tensors);

  const files = new Map<string, Uint8Array>();
  files.set('config.json', enc(configJson));
  const shards = opts.shards ?? 1;
  if (shards <= 1) {
    files.set('model.safetensors', writeSafetensors(tensors, { format: 'pt' }));
  } else {
    const per = Math.ceil(tensors.length / shards);
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    for (let i = 0; i < shards; i++) {
      const part = tensors.slice(i * per, (i + 1) * per);
      const name = shardName(i, shards);
      for (const t of part) {
        weightMap[t.name] = name;
        totalSize += t.data.length * (t.dtype === 'F32' ? 4 : 2);
      }
      files.set(name, writeSafetensors(part, { format: 'pt' }));
    }
    files.set('model.safetensors.index.json', enc({ metadata: { total_size: totalSize }, weight_map: weightMap }));
  }
  files.set('tokenizer.json', enc(tinyTokenizerJson(opts.extraWords ?? 0)));
  files.set('tokenizer_config.json', enc(tinyTokenizerConfig()));
  return { files, weights, config };
}

/** Writes files (relative path -> bytes) under `dir`. */
export async function writeFiles(dir: string, files: Map<string, Uint8Array>): Promise<void> {
  for (const [path, bytes] of files) {
    const full = join(dir, path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, bytes);
  }
}

/** Four runner records, two of each official type (task_type 1: world knowledge, 0: downstream task). */
export const RUNNER_RECORDS = [
  { instruction: 'what color is the sky ?', input: '', output: 'blue .', task_type: 1 },
  { instruction: 'what color is the mat ?', input: '', output: 'red .', task_type: 1 },
  { instruction: 'is the cat big ?', input: 'the cat is small .', output: 'no .', task_type: 0 },
  { instruction: 'the cat sat on', input: '', output: 'the mat .', task_type: 0 },
];

/**
 * A runner test's folder, new under the system's temporary one (`prefix` starts its name):
 * `model`, the tiny backbone's Hugging Face folder (tinyHfFiles with `seed`, returned as `hf`), and
 * `data`, `records` as a JSON file.
 */
export async function runnerFolder(prefix: string, seed: number, records: readonly unknown[] = RUNNER_RECORDS): Promise<{ dir: string; model: string; data: string; hf: TinyHf }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const model = join(dir, 'model');
  const hf = tinyHfFiles({ seed });
  await writeFiles(model, hf.files);
  const data = join(dir, 'data.json');
  await writeFile(data, JSON.stringify(records));
  return { dir, model, data, hf };
}

/** A JSON file's bytes. */
export function jsonBytes(v: unknown): Uint8Array {
  return enc(v);
}

/**
 * A copy of a safetensors file with its JSON header edited (e.g. a dtype changed to I32 with the
 * same element size, to build files the writer refuses to make). Offsets are left as they are.
 */
export function rewriteSafetensorsHeader(bytes: Uint8Array, edit: (header: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>) => void): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>;
  edit(header);
  const json = new TextEncoder().encode(JSON.stringify(header));
  const m = json.byteLength + ((8 - (json.byteLength % 8)) % 8);
  const data = bytes.subarray(8 + n);
  const out = new Uint8Array(8 + m + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(m), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + m);
  out.set(data, 8 + m);
  return out;
}

/** A tiny model directory's files as the page hands them to the worker (a picked folder). */
export function asFileEntries(files: ReadonlyMap<string, Uint8Array>): FileEntry[] {
  return [...files].map(([path, b]) => ({ path, file: new Blob([b as Uint8Array<ArrayBuffer>]) }));
}
