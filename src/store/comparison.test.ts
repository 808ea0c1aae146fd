/** The comparison's schedule and progress. */
import { describe, expect, it } from 'vitest';
import { comparisonProgress, evalEveryFor } from './comparison';

describe('the comparison', () => {
  it('scores at least ten times per run after step 0', () => {
    expect(evalEveryFor(4)).toBe(1);
    expect(evalEveryFor(100)).toBe(10);
    expect(evalEveryFor(109)).toBe(10);
    for (const steps of [1, 9, 10, 37, 300, 1001]) expect(Math.floor(steps / evalEveryFor(steps))).toBeGreaterThanOrEqual(Math.min(10, steps));
  });

  it('counts progress over all five runs', () => {
    const methods = [100, 50, 0, 0, 0].map((step) => ({ step }));
    expect(comparisonProgress({ methods, steps: 100 })).toBeCloseTo(150 / 500, 12);
    expect(comparisonProgress({ methods: [], steps: 100 })).toBe(0);
    // Two seeds: each method has two runs of 100 steps.
    expect(comparisonProgress({ methods: [200, 150, 0, 0, 0].map((step) => ({ step })), steps: 100, seeds: [1, 2] })).toBeCloseTo(350 / 1000, 12);
  });
});
