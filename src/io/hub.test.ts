/**
 * The Hub client against a fake Hub (a fetch function serving a tiny model) and an in-memory
 * Cache Storage: single-file and sharded models, progress, the cache (a second load makes no
 * request), listing and deleting cached models, and the messages for missing, gated and
 * PyTorch-only repositories.
 */
import { describe, expect, it } from 'vitest';
import { tinyHfFiles } from '../test/hf-dir';
import { MemoryCaches } from '../test/memory-caches';
import { deleteHubCache, downloadHubModel, fetchHubConfig, hubFileUrl, type HubProgress, listHubCache, repoIdProblem } from './hub';

function fakeHub(repo: string, files: Map<string, Uint8Array>, opts: { status?: number; list?: string[] } = {}) {
  const log: string[] = [];
  const fetchFn = (async (input: string | URL | Request) => {
    const url = String(input);
    log.push(url);
    if (opts.status) return new Response('no', { status: opts.status });
    if (url === `https://huggingface.co/api/models/${repo}`) {
      return Response.json({ id: repo, siblings: (opts.list ?? [...files.keys(), 'README.md']).map((rfilename) => ({ rfilename })) });
    }
    const prefix = `https://huggingface.co/${repo}/resolve/main/`;
    const f = url.startsWith(prefix) ? files.get(decodeURIComponent(url.slice(prefix.length))) : undefined;
    if (!f) return new Response('not found', { status: 404 });
    return new Response(f as Uint8Array<ArrayBuffer>, { headers: { 'content-length': String(f.byteLength) } });
  }) as typeof fetch;
  return { fetchFn, log };
}

describe('hub', () => {
  it('checks repository ids', () => {
    expect(repoIdProblem('HuggingFaceTB/SmolLM2-135M')).toBeNull();
    expect(repoIdProblem('')).toMatch(/enter/);
    expect(repoIdProblem('no-slash')).toMatch(/owner\/name/);
    expect(repoIdProblem('a/b/c')).toMatch(/owner\/name/);
    expect(repoIdProblem('../etc')).not.toBeNull();
    expect(hubFileUrl('o/r', 'model-00001-of-00002.safetensors')).toBe('https://huggingface.co/o/r/resolve/main/model-00001-of-00002.safetensors');
  });

  for (const shards of [1, 3]) {
    it(`downloads a ${shards === 1 ? 'single-file' : 'sharded'} model with progress, byte for byte, and caches it`, async () => {
      const repo = 'test-org/tiny';
      const tiny = tinyHfFiles({ shards, dtype: 'BF16' });
      const hub = fakeHub(repo, tiny.files);
      const cacheStorage = new MemoryCaches() as unknown as CacheStorage;
      const progress: HubProgress[] = [];
      const entries = await downloadHubModel(repo, { fetchFn: hub.fetchFn, cacheStorage, onProgress: (p) => progress.push(p) });
      expect(entries.map((e) => e.path).sort()).toEqual([...tiny.files.keys()].sort());
      expect(progress.some((p) => !p.fromCache)).toBe(true);
      const last = progress[progress.length - 1];
      expect(last.loaded).toBe([...tiny.files.values()].reduce((n, f) => n + f.byteLength, 0));
      expect(last.filesTotal).toBe(tiny.files.size);
      for (const e of entries) expect(new Uint8Array(await e.file.arrayBuffer()), e.path).toEqual(tiny.files.get(e.path));

      // The second load reads the cache only: not a single request.
      hub.log.length = 0;
      const again = await downloadHubModel(repo, { fetchFn: hub.fetchFn, cacheStorage });
      expect(hub.log).toEqual([]);
      expect(again.map((e) => e.path).sort()).toEqual(entries.map((e) => e.path).sort());
      expect(await fetchHubConfig(repo, { fetchFn: hub.fetchFn, cacheStorage })).toMatchObject({ hidden_size: tiny.config.hiddenSize });
      expect(hub.log).toEqual([]);

      const listed = await listHubCache(cacheStorage);
      expect(listed).toHaveLength(1);
      expect(listed[0].repo).toBe(repo);
      expect(listed[0].bytes).toBe(last.loaded);
      await deleteHubCache(repo, cacheStorage);
      expect(await listHubCache(cacheStorage)).toEqual([]);
    });
  }

  it('explains missing, gated and PyTorch-only repositories', async () => {
    const files = tinyHfFiles().files;
    const cacheStorage = null;
    await expect(downloadHubModel('o/missing', { fetchFn: fakeHub('o/x', files).fetchFn, cacheStorage })).rejects.toThrow(/no such model repository/);
    await expect(downloadHubModel('o/gated', { fetchFn: fakeHub('o/gated', files, { status: 401 }).fetchFn, cacheStorage })).rejects.toThrow(/login/);
    const bin = fakeHub('o/bin', files, { list: ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'pytorch_model.bin'] });
    await expect(downloadHubModel('o/bin', { fetchFn: bin.fetchFn, cacheStorage })).rejects.toThrow(/PyTorch/);
    await expect(downloadHubModel('bad id', { fetchFn: bin.fetchFn, cacheStorage })).rejects.toThrow(/not a repository id/);
  });

  it('reports a file it could not cache and still returns it', async () => {
    const repo = 'o/full';
    const tiny = tinyHfFiles();
    const hub = fakeHub(repo, tiny.files);
    const caches = new MemoryCaches();
    const full = {
      open: async (n: string) => ({
        ...(await caches.open(n)),
        put: async () => {
          throw new DOMException('quota', 'QuotaExceededError');
        },
      }),
    } as unknown as CacheStorage;
    const notes: string[] = [];
    const entries = await downloadHubModel(repo, { fetchFn: hub.fetchFn, cacheStorage: full, onCacheError: (m) => notes.push(m) });
    expect(entries).toHaveLength(tiny.files.size);
    expect(notes).toHaveLength(tiny.files.size);
    expect(notes[0]).toMatch(/storage is full/);
  });
});
