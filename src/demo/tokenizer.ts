/**
 * The demo backbone's tokenizer, in Hugging Face tokenizer.json format: a word-level vocabulary
 * (the demo's text is lowercase ASCII words), lowercasing and accent-stripping normalizer, a
 * whitespace-and-punctuation pre-tokenizer, and a post-processor that opens every sequence with
 * <s> as Llama tokenizers do.
 */
export const SPECIAL_TOKENS = ['<unk>', '<s>', '</s>', '<pad>'] as const;

export function wordLevelTokenizer(words: Iterable<string>): { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown>; size: number } {
  const vocab: Record<string, number> = {};
  const tokens = [...SPECIAL_TOKENS, ...[...new Set(words)].filter((w) => !(SPECIAL_TOKENS as readonly string[]).includes(w)).sort()];
  tokens.forEach((t, id) => (vocab[t] = id));
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'StripAccents' }, { type: 'Lowercase' }] },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
  };
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
