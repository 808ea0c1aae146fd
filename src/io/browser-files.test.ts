/** Picked, dropped and zipped files become FileEntry lists with paths relative to the model or adapter folder. */
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { BlobSource, entriesFromZip, isZip, normalizeEntries } from './browser-files';

const blob = (s: string) => new Blob([s]);

describe('browser files', () => {
  it('strips the folder all paths share and drops hidden files', () => {
    const out = normalizeEntries([
      { path: 'SmolLM2/config.json', file: blob('{}') },
      { path: 'SmolLM2/.git/HEAD', file: blob('x') },
      { path: 'SmolLM2/onnx/model.onnx', file: blob('x') },
      { path: 'SmolLM2/model.safetensors', file: blob('x') },
    ]);
    expect(out.map((e) => e.path).sort()).toEqual(['config.json', 'model.safetensors', 'onnx/model.onnx']);
    expect(normalizeEntries([{ path: 'a/b/c.json', file: blob('') }]).map((e) => e.path)).toEqual(['c.json']);
    expect(normalizeEntries([{ path: 'x.json', file: blob('') }, { path: 'dir\\y.json', file: blob('') }]).map((e) => e.path)).toEqual(['x.json', 'dir/y.json']);
  });

  it('reads a zip (with a top folder and macOS metadata) into a source', async () => {
    const enc = new TextEncoder();
    const zip = zipSync({
      'adapter/adapter_config.json': enc.encode('{"r": 4}'),
      'adapter/adapter_model.safetensors': new Uint8Array([1, 2, 3]),
      '__MACOSX/adapter/._adapter_config.json': new Uint8Array([0]),
    });
    const entries = entriesFromZip(zip, 'a.zip');
    expect(entries.map((e) => e.path).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const src = new BlobSource('a.zip', entries);
    expect(await src.has('adapter_config.json')).toBe(true);
    expect(new TextDecoder().decode(await src.readBytes('adapter_config.json'))).toBe('{"r": 4}');
    await expect(src.readBytes('nope')).rejects.toThrow(/missing/);
    expect(() => entriesFromZip(new Uint8Array([1, 2, 3]), 'bad.zip')).toThrow(/bad.zip: not a readable zip/);
    expect(isZip([{ path: 'x.ZIP', file: blob('') }])).toBe(true);
    expect(isZip([{ path: 'x.zip', file: blob('') }, { path: 'y', file: blob('') }])).toBe(false);
  });
});
