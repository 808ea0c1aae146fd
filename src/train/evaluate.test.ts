/** Evaluation against the float64 reference: the whole set as one batch, and in batches. */
import { describe, expect, it } from 'vitest';
import { makeBatch } from '../data/batch';
import type { EncodedSample } from '../data/template';
import { defaultAdapterConfig } from '../loramoe/config';
import { GpuWeights } from '../model/weights';
import { ReferenceLlama } from '../reference/llama';
import { testGpu } from '../test/gpu';
import { randomAdapter, randomWeights, TINY_SHAPE, toRefAdapter, toRefWeights } from '../test/tiny-llama';
import { evaluate } from './evaluate';

const TYPES = ['downstream task', 'world knowledge'];
const SAMPLES: EncodedSample[] = [
  { ids: [1, 5, 9, 2, 14, 3], promptLength: 3, truncated: false, type: 'world knowledge' },
  { ids: [1, 6, 10, 2, 15, 16, 3], promptLength: 3, truncated: false, type: 'world knowledge' },
  { ids: [1, 7, 11, 2, 17, 3], promptLength: 3, truncated: false, type: 'downstream task' },
];

describe('evaluate', () => {
  it('matches the reference on the whole set as one batch, and per batch', async () => {
    const ctx = await testGpu();
    const cfg = { ...defaultAdapterConfig('loramoe'), numExperts: 4, rank: 2, alpha: 4, groups: [[2, 3], [0, 1]], lbcBeta: 0.3 };
    const host = randomWeights(TINY_SHAPE, 3);
    const adapter = randomAdapter(TINY_SHAPE, cfg, 4);
    const weights = new GpuWeights(ctx, TINY_SHAPE, host, cfg, adapter, 16);
    const typeIndex = (t: string) => TYPES.indexOf(t);
    const ref = new ReferenceLlama(TINY_SHAPE, toRefWeights(host), cfg, toRefAdapter(adapter), 16);
    const refOn = (chunk: EncodedSample[]) => {
      const b = makeBatch(chunk, chunk.length, 7, 0, typeIndex);
      return ref.forward({ B: b.B, T: b.T, ids: b.ids, targets: b.targets, valid: b.valid, types: b.types }, { dropout: 0, seed: 0 });
    };

    const whole = await evaluate(ctx, weights, SAMPLES, typeIndex, TYPES, { padId: 0 });
    const r = refOn(SAMPLES);
    console.log(`[check] eval one batch: CE gpu ${whole.ce} ref ${r.ce}; LBC gpu ${whole.lbc} ref ${r.lbc}`);
    expect(whole.tokens).toBe(r.count);
    expect(Math.abs(whole.ce - r.ce)).toBeLessThan(1e-5 * r.ce);
    expect(Math.abs(whole.lbc - r.lbc)).toBeLessThan(1e-5 * r.lbc);
    expect(whole.routing!.tokens).toEqual([6, 13]);

    const batched = await evaluate(ctx, weights, SAMPLES, typeIndex, TYPES, { padId: 0, batchSize: 2 });
    const r1 = refOn(SAMPLES.slice(0, 2));
    const r2 = refOn(SAMPLES.slice(2));
    const wantCe = (r1.ce * r1.count + r2.ce * r2.count) / (r1.count + r2.count);
    expect(batched.batches).toBe(2);
    expect(Math.abs(batched.ce - wantCe)).toBeLessThan(1e-5 * wantCe);
    expect(Math.abs(batched.lbc - (r1.lbc + r2.lbc) / 2)).toBeLessThan(1e-5 * r1.lbc);
    weights.destroy();
  });
});
