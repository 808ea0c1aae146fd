import { describe, expect, it } from 'vitest';
import { checkExpertMask, expertGroups, rangeText, maskWords, parseExpertMask } from './expert-mask';

describe('expert masks', () => {
  it('parse lists and group names, sorted without repeats', () => {
    const groups = [[4, 5, 6, 7], [0, 1, 2, 3], [4, 5, 6, 7]];
    const names = ['downstream task', 'world knowledge', 'arithmetic'];
    expect(parseExpertMask('0-3', 8, groups, names, 'f')).toEqual([0, 1, 2, 3]);
    expect(parseExpertMask(' 5, 1 ,5', 8, groups, names, 'f')).toEqual([1, 5]);
    expect(parseExpertMask('world knowledge', 8, groups, names, 'f')).toEqual([0, 1, 2, 3]);
    expect(parseExpertMask('arithmetic', 8, groups, names, 'f')).toEqual([4, 5, 6, 7]);
    expect(() => parseExpertMask('1,,2', 8, groups, names, 'f')).toThrow(/f: "" is not an expert index or range/);
    expect(() => parseExpertMask('0-7', 8, groups, names, 'f')).toThrow(/f: it switches off all 8 experts/);
    expect(() => checkExpertMask([300], 300)).toThrow(/knockout covers at most 256/);
  });

  it('mask words: bit e % 32 of word e / 32', () => {
    expect(maskWords([0, 31, 32, 255])).toEqual([0x80000001, 1, 0, 0, 0, 0, 0, 0x80000000]);
    expect(maskWords([])).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('formats lists as ranges', () => {
    expect(rangeText([])).toBe('');
    expect(rangeText([0, 1, 2, 3, 6, 8, 9])).toBe('0-3, 6, 8-9');
  });

  it('distinct groups with the types steered to each', () => {
    expect(expertGroups([[4, 5], [0, 1], [5, 4]], ['downstream task', 'world knowledge', 'arithmetic'])).toEqual([
      { name: 'downstream tasks', types: ['downstream task', 'arithmetic'], experts: [4, 5] },
      { name: 'world knowledge', types: ['world knowledge'], experts: [0, 1] },
    ]);
    expect(expertGroups([[0], [1], [2, 3]], ['a', 'world knowledge', 'b']).map((g) => g.name)).toEqual(['a', 'world knowledge', 'b']);
    expect(expertGroups([[0, 1], [0, 1], [2]], ['a', 'b', 'world knowledge']).map((g) => g.name)).toEqual(['downstream tasks', 'world knowledge']);
    expect(expertGroups([[0, 1], [2]], []).map((g) => g.name)).toEqual(['experts 0-1', 'experts 2']);
  });
});
