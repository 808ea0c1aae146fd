import { describe, expect, it } from 'vitest';
import { DOWNSTREAM_TASK, WORLD_KNOWLEDGE } from '../method/data-types';
import { summarizeDataset } from './summary';
import { encodeOfficial, hasAnswer, type InstructionRecord } from './template';
import { wordTokenizer, special } from '../test/word-tokenizer';
import { loadTokenizer, type TextTokenizer } from './tokenizer';
import { answerlessMessage, countWords, formatShare, topWords, unknownReport, unknownShare, unknownWarning, type UnknownTokens } from './unknown';

/** BPE over the letters a, b, c (merge "a b"), with an unknown token for any other character. */
function bpeTokenizer(): TextTokenizer {
  const vocab = { '<unk>': 0, '<s>': 1, '</s>': 2, a: 3, b: 4, c: 5, ab: 6 };
  return loadTokenizer(
    {
      version: '1.0',
      added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
      normalizer: null,
      pre_tokenizer: { type: 'Whitespace' },
      post_processor: null,
      decoder: null,
      model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, vocab, merges: ['a b'] },
    },
    { eos_token: '</s>', unk_token: '<unk>' },
  );
}

/** GPT-2's byte-level alphabet: one printable character per byte. */
function byteAlphabet(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const chars = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return chars;
}

/** Byte-level BPE (no merges): every text has ids, there is no unknown token. */
function byteLevelTokenizer(): TextTokenizer {
  const vocab: Record<string, number> = { '<|endoftext|>': 0 };
  byteAlphabet().forEach((c, i) => (vocab[c] = i + 1));
  return loadTokenizer(
    {
      version: '1.0',
      added_tokens: [special(0, '<|endoftext|>')],
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
    },
    { eos_token: '<|endoftext|>', bos_token: null, unk_token: null },
  );
}

describe('unknown words of a tokenizer', () => {
  it('word-level: the unknown id and each unknown word, once per occurrence', () => {
    const tok = wordTokenizer();
    expect(tok.unkId).toBe(0);
    expect(tok.encode('a zz b zz Qq')).toEqual([3, 0, 4, 0, 0]);
    expect(tok.unknownWords('a zz b zz Qq')).toEqual(['zz', 'zz', 'Qq']);
    expect(tok.unknownWords('a b c')).toEqual([]);
    expect(tok.unknownWords('')).toEqual([]);
  });

  it('word-level with a normalizer: the words as the vocabulary was searched for them', () => {
    const tok = wordTokenizer(true);
    expect(tok.encode('A Foo')).toEqual([3, 0]);
    expect(tok.unknownWords('A Foo')).toEqual(['foo']);
  });

  it('BPE with an unknown token: the word that holds an unknown character', () => {
    const tok = bpeTokenizer();
    // "abx" is ab + <unk>; "cx" is c + <unk>; "xx" is two unknown tokens.
    expect(tok.encode('ab abx cx xx')).toEqual([6, 6, 0, 5, 0, 0, 0]);
    expect(tok.unknownWords('ab abx cx xx')).toEqual(['abx', 'cx', 'xx', 'xx']);
  });

  it('byte-level: no unknown token, nothing is unknown', () => {
    const tok = byteLevelTokenizer();
    expect(tok.unkId).toBeNull();
    expect(tok.encode('zqx 漢')).toHaveLength(7); // 3 letters, a space, 3 UTF-8 bytes
    expect(tok.unknownWords('zqx 漢')).toEqual([]);
  });
});

