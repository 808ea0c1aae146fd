import { describe, expect, it } from 'vitest';
import { binaryGroups, parseTypeGroups } from './groups';
import { typeNamesFor } from '../method/data-types';

describe('data types and expert groups', () => {
  it('orders the types present, the official two first', () => {
    expect(typeNamesFor(['strings', 'world knowledge', 'arithmetic'])).toEqual(['world knowledge', 'arithmetic', 'strings']);
    expect(typeNamesFor(['strings', 'world knowledge', 'downstream task', 'world knowledge'])).toEqual(['downstream task', 'world knowledge', 'strings']);
  });
  it('binary grouping: world knowledge to the first half, every task type to the second', () => {
    expect(binaryGroups(['downstream task', 'world knowledge', 'arithmetic'], 4)).toEqual([[2, 3], [0, 1], [2, 3]]);
    expect(() => binaryGroups(['x'], 3)).toThrow(/even number of experts, got 3/);
  });
  it('parses a general mapping of K types to K groups', () => {
    const names = ['downstream task', 'world knowledge', 'arithmetic', 'strings'];
    expect(parseTypeGroups('world knowledge=0-3; arithmetic=4,5; strings=6-7; *=4-7', names, 8)).toEqual([[4, 5, 6, 7], [0, 1, 2, 3], [4, 5], [6, 7]]);
    expect(() => parseTypeGroups('world knowledge=0-3', names, 8)).toThrow(/"downstream task" has no experts/);
    expect(() => parseTypeGroups('poetry=0', names, 8)).toThrow(/no data type "poetry"/);
    expect(() => parseTypeGroups('*=0-8', names, 8)).toThrow(/expert 8 .* outside 0..7/);
  });
});
