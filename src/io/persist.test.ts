/** Storage errors: a full quota becomes a StorageFullError that names what was not saved; other errors pass through. */
import { describe, expect, it } from 'vitest';
import { guardWrite, isQuotaError, StorageFullError } from './persist';

describe('persistence errors', () => {
  it('recognises quota errors', () => {
    expect(isQuotaError(new DOMException('full', 'QuotaExceededError'))).toBe(true);
    expect(isQuotaError({ name: 'NS_ERROR_DOM_QUOTA_REACHED' })).toBe(true);
    expect(isQuotaError({ code: 22 })).toBe(true);
    expect(isQuotaError(new Error('other'))).toBe(false);
    expect(isQuotaError(null)).toBe(false);
  });

  it('turns a quota error into a message for the user and lets other errors through', async () => {
    await expect(guardWrite('checkpoint of step 10', () => Promise.reject(new DOMException('full', 'QuotaExceededError')))).rejects.toThrow(StorageFullError);
    await expect(guardWrite('checkpoint of step 10', () => Promise.reject(new DOMException('full', 'QuotaExceededError')))).rejects.toThrow(
      /storage is full: the checkpoint of step 10 could not be saved/,
    );
    await expect(guardWrite('x', () => Promise.reject(new TypeError('boom')))).rejects.toThrow(TypeError);
    await expect(guardWrite('x', async () => 5)).resolves.toBe(5);
  });
});
