/** The runner's Cache Storage on disk: entries round-trip with their headers, are listed and deleted, and one cut short is no entry. */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DirectoryCaches } from './node-cache';

describe('DirectoryCaches', () => {
  it('keeps responses by URL, lists and deletes them; an entry without its description is not matched', async () => {
    const root = await mkdtemp(join(tmpdir(), 'loramoe-cache-'));
    const cache = await new DirectoryCaches(root).open('loramoe-hub-v1');
    const url = 'https://huggingface.co/api/datasets/o/n/parquet/default/train/0.parquet?loramoe-bytes=4-9';
    expect(await cache.match(url)).toBeUndefined();
    await cache.put(url, new Response(new Uint8Array([1, 2, 3, 4, 5]), { headers: { 'x-file-size': '99' } }));
    const hit = await cache.match(new Request(url));
    expect(new Uint8Array(await hit!.arrayBuffer())).toEqual(new Uint8Array([1, 2, 3, 4, 5]));
    expect(hit!.headers.get('x-file-size')).toBe('99');
    expect((await cache.keys()).map((r) => r.url)).toEqual([url]);

    // A crash between the body and its description leaves a body alone: no entry.
    const dir = join(root, 'loramoe-hub-v1');
    const json = (await readdir(dir)).find((n) => n.endsWith('.json'))!;
    await rm(join(dir, json));
    expect(await cache.match(url)).toBeUndefined();
    expect(await cache.keys()).toEqual([]);

    await cache.put(url, new Response('again'));
    await cache.delete(new Request(url));
    expect(await cache.match(url)).toBeUndefined();
    expect(await readdir(dir)).toEqual([]);
  });
});
