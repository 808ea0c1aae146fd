/**
 * Fuzz tests of the backbone loader (src/model/load.ts, loadBackbone through a MemorySource) with
 * edited tiny Hugging Face model directories (src/test/hf-dir.ts tinyHfFiles): config.json,
 * tokenizer.json, tokenizer_config.json and model.safetensors.index.json edited as values, as text
 * or as bytes; model.safetensors and its shards with byte edits or with their headers edited;
 * files missing, renamed or swapped.
 *
 * Every case must end in an Error (not a TypeError, RangeError, ...) whose message names a file of
 * the directory, or in a backbone whose weights are exactly the tensors its config expects, with
 * no more floats than the weight files hold, and a tokenizer that fits the vocabulary. Cases run
 * in a worker thread with a time limit and a heap limit: an input that makes the loader loop or
 * allocate without bound is reported.
 *
 * Run counts: see harness.ts (FUZZ_RUNS multiplies them).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SafetensorsError } from '../io/safetensors';
import { ConfigError, expectedTensorNames, type ModelConfig } from '../model/config';
import { tinyHfFiles } from '../test/hf-dir';
import { byteMutations, mutateBytes } from './bytes';
import { type BackboneSummary } from './entries';
import { checkClearError, FUZZ_TEST_TIMEOUT_MS, fuzzParams, type Outcome, Tally, violation } from './harness';
import { assertIsolated, isolatedCase, isolatedFuzzTest, SlowCases, suiteRunner, validCase } from './isolated';
import {
  deepValue,
  jsonFileBytes,
  jsonFileMutation,
  jsonMutations,
  materialize,
  mutateJson,
  mutateJsonFile,
  toJsonText,
  weirdJsonValue,
} from './json';

const LABEL = 'fuzz/backbone';
const tally = new Tally('backbone.fuzz.test.ts');
const runner = suiteRunner(tally, { SafetensorsError, ConfigError });

/** Valid directories: one file or shards, F32 / BF16 / F16, tied or not, llama or mistral. */
const DIRS: Map<string, Uint8Array>[] = [
  tinyHfFiles().files,
  tinyHfFiles({ dtype: 'BF16', shards: 2, config: { tie_word_embeddings: false } }).files,
  tinyHfFiles({ dtype: 'F16', shards: 3 }).files,
  tinyHfFiles({ config: { model_type: 'mistral', sliding_window: 16 } }).files,
];

const KNOWN_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin'];

const JSON_FIELDS = [
  'model_type',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'vocab_size',
  'tie_word_embeddings',
  'rope_scaling',
  'rope_parameters',
  'rope_theta',
  'sliding_window',
  'model',
  'vocab',
  'added_tokens',
  'eos_token',
  'bos_token',
  'pad_token',
  'weight_map',
  'metadata',
  'model.embed_tokens.weight',
  'lm_head.weight',
];

const HEADER_FIELDS = ['dtype', 'shape', 'data_offsets', '__metadata__', 'model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight'];

type Edit =
  | { kind: 'json'; file: number; m: ReturnType<typeof jsonFileMutation> extends fc.Arbitrary<infer T> ? T : never }
  | { kind: 'bytes'; file: number; m: ReturnType<typeof byteMutations> extends fc.Arbitrary<infer T> ? T : never }
  | { kind: 'header'; file: number; m: ReturnType<typeof jsonMutations> extends fc.Arbitrary<infer T> ? T : never }
  | { kind: 'delete'; file: number }
  | { kind: 'rename'; file: number; to: string }
  | { kind: 'swap'; file: number; other: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('json' as const), file: fc.nat(), m: jsonFileMutation(JSON_FIELDS) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('bytes' as const), file: fc.nat(), m: byteMutations(3) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('header' as const), file: fc.nat(), m: jsonMutations(HEADER_FIELDS, 2) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), file: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('rename' as const), file: fc.nat(), to: fc.constantFrom(...KNOWN_FILES, 'model-00001-of-00002.safetensors', '../escape.safetensors', 'x') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('swap' as const), file: fc.nat(), other: fc.nat() }) },
);

/** A safetensors file with its JSON header edited as a value (data section unchanged). */
function editHeader(bytes: Uint8Array, m: Parameters<typeof mutateJson>[1]): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as unknown;
  const text = new TextEncoder().encode(toJsonText(mutateJson(header, m)));
  const data = bytes.subarray(8 + n);
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

