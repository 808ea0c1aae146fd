/**
 * What the tests that train one run on the page's code path and in the runner share: a small
 * two-type dataset, the runner's flags for the page's settings, and a bit-for-bit comparison of
 * adapters.
 */
import { expect } from 'vitest';
import type { AdapterSet } from '../loramoe/init';
import type { RunSettings } from '../train/run-settings';

const WORDS = ['cat', 'dog', 'mat', 'sky', 'red', 'blue', 'big', 'small'];

/** 16 records of each of two types (so the routing set holds 2 of each out), one too long to keep its answer. */
export function twoTypeDataset(): string {
  const out: string[] = [];
  for (let i = 0; i < 16; i++) {
    const w = WORDS[i % WORDS.length];
    out.push(JSON.stringify({ instruction: `what color is the ${w} ?`, input: '', output: WORDS[(i * 3 + 1) % WORDS.length], type: 'world knowledge' }));
    out.push(JSON.stringify({ instruction: i === 5 ? `is the ${w} big ? ${WORDS.join(' ')} ${WORDS.join(' ')}` : `is the ${w} big ?`, input: '', output: i % 2 ? 'yes' : 'no', type: 'sizes' }));
  }
  return out.join('\n');
}

/** The runner's flags for these settings (the form's names on the runner's flags). */
export function runnerFlagsOf(s: RunSettings): string[] {
  return [
    '--mode', s.mode, '--experts', String(s.experts), '--rank', String(s.rank), '--alpha', String(s.alpha), '--dropout', String(s.dropout),
    '--targets', s.targets.join(','), '--lbc-delta', String(s.lbcDelta), '--lbc-beta', String(s.lbcBeta), '--lbc-direction', s.lbcDirection,
    '--lbc-importance', s.lbcImportance, '--lr', String(s.lr), '--schedule', s.schedule, '--warmup', String(s.warmup), '--weight-decay', String(s.weightDecay),
    '--batch', String(s.batch), '--accum', String(s.accum), '--max-length', String(s.maxLength), '--steps', String(s.steps), '--clip', String(s.clip),
    '--seed', String(s.seed), '--checkpoint-every', String(s.checkpointEvery), '--weights', 'f32',
  ];
}

/** Every tensor of an adapter as named bit patterns. */
export function adapterBits(set: AdapterSet): Map<string, Uint32Array> {
  const out = new Map<string, Uint32Array>();
  for (const [key, t] of set) {
    out.set(`${key}.a`, new Uint32Array(t.a.slice().buffer));
    out.set(`${key}.b`, new Uint32Array(t.b.slice().buffer));
    if (t.wr) out.set(`${key}.wr`, new Uint32Array(t.wr.slice().buffer));
  }
  return out;
}

/** Fails, naming the tensor and how many of its values differ, unless both hold the same bits. */
export function expectSameBits(a: Map<string, Uint32Array>, b: Map<string, Uint32Array>, what: string): void {
  expect([...b.keys()].sort(), what).toEqual([...a.keys()].sort());
  for (const [name, bits] of a) {
    const other = b.get(name)!;
    let differ = 0;
    for (let i = 0; i < bits.length; i++) if (bits[i] !== other[i]) differ++;
    expect(differ, `${what}: ${name} differs in ${differ} of ${bits.length} values`).toBe(0);
  }
}
