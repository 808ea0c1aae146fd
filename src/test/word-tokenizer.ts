/**
 * A word-level test tokenizer: ids <unk> 0, <s> 1, </s> 2, a 3, b 4, c 5, d 6, e 7, one id per
 * whitespace-separated word, BOS added as Llama's tokenizer does; optionally lowercasing first.
 */
import { loadTokenizer, type TextTokenizer } from '../data/tokenizer';
import { wordLevelTokenizerJson } from '../demo/tokenizer';

export { specialToken as special } from '../demo/tokenizer';

export function wordTokenizer(lowercase = false): TextTokenizer {
  const words = ['<unk>', '<s>', '</s>', 'a', 'b', 'c', 'd', 'e'];
  return loadTokenizer(wordLevelTokenizerJson(words, 3, lowercase ? { type: 'Lowercase' } : null), { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' });
}
