import { describe, expect, it } from 'vitest';
import { count, describeStartup } from './format';

describe('describeStartup', () => {
  it('names the phase and how far it is', () => {
    expect(describeStartup({ phase: 'tokenising', done: 400, total: 1565 })).toBe('Tokenising the data: 400 of 1,565 records');
    expect(describeStartup({ phase: 'compiling', done: 12, total: 31 })).toBe('Compiling kernels: 12 of 31');
    expect(describeStartup({ phase: 'compiling', done: 12, total: 0 })).toBe('Compiling kernels: 12 so far');
    expect(describeStartup({ phase: 'compiling', done: 0, total: 0 })).toBe('Compiling kernels');
    expect(describeStartup({ phase: 'uploading', done: 0, total: 0 })).toBe('Uploading the weights to the GPU');
    expect(describeStartup({ phase: 'firstStep', done: 0, total: 0 })).toBe('Running the first step');
  });
});

describe('count', () => {
  it('says one in the singular and every other number in the plural', () => {
    expect(count(1, 'record')).toBe('1 record');
    expect(count(0, 'record')).toBe('0 records');
    expect(count(1234, 'record')).toBe('1,234 records');
    expect(count(2, 'query', 'queries')).toBe('2 queries');
  });
});
