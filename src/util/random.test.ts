import { describe, expect, it } from 'vitest';
import { Rng } from './random';

describe('Rng', () => {
  it('restore() continues the stream from a snapshot(), and refuses a state that is not 32-bit', () => {
    const a = new Rng(7);
    for (let i = 0; i < 5; i++) a.next();
    const st = a.snapshot();
    const ahead = [a.next(), a.next(), a.next()];
    const b = new Rng(123);
    b.restore(st);
    expect([b.next(), b.next(), b.next()]).toEqual(ahead);
    for (const bad of [-1, 2 ** 32, 1.5, Number.NaN]) expect(() => b.restore(bad)).toThrow(/not a 32-bit unsigned integer/);
  });
});
