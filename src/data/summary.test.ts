import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { wordTokenizer } from '../test/word-tokenizer';
import { encodeOfficial, hasAnswer, type InstructionRecord } from './template';
import { makeBatch } from './batch';
import { parseDataset, typeIndexMapping } from './import';
import { DOWNSTREAM_TASK, WORLD_KNOWLEDGE } from '../method/data-types';
import { niceWidth, summarizeDataset } from './summary';

describe('summarizeDataset', () => {
  const tok = wordTokenizer();
  // Full lengths (BOS + prompt words + EOS, then target words + EOS): 6, 10, 9.
  const records: (InstructionRecord & { typeDefaulted?: boolean })[] = [
    { instruction: 'a b', input: '', output: 'c', type: WORLD_KNOWLEDGE }, // prompt 4, target 2
    { instruction: 'a', input: 'b c', output: 'a b c d', type: DOWNSTREAM_TASK }, // prompt 5, target 5
    { instruction: 'a b c d e', input: '', output: 'a', type: 'math', typeDefaulted: true }, // prompt 7, target 2
  ];

  it('the test tokenizer is word-level with BOS and EOS', () => {
    expect(tok.encode('a b\nc', true)).toEqual([1, 3, 4, 5]);
    expect(encodeOfficial(tok, records[0], 100).ids).toEqual([1, 3, 4, 2, 5, 2]);
  });

  it('counts types, lengths, truncation and loss tokens', () => {
    const s = summarizeDataset(records, tok, 7);
    expect(s.records).toBe(3);
    expect(s.maxLength).toBe(7);
    expect(s.byType).toEqual([
      { name: DOWNSTREAM_TASK, index: 0, count: 1, truncated: 1, noTargetLeft: 0, meanLength: 10, tokens: 10, unknown: 0 },
      { name: WORLD_KNOWLEDGE, index: 1, count: 1, truncated: 0, noTargetLeft: 0, meanLength: 6, tokens: 6, unknown: 0 },
      { name: 'math', index: 2, count: 1, truncated: 1, noTargetLeft: 1, meanLength: 9, tokens: 9, unknown: 0 },
    ]);
    expect(s.defaultedType).toBe(1);
    expect(s.length).toEqual({ mean: 25 / 3, min: 6, max: 10, median: 9, p95: 10 });
    expect(s.promptLength).toEqual({ mean: 16 / 3, min: 4, max: 7, median: 5, p95: 7 });
    expect(s.targetLength).toEqual({ mean: 3, min: 2, max: 5, median: 2, p95: 5 });
    expect(s.truncated).toBe(2);
    expect(s.noTargetLeft).toBe(1); // the math record's prompt alone is 7 tokens
    expect(s.tokens).toBe(6 + 7); // the math record is left out of training
    expect(s.unknown).toEqual({ possible: true, tokens: 25, unknown: 0, distinctWords: 0, topWords: [] });
    expect(s.targetTokens).toBe(2 + 2 + 0);
    // Width 1 for lengths up to 10: bins [0,1) .. [10,11).
    expect(s.histogram).toHaveLength(11);
    expect(s.histogram.filter((b) => b.count > 0)).toEqual([
      { start: 6, end: 7, count: 1 },
      { start: 9, end: 10, count: 1 },
      { start: 10, end: 11, count: 1 },
    ]);
  });

  it('agrees with encodeOfficial and makeBatch on truncation, answerless samples and loss tokens', () => {
    for (const maxLength of [3, 4, 5, 6, 7, 9, 10, 64]) {
      const s = summarizeDataset(records, tok, maxLength);
      const all = records.map((r) => encodeOfficial(tok, r, maxLength));
      const encoded = all.filter(hasAnswer);
      const batch = makeBatch(encoded, records.length, maxLength, tok.padId, typeIndexMapping(records).index);
      expect(s.truncated).toBe(all.filter((e) => e.truncated).length);
      expect(s.noTargetLeft).toBe(all.length - encoded.length);
      expect(s.tokens).toBe(batch.tokenCount);
      expect(s.targetTokens).toBe(batch.targetCount);
    }
  });

  it('summarizes an imported file and an empty list', async () => {
    const text = [
      { instruction: 'a b', output: 'c d', task_type: 1 },
      { instruction: 'a', output: 'b', task_type: 0 },
      { instruction: 'c', output: 'd e' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n');
    const r = await parseDataset(new TextEncoder().encode(text), 'tiny.jsonl');
    const s = summarizeDataset(r.records, tok, 512);
    expect(s.byType.map((t) => [t.name, t.count])).toEqual([
      [DOWNSTREAM_TASK, 2],
      [WORLD_KNOWLEDGE, 1],
    ]);
    expect(s.defaultedType).toBe(1);
    expect(s.truncated).toBe(0);
    expect(s.histogram.reduce((k, b) => k + b.count, 0)).toBe(3);

    const empty = summarizeDataset([], tok, 16);
    expect(empty).toMatchObject({ records: 0, byType: [], histogram: [], truncated: 0, tokens: 0, length: { mean: 0, max: 0 } });
    expect(() => summarizeDataset(records, tok, 0)).toThrow('maxLength must be a positive integer');
  });

  it('uses round bin widths, at most 20 bins', () => {
    expect([0.3, 1, 1.5, 2, 3, 7, 10, 11, 26, 51, 2000].map(niceWidth)).toEqual([1, 1, 2, 2, 5, 10, 10, 20, 50, 100, 2000]);
    const long = Array.from({ length: 40 }, (_, i) => ({ instruction: 'a '.repeat(i * 10), input: '', output: 'b', type: 'x' }));
    const s = summarizeDataset(long, tok, 128);
    expect(s.length.max).toBe(390 + 4);
    expect(s.histogram.length).toBeLessThanOrEqual(20);
    expect(s.histogram[0].end - s.histogram[0].start).toBe(20);
    expect(s.histogram.reduce((k, b) => k + b.count, 0)).toBe(40);
    expect(s.truncated).toBe(long.filter((r) => encodeOfficial(tok, r, 128).truncated).length);
  });
});

it('fixtures parse and summarize end to end', async () => {
  const r = await parseDataset(new Uint8Array(readFileSync(new URL('./fixtures/official.json', import.meta.url))), 'official.json');
  const s = summarizeDataset(r.records, wordTokenizer(), 8);
  expect(s.records).toBe(r.counts.good);
  expect(s.byType.map((t) => t.count)).toEqual([2, 2, 1]);
});
