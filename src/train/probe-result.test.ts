import { describe, expect, it } from 'vitest';
import { type ProbeItem, probeResultOf } from './probe-result';

const item = (type: string, correct: boolean, logLikelihood: number): ProbeItem => ({ question: 'q', gold: 'g', type, correct, logLikelihood, greedyPrefix: '' });

describe('probe result', () => {
  it('accuracy overall and per data type, mean log-likelihood, the mask copied', () => {
    const mask = [2, 3];
    const r = probeResultOf([item('a', true, -1), item('a', false, -2), item('a', true, -3), item('b', false, -6)], mask);
    expect(r.accuracy).toBe(0.5);
    expect(r.meanLogLikelihood).toBe(-3);
    expect(r.byType).toEqual({ a: { n: 3, accuracy: 2 / 3 }, b: { n: 1, accuracy: 0 } });
    expect(r.expertMask).toEqual([2, 3]);
    expect(r.expertMask).not.toBe(mask);
    expect(probeResultOf([item('a', true, -1)]).expertMask).toEqual([]);
  });
});
