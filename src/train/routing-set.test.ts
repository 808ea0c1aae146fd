/**
 * The routing set's selection (./routing-set.ts): deterministic for a seed, per data type, at most
 * ROUTING_SET_PER_TYPE samples and ROUTING_SET_MAX_SHARE of a type held out, excluded from the
 * training indices; a type too small to spare a sample is drawn from the training data instead.
 */
import { describe, expect, it } from 'vitest';
import { ROUTING_SET_PER_TYPE, routingSetBatch, routingSetIndices, routingSetTypes, selectRoutingSet, trainingIndices } from './routing-set';

/** 400 of "a", 40 of "b", 5 of "c", interleaved. */
function types(): string[] {
  const out: string[] = [];
  for (let i = 0; i < 400; i++) {
    out.push('a');
    if (i % 10 === 3) out.push('b');
    if (i % 80 === 7) out.push('c');
  }
  return out;
}
const NAMES = ['a', 'b', 'c'];

describe('routing set', () => {
  it('is the same for the same seed and differs for another', () => {
    const t = types();
    const one = selectRoutingSet(t, NAMES, 42);
    expect(selectRoutingSet(t, NAMES, 42)).toEqual(one);
    expect(selectRoutingSet(t, NAMES, 43)).not.toEqual(one);
  });

  it('holds out up to 32 samples of each type, at most an eighth of it; a type too small is sampled from training', () => {
    const t = types();
    const sel = selectRoutingSet(t, NAMES, 7);
    const count = (idx: number[], type: string) => idx.filter((i) => t[i] === type).length;
    expect(count(sel.heldOut, 'a')).toBe(ROUTING_SET_PER_TYPE);
    expect(count(sel.heldOut, 'b')).toBe(5); // 40 / 8
    expect(count(sel.heldOut, 'c')).toBe(0);
    expect(count(sel.sampled, 'c')).toBe(5); // all of them, still trained on
    expect(count(sel.sampled, 'a') + count(sel.sampled, 'b')).toBe(0);
    expect(routingSetTypes(sel, t, NAMES)).toEqual([
      { type: 'a', samples: 32, heldOut: true },
      { type: 'b', samples: 5, heldOut: true },
      { type: 'c', samples: 5, heldOut: false },
    ]);
    // Distinct, sorted, in range.
    const all = routingSetIndices(sel);
    expect(new Set(all).size).toBe(all.length);
    expect([...all].sort((x, y) => x - y)).toEqual(all);
    expect(all.every((i) => i >= 0 && i < t.length)).toBe(true);
  });

  it('excludes the held-out samples from training and keeps every other', () => {
    const t = types();
    const sel = selectRoutingSet(t, NAMES, 3);
    const train = trainingIndices(t.length, sel);
    expect(train.length).toBe(t.length - sel.heldOut.length);
    const held = new Set(sel.heldOut);
    expect(train.some((i) => held.has(i))).toBe(false);
    for (const i of sel.sampled) expect(train).toContain(i);
  });

  it('without holding out, every type is a seeded sample of the training data', () => {
    const t = types();
    const sel = selectRoutingSet(t, NAMES, 3, { holdOut: false });
    expect(sel.heldOut).toEqual([]);
    expect(routingSetTypes(sel, t, NAMES).map((x) => x.samples)).toEqual([32, 32, 5]);
    expect(trainingIndices(t.length, sel).length).toBe(t.length);
  });

  it('never draws a record training leaves out, nor counts it toward a share', () => {
    // The first 100 "a", 8 "b" and 2 "c" records are left out.
    const seen = new Map<string, number>();
    const first: Record<string, number> = { a: 100, b: 8, c: 2 };
    const t = types().map((x) => {
      seen.set(x, (seen.get(x) ?? 0) + 1);
      return seen.get(x)! <= first[x] ? null : x;
    });
    const kept = (type: string) => t.filter((x) => x === type).length;
    expect([kept('a'), kept('b'), kept('c')]).toEqual([300, 32, 3]);
    const sel = selectRoutingSet(t, NAMES, 7);
    expect(routingSetIndices(sel).every((i) => t[i] !== null)).toBe(true);
    expect(routingSetTypes(sel, t, NAMES)).toEqual([
      { type: 'a', samples: 32, heldOut: true },
      { type: 'b', samples: 4, heldOut: true }, // 32 / 8
      { type: 'c', samples: 3, heldOut: false }, // 3 cannot spare one
    ]);
    const train = trainingIndices(t.length, sel, (i) => t[i] !== null);
    expect(train.length).toBe(300 + 32 + 3 - 32 - 4);
    expect(train.every((i) => t[i] !== null && !sel.heldOut.includes(i))).toBe(true);
    // Without any record left out, the draw is the one over the plain types.
    expect(selectRoutingSet(types().map((x) => x as string | null), NAMES, 7)).toEqual(selectRoutingSet(types(), NAMES, 7));
  });

  it('evaluates in batches of at most 2048 token rows, at least one training batch', () => {
    expect(routingSetBatch(69, 30, 4)).toBe(68);
    expect(routingSetBatch(40, 30, 4)).toBe(40);
    expect(routingSetBatch(100, 256, 4)).toBe(8);
    expect(routingSetBatch(100, 2048, 4)).toBe(4);
    expect(routingSetBatch(3, 2048, 4)).toBe(3);
  });
});
