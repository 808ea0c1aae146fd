/**
 * Worker entry points of the fuzz suite (called by name through isolated.ts's IsolatedRunner,
 * plain data in, plain data out): the config, tokenizer, adapter, backbone and dataset loaders.
 * Each returns a summary the test checks against the input.
 */
import { errorMessage } from '../util/errors';
import { decodeValue } from './json';

/** parseModelConfig on an encoded value. */
export async function fuzzParseModelConfig(encoded: string, fileName: string): Promise<unknown> {
  const { parseModelConfig } = await import('../model/config');
  return parseModelConfig(decodeValue(encoded), fileName);
}

/** parseAdapterConfig on an encoded value. */
export async function fuzzParseAdapterConfig(encoded: string, fileName: string): Promise<unknown> {
  const { parseAdapterConfig } = await import('../loramoe/files');
  return parseAdapterConfig(decodeValue(encoded), fileName);
}

/** What a loaded tokenizer did with a few texts (or how using it failed). */
export interface TokenizerSummary {
  eosId: number;
  bosId: number | null;
  padId: number;
  size: number;
  encoded: number[][];
  decoded: string[];
  /** Set when the tokenizer loaded but encoding or decoding then threw. */
  useError?: { ctor: string; message: string };
}

export const TOKENIZER_PROBES = ['the cat sat on the mat .', '', 'what color is the sky ?', 'Ünïcödé 😀 <s> </s> <pad>', 'a'.repeat(300)];

/** loadTokenizer on encoded tokenizer.json / tokenizer_config.json values, then encode and decode a few texts. */
export async function fuzzLoadTokenizer(tokenizerJson: string, tokenizerConfig: string, fileName: string): Promise<TokenizerSummary> {
  const { loadTokenizer } = await import('../data/tokenizer');
  const tok = loadTokenizer(decodeValue(tokenizerJson), decodeValue(tokenizerConfig), fileName);
  const summary: TokenizerSummary = { eosId: tok.eosId, bosId: tok.bosId, padId: tok.padId, size: tok.size, encoded: [], decoded: [] };
  try {
    for (const text of TOKENIZER_PROBES) {
      const ids = tok.encode(text, text.length % 2 === 0);
      summary.encoded.push(ids);
      // Decoded only when every id is an integer (the check reports other ids); decode([]) throws in
      // @huggingface/tokenizers ("token_ids must be a non-empty array"), so it is not probed.
      if (ids.length > 0 && ids.every((id) => Number.isSafeInteger(id))) summary.decoded.push(tok.decode(ids));
    }
    summary.decoded.push(tok.decode([tok.eosId, tok.padId, ...(tok.bosId === null ? [] : [tok.bosId])]));
  } catch (e) {
    summary.useError = { ctor: e instanceof Error ? e.constructor.name : typeof e, message: errorMessage(e) };
  }
  return summary;
}

/** What loadAdapter built: the config and, per adapter key, the sizes of the arrays. */
export interface AdapterSummary {
  cfg: unknown;
  baseModel: string;
  dataTypes?: string[];
  arrays: { key: string; wr: number | null; a: number; b: number }[];
  /** Sum over the arrays of A, B and router floats. */
  floats: number;
  /** True when every value is a finite or non-finite float (no holes): always true for typed arrays. */
  allFloat32: boolean;
}

/** loadAdapter from in-memory files onto the backbone shape `shape`. */
export async function fuzzLoadAdapter(label: string, files: [string, Uint8Array][], shape: unknown): Promise<AdapterSummary> {
  const { MemorySource } = await import('../io/files');
  const { loadAdapter } = await import('../loramoe/files');
  const loaded = await loadAdapter(new MemorySource(label, new Map(files)), shape as Parameters<typeof loadAdapter>[1]);
  const arrays: AdapterSummary['arrays'] = [];
  let floats = 0;
  let allFloat32 = true;
  for (const [key, t] of loaded.set) {
    arrays.push({ key, wr: t.wr ? t.wr.length : null, a: t.a.length, b: t.b.length });
    floats += t.a.length + t.b.length + (t.wr ? t.wr.length : 0);
    allFloat32 &&= t.a instanceof Float32Array && t.b instanceof Float32Array && (t.wr === null || t.wr instanceof Float32Array);
  }
  return { cfg: loaded.cfg, baseModel: loaded.baseModel, ...(loaded.dataTypes ? { dataTypes: loaded.dataTypes } : {}), arrays, floats, allFloat32 };
}

/** What loadBackbone built. */
export interface BackboneSummary {
  config: unknown;
  weights: { name: string; length: number }[];
  floats: number;
  tokenizerSize: number;
  eosId: number;
  warnings: string[];
  encoded: number[];
}

/** loadBackbone from in-memory files. */
export async function fuzzLoadBackbone(label: string, files: [string, Uint8Array][]): Promise<BackboneSummary> {
  const { MemorySource } = await import('../io/files');
  const { loadBackbone } = await import('../model/load');
  const b = await loadBackbone(new MemorySource(label, new Map(files)));
  const weights = [...b.weights].map(([name, w]) => ({ name, length: w.length }));
  return {
    config: b.config,
    weights,
    floats: weights.reduce((a, w) => a + w.length, 0),
    tokenizerSize: b.tokenizer.size,
    eosId: b.tokenizer.eosId,
    warnings: b.warnings,
    encoded: b.tokenizer.encode('the cat sat on the mat .'),
  };
}

/** parseDataset (the worker gets the bytes and the file name). */
export async function fuzzParseDataset(bytes: Uint8Array, fileName: string): Promise<unknown> {
  const { parseDataset } = await import('../data/import');
  return parseDataset(bytes, fileName);
}
