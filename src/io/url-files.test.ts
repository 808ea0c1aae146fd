/** The demo backbone's files under a URL, and the recording of the JSON files a backbone was read from. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemorySource, RecordingSource } from './files';
import { StaticUrlSource } from './url-files';

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('StaticUrlSource', () => {
  it('knows its files by name and reads them under its base URL', async () => {
    const fetched: string[] = [];
    vi.stubGlobal('fetch', async (url: string) => {
      fetched.push(url);
      return new Response(new Uint8Array([1, 2, 3]), { headers: { 'content-type': 'application/octet-stream' } });
    });
    const src = new StaticUrlSource('demo', '/models/demo/', ['config.json', 'model.safetensors']);
    expect(await src.has('config.json')).toBe(true);
    expect(await src.has('tokenizer.model')).toBe(false);
    expect(Array.from(await src.readBytes('model.safetensors'))).toEqual([1, 2, 3]);
    expect(fetched).toEqual(['/models/demo/model.safetensors']);
  });

  it('refuses an HTTP error and a web page served in place of a missing file', async () => {
    const src = new StaticUrlSource('demo', '/models/demo', ['config.json']);
    vi.stubGlobal('fetch', async () => new Response('gone', { status: 404, statusText: 'Not Found' }));
    await expect(src.readBytes('config.json')).rejects.toThrow('demo/config.json: HTTP 404 Not Found');
    vi.stubGlobal('fetch', async () => new Response('<!doctype html>', { headers: { 'content-type': 'text/html; charset=utf-8' } }));
    await expect(src.readBytes('config.json')).rejects.toThrow('demo/config.json: not found (the server answered with a web page)');
  });
});

describe('RecordingSource', () => {
  it('reads through its source and keeps the JSON files it read', async () => {
    const files = new Map([
      ['config.json', new TextEncoder().encode('{}')],
      ['model.safetensors', new Uint8Array(8)],
      ['tokenizer.json', new TextEncoder().encode('{"model":{}}')],
    ]);
    const src = new RecordingSource(new MemorySource('tiny', files));
    expect(src.label).toBe('tiny');
    expect(await src.has('model.safetensors')).toBe(true);
    await src.readBytes('config.json');
    await src.readBytes('model.safetensors');
    expect([...src.kept.keys()]).toEqual(['config.json']);
    expect(src.kept.get('config.json')).toBe(files.get('config.json'));
  });
});
