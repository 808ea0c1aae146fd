/**
 * Dataset summary for the import screen: records per data type and token lengths under the official
 * template (prompt + target, with the tokenizer's special tokens and the two end-of-sequence tokens,
 * exactly as encodeOfficial builds a sample), measured before truncation; the share of tokens the
 * tokenizer does not know (./unknown.ts), and the samples the maximum length leaves without an answer.
 */
import { encodeOfficial, type InstructionRecord } from './template';
import type { TextTokenizer } from './tokenizer';
import { typeIndexMapping } from './import';
import { countWords, topWords, type UnknownTokens } from './unknown';

interface LengthStats {
  mean: number;
  min: number;
  max: number;
  /** Median (the lower middle value for an even count). */
  median: number;
  /** 95th percentile (nearest rank). */
  p95: number;
}

/** Samples with a full length in [start, end) tokens. */
interface LengthBin {
  start: number;
  end: number;
  count: number;
}

interface TypeSummary {
  name: string;
  /** Index under typeIndexMapping (the order of byType). */
  index: number;
  count: number;
  /** Records of this type whose full length exceeds maxLength. */
  truncated: number;
  /** Records of this type with no answer token left after cutting (left out of training). */
  noTargetLeft: number;
  meanLength: number;
  /** Tokens of this type's samples before cutting, and how many are the unknown token. */
  tokens: number;
  unknown: number;
}

export interface DatasetSummary {
  records: number;
  maxLength: number;
  /** Per data type, in typeIndexMapping order. */
  byType: TypeSummary[];
  /** Records that had no data type and got the default (records carrying typeDefaulted: true). */
  defaultedType: number;
  /** Full sample length in tokens (prompt + target), before truncation. */
  length: LengthStats;
  /** Prompt length in tokens (special tokens, prompt text, end-of-sequence). */
  promptLength: LengthStats;
  /** Target length in tokens (output, end-of-sequence). */
  targetLength: LengthStats;
  /** Histogram of full lengths: equal-width bins of a round width, covering 0 .. max. */
  histogram: LengthBin[];
  /** Records longer than maxLength: they would be cut at the end. */
  truncated: number;
  /** Records whose prompt alone fills maxLength: after truncation no target token is left to learn from, and training leaves them out. */
  noTargetLeft: number;
  /** Tokens in one epoch after truncation (prompt and target), of the samples training keeps. */
  tokens: number;
  /** Tokens counted in the loss in one epoch after truncation. */
  targetTokens: number;
  /** Tokens (before cutting) that are the tokenizer's unknown token, and the words behind them. */
  unknown: UnknownTokens;
}

/** Target number of histogram bins; the actual count is at most this (the width is rounded up). */
const HISTOGRAM_BINS = 20;

export function summarizeDataset(
  records: readonly (InstructionRecord & { typeDefaulted?: boolean })[],
  tokenizer: TextTokenizer,
  maxLength: number,
): DatasetSummary {
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new Error(`summarizeDataset: maxLength must be a positive integer, got ${maxLength}`);
  const mapping = typeIndexMapping(records);
  const n = records.length;
  const full = new Array<number>(n);
  const prompt = new Array<number>(n);
  const target = new Array<number>(n);
  const perType = mapping.names.map((name, index) => ({ name, index, count: 0, truncated: 0, noTargetLeft: 0, sum: 0, tokens: 0, unknown: 0 }));
  const unkId = tokenizer.unkId;
  const unknownWords = new Map<string, number>();
  let truncated = 0;
  let noTargetLeft = 0;
  let tokens = 0;
  let targetTokens = 0;
  let defaultedType = 0;
  records.forEach((r, i) => {
    if (r.typeDefaulted === true) defaultedType++;
    // Encoding without a limit gives the full length; the truncation rule is encodeOfficial's.
    const s = encodeOfficial(tokenizer, r, Number.POSITIVE_INFINITY);
    const len = s.ids.length;
    full[i] = len;
    prompt[i] = s.promptLength;
    target[i] = len - s.promptLength;
    const t = perType[mapping.index(r.type)];
    t.count++;
    t.sum += len;
    if (len > maxLength) {
      truncated++;
      t.truncated++;
    }
    t.tokens += len;
    if (unkId !== null) {
      let unknown = 0;
      for (const id of s.ids) if (id === unkId) unknown++;
      if (unknown > 0) {
        t.unknown += unknown;
        countWords(tokenizer.unknownWords(r.instruction), unknownWords);
        countWords(tokenizer.unknownWords(r.input), unknownWords);
        countWords(tokenizer.unknownWords(r.output), unknownWords);
      }
    }
    const kept = Math.min(len, maxLength);
    const keptPrompt = Math.min(s.promptLength, maxLength);
    if (keptPrompt >= kept) {
      // No answer token is left: the sample is left out of training and out of the epoch's tokens.
      noTargetLeft++;
      t.noTargetLeft++;
      return;
    }
    tokens += kept;
    // Loss positions as makeBatch counts them: position p predicts p+1 for p+1 in [prompt, kept).
    targetTokens += Math.max(0, kept - Math.max(keptPrompt, 1));
  });
  return {
    records: n,
    maxLength,
    byType: perType.map(({ sum, ...t }) => ({ ...t, meanLength: t.count > 0 ? sum / t.count : 0 })),
    defaultedType,
    length: stats(full),
    promptLength: stats(prompt),
    targetLength: stats(target),
    histogram: histogram(full),
    truncated,
    noTargetLeft,
    tokens,
    targetTokens,
    unknown: {
      possible: unkId !== null,
      tokens: perType.reduce((a, t) => a + t.tokens, 0),
      unknown: perType.reduce((a, t) => a + t.unknown, 0),
      distinctWords: unknownWords.size,
      topWords: topWords(unknownWords),
    },
  };
}

function stats(values: readonly number[]): LengthStats {
  if (values.length === 0) return { mean: 0, min: 0, max: 0, median: 0, p95: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  const rank = (q: number): number => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
  return { mean: sum / sorted.length, min: sorted[0], max: sorted[sorted.length - 1], median: sorted[Math.floor((sorted.length - 1) / 2)], p95: rank(0.95) };
}

/** The smallest of 1, 2, 5, 10, 20, 50, ... that is >= x. */
export function niceWidth(x: number): number {
  let w = 1;
  for (;;) {
    for (const m of [1, 2, 5]) if (m * w >= x) return m * w;
    w *= 10;
  }
}

function histogram(lengths: readonly number[]): LengthBin[] {
  if (lengths.length === 0) return [];
  const max = lengths.reduce((a, b) => Math.max(a, b), 0);
  const width = niceWidth((max + 1) / HISTOGRAM_BINS);
  const bins: LengthBin[] = [];
  for (let start = 0; start <= max; start += width) bins.push({ start, end: start + width, count: 0 });
  for (const len of lengths) bins[Math.floor(len / width)].count++;
  return bins;
}
