/**
 * How well a backbone's tokenizer covers a dataset, and the samples a maximum length leaves without
 * an answer: the counts, and the messages the data panel, the worker and the runner show for them.
 *
 * A word-level vocabulary (the demo backbone's 841 words) maps every word it lacks to its unknown
 * token, and the model cannot learn or produce such a word; a byte-level vocabulary (Llama, SmolLM2,
 * Qwen2) has no unknown token and covers every text.
 */

/** Above this share of unknown tokens the data panel and the runner warn. */
const UNKNOWN_WARN_SHARE = 0.01;
/** Unknown words listed, the most frequent first. */
const TOP_UNKNOWN_WORDS = 10;
/** A small backbone whose byte-level tokenizer covers any text: the one the warning suggests. */
const COVERING_BACKBONE = 'HuggingFaceTB/SmolLM2-135M';

export interface UnknownWordCount {
  word: string;
  count: number;
}

/** Tokens of a dataset (or of one data type) and how many of them are the unknown token. */
export interface TokenCoverage {
  tokens: number;
  unknown: number;
}

export interface UnknownTokens extends TokenCoverage {
  /** False when the tokenizer has no unknown token (byte-level): nothing can be unknown. */
  possible: boolean;
  /** Distinct unknown words. */
  distinctWords: number;
  /** The most frequent unknown words (see topWords). */
  topWords: UnknownWordCount[];
}

/** Counts word occurrences. */
export function countWords(words: Iterable<string>, into: Map<string, number> = new Map()): Map<string, number> {
  for (const w of words) into.set(w, (into.get(w) ?? 0) + 1);
  return into;
}

/** The `k` most frequent words, the most frequent first; equal counts in code-unit order of the word. */
export function topWords(counts: ReadonlyMap<string, number>, k = TOP_UNKNOWN_WORDS): UnknownWordCount[] {
  return [...counts]
    .map(([word, count]) => ({ word, count }))
    .sort((a, b) => b.count - a.count || (a.word < b.word ? -1 : a.word > b.word ? 1 : 0))
    .slice(0, Math.max(0, k));
}

/** unknown / tokens, 0 for no tokens. */
export function unknownShare(c: TokenCoverage): number {
  return c.tokens > 0 ? c.unknown / c.tokens : 0;
}

/** "12.3%" with one decimal, "0%" for none, "<0.1%" for a few. */
export function formatShare(share: number): string {
  if (share === 0) return '0%';
  if (share < 0.001) return '<0.1%';
  return `${(share * 100).toFixed(1)}%`;
}

/** The warning shown above UNKNOWN_WARN_SHARE unknown tokens, or null. */
export function unknownWarning(u: UnknownTokens, backbone?: string): string | null {
  if (!u.possible || unknownShare(u) <= UNKNOWN_WARN_SHARE) return null;
  const on = backbone ? ` of ${backbone}` : '';
  return (
    `${formatShare(unknownShare(u))} of the tokens are the unknown token: ${u.distinctWords.toLocaleString('en-US')} distinct words are not in the vocabulary${on}. ` +
    'The model can neither read nor learn them. Use a backbone whose tokenizer covers the data, ' +
    `such as one with a byte-level vocabulary (${COVERING_BACKBONE}), or data in the backbone's own words.`
  );
}

/** The message for samples whose answer the maximum length cuts away entirely (left out of training), or null for none. */
export function answerlessMessage(answerless: number, samples: number, maxLength: number): string | null {
  if (answerless <= 0) return null;
  const one = answerless === 1;
  return (
    `${answerless.toLocaleString('en-US')} of ${samples.toLocaleString('en-US')} sample${samples === 1 ? '' : 's'} ${one ? 'is' : 'are'} left out of training: ` +
    `${one ? 'its' : 'their'} prompt alone fills the maximum length of ${maxLength} tokens, so no answer token is left to learn from. ` +
    'Raise the maximum length (up to what the backbone allows) or shorten the prompts.'
  );
}

/** The coverage report as text lines (the runner prints them before training). */
export function unknownReport(u: UnknownTokens, byType: readonly (TokenCoverage & { name: string })[], backbone?: string): string[] {
  if (!u.possible) return ['unknown tokens: none possible (the tokenizer covers every text)'];
  const lines = [`unknown tokens: ${formatShare(unknownShare(u))} (${u.unknown.toLocaleString('en-US')} of ${u.tokens.toLocaleString('en-US')})`];
  for (const t of byType) lines.push(`  ${t.name}: ${formatShare(unknownShare(t))} (${t.unknown.toLocaleString('en-US')} of ${t.tokens.toLocaleString('en-US')})`);
  if (u.topWords.length > 0) lines.push(`  most frequent unknown words: ${u.topWords.map((w) => `${w.word} (${w.count})`).join(', ')}`);
  const warning = unknownWarning(u, backbone);
  if (warning) lines.push(`warning: ${warning}`);
  return lines;
}
