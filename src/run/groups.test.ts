/** Expert groups as shown: distinct expert sets named by their data types, and summaries and tokens measured against them. */
import { describe, expect, it } from 'vitest';
import { binaryGroups, parseTypeGroups } from '../loramoe/groups';
import type { RoutingSummary } from '../train/routing';
import { binarySpec, displayGroups, rangeText, tokenGroupShares, withDisplayGroups } from './groups';
import { resolveGroups } from '../train/run-settings';

const names = ['world knowledge', 'arithmetic', 'sentiment', 'word reversal'];

describe('display groups', () => {
  it('merges the types of the official binary grouping into two groups', () => {
    const groups = displayGroups({ mode: 'loramoe', numExperts: 8, groups: binaryGroups(names, 8) }, names);
    expect(groups).toEqual([
      { name: 'world knowledge', experts: [0, 1, 2, 3], types: ['world knowledge'] },
      { name: 'downstream tasks', experts: [4, 5, 6, 7], types: ['arithmetic', 'sentiment', 'word reversal'] },
    ]);
    expect(displayGroups({ mode: 'lora', numExperts: 1, groups: [[0]] }, names)).toEqual([]);
  });

  it('names custom groups by their types', () => {
    const g = parseTypeGroups('world knowledge=0-1; arithmetic=2,3; *=4-5', names, 6);
    expect(displayGroups({ mode: 'loramoe', numExperts: 6, groups: g }, names).map((x) => x.name)).toEqual(['world knowledge', 'arithmetic', 'sentiment + word reversal']);
    expect(displayGroups({ mode: 'loramoe', numExperts: 4, groups: [[0, 1], [2, 3]] }, []).map((x) => x.name)).toEqual(['experts 0-1', 'experts 2-3']);
  });

  it('recomputes group shares over display groups, and per token', () => {
    const groups = displayGroups({ mode: 'loramoe', numExperts: 4, groups: [[0, 1], [2, 3], [2, 3]] }, ['world knowledge', 'a', 'b']);
    const row = [0.4, 0.3, 0.2, 0.1];
    const none = [NaN, NaN, NaN, NaN];
    // mean[type][layer][projection][expert]
    const summary: RoutingSummary = {
      types: ['world knowledge', 'a', 'b'],
      layers: 2,
      projections: ['gate_proj'],
      experts: 4,
      tokens: [3, 4, 0],
      mean: [[[row], [row]], [[row], [row]], [[none], [none]]],
      groupMean: [[0.7, 0.3, 0.3], [0.7, 0.3, 0.3], [NaN, NaN, NaN]],
      ownGroup: [],
      constraint: { direction: 'official', importance: 'mean', delta: 0.1, beta: 0.1 },
    };
    const out = withDisplayGroups(summary, groups);
    expect(out.groupMean[0].map((v) => +v.toFixed(6))).toEqual([0.7, 0.3]);
    expect(out.groupMean[2].every(Number.isNaN)).toBe(true);
    const shares = tokenGroupShares(new Map([['0.gate_proj', new Float32Array(row)], ['1.gate_proj', new Float32Array([0, 0, 0.5, 0.5])]]), groups);
    expect(shares.map((v) => +v.toFixed(6))).toEqual([0.35, 0.65]);
  });

  it('writes ranges and the binary spec', () => {
    expect(rangeText([0, 1, 2, 5, 7, 8])).toBe('0-2, 5, 7-8');
    expect(binarySpec(8)).toBe('world knowledge=0-3; *=4-7');
    expect(binarySpec(3)).toBe('');
    expect(parseTypeGroups(binarySpec(8), names, 8)).toEqual(binaryGroups(names, 8));
  });

  it('resolves the form to groups or says what is wrong', () => {
    expect(resolveGroups(names, 8, '')).toEqual({ groups: binaryGroups(names, 8), error: null });
    expect(resolveGroups(names, 3, '').error).toMatch(/even number of experts, got 3/);
    expect(resolveGroups(names, 3, 'world knowledge=0; *=1-2').groups).toEqual([[0], [1, 2], [1, 2], [1, 2]]);
    expect(resolveGroups(names, 4, 'world knowledge=0-9').error).toMatch(/outside 0..3/);
    expect(resolveGroups(names, 4, 'world knowledge=0-1').error).toMatch(/"arithmetic" has no experts/);
  });
});
