/**
 * Datasets from the Hub against a stand-in Hub (src/test/hub-datasets.ts: the Parquet listing, HEAD
 * and range requests) and an in-memory Cache Storage: names, the rows asked for across files and
 * row groups with only the mapped columns fetched, progress, the cache (a second read makes no
 * request), the token (a header, never a URL), and the messages for a missing dataset, one without
 * a Parquet conversion, a gated one, a missing column, several configs and no connection.
 */
import { parquetMetadata } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { detectMapping } from '../data/columns';
import { dollyColumns, standInHub, stringParquet, type StandInDataset } from '../test/hub-datasets';
import { MemoryCaches } from '../test/memory-caches';
import { chooseFiles, datasetRefText, deleteCachedDataset, type HubDataProgress, inspectHubDataset, listCachedDatasets, listingOf, parseDatasetRef, readHubDatasetRows } from './hub-datasets';

const repo = 'test-org/dolly-mini';
/** Two files of 20 rows, row groups of 10. */
const dolly: StandInDataset = { splits: { default: { train: [stringParquet(dollyColumns(20), 10), stringParquet(dollyColumns(20, 20), 10)] } } };

describe('datasets from the Hub', () => {
  it('reads dataset names', () => {
    expect(parseDatasetRef('tatsu-lab/alpaca')).toEqual({ repo: 'tatsu-lab/alpaca' });
    expect(parseDatasetRef(' o/n:cfg@test ')).toEqual({ repo: 'o/n', config: 'cfg', split: 'test' });
    expect(parseDatasetRef('o/n@validation')).toEqual({ repo: 'o/n', split: 'validation' });
    expect(datasetRefText({ repo: 'o/n', config: 'c', split: 's' })).toBe('o/n:c@s');
    expect(() => parseDatasetRef('')).toThrow(/dataset id such as tatsu-lab\/alpaca/);
    expect(() => parseDatasetRef('no-slash')).toThrow(/not a dataset id/);
    expect(() => parseDatasetRef('o/n:a b')).toThrow(/"a b" is not a config name/);
    expect(() => parseDatasetRef('o/n@../x')).toThrow(/not a split name/);
  });

  it("reads the listing in the Hub API's shape and in the dataset viewer's", () => {
    const u = (n: number) => `https://huggingface.co/api/datasets/o/n/parquet/default/train/${n}.parquet`;
    expect(listingOf({ default: { train: [u(0), u(1)], test: ['https://elsewhere.example/x.parquet'] } }, 'o/n')).toEqual({ default: { train: [u(0), u(1)] } });
    const r = 'https://huggingface.co/datasets/o/n/resolve/refs%2Fconvert%2Fparquet/default/train/0000.parquet';
    expect(listingOf({ parquet_files: [{ dataset: 'o/n', config: 'default', split: 'train', url: r, filename: '0000.parquet', size: 10 }], partial: false }, 'o/n')).toEqual({ default: { train: [r] } });
    expect(() => listingOf({}, 'o/n')).toThrow(/o\/n: the dataset has no Parquet conversion on the Hub \(its list of Parquet files is empty\)/);
  });

  it('reads the rows asked for, only the mapped columns, over range requests, and caches them', async () => {
    const hub = standInHub({ [repo]: dolly });
    const cacheStorage = new MemoryCaches() as unknown as CacheStorage;
    const info = await inspectHubDataset(parseDatasetRef(repo), { fetchFn: hub.fetchFn, cacheStorage });
    expect(info).toMatchObject({ config: 'default', split: 'train', columns: ['instruction', 'context', 'response', 'category', 'notes'], firstFileRows: 20 });
    const mapping = detectMapping(info.columns)!;
    expect(mapping).toEqual({ layout: 'dolly', instruction: 'instruction', input: 'context', output: 'response', type: { column: 'category' } });

    const progress: HubDataProgress[] = [];
    const rows = await readHubDatasetRows(info, mapping, 25, { fetchFn: hub.fetchFn, cacheStorage, onProgress: (p) => progress.push(p) });
    // Rows 0..24: all of the first file and the first 5 of the second.
    expect(rows.map((r) => r.instruction)).toEqual(Array.from({ length: 25 }, (_, i) => `question ${i}`));
    expect(rows[3]).toEqual({ instruction: 'question 3', context: 'context 3', response: 'answer 3', category: 'classification' });
    // Every GET of a file is a range; the unused column (most of each file) and the second file's second row group are never fetched.
    const gets = hub.log.filter((r) => r.method === 'GET' && r.url.endsWith('.parquet'));
    expect(gets.every((r) => r.range !== null)).toBe(true);
    const files = dolly.splits.default.train;
    const sizeOf = (url: string): number => files[Number(/(\d+)\.parquet$/.exec(url)![1])].byteLength;
    const ranges = gets.map((r) => ({ url: r.url, range: /bytes=(\d+)-(\d+)/.exec(r.range!)!.slice(1).map(Number) }));
    // The footer is read from the file's end; the rows' chunks come before it.
    const dataRanges = ranges.filter((r) => r.range[1] !== sizeOf(r.url) - 1);
    expect(dataRanges.length).toBeGreaterThan(0);
    const fetched = dataRanges.reduce((n, r) => n + r.range[1] - r.range[0] + 1, 0);
    const fileBytes = files.reduce((n, f) => n + f.byteLength, 0);
    expect(fetched).toBeLessThan(fileBytes / 2);
    const last = progress[progress.length - 1];
    expect(last).toMatchObject({ stage: 'rows', rows: 25 });
    expect(last.loaded).toBe(last.total);

    // Again: from the cache, not a single request.
    hub.log.length = 0;
    const again = await readHubDatasetRows(await inspectHubDataset(parseDatasetRef(repo), { fetchFn: hub.fetchFn, cacheStorage }), mapping, 25, { fetchFn: hub.fetchFn, cacheStorage });
    expect(hub.log).toEqual([]);
    expect(again).toEqual(rows);
    const cached = await listCachedDatasets(cacheStorage);
    expect(cached.map((c) => c.repo)).toEqual([repo]);
    expect(cached[0].bytes).toBeGreaterThan(fetched);
    await deleteCachedDataset(repo, cacheStorage);
    expect(await listCachedDatasets(cacheStorage)).toEqual([]);
  });

  it('sends the token as a header only, and explains a gated dataset without it or with a wrong one', async () => {
    const hub = standInHub({ 'o/gated': { ...dolly, token: 'hf_secret' } });
    const opts = { fetchFn: hub.fetchFn, cacheStorage: null };
    await expect(inspectHubDataset(parseDatasetRef('o/gated'), opts)).rejects.toThrow(/o\/gated: the dataset is gated or private \(HTTP 401\); give a Hugging Face access token/);
    await expect(inspectHubDataset(parseDatasetRef('o/gated'), { ...opts, token: 'hf_wrong' })).rejects.toThrow(/the Hub refused the token \(HTTP 401\)/);
    const info = await inspectHubDataset(parseDatasetRef('o/gated'), { ...opts, token: 'hf_secret' });
    const rows = await readHubDatasetRows(info, detectMapping(info.columns)!, 3, { ...opts, token: 'hf_secret' });
    expect(rows).toHaveLength(3);
    expect(hub.log.some((r) => r.url.includes('hf_'))).toBe(false);
  });

  it('explains a missing dataset, one without a Parquet conversion, a missing column, a missing split and no connection', async () => {
    const twoConfigs: StandInDataset = { splits: { a: { train: dolly.splits.default.train }, b: { test: dolly.splits.default.train } } };
    const hub = standInHub({ [repo]: dolly, 'o/raw': { splits: {}, noConversion: true }, 'o/two': twoConfigs });
    const opts = { fetchFn: hub.fetchFn, cacheStorage: null };
    await expect(inspectHubDataset(parseDatasetRef('o/missing'), opts)).rejects.toThrow(/o\/missing: no such dataset on the Hugging Face Hub \(HTTP 404\)/);
    await expect(inspectHubDataset(parseDatasetRef('o/raw'), opts)).rejects.toThrow(/o\/raw: the dataset has no Parquet conversion on the Hub/);
    await expect(inspectHubDataset(parseDatasetRef('o/two'), opts)).rejects.toThrow(/o\/two has several configs \(a, b\): name one \(o\/two:a\)/);
    await expect(inspectHubDataset(parseDatasetRef('o/two:b@train'), opts)).rejects.toThrow(/o\/two:b has no split "train" \(its splits: test\)/);
    await expect(inspectHubDataset(parseDatasetRef('o/two:c'), opts)).rejects.toThrow(/o\/two has no config "c" \(its configs: a, b\)/);
    expect(chooseFiles({ repo: 'o/two', config: 'b' }, { a: { train: ['x'] }, b: { test: ['y'] } })).toMatchObject({ config: 'b', split: 'test', urls: ['y'] });

    const info = await inspectHubDataset(parseDatasetRef(repo), opts);
    const wrong = { layout: 'custom' as const, instruction: 'prompt', output: 'response', type: { name: 'qa' } };
    await expect(readHubDatasetRows(info, wrong, 5, opts)).rejects.toThrow(
      /test-org\/dolly-mini:default@train, file 1 of 2: no column "prompt": the columns are "instruction", "context", "response", "category", "notes"/,
    );

    hub.offline.on = true;
    await expect(inspectHubDataset(parseDatasetRef(repo), opts)).rejects.toThrow(/could not be reached for its list of Parquet files \(Failed to fetch\); check the connection \(offline\?\)/);
  });

  it('finds the size from a range request where HEAD is refused, and refuses more rows than a dataset may hold', async () => {
    const hub = standInHub({ 'o/signed': { ...dolly, noHead: true } });
    const opts = { fetchFn: hub.fetchFn, cacheStorage: null };
    const info = await inspectHubDataset(parseDatasetRef('o/signed'), opts);
    expect(await readHubDatasetRows(info, detectMapping(info.columns)!, 3, opts)).toHaveLength(3);
    expect(hub.log.some((r) => r.method === 'GET' && r.range === 'bytes=0-0')).toBe(true);
    await expect(readHubDatasetRows(info, detectMapping(info.columns)!, 2_000_000, opts)).rejects.toThrow(/the row limit is 2,000,000, over the 1,000,000 records a dataset may hold/);
  });

  it('reads a dictionary-encoded first column (repeated values)', async () => {
    const same = { instruction: Array.from({ length: 6 }, () => 'positive or negative ?'), input: ['a', 'b', 'c', 'd', 'e', 'f'], output: ['x', 'y', 'x', 'y', 'x', 'y'] };
    const hub = standInHub({ 'o/same': { splits: { default: { train: [stringParquet(same, 3)] } } } });
    const info = await inspectHubDataset(parseDatasetRef('o/same'), { fetchFn: hub.fetchFn, cacheStorage: null });
    const rows = await readHubDatasetRows(info, detectMapping(info.columns)!, 4, { fetchFn: hub.fetchFn, cacheStorage: null });
    expect(rows).toEqual([0, 1, 2, 3].map((i) => ({ instruction: 'positive or negative ?', input: same.input[i], output: same.output[i] })));
  });

  it('names a damaged page by its byte in the file on the Hub', async () => {
    const file = stringParquet(dollyColumns(20), 10);
    const meta = parquetMetadata(file.buffer.slice(0) as ArrayBuffer);
    // The second row group's response chunk: its first page header made unreadable.
    const chunk = meta.row_groups[1].columns.find((c) => c.meta_data?.path_in_schema[0] === 'response')!.meta_data!;
    const at = Number(chunk.dictionary_page_offset || chunk.data_page_offset);
    const damaged = file.slice();
    damaged.fill(0xff, at, at + 4);
    const hub = standInHub({ 'o/bad': { splits: { default: { train: [damaged] } } } });
    const info = await inspectHubDataset(parseDatasetRef('o/bad'), { fetchFn: hub.fetchFn, cacheStorage: null });
    await expect(readHubDatasetRows(info, detectMapping(info.columns)!, 20, { fetchFn: hub.fetchFn, cacheStorage: null })).rejects.toThrow(
      new RegExp(`o/bad:default@train, file 1 of 1: not a readable Parquet file: row group 2 of 2, column "response", page 1 \\(byte ${at} of the file\\)`),
    );
  });

  it('refuses a footer whose chunks lie outside the file, before asking for them', async () => {
    const file = stringParquet(dollyColumns(20), 10);
    const footerLength = new DataView(file.buffer, file.byteLength - 8, 4).getUint32(0, true);
    // The magic and the footer alone: every chunk it names is past the end.
    const bare = new Uint8Array([...file.subarray(0, 4), ...file.subarray(file.byteLength - footerLength - 8)]);
    const hub = standInHub({ 'o/bare': { splits: { default: { train: [bare] } } } });
    const opts = { fetchFn: hub.fetchFn, cacheStorage: null };
    const info = await inspectHubDataset(parseDatasetRef('o/bare'), opts);
    const before = hub.log.length;
    await expect(readHubDatasetRows(info, detectMapping(info.columns)!, 20, opts)).rejects.toThrow(
      new RegExp(`o/bare:default@train, file 1 of 1: not a readable Parquet file: a column chunk at bytes \\d+-\\d+ is not inside the ${bare.byteLength}-byte file`),
    );
    // Only the footer was read again (no cache here): its HEAD and the file's tail.
    expect(hub.log.slice(before).map((r) => `${r.method} ${r.range ?? ''}`)).toEqual(['HEAD ', `GET bytes=0-${bare.byteLength - 1}`]);
  });

  it('stops when cancelled', async () => {
    const hub = standInHub({ [repo]: dolly });
    const info = await inspectHubDataset(parseDatasetRef(repo), { fetchFn: hub.fetchFn, cacheStorage: null });
    const ac = new AbortController();
    ac.abort();
    await expect(readHubDatasetRows(info, detectMapping(info.columns)!, 25, { fetchFn: hub.fetchFn, cacheStorage: null, signal: ac.signal })).rejects.toThrow(/abort/i);
  });
});
