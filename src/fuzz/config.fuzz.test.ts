/**
 * Fuzz tests of the model config parser (src/model/config.ts, parseModelConfig) with arbitrary
 * JSON values, objects of the known fields with odd values (NaN, infinities, -0, huge, deeply
 * nested: a JS caller can pass what no JSON file holds), and edited valid llama / mistral / qwen2
 * configs.
 *
 * Every case must end in a ConfigError whose message starts with the file name and names its
 * field, or in a ModelConfig that satisfies every rule the parser states (positive safe integers,
 * heads divisible, even head dim, sliding-window layers inside the model). Cases run in a worker
 * thread with a time limit and a heap limit: an input that makes the parser loop or allocate without
 * bound is reported, not left to hang or kill the run.
 *
 * Run counts: see harness.ts (FUZZ_RUNS multiplies them).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, type ModelConfig, parseModelConfig, SUPPORTED_MODEL_TYPES } from '../model/config';
import { tinyConfigJson } from '../test/tiny-llama';
import { checkClearError, fuzzParams, type Outcome, runSync, Tally, violation } from './harness';
import { isolatedCase, isolatedFuzzTest, SlowCases, suiteRunner } from './isolated';
import { deepValue, encodeValue, jsonMutations, materialize, mutateJson, weirdJsonValue } from './json';

const FILE = 'fuzz/config.json';
const tally = new Tally('config.fuzz.test.ts');
const runner = suiteRunner(tally, { ConfigError });

/** Every field parseModelConfig reads. */
const FIELDS = [
  'model_type',
  'quantization_config',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'hidden_act',
  'attention_bias',
  'mlp_bias',
  'rope_parameters',
  'rope_theta',
  'rope_scaling',
  'rope_type',
  'type',
  'factor',
  'low_freq_factor',
  'high_freq_factor',
  'original_max_position_embeddings',
  'max_position_embeddings',
  'sliding_window',
  'use_sliding_window',
  'layer_types',
  'max_window_layers',
  'rms_norm_eps',
  'vocab_size',
  'tie_word_embeddings',
  'bos_token_id',
  'eos_token_id',
  'torch_dtype',
  'dtype',
];

const LLAMA3_SCALING = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };

/** Valid configs of each supported shape. */
const VALID: Record<string, unknown>[] = [
  tinyConfigJson(),
  tinyConfigJson({ model_type: 'mistral', sliding_window: 16, bos_token_id: 1, eos_token_id: [2, 3] }),
  tinyConfigJson({ model_type: 'mistral', sliding_window: null }),
  tinyConfigJson({ model_type: 'qwen2', use_sliding_window: true, sliding_window: 8, max_window_layers: 1 }),
  tinyConfigJson({ model_type: 'qwen2', use_sliding_window: true, sliding_window: 8, layer_types: ['full_attention', 'sliding_attention'] }),
  tinyConfigJson({ rope_scaling: LLAMA3_SCALING, attention_bias: true, head_dim: undefined, num_attention_heads: 6, num_key_value_heads: 3 }),
  tinyConfigJson({ rope_theta: undefined, rope_parameters: { rope_type: 'default', rope_theta: 500000 } }),
  tinyConfigJson({ rope_theta: undefined, rope_parameters: { ...LLAMA3_SCALING, rope_theta: 500000 } }),
];

/** The field a refusal names must appear in its message (as written, or with spaces for underscores). */
function checkConfigError(e: unknown): ConfigError {
  const err = checkClearError(e, { classes: [ConfigError] }) as ConfigError;
  if (!err.message.startsWith(`${FILE}: `)) violation(`the message does not start with the file name: ${JSON.stringify(err.message.slice(0, 300))}`);
  const field = (err as { field?: unknown }).field;
  if (typeof field !== 'string') violation(`ConfigError without a field: ${err.message}`);
  if (field !== '') {
    const leaf = field.split('.').pop()!;
    if (![field, leaf, leaf.replace(/_/g, ' ')].some((f) => err.message.includes(f))) violation(`the message does not name the field ${JSON.stringify(field)}: ${err.message}`);
  }
  return err;
}

const isPosInt = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;

/** The rules a parsed config must satisfy. */
function checkConfig(c: ModelConfig): void {
  const fail = (what: string): never => violation(`a loaded config breaks a rule: ${what}: ${JSON.stringify(c).slice(0, 400)}`);
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(c.modelType)) fail('model type');
  for (const k of ['hiddenSize', 'intermediateSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'vocabSize', 'maxPositionEmbeddings'] as const) {
    if (!isPosInt(c[k])) fail(k);
  }
  if (c.numHeads % c.numKvHeads !== 0) fail('numKvHeads divides numHeads');
  if (c.headDim % 2 !== 0) fail('even headDim');
  for (const k of ['rmsNormEps', 'ropeTheta'] as const) if (!(typeof c[k] === 'number' && Number.isFinite(c[k]) && c[k] > 0)) fail(k);
  if (c.hiddenAct !== 'silu' || c.mlpBias !== false) fail('activation / mlp bias');
  if (typeof c.tieWordEmbeddings !== 'boolean' || typeof c.attentionBias !== 'boolean' || typeof c.attentionOutBias !== 'boolean') fail('booleans');
  for (const ids of [c.bosTokenId, c.eosTokenId]) if (!Array.isArray(ids) || !ids.every((id) => Number.isSafeInteger(id) && id >= 0)) fail('token ids');
  if (c.torchDtype !== null && typeof c.torchDtype !== 'string') fail('torchDtype');
  const r = c.ropeScaling;
  if (r !== null) {
    if (r.type !== 'llama3') fail('rope scaling type');
    for (const k of ['factor', 'lowFreqFactor', 'highFreqFactor'] as const) if (!(Number.isFinite(r[k]) && r[k] > 0)) fail(k);
    if (!(r.highFreqFactor > r.lowFreqFactor) || !isPosInt(r.originalMaxPositionEmbeddings)) fail('rope scaling');
  }
  const w = c.slidingWindow;
  if (w !== null) {
    if (!isPosInt(w.size) || w.layers.length === 0 || w.layers.length > c.numLayers) fail('sliding window');
    w.layers.forEach((l, i) => {
      if (!Number.isSafeInteger(l) || l < 0 || l >= c.numLayers || (i > 0 && l <= w.layers[i - 1])) fail('sliding window layers');
    });
  }
}