function applyEdits(dir: Map<string, Uint8Array>, edits: readonly Edit[]): Map<string, Uint8Array> {
  const files = new Map(dir);
  for (const e of edits) {
    const names = [...files.keys()];
    if (names.length === 0) break;
    const name = names[e.file % names.length];
    const bytes = files.get(name)!;
    switch (e.kind) {
      case 'json': {
        let doc: unknown;
        try {
          doc = JSON.parse(new TextDecoder().decode(bytes));
        } catch {
          // not JSON (a weight file, or a JSON file already broken): edit its bytes instead
          files.set(name, mutateBytes(bytes, e.m.bytes.length > 0 ? e.m.bytes : [{ kind: 'flip', at: e.file, bit: 3 }]));
          break;
        }
        files.set(name, mutateJsonFile(doc, e.m));
        break;
      }
      case 'bytes':
        files.set(name, mutateBytes(bytes, e.m));
        break;
      case 'header':
        if (name.endsWith('.safetensors')) {
          try {
            files.set(name, editHeader(bytes, e.m));
          } catch {
            // an earlier edit broke the header: leave the file as it is
          }
        }
        break;
      case 'delete':
        files.delete(name);
        break;
      case 'rename':
        files.delete(name);
        files.set(e.to, bytes);
        break;
      case 'swap': {
        const other = names[e.other % names.length];
        files.set(name, files.get(other)!);
        files.set(other, bytes);
        break;
      }
    }
  }
  return files;
}

function describeDir(files: Map<string, Uint8Array>, dir: Map<string, Uint8Array>): string {
  const changed = [...files].filter(([k, v]) => dir.get(k) !== v).map(([k, v]) => `${k} (${v.length} bytes): ${k.endsWith('.json') ? new TextDecoder().decode(v).slice(0, 1500) : Buffer.from(v).toString('hex').slice(0, 600)}`);
  const gone = [...dir.keys()].filter((k) => !files.has(k));
  return `changed: ${changed.join(' ; ') || 'none'}; missing: ${gone.join(', ') || 'none'}`;
}

function checkBackbone(r: Outcome<BackboneSummary>, files: Map<string, Uint8Array>): void {
  if (!r.ok) {
    checkClearError(r.error, { mustIncludeOneOf: [...new Set([...KNOWN_FILES, ...files.keys()])] });
    return;
  }
  const b = r.value;
  const cfg = b.config as ModelConfig;
  const expected = expectedTensorNames(cfg);
  const got = new Map(b.weights.map((w) => [w.name, w.length]));
  if (got.size !== expected.length) violation(`${got.size} weights loaded, the config expects ${expected.length}`);
  for (const t of expected) {
    const n = t.shape.reduce((a, c) => a * c, 1);
    if (got.get(t.name) !== n) violation(`weight ${t.name} has ${got.get(t.name)} values, shape [${t.shape.join(', ')}] needs ${n}`);
  }
  let fileBytes = 0;
  for (const [k, v] of files) if (k.endsWith('.safetensors')) fileBytes += v.length;
  if (b.floats * 2 > fileBytes) violation(`${b.floats} floats loaded from ${fileBytes} bytes of weight files`);
  if (!(b.tokenizerSize >= 1 && b.tokenizerSize <= cfg.vocabSize)) violation(`tokenizer size ${b.tokenizerSize} vs vocab_size ${cfg.vocabSize}`);
  if (!b.encoded.every((id) => Number.isSafeInteger(id) && id >= 0 && id < b.tokenizerSize)) violation(`encode produced ids outside the tokenizer: ${JSON.stringify(b.encoded)}`);
}

async function backboneCase(label: string, files: Map<string, Uint8Array>, dir: Map<string, Uint8Array>, slow: SlowCases): Promise<void> {
  const r = await isolatedCase<BackboneSummary>(runner, 'fuzzLoadBackbone', [LABEL, [...files]], label, () => describeDir(files, dir), slow, tally);
  if (r) checkBackbone(r, files);
}

