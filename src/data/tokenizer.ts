/**
 * The backbone's tokenizer (tokenizer.json + tokenizer_config.json) through @huggingface/tokenizers,
 * with the special-token ids the data layer needs resolved once and checked.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { errorMessage } from '../util/errors';

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
  /**
   * The id text outside the vocabulary maps to; null when the tokenizer has none (a byte-level
   * vocabulary covers every text) or when it is also the end- or start-of-sequence id.
   */
  unkId: number | null;
  /**
   * The words of `text` that map to the unknown token, one entry per unknown token, as the
   * vocabulary was searched for them (after the tokenizer's normalizer: the demo's lowercases and
   * strips accents). Empty when every token of `text` is known.
   */
  unknownWords(text: string): string[];
}

/** Token ids are below this (2^31 - 1): batches hold them, and targets, in 32-bit arrays. */
const MAX_TOKEN_ID = 2 ** 31 - 1;
const ID_RULE = `token ids must be integers from 0 to ${MAX_TOKEN_ID - 1}`;

/**
 * Text that a word-level or subword vocabulary is unlikely to cover: a made-up word, digits,
 * punctuation, accented, non-Latin and private-use characters, an emoji. Encoded once at load.
 */
const UNKNOWN_TEXT_PROBE = 'zqxjvkw 0918273645 ~^`|§ ÀÉÎÕÜ ǅ Ωψ Жщ 漢字 ๑ \u{e000}\u{f8ff} 😀\u{1f9ea}';

/**
 * Encodes (and decodes) a test text once at load, so a tokenizer that fails on use is refused here.
 * Refuses a tokenizer whose unknown words come out of encode without an id: the unk token does not
 * resolve (tokenizer_config.json's unk_token set to null or absent where the library takes it from
 * there, model.unk_token not in the vocabulary, a Unigram unk_id out of range) and nothing else
 * (byte-level or byte-fallback tokens) covers the text. Checked at load, so such a tokenizer is never
 * accepted and then fails on the first unusual word of a dataset.
 */
function checkUnknownText(tok: Tokenizer, config: Record<string, unknown>, tokenizerJson: object, fileName: string, size: number): void {
  let ids: readonly unknown[];
  try {
    ids = tok.encode(UNKNOWN_TEXT_PROBE, { add_special_tokens: false }).ids;
  } catch (e) {
    throw new Error(`${fileName}: the tokenizer could not encode a test text: ${errorMessage(e)}`, { cause: e });
  }
  if (ids.every((id) => Number.isSafeInteger(id) && (id as number) >= 0 && (id as number) < size)) {
    // Decoding goes through the decoder section, which the library trusts to hold strings.
    try {
      if (ids.length > 0) tok.decode([...(ids as number[])], { skip_special_tokens: false });
    } catch (e) {
      throw new Error(`${fileName}: the tokenizer could not decode a test text: ${errorMessage(e)}`, { cause: e });
    }
    return;
  }
  const modelSection = (tokenizerJson as { model?: unknown }).model;
  const modelUnk = modelSection && typeof modelSection === 'object' ? (modelSection as Record<string, unknown>).unk_token : undefined;
  const describe = (v: unknown): string => {
    const name = tokenName(v);
    if (name === null) return v === undefined ? 'absent' : JSON.stringify(v);
    return tok.token_to_id(name) === undefined ? `${JSON.stringify(name)}, not in the vocabulary` : JSON.stringify(name);
  };
  throw new Error(
    `${fileName}: words outside the vocabulary get no token id (tokenizer_config.json unk_token: ${describe(config.unk_token)}; ` +
      `model.unk_token: ${describe(modelUnk)}); expected an unk_token that is in the vocabulary, or a vocabulary that covers every character (byte-level)`,
  );
}

