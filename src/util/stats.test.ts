import { describe, expect, it } from 'vitest';
import { formatPercentCI, meanCI, pairedDifference, tQuantile975 } from './stats';

describe('Student t quantiles (0.975)', () => {
  it('match published values', () => {
    // R: qt(0.975, df) for these df.
    const known: [number, number][] = [
      [1, 12.7062047],
      [2, 4.3026527],
      [3, 3.1824463],
      [4, 2.7764451],
      [9, 2.2621572],
      [29, 2.0452296],
      [30, 2.0422725],
      [31, 2.0395134],
      [40, 2.0210754],
      [60, 2.0002978],
      [120, 1.9799304],
      [1000, 1.9623391],
    ];
    for (const [df, q] of known) expect(Math.abs(tQuantile975(df) - q), `df ${df}`).toBeLessThan(1e-4);
    expect(() => tQuantile975(0)).toThrow(/positive integer, got 0/);
    expect(() => tQuantile975(2.5)).toThrow(/positive integer/);
  });
});

describe('mean and interval over seeds', () => {
  it('mean, half-width t * sd / sqrt(n)', () => {
    // values 1, 2, 3: mean 2, sd 1, half = 4.3027 / sqrt(3) = 2.48417
    const c = meanCI([1, 2, 3]);
    expect(c.mean).toBe(2);
    expect(c.half).toBeCloseTo(2.48417, 4);
    expect(meanCI([0.5])).toEqual({ mean: 0.5, half: null, n: 1 });
    expect(meanCI([]).n).toBe(0);
  });

  it('paired differences: beyond noise when the interval excludes zero', () => {
    // differences 0.1, 0.12, 0.08: mean 0.1, sd 0.02, half 4.3027 * 0.02 / sqrt(3) = 0.049683 < 0.1
    const far = pairedDifference([0.6, 0.62, 0.58], [0.5, 0.5, 0.5]);
    expect(far.mean).toBeCloseTo(0.1, 12);
    expect(far.half).toBeCloseTo(0.049683, 5);
    expect(far.beyondNoise).toBe(true);
    // differences 0.1, -0.05, 0.05: interval spans 0
    expect(pairedDifference([0.6, 0.45, 0.55], [0.5, 0.5, 0.5]).beyondNoise).toBe(false);
    expect(pairedDifference([0.5, 0.5], [0.5, 0.5]).beyondNoise).toBe(false);
    expect(pairedDifference([0.6, 0.6], [0.5, 0.5]).beyondNoise).toBe(true);
    expect(pairedDifference([0.6], [0.5]).beyondNoise).toBe(false);
    expect(() => pairedDifference([1, 2], [1])).toThrow(/2 values against 1/);
  });

  it('formats a share with its interval', () => {
    expect(formatPercentCI({ mean: 0.5, half: 0.0345, n: 3 })).toBe('50.0% ± 3.5');
    expect(formatPercentCI({ mean: 0.5, half: null, n: 1 })).toBe('50.0%');
  });
});
