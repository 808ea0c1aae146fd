/**
 * The backbone's tokenizer (tokenizer.json + tokenizer_config.json) through @huggingface/tokenizers,
 * with the special-token ids the data layer needs resolved once and checked.
 */
import { Tokenizer } from '@huggingface/tokenizers';

export interface TextTokenizer {
  encode(text: string, addSpecialTokens?: boolean): number[];
  decode(ids: readonly number[], skipSpecialTokens?: boolean): string;
  /** End-of-sequence id: ends every target and stops generation. */
  eosId: number;
  bosId: number | null;
  /** Padding id for batches (the pad token, else EOS as Hugging Face trainers do). Never counted in the loss. */
  padId: number;
  /** Number of ids the tokenizer can produce (vocabulary plus added tokens). */
  size: number;
}

function tokenName(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && 'content' in v && typeof (v as { content: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return null;
}

export function loadTokenizer(tokenizerJson: unknown, tokenizerConfig: unknown, fileName = 'tokenizer.json'): TextTokenizer {
  if (!tokenizerJson || typeof tokenizerJson !== 'object' || !('model' in tokenizerJson)) {
    throw new Error(`${fileName}: not a Hugging Face tokenizer.json (no "model" section)`);
  }
  const config = (tokenizerConfig && typeof tokenizerConfig === 'object' ? tokenizerConfig : {}) as Record<string, unknown>;
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tokenizerJson, config);
  } catch (e) {
    throw new Error(`${fileName}: the tokenizer could not be built: ${e instanceof Error ? e.message : String(e)}`);
  }
  const idOf = (field: string): number | null => {
    const name = tokenName(config[field]);
    if (name === null) return null;
    const id = tok.token_to_id(name);
    if (id === undefined) throw new Error(`tokenizer_config.json: ${field} "${name}" is not in the vocabulary of ${fileName}`);
    if (!Number.isSafeInteger(id) || id < 0) {
      throw new Error(`${fileName}: ${field} "${name}" has id ${JSON.stringify(id)}; token ids must be non-negative integers`);
    }
    return id;
  };
  const eosId = idOf('eos_token');
  if (eosId === null) throw new Error('tokenizer_config.json: eos_token is missing; it is needed to end targets and stop generation');
  const bosId = idOf('bos_token');
  const padId = idOf('pad_token') ?? eosId;
  idOf('unk_token'); // a named unk_token must exist too: unknown words would otherwise get no id
  const vocab = tok.get_vocab(true);
  let size = 0;
  for (const [token, id] of vocab) {
    if (!Number.isSafeInteger(id) || id < 0) throw new Error(`${fileName}: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}; token ids must be non-negative integers`);
    size = Math.max(size, id + 1);
  }
  return {
    encode: (text, addSpecialTokens = false) => {
      const ids = tok.encode(text, { add_special_tokens: addSpecialTokens }).ids;
      // A word outside the vocabulary with no usable unknown token comes back without an id.
      const bad = ids.findIndex((id) => !Number.isSafeInteger(id) || id < 0 || id >= size);
      if (bad >= 0) throw new Error(`${fileName}: token ${bad + 1} of ${JSON.stringify(text.slice(0, 80))} has no id in the vocabulary (and the tokenizer has no usable unk_token)`);
      return ids;
    },
    decode: (ids, skipSpecialTokens = true) => tok.decode([...ids], { skip_special_tokens: skipSpecialTokens }),
    eosId,
    bosId,
    padId,
    size,
  };
}