function tokenName(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && 'content' in v && typeof (v as { content: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return null;
}

/** Deepest nesting of a tokenizer file's JSON (real ones stay under 10: a Sequence of normalizers, TemplateProcessing). */
const MAX_JSON_DEPTH = 64;

/**
 * The path to the first value nested deeper than MAX_JSON_DEPTH, or null. Walked with an explicit
 * stack: the value may be nested past the call stack's limit.
 */
function tooDeep(root: unknown): string | null {
  type Frame = { v: unknown; depth: number; key: string; parent: Frame | null };
  const stack: Frame[] = [{ v: root, depth: 0, key: '', parent: null }];
  while (stack.length > 0) {
    const f = stack.pop()!;
    if (f.depth > MAX_JSON_DEPTH) {
      const keys: string[] = [];
      for (let g: Frame | null = f; g && g.parent; g = g.parent) keys.push(g.key);
      keys.reverse();
      return keys.slice(0, 4).join('') + '...';
    }
    if (f.v && typeof f.v === 'object') {
      for (const [k, c] of Object.entries(f.v)) {
        if (c && typeof c === 'object') stack.push({ v: c, depth: f.depth + 1, key: Array.isArray(f.v) ? `[${k}]` : `.${k}`, parent: f });
      }
    }
  }
  return null;
}

export function loadTokenizer(tokenizerJson: unknown, tokenizerConfig: unknown, fileName = 'tokenizer.json'): TextTokenizer {
  if (!tokenizerJson || typeof tokenizerJson !== 'object' || !('model' in tokenizerJson)) {
    throw new Error(`${fileName}: not a Hugging Face tokenizer.json (no "model" section)`);
  }
  // The tokenizer library recurses into values and stringifies them where it expects strings (a
  // decoder suffix nested 10,000 arrays deep took minutes per decode): deep values are refused first.
  for (const [value, name] of [
    [tokenizerJson, fileName],
    [tokenizerConfig, 'tokenizer_config.json'],
  ] as const) {
    const at = tooDeep(value);
    if (at !== null) throw new Error(`${name}: a value nested more than ${MAX_JSON_DEPTH} levels deep (at ${at}); expected a tokenizer file's flat structure`);
  }
  const config = (tokenizerConfig && typeof tokenizerConfig === 'object' ? tokenizerConfig : {}) as Record<string, unknown>;
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tokenizerJson, config);
  } catch (e) {
    throw new Error(`${fileName}: the tokenizer could not be built: ${errorMessage(e)}`, { cause: e });
  }
  // Batches hold ids (and targets) as 32-bit integers: ids past that are refused here, not wrapped there.
  const badId = (id: unknown): boolean => !Number.isSafeInteger(id) || (id as number) < 0 || (id as number) >= MAX_TOKEN_ID;
  const idOf = (field: string): number | null => {
    const name = tokenName(config[field]);
    if (name === null) return null;
    const id = tok.token_to_id(name);
    if (id === undefined) throw new Error(`tokenizer_config.json: ${field} "${name}" is not in the vocabulary of ${fileName}`);
    if (badId(id)) throw new Error(`${fileName}: ${field} "${name}" has id ${JSON.stringify(id)}; ${ID_RULE}`);
    return id;
  };
  const eosId = idOf('eos_token');
  if (eosId === null) throw new Error('tokenizer_config.json: eos_token is missing; it is needed to end targets and stop generation');
  const bosId = idOf('bos_token');
  const padId = idOf('pad_token') ?? eosId;
  idOf('unk_token'); // a named unk_token must exist too: unknown words would otherwise get no id
  const model = tok.model;
  if (!model) throw new Error(`${fileName}: the tokenizer has no model`);
  // Every id the tokenizer can emit (its vocabulary and its added tokens) is checked from the
  // library's own maps: get_vocab() lists only ids that are array indices, so -5 or 1.5 passed it
  // unseen and came out of encode. The size is at least the model's id table, as before (a Unigram
  // vocabulary with a repeated token maps it to one id but keeps its index).
  let size = Array.isArray(model.vocab) ? model.vocab.length : 0;
  for (const [token, id] of model.tokens_to_ids) {
    if (badId(id)) throw new Error(`${fileName}: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}; ${ID_RULE}`);
    size = Math.max(size, id + 1);
  }
  for (const [id, added] of tok.get_added_tokens_decoder()) {
    if (badId(id)) throw new Error(`${fileName}: added token ${JSON.stringify(added.content)} has id ${JSON.stringify(id)}; ${ID_RULE}`);
    size = Math.max(size, id + 1);
  }
  if (size === 0) throw new Error(`${fileName}: the vocabulary is empty`);
  checkUnknownText(tok, config, tokenizerJson, fileName, size);
  const modelUnk = model.unk_token_id;
  const unkId = typeof modelUnk === 'number' && Number.isSafeInteger(modelUnk) && modelUnk >= 0 && modelUnk < size && modelUnk !== eosId && modelUnk !== bosId ? modelUnk : null;
  const unknownWords = (text: string): string[] => {
    if (unkId === null || text === '') return [];
    if (!tok.encode(text, { add_special_tokens: false }).ids.includes(unkId)) return [];
    // The encoder's own steps, piece by piece: normalize, split into words, look each word up. A
    // word is unknown where the model hands back the unknown token or a token outside the vocabulary
    // (a word-level model hands back the word itself).
    const normalized = tok.normalizer ? tok.normalizer._call(text) : text;
    const pieces = tok.pre_tokenizer ? tok.pre_tokenizer._call(normalized) : [normalized];
    const words: string[] = [];
    for (const piece of pieces) {
      if (piece === '') continue;
      for (const t of model._call([piece])) if ((model.tokens_to_ids.get(t) ?? unkId) === unkId) words.push(piece);
    }
    return words;
  };
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
    unkId,
    unknownWords,
  };
}
