import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../data/tokenizer';
import { wordLevelTokenizer } from './tokenizer';

describe('demo word-level tokenizer', () => {
  const { tokenizerJson, tokenizerConfig, size } = wordLevelTokenizer(['what', 'is', 'the', 'capital', 'of', 'france', '?', 'paris', '12']);
  const tok = loadTokenizer(tokenizerJson, tokenizerConfig);
  it('encodes words, opens with <s>, lowercases and strips accents', () => {
    expect(tok.size).toBe(size);
    const ids = tok.encode('What is the capital of Fráncé?', true);
    expect(ids[0]).toBe(tok.bosId);
    expect(tok.decode(ids)).toBe('what is the capital of france ?');
    expect(tok.encode('paris 12', false)).toHaveLength(2);
  });
  it('maps unknown words to <unk>', () => {
    expect(tok.encode('berlin', false)).toEqual([0]);
  });
});