/** Runs one value through parseModelConfig in the worker and checks the outcome. */
async function configCase(label: string, value: unknown, slow: SlowCases): Promise<Outcome<ModelConfig> | null> {
  const encoded = encodeValue(value);
  const r = await isolatedCase<ModelConfig>(runner, 'fuzzParseModelConfig', [encoded, FILE], label, () => encoded, slow, tally);
  if (r === null) return null;
  if (!r.ok) checkConfigError(r.error);
  else checkConfig(r.value);
  return r;
}

describe('model config fuzz', () => {
  it('the valid configs parse, in this thread and in the worker alike', async () => {
    const slow = new SlowCases();
    for (const v of VALID) {
      const here = parseModelConfig(v, FILE);
      const there = await configCase('valid', v, slow);
      expect(there?.ok && there.value).toEqual(here);
    }
    expect(slow.cases).toEqual([]);
  });

  isolatedFuzzTest('arbitrary JSON values', fuzzParams(3001, 600), (slow) =>
    fc.asyncProperty(fc.oneof(fc.jsonValue({ maxDepth: 4 }), weirdJsonValue({ jsOnly: true })), async (v) => {
      await configCase('any JSON value', materialize(v), slow);
    }),
  );

  isolatedFuzzTest('valid configs with fields replaced by odd values (NaN, infinities, -0, huge, nested, wrong types)', fuzzParams(3002, 800), (slow) =>
    fc.asyncProperty(
      fc.nat({ max: VALID.length - 1 }),
      fc.dictionary(fc.constantFrom(...FIELDS), weirdJsonValue({ jsOnly: true }), { minKeys: 1, maxKeys: 4 }),
      async (i, edits) => {
        const v: Record<string, unknown> = { ...VALID[i] };
        for (const [k, x] of Object.entries(edits)) v[k] = materialize(x);
        await configCase('field replaced', v, slow);
      },
    ),
  );

  isolatedFuzzTest('edited valid configs (values replaced, deleted or added anywhere, nested objects included)', fuzzParams(3003, 800), (slow) =>
    fc.asyncProperty(fc.nat({ max: VALID.length - 1 }), jsonMutations(FIELDS, 3, weirdJsonValue({ jsOnly: true })), async (i, muts) => {
      await configCase('edited config', mutateJson(VALID[i], muts), slow);
    }),
  );
  it('regression: values nested 10,000 deep are refused with a ConfigError, not a stack overflow (JSON.stringify in the message)', () => {
    const deep = deepValue(10_000, 'array');
    for (const v of [deep, { ...VALID[0], hidden_size: deep }, { ...VALID[0], eos_token_id: deep }, { ...VALID[1], sliding_window: deep }]) {
      const r = runSync('regression: deep', () => parseModelConfig(v, FILE));
      expect(r.ok).toBe(false);
      if (!r.ok) checkConfigError(r.error);
    }
  });

  it('regression: a llama config with num_hidden_layers 2^53 - 1 is refused clearly (was RangeError: Invalid array length)', () => {
    const r = runSync('regression: llama layers', () => parseModelConfig({ ...VALID[0], num_hidden_layers: 2 ** 53 - 1 }, FILE));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(String(r.error)).toMatch(/num_hidden_layers .* is more than the 1024 layers supported/);
  });

  // KNOWN BUG (left failing on purpose, see the fuzz report): a mistral config (or qwen2 with
  // use_sliding_window and no layer_types) lists its sliding-window layers by building an array of
  // num_hidden_layers entries: 2^32 throws RangeError "Invalid array length", 2^31 - 1 runs for
  // seconds and hundreds of MB before failing. (For llama the list is no longer built: fixed.)
  it('known bug: a mistral / qwen2 config with a huge num_hidden_layers is refused clearly and quickly', async () => {
    const slow = new SlowCases(4);
    const problems: string[] = [];
    const cases: [string, Record<string, unknown>][] = [
      ['mistral, 2^32 layers', { ...VALID[1], num_hidden_layers: 2 ** 32 }],
      ['qwen2, 2^32 layers', { ...VALID[3], num_hidden_layers: 2 ** 32 }],
      ['mistral, 2^31 - 1 layers', { ...VALID[1], num_hidden_layers: 2 ** 31 - 1 }],
      ['llama, 2^53 - 1 layers (fixed: no list is built)', { ...VALID[0], num_hidden_layers: 2 ** 53 - 1 }],
    ];
    for (const [label, v] of cases) {
      const encoded = encodeValue(v);
      const r = await isolatedCase<ModelConfig>(runner, 'fuzzParseModelConfig', [encoded, FILE], 'known bug: layers', () => label, slow, tally);
      if (r === null) continue;
      try {
        if (!r.ok) checkConfigError(r.error);
      } catch (e) {
        problems.push(`${label}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    expect([...problems, ...slow.cases.map((c) => `${c.input}: ${c.outcome}`)]).toEqual([]);
  });
});
