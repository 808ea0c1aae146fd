import { describe, expect, it } from 'vitest';
import { accumulateForward, addForward, copyForward, fillForward, scaleForward } from './elementwise';

// These helpers have no parameters and are linear, so there is no backward to check by finite
// differences; the tests pin down the semantics the GPU tests compare against.
describe('elementwise reference', () => {
  const a = [1, -2, 3.5, 0];
  const b = [0.5, 2, -1, 4];

  it('add', () => {
    expect([...addForward(a, b)]).toEqual([1.5, 0, 2.5, 4]);
  });
  it('accumulate y + alpha x', () => {
    expect([...accumulateForward(a, b, -2)]).toEqual([0, -6, 5.5, -8]);
  });
  it('fill', () => {
    expect([...fillForward(0.25, 3)]).toEqual([0.25, 0.25, 0.25]);
  });
  it('scale', () => {
    expect([...scaleForward(a, 0.5)]).toEqual([0.5, -1, 1.75, 0]);
  });
  it('copy', () => {
    expect([...copyForward(a)]).toEqual(a);
  });
  it('n limits the output to the first n elements', () => {
    expect([...addForward(a, b, 2)]).toEqual([1.5, 0]);
    expect([...copyForward(a, 1)]).toEqual([1]);
  });
});
