/**
 * A word-level test tokenizer: ids <unk> 0, <s> 1, </s> 2, a 3, b 4, c 5, d 6, e 7, one id per
 * whitespace-separated word, BOS added as Llama's tokenizer does; optionally lowercasing first.
 */
import { loadTokenizer, type TextTokenizer } from '../data/tokenizer';

export const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

export function wordTokenizer(lowercase = false): TextTokenizer {
  const words = ['<unk>', '<s>', '</s>', 'a', 'b', 'c', 'd', 'e'];
  return loadTokenizer(
    {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
      normalizer: lowercase ? { type: 'Lowercase' } : null,
      pre_tokenizer: { type: 'Whitespace' },
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
      },
      decoder: null,
      model: { type: 'WordLevel', vocab: Object.fromEntries(words.map((w, i) => [w, i])), unk_token: '<unk>' },
    },
    { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' },
  );
}
