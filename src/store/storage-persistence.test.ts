/**
 * Keeping the data: the page asks the browser to make its storage persistent once a visit (when the
 * first run or dataset is stored), records the answer for the runs panel, and does not ask when the
 * storage already is persistent or the browser offers no such call.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

function stubStorage(persisted: boolean, grants: boolean) {
  const storage = {
    persisted: vi.fn(() => Promise.resolve(persisted)),
    persist: vi.fn(() => Promise.resolve(grants)),
    estimate: vi.fn(() => Promise.resolve({ usage: 1234, quota: 10_000 })),
  };
  vi.stubGlobal('navigator', { storage });
  return storage;
}

async function freshLibrary() {
  vi.resetModules();
  return import('./run-library');
}

afterEach(() => vi.unstubAllGlobals());

describe('keepStorage', () => {
  it('asks once a visit and records a refusal', async () => {
    const storage = stubStorage(false, false);
    const lib = await freshLibrary();
    expect(lib.useLibraryStore.getState().persistence).toEqual({ persisted: null, asked: false });
    await lib.keepStorage();
    await lib.keepStorage();
    expect(storage.persist).toHaveBeenCalledTimes(1);
    expect(lib.useLibraryStore.getState().persistence).toEqual({ persisted: false, asked: true });
  });

  it('records a grant', async () => {
    stubStorage(false, true);
    const lib = await freshLibrary();
    await lib.keepStorage();
    expect(lib.useLibraryStore.getState().persistence).toEqual({ persisted: true, asked: true });
  });

  it('does not ask when storage is persistent already, or when the browser has no such call', async () => {
    const storage = stubStorage(true, false);
    let lib = await freshLibrary();
    await lib.keepStorage();
    expect(storage.persist).not.toHaveBeenCalled();
    expect(lib.useLibraryStore.getState().persistence.persisted).toBe(true);

    vi.stubGlobal('navigator', {});
    lib = await freshLibrary();
    await lib.keepStorage();
    expect(lib.useLibraryStore.getState().persistence).toEqual({ persisted: null, asked: false });
  });
});
