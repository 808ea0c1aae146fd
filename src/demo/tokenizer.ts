/**
 * The demo backbone's tokenizer, in Hugging Face tokenizer.json format: a word-level vocabulary
 * (the demo's text is lowercase ASCII words), lowercasing and accent-stripping normalizer, a
 * whitespace-and-punctuation pre-tokenizer, and a post-processor that opens every sequence with
 * <s> as Llama tokenizers do.
 */
export const SPECIAL_TOKENS = ['<unk>', '<s>', '</s>', '<pad>'] as const;

/** An added special token as tokenizer.json lists it. */
export const specialToken = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/**
 * A word-level tokenizer.json: `tokens` in id order, the first `specials` of them added special
 * tokens ("<unk>" the unknown one, "<s>" at id 1 opening every sequence), whitespace pre-tokenizer.
 */
export function wordLevelTokenizerJson(tokens: readonly string[], specials: number, normalizer: Record<string, unknown> | null): Record<string, unknown> {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: tokens.slice(0, specials).map((content, id) => specialToken(id, content)),
    normalizer,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: null,
    model: { type: 'WordLevel', vocab: Object.fromEntries(tokens.map((t, id) => [t, id])), unk_token: '<unk>' },
  };
}

export function wordLevelTokenizer(words: Iterable<string>): { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown>; size: number } {
  const tokens = [...SPECIAL_TOKENS, ...[...new Set(words)].filter((w) => !(SPECIAL_TOKENS as readonly string[]).includes(w)).sort()];
  const normalizer = { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'StripAccents' }, { type: 'Lowercase' }] };
  const tokenizerJson = wordLevelTokenizerJson(tokens, SPECIAL_TOKENS.length, normalizer);
  const tokenizerConfig = {
    bos_token: '<s>',
    eos_token: '</s>',
    pad_token: '<pad>',
    unk_token: '<unk>',
    add_bos_token: true,
    model_max_length: 64,
    tokenizer_class: 'PreTrainedTokenizerFast',
    clean_up_tokenization_spaces: false,
  };
  return { tokenizerJson, tokenizerConfig, size: tokens.length };
}
