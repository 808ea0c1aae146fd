/**
 * Fuzz tests of the tokenizer loader (src/data/tokenizer.ts, loadTokenizer) with edited
 * tokenizer.json / tokenizer_config.json values (WordLevel and BPE models, normalizers,
 * pre-tokenizers, post-processors, added tokens, special tokens), arbitrary JSON values, and
 * edited file texts that still parse.
 *
 * Every case must end in an Error (not a TypeError, RangeError, ...) whose message names
 * tokenizer.json or tokenizer_config.json, or in a tokenizer whose special ids are inside its id
 * range and which encodes and decodes a few texts without throwing, every id it produces inside
 * that range. Cases run in a worker thread with a time and heap limit (the tokenizer library is a
 * dependency: a hang there is reported, not left to stop the run).
 *
 * Run counts: see harness.ts (FUZZ_RUNS multiplies them).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { wordLevelTokenizer } from '../demo/tokenizer';
import { tinyTokenizerConfig, tinyTokenizerJson } from '../test/hf-dir';
import { type TokenizerSummary } from './entries';
import { checkClearError, FUZZ_TEST_TIMEOUT_MS, fuzzParams, type Outcome, Tally, violation } from './harness';
import { assertIsolated, isolatedCase, isolatedFuzzTest, SlowCases, suiteRunner, validCase } from './isolated';
import { encodeValue, jsonMutations, materialize, mutateJson, weirdJsonValue } from './json';
import { mutateText, textMutations } from './text';

const FILE = 'fuzz/tokenizer.json';
const tally = new Tally('tokenizer.fuzz.test.ts');
const runner = suiteRunner(tally);

/** A small BPE tokenizer.json (merges "a b" and "ab c"), ByteLevel-free, with a decoder. */
function bpeTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2, '<pad>': 3, a: 4, b: 5, c: 6, ab: 7, abc: 8, t: 9, h: 10, e: 11 };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ['<unk>', '<s>', '</s>', '<pad>'].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: { type: 'BPEDecoder', suffix: '</w>' },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, vocab, merges: ['a b', 'ab c'] },
  };
}

const demo = wordLevelTokenizer(['the', 'cat', 'sat', 'on', 'mat', 'what', 'color', 'is', 'sky', '.', '?']);

/** Valid (tokenizer.json, tokenizer_config.json) pairs. */
const VALID: [Record<string, unknown>, Record<string, unknown>][] = [
  [tinyTokenizerJson(), tinyTokenizerConfig()],
  [tinyTokenizerJson(3), tinyTokenizerConfig({ pad_token: null, bos_token: { content: '<s>', lstrip: false } })],
  [demo.tokenizerJson, demo.tokenizerConfig],
  [bpeTokenizerJson(), tinyTokenizerConfig()],
];

const FIELDS = [
  'model',
  'type',
  'vocab',
  'merges',
  'unk_token',
  'added_tokens',
  'id',
  'content',
  'special',
  'normalized',
  'normalizer',
  'normalizers',
  'pre_tokenizer',
  'pretokenizers',
  'post_processor',
  'single',
  'pair',
  'special_tokens',
  'ids',
  'tokens',
  'decoder',
  'decoders',
  'pattern',
  'behavior',
  'eos_token',
  'bos_token',
  'pad_token',
  'the',
  'cat',
  '<s>',
  '</s>',
];

/** Tokenizer-flavoured values: types of each section, vocab-like maps, token lists, ids. */
const tokenizerValue = fc.oneof(
  { weight: 3, arbitrary: weirdJsonValue() },
  { weight: 1, arbitrary: fc.constantFrom('WordLevel', 'BPE', 'WordPiece', 'Unigram', 'Whitespace', 'ByteLevel', 'Split', 'Sequence', 'Lowercase', 'NFD', 'NFKC', 'StripAccents', 'TemplateProcessing', 'Metaspace', 'Replace', 'Strip') },
  { weight: 1, arbitrary: fc.record({ type: fc.constantFrom('WordLevel', 'BPE', 'Whitespace', 'Sequence', 'ByteLevel', 'Split', 'Metaspace', 'Replace', 'Lowercase', 'Prepend'), pattern: fc.option(fc.record({ Regex: fc.constantFrom('\\s+', '(a+)+$', '[', '\\p{L}+', '') })), content: fc.option(fc.string()) }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(fc.nat({ max: 40 }), fc.constantFrom(-1, 1.5, 2 ** 31, 2 ** 53, NaN))) },
  { weight: 1, arbitrary: fc.array(fc.string({ maxLength: 5 }), { maxLength: 5 }) },
);

