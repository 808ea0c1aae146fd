/**
 * The runner's `--data hf:OWNER/NAME[:CONFIG][@SPLIT]` against the stand-in Hub: the dataset read,
 * mapped and typed, cached on disk with the playground's keys (a second read makes no request),
 * the flags' errors, and `train` on it end to end (a tiny model, two steps), its run.json naming the
 * dataset and its rows but no token.
 */
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseDataset } from '../data/import';
import { HUB_CACHE } from '../io/hub';
import { DirectoryCaches } from '../io/node-cache';
import { tinyHfFiles, writeFiles } from '../test/hf-dir';
import { dollyColumns, standInHub, stringParquet } from '../test/hub-datasets';
import { loadHubData, mappingFromFlags } from './hub-data';
import { main } from './main';

const dolly = { splits: { default: { train: [stringParquet(dollyColumns(12), 4)] } } };

/** Rows in the tiny model's words, official layout, task_type as text ("1" world knowledge). */
const tinyRows = {
  instruction: ['what color is the sky ?', 'what color is the mat ?', 'is the cat big ?', 'is the dog small ?', 'the cat sat on', 'is the mat red ?'],
  output: ['blue .', 'red .', 'no .', 'yes .', 'the mat .', 'yes .'],
  task_type: ['1', '1', '0', '0', '0', '1'],
  unused: ['a', 'b', 'c', 'd', 'e', 'f'],
};

describe('runner: datasets from the Hub', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
  });

  it('reads, maps and types a dataset, and caches it on disk', async () => {
    const hub = standInHub({ 'o/dolly': dolly });
    const dir = await mkdtemp(join(tmpdir(), 'loramoe-hubdata-'));
    const opts = { fetchFn: hub.fetchFn, cacheStorage: new DirectoryCaches(dir) as unknown as CacheStorage, log: () => {} };
    const got = await loadHubData('hf:o/dolly@train', { rows: 5 }, opts);
    expect(got.name).toBe('o_dolly_default_train.jsonl');
    const r = await parseDataset(got.bytes, got.name);
    expect(r.records.map((x) => [x.instruction, x.input, x.output, x.type])).toEqual([
      ['question 0', 'context 0', 'answer 0', 'open_qa'],
      ['question 1', '', 'answer 1', 'classification'],
      ['question 2', '', 'answer 2', 'open_qa'],
      ['question 3', 'context 3', 'answer 3', 'classification'],
      ['question 4', '', 'answer 4', 'open_qa'],
    ]);
    expect((await readdir(join(dir, HUB_CACHE))).length).toBeGreaterThan(0);
    hub.log.length = 0;
    const again = await loadHubData('hf:o/dolly@train', { rows: 5, dataType: 'instructions' }, opts);
    expect(hub.log).toEqual([]);
    expect((await parseDataset(again.bytes, again.name)).counts.byType).toEqual({ instructions: 5 });
  });

  it('maps columns by flag and refuses what does not fit', () => {
    const cols = ['prompt', 'completion', 'kind'];
    expect(mappingFromFlags(cols, { columns: 'instruction=prompt,output=completion', typeColumn: 'kind' }, 'o/x')).toEqual({
      layout: 'custom',
      instruction: 'prompt',
      output: 'completion',
      type: { column: 'kind' },
    });
    expect(() => mappingFromFlags(cols, {}, 'o/x')).toThrow(/o\/x: its columns \("prompt", "completion", "kind"\) are not a layout this runner knows.*--columns instruction=COL/);
    expect(() => mappingFromFlags(cols, { columns: 'question=prompt' }, 'o/x')).toThrow(/--columns: "question=prompt" is not FIELD=COLUMN/);
    expect(() => mappingFromFlags(cols, { columns: 'instruction=prompt,output=answer' }, 'o/x')).toThrow(/o\/x: no column "answer": the columns are "prompt", "completion", "kind"/);
  });

  it('train --data hf:... trains on the dataset; run.json names it and its rows, never the token', async () => {
    const hub = standInHub({ 'o/tiny': { splits: { default: { train: [stringParquet(tinyRows, 3)] } }, token: 'hf_secret' } });
    vi.stubGlobal('fetch', hub.fetchFn);
    const dir = await mkdtemp(join(tmpdir(), 'loramoe-hubtrain-'));
    vi.stubEnv('LORAMOE_HUB_CACHE', join(dir, 'cache'));
    vi.stubEnv('HF_TOKEN', 'hf_secret');
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const model = join(dir, 'model');
    await writeFiles(model, tinyHfFiles({ seed: 3 }).files);
    const out = join(dir, 'run');
    await main(['train', '--model', model, '--data', 'hf:o/tiny', '--rows', '5', '--out', out, '--experts', '2', '--rank', '2', '--steps', '2', '--batch', '2', '--max-length', '16']);
    const run = JSON.parse(await readFile(join(out, 'run.json'), 'utf8')) as { data: string; hub: unknown; typeNames: string[] };
    expect(run.data).toBe('hf:o/tiny');
    expect(run.hub).toEqual({ rows: 5 });
    expect(run.typeNames).toEqual(['downstream task', 'world knowledge']);
    expect(JSON.stringify(run)).not.toContain('hf_secret');
    expect((await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n')).toHaveLength(2);
    expect(hub.log.every((r) => !r.url.includes('hf_secret') && (r.url.includes('/api/datasets/') ? r.authorization === 'Bearer hf_secret' : true))).toBe(true);

    await expect(main(['export-official', '--data', join(dir, 'x.json'), '--out', join(dir, 'x.zip'), '--rows', '5'])).rejects.toThrow(/--rows apply to a dataset from the Hub/);
    await expect(main(['train', '--model', model, '--data', 'hf:o/tiny', '--rows', '0', '--out', out])).rejects.toThrow(/--rows must be a whole number of at least 1/);
  });
});
