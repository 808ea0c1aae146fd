/**
 * The backbone and data actions' Hub paths against a stubbed Hub client: a downloaded config.json that is not
 * JSON ends the load with an error naming the repository and the file (not a page stuck on
 * "downloading"), a cache that cannot be listed or emptied says so instead of looking empty, and a
 * picked dataset file that cannot be read is reported in its panel.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { FileEntry } from '../io/browser-files';
import type { CachedRepo } from '../io/hub';

const hub = vi.hoisted(() => ({
  files: [] as FileEntry[],
  list: (): Promise<CachedRepo[]> => Promise.resolve([]),
  remove: (): Promise<void> => Promise.resolve(),
}));

vi.mock('../io/hub', () => ({
  downloadHubModel: () => Promise.resolve(hub.files),
  fetchHubConfig: () => Promise.reject(new Error('not used here')),
  listHubCache: () => hub.list(),
  deleteHubCache: () => hub.remove(),
}));

const { deleteCachedRepo, loadHubBackbone, refreshHubCache } = await import('./backbone-actions');
const { uploadDatasetFile } = await import('./data-actions');
const { useModelStore } = await import('./model');
const { useDatasetStore } = await import('./dataset');

const file = (path: string, text: string): FileEntry => ({ path, file: new Blob([text]) });
const CACHED: CachedRepo = { repo: 'org/tiny', files: [{ path: 'config.json', bytes: 2 }], bytes: 2 };

beforeEach(() => {
  useModelStore.setState({ status: 'idle', error: null, progress: null, preview: null, hubCache: [], cacheError: null, cacheNotes: [] });
  hub.list = () => Promise.resolve([]);
  hub.remove = () => Promise.resolve();
});

describe('loadHubBackbone', () => {
  it('reports a config.json that is not JSON, naming the repository and the file', async () => {
    hub.files = [file('config.json', '{"model_type": "llama",'), file('tokenizer.json', '{}'), file('model.safetensors', '')];
    await expect(loadHubBackbone(' org/broken ')).resolves.toBeUndefined();
    const s = useModelStore.getState();
    expect(s.status).toBe('error');
    expect(s.error).toMatch(/^org\/broken: config\.json is not valid JSON \(.+\)/);
    expect(s.progress).toBeNull();
  });
});

describe('the Hub cache list', () => {
  it('shows why the cache could not be listed, instead of an empty list', async () => {
    hub.list = () => Promise.reject(new Error('SecurityError: caches are disabled'));
    await refreshHubCache();
    expect(useModelStore.getState().cacheError).toBe('The models cached in this browser could not be listed: SecurityError: caches are disabled');
    hub.list = () => Promise.resolve([CACHED]);
    await refreshHubCache();
    expect(useModelStore.getState()).toMatchObject({ hubCache: [CACHED], cacheError: null });
  });

  it('says which model could not be deleted, and keeps it listed', async () => {
    hub.list = () => Promise.resolve([CACHED]);
    hub.remove = () => Promise.reject(new Error('the cache is busy'));
    await deleteCachedRepo('org/tiny');
    expect(useModelStore.getState()).toMatchObject({ hubCache: [CACHED], cacheError: 'org/tiny could not be deleted from the cache: the cache is busy' });
  });
});

describe('uploadDatasetFile', () => {
  it('reports a picked file that cannot be read in its panel', async () => {
    const unreadable = { path: 'picked/data.jsonl', file: { arrayBuffer: () => Promise.reject(new Error('NotReadableError: the file changed on disk')) } } as unknown as FileEntry;
    await expect(uploadDatasetFile('train', unreadable)).resolves.toBeUndefined();
    expect(useDatasetStore.getState().errors.train).toBe('data.jsonl could not be read: NotReadableError: the file changed on disk');
  });
});