/** Checks a case: a clear refusal naming a tokenizer file, or a tokenizer that works. */
function checkTokenizer(r: Outcome<TokenizerSummary>, configFile = 'tokenizer_config.json'): void {
  if (!r.ok) {
    checkClearError(r.error, { mustIncludeOneOf: [FILE, configFile] });
    return;
  }
  const t = r.value;
  if (t.useError) violation(`the tokenizer loaded, then threw ${t.useError.ctor} on use: ${t.useError.message.slice(0, 300)}`);
  const inRange = (id: number) => Number.isSafeInteger(id) && id >= 0 && id < t.size;
  if (!Number.isSafeInteger(t.size) || t.size < 1) violation(`size ${t.size}`);
  if (!inRange(t.eosId) || !inRange(t.padId) || (t.bosId !== null && !inRange(t.bosId))) violation(`special ids outside 0..${t.size - 1}: ${JSON.stringify(t)}`);
  for (const ids of t.encoded) for (const id of ids) if (!inRange(id)) violation(`encode produced id ${id}, outside 0..${t.size - 1}`);
  for (const s of t.decoded) if (typeof s !== 'string') violation('decode did not return a string');
}

async function tokenizerCase(label: string, tokJson: unknown, tokConfig: unknown, slow: SlowCases): Promise<void> {
  const a = encodeValue(tokJson);
  const b = encodeValue(tokConfig);
  const r = await isolatedCase<TokenizerSummary>(runner, 'fuzzLoadTokenizer', [a, b, FILE], label, () => `tokenizer.json ${a} ; tokenizer_config.json ${b}`, slow, tally);
  if (r) checkTokenizer(r);
}

