/** The compared methods' adapters: LoRA at the experts' parameter budget and scale, the constraint on and off, each direction. */
import { describe, expect, it } from 'vitest';
import { defaultAdapterConfig } from '../loramoe/config';
import type { AdapterConfig } from '../method/adapter';
import { comparedAdapter, METHOD_KEYS } from './comparison';

const moe: AdapterConfig = { ...defaultAdapterConfig('loramoe'), numExperts: 6, rank: 3, alpha: 12, dropout: 0.1, targets: ['up_proj', 'down_proj'], lbcBeta: 0.2, lbcDelta: 0.3, lbcDirection: 'own-group', groups: [[0, 1, 2], [3, 4, 5]] };

describe('comparedAdapter', () => {
  it('gives LoRA rank N x R and alpha N x alpha on the same projections (the same expert parameters, the same scale)', () => {
    const lora = comparedAdapter('lora', moe);
    expect(lora).toMatchObject({ mode: 'lora', numExperts: 1, rank: 18, alpha: 72, dropout: 0.1, targets: ['up_proj', 'down_proj'] });
    expect(lora.alpha / lora.rank).toBe(moe.alpha / moe.rank);
  });

  it('turns the constraint off, or on in each direction with the configuration\'s delta and beta', () => {
    expect(comparedAdapter('loramoe', moe)).toEqual({ ...moe, lbcBeta: 0 });
    expect(comparedAdapter('lbc-official', moe)).toEqual({ ...moe, lbcDirection: 'official' });
    expect(comparedAdapter('lbc-own', moe)).toEqual({ ...moe, lbcDirection: 'own-group' });
    // A configuration with beta 0 still compares the constraint, at the default weight.
    const off = { ...moe, lbcBeta: 0 };
    expect(comparedAdapter('lbc-official', off).lbcBeta).toBe(defaultAdapterConfig('loramoe').lbcBeta);
    expect(defaultAdapterConfig('loramoe').lbcBeta).toBeGreaterThan(0);
  });

  it('gives full fine-tuning no adapter, and every key a method', () => {
    expect(comparedAdapter('full', moe).mode).toBe('full');
    expect(METHOD_KEYS.map((k) => comparedAdapter(k, moe).mode)).toEqual(['full', 'lora', 'loramoe', 'loramoe', 'loramoe']);
  });
});
