/**
 * The run folder's files read without a GPU: run.json checked field by field, a zip's one top
 * folder taken off, data inside the folder told from data named elsewhere, and data whose SHA-256
 * is not the recorded one refused with both hashes.
 */
import { createHash } from 'node:crypto';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { defaultAdapterConfig } from '../loramoe/config';
import { defaultTrainSettings } from '../train/trainer';
import { checkDataHash, dataInFolder, parseFolderSetup, parseMetrics, unzipFolder } from './run-folder';

const setup = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ version: 1, model: 'demo', data: 'data/train.jsonl', cfg: defaultAdapterConfig('lora'), settings: defaultTrainSettings(), typeNames: ['a'], checkpointEvery: 2, ...over });

describe('run folder', () => {
  it('reads a whole run.json and names the first wrong field of a damaged one', () => {
    expect(parseFolderSetup(setup(), 'x/run.json').model).toBe('demo');
    expect(() => parseFolderSetup(setup({ version: 2 }), 'x/run.json')).toThrow('x/run.json: written by a newer version of the runner (version 2; this one reads 1)');
    expect(() => parseFolderSetup(setup({ data: 3 }), 'x/run.json')).toThrow('x/run.json: "data" must be a path, got 3');
    expect(() => parseFolderSetup(setup({ dataSha256: 'abc' }), 'x/run.json')).toThrow('"dataSha256" must be 64 hex digits, got "abc"');
    expect(() => parseFolderSetup(setup({ checkpointEvery: -1 }), 'x/run.json')).toThrow('"checkpointEvery" must be a whole number of at least 0, got -1');
    expect(() => parseFolderSetup('{', 'x/run.json')).toThrow('x/run.json: not valid JSON');
  });

  it('tells data inside the folder from data named by an absolute path, a Hub name or a path out of the folder', () => {
    expect(dataInFolder({ data: 'data/train.jsonl' })).toBe(true);
    expect(dataInFolder({ data: '/home/me/train.jsonl' })).toBe(false);
    expect(dataInFolder({ data: 'hf:owner/name' })).toBe(false);
    expect(dataInFolder({ data: '../train.jsonl' })).toBe(false);
  });

  it("takes a zip's one top folder off its paths, and names a damaged zip", () => {
    const files = unzipFolder(zipSync({ 'run-x/run.json': new Uint8Array([1]), 'run-x/data/t.jsonl': new Uint8Array([2]) }), 'run-x.zip');
    expect([...files.keys()].sort()).toEqual(['data/t.jsonl', 'run.json']);
    expect(() => unzipFolder(new Uint8Array([1, 2, 3]), 'bad.zip')).toThrow('bad.zip: not a readable zip archive');
  });

  it('refuses data whose SHA-256 is not the recorded one, naming the file and both hashes', async () => {
    const good = new TextEncoder().encode('{"a":1}\n');
    const bad = new TextEncoder().encode('{"a":2}\n');
    const hash = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    await expect(checkDataHash('f.jsonl', good, hash(good))).resolves.toBe(hash(good));
    await expect(checkDataHash('f.jsonl', bad, hash(good))).rejects.toThrow(`f.jsonl: SHA-256 ${hash(bad)} is not that of the data the run was trained on (SHA-256 ${hash(good)}`);
  });

  it('reads the metrics of the steps up to the checkpoint, naming a short or damaged file by line', () => {
    expect(parseMetrics('{"step":1}\n{"step":2}\n{"step":3}\n', 'm.jsonl', 2).map((m) => m.step)).toEqual([1, 2]);
    expect(() => parseMetrics('{"step":1}\n', 'm.jsonl', 2)).toThrow('m.jsonl has 1 steps, the checkpoint 2');
    expect(() => parseMetrics('{"step":1}\nnot json\n', 'm.jsonl', 2)).toThrow('m.jsonl:2: not valid JSON');
  });
});