describe('tokenizer fuzz', () => {
  it('the valid tokenizers load and work', async () => {
    for (const [j, c] of VALID) {
      const r = await validCase<TokenizerSummary>(runner, 'fuzzLoadTokenizer', [encodeValue(j), encodeValue(c), FILE], tally);
      checkTokenizer(r);
    }
  });

  isolatedFuzzTest('edited tokenizer.json values (sections, vocab, merges, added tokens, special tokens)', fuzzParams(4001, 800), (slow) =>
    fc.asyncProperty(fc.nat({ max: VALID.length - 1 }), jsonMutations(FIELDS, 3, tokenizerValue), async (i, muts) => {
      await tokenizerCase('edited tokenizer.json', mutateJson(VALID[i][0], muts), VALID[i][1], slow);
    }),
  );

  it('edited tokenizer_config.json values (eos / bos / pad tokens of any type)', async () => {
    const tokenField = fc.constantFrom('eos_token', 'bos_token', 'pad_token', 'unk_token');
    const tokenValue = fc.oneof(
      weirdJsonValue(),
      fc.constantFrom('<s>', '</s>', '<pad>', '<unk>', 'the', 'nope', '', ' </s>'),
      fc.record({ content: fc.oneof(weirdJsonValue(), fc.constantFrom('</s>', 'nope')) }),
    );
    await assertIsolated(
      (slow) =>
        fc.asyncProperty(fc.nat({ max: VALID.length - 1 }), fc.dictionary(tokenField, tokenValue, { minKeys: 1 }), fc.boolean(), async (i, edits, replaceAll) => {
          const cfg = replaceAll ? materialize(edits) : { ...VALID[i][1], ...(materialize(edits) as object) };
          await tokenizerCase('edited tokenizer_config.json', VALID[i][0], cfg, slow);
        }),
      fuzzParams(4002, 500),
    );
  }, FUZZ_TEST_TIMEOUT_MS);

  isolatedFuzzTest('arbitrary JSON values for either file', fuzzParams(4003, 300), (slow) =>
    fc.asyncProperty(fc.oneof(fc.jsonValue({ maxDepth: 3 }), weirdJsonValue()), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(VALID[0][1])), async (j, c) => {
      await tokenizerCase('any JSON value', materialize(j), c, slow);
    }),
  );

  isolatedFuzzTest('edited file texts that still parse as JSON', fuzzParams(4004, 500), (slow) =>
    fc.asyncProperty(fc.nat({ max: VALID.length - 1 }), fc.boolean(), textMutations(3), async (i, config, muts) => {
      const text = mutateText(JSON.stringify(VALID[i][config ? 1 : 0], null, 1), muts);
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return; // a file JSON.parse refuses never reaches loadTokenizer (readJson refuses it; see backbone.fuzz)
      }
      await tokenizerCase('edited text', config ? VALID[i][0] : value, config ? value : VALID[i][1], slow);
    }),
  );
  // Regressions. @huggingface/tokenizers takes a WordLevel model's unk token from
  // tokenizer_config.json (not from tokenizer.json's model.unk_token), and when the unk token does
  // not resolve to an id, unknown words came out of encode as null ids; vocabulary ids that are not
  // non-negative integers came out of encode as they were. An encode-time check then turned these
  // into errors on first use, after a successful load: loadTokenizer now refuses them at load.
  it('regression: a tokenizer whose unknown words get no id is refused at load (unk_token null in tokenizer_config.json, or model.unk_token not in the vocabulary)', async () => {
    const withNullUnk = tinyTokenizerConfig({ unk_token: null });
    const badModelUnk = tinyTokenizerJson();
    (badModelUnk.model as Record<string, unknown>).unk_token = 'nope';
    const noConfigUnk = tinyTokenizerConfig();
    delete noConfigUnk.unk_token;
    const slow = new SlowCases();
    for (const [label, j, c, detail] of [
      ['unk_token null', tinyTokenizerJson(), withNullUnk, 'tokenizer_config.json unk_token: null'],
      ['model.unk_token "nope"', badModelUnk, noConfigUnk, 'model.unk_token: "nope", not in the vocabulary'],
    ] as const) {
      const r = await isolatedCase<TokenizerSummary>(runner, 'fuzzLoadTokenizer', [encodeValue(j), encodeValue(c), FILE], 'regression: unk', () => label, slow, tally);
      expect(r?.ok, label).toBe(false);
      checkTokenizer(r!);
      const message = r && !r.ok ? (r.error as Error).message : '';
      expect(message, label).toContain(`${FILE}: words outside the vocabulary get no token id`);
      expect(message, label).toContain(detail);
      expect(message, label).toContain('expected an unk_token that is in the vocabulary');
    }
    expect(slow.cases).toEqual([]);
  });

  it('regression: vocabulary ids that are not integers from 0 to 2^31 - 2 (-5, 1.5, 2^53 - 1) are refused at load, naming the token', async () => {
    for (const [token, id] of [
      ['cat', -5],
      ['dog', 1.5],
      ['mat', Number.MAX_SAFE_INTEGER],
    ] as const) {
      const j = tinyTokenizerJson();
      (j.model as { vocab: Record<string, number> }).vocab[token] = id;
      const slow = new SlowCases();
      const r = await isolatedCase<TokenizerSummary>(runner, 'fuzzLoadTokenizer', [encodeValue(j), encodeValue(tinyTokenizerConfig()), FILE], 'regression: ids', () => token, slow, tally);
      expect(r?.ok).toBe(false);
      checkTokenizer(r!);
      expect(r && !r.ok ? (r.error as Error).message : '').toBe(`${FILE}: token "${token}" has id ${id}; token ids must be integers from 0 to 2147483646`);
    }
  });

  // Found by this fuzzer at FUZZ_RUNS=6: a BPE decoder's suffix nested 10,000 arrays deep. The
  // library stringifies it at every decode (a stack overflow here; in a worker, with its larger
  // stack, a join quadratic in the depth that ran for minutes). Deep values are refused at load.
  it('regression: a value nested 10,000 deep (a decoder suffix) is refused at load, not decoded for minutes', async () => {
    const j = tinyTokenizerJson();
    let deep: unknown = 'x';
    for (let i = 0; i < 10_000; i++) deep = [deep];
    j.decoder = { type: 'BPEDecoder', suffix: deep };
    const slow = new SlowCases();
    const r = await isolatedCase<TokenizerSummary>(runner, 'fuzzLoadTokenizer', [encodeValue(j), encodeValue(tinyTokenizerConfig()), FILE], 'regression: deep', () => '', slow, tally);
    expect(slow.cases).toEqual([]);
    expect(r?.ok).toBe(false);
    checkTokenizer(r!);
    expect(r && !r.ok ? (r.error as Error).message : '').toBe(
      `${FILE}: a value nested more than 64 levels deep (at .decoder.suffix[0][0]...); expected a tokenizer file's flat structure`,
    );
  });

  it('regression: an added token with an id that is not a non-negative integer is refused at load', async () => {
    const j = tinyTokenizerJson();
    (j.added_tokens as Record<string, unknown>[]).push({ id: -1, content: '<extra>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    const slow = new SlowCases();
    const r = await isolatedCase<TokenizerSummary>(runner, 'fuzzLoadTokenizer', [encodeValue(j), encodeValue(tinyTokenizerConfig()), FILE], 'regression: ids', () => '', slow, tally);
    expect(r?.ok).toBe(false);
    checkTokenizer(r!);
    // (The library also enters added tokens in the model's map, so the vocabulary check finds it first.)
    expect(r && !r.ok ? (r.error as Error).message : '').toMatch(/^fuzz\/tokenizer\.json: (added )?token "<extra>" has id -1; token ids must be integers from 0 to 2147483646$/);
  });
});