describe('backbone loader fuzz', () => {
  it('the valid directories load', async () => {
    for (const dir of DIRS) {
      const r = await validCase<BackboneSummary>(runner, 'fuzzLoadBackbone', [LABEL, [...dir]], tally);
      checkBackbone(r, dir);
    }
  });

  isolatedFuzzTest('edited directories (JSON values / text / bytes, weight bytes and headers, files missing, renamed, swapped)', fuzzParams(6001, 1200), (slow) =>
    fc.asyncProperty(fc.nat({ max: DIRS.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 2 }), async (i, edits) => {
      await backboneCase(`edited: ${edits[0].kind}${edits.length > 1 ? ' + more' : ''}`, applyEdits(DIRS[i], edits), DIRS[i], slow);
    }),
  );
  const CONFIG_KEYS = JSON_FIELDS.slice(0, 13);

  it('config.json, tokenizer_config.json and the shard index with fields replaced by odd values (huge, nested, wrong types)', async () => {
    const target = fc.constantFrom('config.json', 'tokenizer_config.json', 'model.safetensors.index.json');
    const keysFor = (file: string, doc: Record<string, unknown>): string[] =>
      file === 'config.json' ? CONFIG_KEYS : file === 'tokenizer_config.json' ? ['eos_token', 'bos_token', 'pad_token', 'unk_token', 'chat_template'] : Object.keys((doc.weight_map ?? {}) as object).slice(0, 6).concat(['weight_map']);
    await assertIsolated(
      (slow) =>
        fc.asyncProperty(fc.nat({ max: DIRS.length - 1 }), target, fc.array(fc.tuple(fc.nat(), weirdJsonValue()), { minLength: 1, maxLength: 3 }), async (i, file, edits) => {
          const dir = DIRS[i];
          const bytes = dir.get(file);
          if (!bytes) return; // no index in a one-file directory
          const doc = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
          const keys = keysFor(file, doc);
          const weightMap = file === 'model.safetensors.index.json' ? { ...(doc.weight_map as Record<string, unknown>) } : null;
          for (const [k, v] of edits) {
            const key = keys[k % keys.length];
            if (weightMap && key !== 'weight_map') weightMap[key] = materialize(v);
            else doc[key] = materialize(v);
          }
          if (weightMap && doc.weight_map !== null && typeof doc.weight_map === 'object' && !Array.isArray(doc.weight_map)) doc.weight_map = weightMap;
          const files = new Map(dir);
          files.set(file, jsonFileBytes(doc));
          await backboneCase(`${file} fields replaced`, files, dir, slow);
        }),
      fuzzParams(6002, 600),
    );
  }, FUZZ_TEST_TIMEOUT_MS);
  it('regression: rope_scaling or a weight_map entry nested 10,000 deep is refused clearly, not a stack overflow', async () => {
    const deep = deepValue(10_000, 'object');
    const slow = new SlowCases();
    const config = JSON.parse(new TextDecoder().decode(DIRS[0].get('config.json'))) as Record<string, unknown>;
    const index = JSON.parse(new TextDecoder().decode(DIRS[1].get('model.safetensors.index.json'))) as { weight_map: Record<string, unknown> };
    const cases: [Map<string, Uint8Array>, string][] = [
      [new Map(DIRS[0]).set('config.json', jsonFileBytes({ ...config, rope_scaling: deep })), 'config.json'],
      [new Map(DIRS[0]).set('config.json', jsonFileBytes({ ...config, rope_scaling: { rope_type: deep } })), 'config.json'],
      [new Map(DIRS[1]).set('model.safetensors.index.json', jsonFileBytes({ ...index, weight_map: { ...index.weight_map, 'model.norm.weight': deep } })), 'model.safetensors.index.json'],
    ];
    for (const [files, file] of cases) {
      const r = await isolatedCase<BackboneSummary>(runner, 'fuzzLoadBackbone', [LABEL, [...files]], 'regression: deep', () => file, slow, tally);
      expect(r?.ok, file).toBe(false);
      if (r && !r.ok) checkClearError(r.error, { mustInclude: [file] });
    }
    expect(slow.cases).toEqual([]);
  });

  // KNOWN BUG (left failing on purpose, see the fuzz report): loadBackbone lists the tensors the
  // config expects (expectedTensorNames: 9 per layer) before it looks at the weight files, so a
  // 400-byte config.json with num_hidden_layers 10^9 makes it build 9*10^9 entries: it runs out of
  // time (and memory) instead of saying the checkpoint lacks those layers.
  it('known bug: a config.json with num_hidden_layers 10^9 is refused clearly and quickly', async () => {
    const dir = DIRS[0];
    const doc = JSON.parse(new TextDecoder().decode(dir.get('config.json'))) as Record<string, unknown>;
    const files = new Map(dir);
    files.set('config.json', jsonFileBytes({ ...doc, num_hidden_layers: 1e9 }));
    const slow = new SlowCases();
    await backboneCase('known bug: layers', files, dir, slow);
    expect(slow.cases.map((c) => c.outcome)).toEqual([]);
  });
});