describe('unknown-token statistics of a dataset', () => {
  const tok = wordTokenizer();
  // Samples (BOS, prompt words, EOS | answer words, EOS):
  //  1: <s> a zz </s> | b yy </s>       7 tokens, 2 unknown (zz, yy)
  //  2: <s> c </s> | zz d </s>          6 tokens, 1 unknown (zz)
  //  3: <s> a b c d e </s> | a </s>     9 tokens, none; prompt 7
  const records: InstructionRecord[] = [
    { instruction: 'a zz', input: '', output: 'b yy', type: WORLD_KNOWLEDGE },
    { instruction: 'c', input: '', output: 'zz d', type: DOWNSTREAM_TASK },
    { instruction: 'a b c d e', input: '', output: 'a', type: DOWNSTREAM_TASK },
  ];

  it('shares per data type and the most frequent unknown words', () => {
    const s = summarizeDataset(records, tok, 64);
    expect(s.byType.map((t) => [t.name, t.tokens, t.unknown])).toEqual([
      [DOWNSTREAM_TASK, 15, 1],
      [WORLD_KNOWLEDGE, 7, 2],
    ]);
    expect(s.unknown).toEqual({ possible: true, tokens: 22, unknown: 3, distinctWords: 2, topWords: [{ word: 'zz', count: 2 }, { word: 'yy', count: 1 }] });
    expect(unknownShare(s.unknown)).toBeCloseTo(3 / 22, 12);
  });

  it('counts the samples whose answer is cut away and leaves them out of the epoch', () => {
    // maxLength 7: sample 3's prompt (7 tokens) fills it; samples 1 (7) and 2 (6) keep their answers.
    const s = summarizeDataset(records, tok, 7);
    expect(s.noTargetLeft).toBe(1);
    expect(s.byType.map((t) => t.noTargetLeft)).toEqual([1, 0]);
    expect(s.tokens).toBe(7 + 6);
    expect(s.targetTokens).toBe(3 + 3);
    expect(records.map((r) => hasAnswer(encodeOfficial(tok, r, 7)))).toEqual([true, true, false]);
    // maxLength 8: one answer token of sample 3 is kept.
    expect(hasAnswer(encodeOfficial(tok, records[2], 8))).toBe(true);
    expect(summarizeDataset(records, tok, 8).noTargetLeft).toBe(0);
  });

  it('a byte-level tokenizer reports nothing unknown, and that nothing can be', () => {
    const s = summarizeDataset(records, byteLevelTokenizer(), 512);
    expect(s.unknown).toMatchObject({ possible: false, unknown: 0, distinctWords: 0, topWords: [] });
    expect(unknownReport(s.unknown, s.byType)).toEqual(['unknown tokens: none possible (the tokenizer covers every text)']);
  });
});

describe('unknown-token messages', () => {
  it('ranks words by count, then in code-unit order, and keeps the top k', () => {
    const counts = countWords(['b', 'a', 'c', 'b', 'a', 'd', 'B']);
    expect(topWords(counts, 3)).toEqual([
      { word: 'a', count: 2 },
      { word: 'b', count: 2 },
      { word: 'B', count: 1 },
    ]);
    expect(topWords(new Map(), 10)).toEqual([]);
  });

  it('formats shares', () => {
    expect([0, 0.0004, 0.01, 0.1234, 1].map(formatShare)).toEqual(['0%', '<0.1%', '1.0%', '12.3%', '100.0%']);
  });

  const u = (unknown: number, tokens: number): UnknownTokens => ({ possible: true, tokens, unknown, distinctWords: 2, topWords: [{ word: 'zz', count: 2 }, { word: 'yy', count: 1 }] });

  it('warns above 1% and suggests a backbone that covers the data', () => {
    expect(unknownWarning(u(1, 100))).toBeNull();
    const w = unknownWarning(u(3, 22), 'demo');
    expect(w).toContain('13.6% of the tokens are the unknown token: 2 distinct words are not in the vocabulary of demo');
    expect(w).toContain('HuggingFaceTB/SmolLM2-135M');
    expect(unknownWarning({ ...u(0, 0), possible: false })).toBeNull();
  });

  it('the runner report: total, per type, words and the warning', () => {
    const lines = unknownReport(u(3, 22), [
      { name: 'task', tokens: 15, unknown: 1 },
      { name: 'knowledge', tokens: 7, unknown: 2 },
    ]);
    expect(lines.slice(0, 4)).toEqual(['unknown tokens: 13.6% (3 of 22)', '  task: 6.7% (1 of 15)', '  knowledge: 28.6% (2 of 7)', '  most frequent unknown words: zz (2), yy (1)']);
    expect(lines[4]).toMatch(/^warning: 13\.6% of the tokens/);
    expect(unknownReport({ ...u(0, 22), distinctWords: 0, topWords: [] }, [])).toEqual(['unknown tokens: 0% (0 of 22)']);
  });

  it('says how many samples lose their answer, and why', () => {
    expect(answerlessMessage(0, 10, 64)).toBeNull();
    expect(answerlessMessage(1, 10, 64)).toBe(
      '1 of 10 samples is left out of training: its prompt alone fills the maximum length of 64 tokens, so no answer token is left to learn from. Raise the maximum length (up to what the backbone allows) or shorten the prompts.',
    );
    expect(answerlessMessage(949, 1565, 64)).toMatch(/^949 of 1,565 samples are left out of training: their prompt alone fills/);
  });
});
