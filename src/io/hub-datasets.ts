/**
 * Instruction datasets from the Hugging Face Hub by name, read from the Parquet files the Hub
 * converts every public dataset to, over HTTP range requests: only the footer, then the column
 * chunks of the columns a mapping reads, in the row groups that hold the rows asked for.
 *
 *   listing    GET https://huggingface.co/api/datasets/{repo}/parquet
 *              -> { "<config>": { "<split>": ["https://huggingface.co/api/datasets/{repo}/parquet/<config>/<split>/0.parquet", ...] } }
 *   each file  HEAD (its size), then GET with `Range: bytes=a-b` (the URL redirects to the
 *              refs/convert/parquet branch and its CDN)
 *
 * The Hub's own API rather than datasets-server.huggingface.co/parquet: it is the origin the backbone
 * download already talks to (one entry in the Content-Security-Policy, one token, one stand-in Hub in
 * the tests), and its listing is all this needs (the file sizes come from HEAD).
 *
 * Cache: the listing, each file's footer and each byte range read are stored in Cache Storage (the
 * backbone's cache, HUB_CACHE) under their URL (ranges as `?loramoe-bytes=a-b`, the footer as
 * `?loramoe-tail`), so reading the same rows again makes no request. The token goes into the
 * Authorization header only: never into a URL, so never into a cache key.
 */
import { parquetMetadata, parquetReadObjects, type FileMetaData, type RowGroup } from 'hyparquet';
import { type ColumnMapping, mappingColumns, mappingProblem } from '../data/columns';
import { parquetString } from '../data/formats';
import { MAX_DATASET_BYTES, MAX_DATASET_RECORDS } from '../data/import';
import { checkParquetPages, footerProblem, ParquetPageError } from '../data/parquet-guard';
import { snappyDecompress } from '../data/snappy';
import { HUB_CACHE, HUB_ORIGIN, HubError, hubCacheEntries, repoIdProblem } from './hub';
import { isQuotaError } from './persist';
import { errorMessage } from '../util/errors';

/** A dataset by name: `owner/name[:config][@split]`. */
export interface HubDatasetRef {
  repo: string;
  config?: string;
  split?: string;
}

/** The part of a reference after the repository: a config or split name. */
const NAME_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Reads `owner/name[:config][@split]`; throws a HubError saying what is wrong. */
export function parseDatasetRef(spec: string): HubDatasetRef {
  const m = /^([^:@]*)(?::([^@]*))?(?:@(.*))?$/.exec(spec.trim());
  const repo = m?.[1] ?? '';
  const problem = repoIdProblem(repo);
  if (problem) throw new HubError(problem.replace('HuggingFaceTB/SmolLM2-135M', 'tatsu-lab/alpaca').replace('repository id', 'dataset id'));
  const config = m?.[2];
  const split = m?.[3];
  if (config !== undefined && !NAME_PART.test(config)) throw new HubError(`"${config}" is not a config name (letters, digits, ".", "_" and "-")`);
  if (split !== undefined && !NAME_PART.test(split)) throw new HubError(`"${split}" is not a split name (letters, digits, ".", "_" and "-")`);
  return { repo, ...(config ? { config } : {}), ...(split ? { split } : {}) };
}

export function datasetRefText(ref: HubDatasetRef): string {
  return `${ref.repo}${ref.config ? `:${ref.config}` : ''}${ref.split ? `@${ref.split}` : ''}`;
}

function parquetListUrl(repo: string): string {
  return `${HUB_ORIGIN}/api/datasets/${repo}/parquet`;
}

export interface HubDataProgress {
  /** What is being read: the file list, a file's footer, or rows. */
  stage: 'listing' | 'footer' | 'rows';
  /** Bytes of rows received so far, and the bytes planned so far (grows file by file). */
  loaded: number;
  total: number;
  /** Rows read so far. */
  rows: number;
  fromCache: boolean;
}

export interface HubDataOptions {
  fetchFn?: typeof fetch;
  /** The CacheStorage to use (default: the global `caches`; null: no caching). */
  cacheStorage?: CacheStorage | null;
  /** A Hugging Face access token (gated or private datasets), sent as a Bearer header. */
  token?: string;
  signal?: AbortSignal;
  onProgress?(p: HubDataProgress): void;
  /** Something was downloaded but could not be cached (e.g. the storage quota is full). */
  onCacheError?(message: string): void;
}

/** A dataset's config and split, resolved against its listing, with its Parquet files. */
export interface HubDatasetFiles {
  repo: string;
  config: string;
  split: string;
  urls: string[];
  /** Every config and its splits (for the page's choice). */
  available: Record<string, string[]>;
}

export interface HubDatasetInfo extends HubDatasetFiles {
  /** The first file's top-level columns and the rows of that file. */
  columns: string[];
  firstFileRows: number;
}

// ---- requests ------------------------------------------------------------------------------------

function cacheOf(opts: HubDataOptions): CacheStorage | null {
  if (opts.cacheStorage !== undefined) return opts.cacheStorage;
  return typeof caches !== 'undefined' ? caches : null;
}

function authHeaders(opts: HubDataOptions, extra: Record<string, string> = {}): Headers {
  const h = new Headers(extra);
  const token = opts.token?.trim();
  if (token) h.set('authorization', `Bearer ${token}`);
  return h;
}

function accessMessage(repo: string, status: number, opts: HubDataOptions): string {
  return opts.token?.trim()
    ? `${repo}: the Hub refused the token (HTTP ${status}); check that it has read access to this dataset and, for a gated dataset, that its conditions are accepted on its page`
    : `${repo}: the dataset is gated or private (HTTP ${status}); give a Hugging Face access token with read access`;
}

/** A request to the Hub: a clear HubError when it cannot be made (offline) or is refused. */
async function hubFetch(
  repo: string,
  url: string,
  what: string,
  opts: HubDataOptions,
  init: { method?: string; headers?: Record<string, string>; keepDenied?: boolean } = {},
): Promise<Response> {
  const fetchFn = opts.fetchFn ?? ((...a: Parameters<typeof fetch>) => fetch(...a));
  let res: Response;
  try {
    res = await fetchFn(url, { method: init.method ?? 'GET', headers: authHeaders(opts, init.headers), signal: opts.signal });
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    throw new HubError(`${repo}: the Hugging Face Hub could not be reached for ${what} (${errorMessage(e)}); check the connection (offline?)`);
  }
  if ((res.status === 401 || res.status === 403) && !init.keepDenied) throw new HubError(accessMessage(repo, res.status, opts), res.status);
  return res;
}

async function openCache(opts: HubDataOptions): Promise<Cache | null> {
  const store = cacheOf(opts);
  return store ? store.open(HUB_CACHE) : null;
}

async function cachePut(cache: Cache | null, key: string, body: Uint8Array, headers: Record<string, string>, repo: string, opts: HubDataOptions): Promise<void> {
  if (!cache) return;
  try {
    await cache.put(key, new Response(body as Uint8Array<ArrayBuffer>, { headers: { 'content-length': String(body.byteLength), 'x-cached-at': String(Date.now()), ...headers } }));
  } catch (e) {
    const why = isQuotaError(e) ? 'browser storage is full' : errorMessage(e);
    opts.onCacheError?.(`${repo}: part of the dataset was downloaded but not cached (${why}); the next load downloads it again`);
  }
}

// ---- the listing ---------------------------------------------------------------------------------

/** Every config's splits and their Parquet file URLs. */
async function listDatasetParquet(repo: string, opts: HubDataOptions = {}): Promise<Record<string, Record<string, string[]>>> {
  const url = parquetListUrl(repo);
  const cache = await openCache(opts);
  const hit = cache ? await cache.match(url) : undefined;
  let json: unknown;
  if (hit) {
    json = await hit.json().catch(() => null);
  } else {
    opts.onProgress?.({ stage: 'listing', loaded: 0, total: 0, rows: 0, fromCache: false });
    const res = await hubFetch(repo, url, 'its list of Parquet files', opts);
    if (res.status === 404) {
      // No listing: either no such dataset, or one the Hub could not convert. The dataset's own API page tells which.
      const info = await hubFetch(repo, `${HUB_ORIGIN}/api/datasets/${repo}`, 'its description', opts);
      if (info.ok) throw new HubError(`${repo}: the dataset has no Parquet conversion on the Hub (the dataset viewer could not convert it); download its files and pick them instead`, 404);
      throw new HubError(`${repo}: no such dataset on the Hugging Face Hub (HTTP 404): check the name (a private dataset needs a token)`, 404);
    }
    if (!res.ok) throw new HubError(`${repo}: the list of Parquet files: HTTP ${res.status}`, res.status);
    const text = await res.text();
    try {
      json = JSON.parse(text);
    } catch {
      throw new HubError(`${repo}: the list of Parquet files is not JSON`);
    }
    await cachePut(cache, url, new TextEncoder().encode(text), { 'content-type': 'application/json' }, repo, opts);
  }
  return listingOf(json, repo);
}

/**
 * The listing's config -> split -> file URLs (files on the Hub only). Also reads the dataset
 * viewer's shape ({parquet_files: [{config, split, url}]}), which the Hub's API may answer with.
 */
export function listingOf(json: unknown, repo: string): Record<string, Record<string, string[]>> {
  // No prototype: config and split names come from the Hub ("constructor" is a name too).
  const out = Object.create(null) as Record<string, Record<string, string[]>>;
  const inner = (config: string): Record<string, string[]> => (out[config] ??= Object.create(null) as Record<string, string[]>);
  const onHub = (u: unknown): u is string => typeof u === 'string' && u.startsWith(`${HUB_ORIGIN}/`);
  const files = typeof json === 'object' && json !== null ? (json as { parquet_files?: unknown }).parquet_files : undefined;
  if (Array.isArray(files)) {
    for (const f of files as { config?: unknown; split?: unknown; url?: unknown }[]) {
      if (typeof f?.config !== 'string' || typeof f.split !== 'string' || !onHub(f.url)) continue;
      (inner(f.config)[f.split] ??= []).push(f.url);
    }
  } else if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
    for (const [config, splits] of Object.entries(json)) {
      if (typeof splits !== 'object' || splits === null || Array.isArray(splits)) continue;
      for (const [split, urls] of Object.entries(splits as Record<string, unknown>)) {
        const list = Array.isArray(urls) ? urls.filter(onHub) : [];
        if (list.length > 0) inner(config)[split] = list;
      }
    }
  }
  if (Object.keys(out).length === 0) throw new HubError(`${repo}: the dataset has no Parquet conversion on the Hub (its list of Parquet files is empty); download its files and pick them instead`);
  return out;
}

/** The config and split a reference names (or the only one, "default", "train"), with its files. */
export function chooseFiles(ref: HubDatasetRef, listing: Record<string, Record<string, string[]>>): HubDatasetFiles {
  const available = Object.fromEntries(Object.entries(listing).map(([c, s]) => [c, Object.keys(s)]));
  const configs = Object.keys(listing);
  const config = ref.config ?? (configs.length === 1 ? configs[0] : configs.includes('default') ? 'default' : undefined);
  if (config === undefined) throw new HubError(`${ref.repo} has several configs (${configs.join(', ')}): name one (${ref.repo}:${configs[0]})`);
  const splits = listing[config];
  if (!splits) throw new HubError(`${ref.repo} has no config "${config}" (its configs: ${configs.join(', ')})`);
  const names = Object.keys(splits);
  const split = ref.split ?? (names.includes('train') ? 'train' : names.length === 1 ? names[0] : undefined);
  if (split === undefined) throw new HubError(`${ref.repo}:${config} has several splits and none is "train" (${names.join(', ')}): name one (${ref.repo}:${config}@${names[0]})`);
  const urls = splits[split];
  if (!urls) throw new HubError(`${ref.repo}:${config} has no split "${split}" (its splits: ${names.join(', ')})`);
  return { repo: ref.repo, config, split, urls, available };
}

// ---- one Parquet file over range requests ----------------------------------------------------------

function fileLabel(files: HubDatasetFiles, index: number): string {
  return `${files.repo}:${files.config}@${files.split}, file ${index + 1} of ${files.urls.length}`;
}

/**
 * Bytes [start, end) of a file: from the cache, else one range request. The range is cached in
 * `pieces` (the column chunks it holds, end to end), so that another mapping, whose ranges merge
 * other chunks, finds each chunk it shares.
 */
async function readRange(
  repo: string,
  url: string,
  start: number,
  end: number,
  label: string,
  opts: HubDataOptions,
  onBytes: (n: number, fromCache: boolean) => void,
  pieces: readonly [number, number][] = [[start, end]],
): Promise<Uint8Array> {
  const keyOf = ([a, b]: readonly [number, number]): string => `${url}?loramoe-bytes=${a}-${b}`;
  const cache = await openCache(opts);
  if (cache) {
    const hits: Uint8Array[] = [];
    for (const p of pieces) {
      const hit = await cache.match(keyOf(p));
      const b = hit ? new Uint8Array(await hit.arrayBuffer()) : null;
      if (!b || b.byteLength !== p[1] - p[0]) break;
      hits.push(b);
    }
    if (hits.length === pieces.length) {
      const out = new Uint8Array(end - start);
      pieces.forEach((p, k) => out.set(hits[k], p[0] - start));
      onBytes(out.byteLength, true);
      return out;
    }
  }
  const res = await hubFetch(repo, url, label, opts, { headers: { range: `bytes=${start}-${end - 1}` } });
  if (res.status === 404) throw new HubError(`${label}: not found (HTTP 404); the Hub may have converted the dataset again: delete it from the cache and load it again`, 404);
  if (!res.ok) throw new HubError(`${label}: HTTP ${res.status}`, res.status);
  let bytes = new Uint8Array(await res.arrayBuffer());
  // A server that ignores Range answers 200 with the whole file.
  if (res.status === 200) bytes = bytes.slice(start, end);
  if (bytes.byteLength !== end - start) throw new HubError(`${label}: received ${bytes.byteLength} of the ${end - start} bytes asked for; try again`);
  onBytes(bytes.byteLength, false);
  for (const p of pieces) await cachePut(cache, keyOf(p), bytes.slice(p[0] - start, p[1] - start), { 'content-type': 'application/octet-stream' }, repo, opts);
  return bytes;
}

/** The bytes read from the end of a file to find its footer (most footers fit). */
const TAIL_BYTES = 64 * 1024;

/**
 * A file's size: from HEAD, or, where HEAD is refused (a CDN URL signed for GET only answers 403)
 * or says no length, from the total of a one-byte range's Content-Range.
 */
async function fileSize(repo: string, url: string, label: string, opts: HubDataOptions): Promise<number> {
  const head = await hubFetch(repo, url, label, opts, { method: 'HEAD', keepDenied: true });
  if (head.status === 404) throw new HubError(`${label}: not found (HTTP 404)`, 404);
  const length = Number(head.headers.get('content-length'));
  if (head.ok && head.headers.get('content-length') !== null && Number.isSafeInteger(length) && length > 0) return checkedSize(length, label);
  const probe = await hubFetch(repo, url, label, opts, { headers: { range: 'bytes=0-0' } });
  if (probe.status === 404) throw new HubError(`${label}: not found (HTTP 404)`, 404);
  if (!probe.ok) throw new HubError(`${label}: HTTP ${probe.status}`, probe.status);
  await probe.body?.cancel();
  const range = /\/(\d+)\s*$/.exec(probe.headers.get('content-range') ?? '');
  if (probe.status === 206 && range) return checkedSize(Number(range[1]), label);
  // A server that ignores Range sends the whole file: its length is the size.
  if (probe.status === 200 && probe.headers.get('content-length') !== null) return checkedSize(Number(probe.headers.get('content-length')), label);
  throw new HubError(`${label}: the Hub gave no file size (HEAD: HTTP ${head.status}, no Content-Length; a range request: no Content-Range)`);
}

function checkedSize(size: number, label: string): number {
  if (!Number.isSafeInteger(size) || size < 12) throw new HubError(`${label}: not a Parquet file (${size} bytes)`);
  return size;
}

/** A file's footer (FileMetaData) and size: from the cache, else HEAD and one or two range requests. */
async function readFooter(files: HubDatasetFiles, index: number, opts: HubDataOptions): Promise<{ metadata: FileMetaData; size: number }> {
  const url = files.urls[index];
  const label = fileLabel(files, index);
  const key = `${url}?loramoe-tail`;
  const cache = await openCache(opts);
  const hit = cache ? await cache.match(key) : undefined;
  let tail: Uint8Array;
  let size: number;
  if (hit && Number(hit.headers.get('x-file-size')) > 0) {
    tail = new Uint8Array(await hit.arrayBuffer());
    size = Number(hit.headers.get('x-file-size'));
  } else {
    opts.onProgress?.({ stage: 'footer', loaded: 0, total: 0, rows: 0, fromCache: false });
    size = await fileSize(files.repo, url, label, opts);
    const noCache: HubDataOptions = { ...opts, cacheStorage: null };
    tail = await readRange(files.repo, url, Math.max(0, size - TAIL_BYTES), size, label, noCache, () => {});
    const footerLength = new DataView(tail.buffer, tail.byteOffset + tail.byteLength - 8, 4).getUint32(0, true);
    const magic = new TextDecoder().decode(tail.subarray(tail.byteLength - 4));
    if (magic !== 'PAR1') throw new HubError(`${label}: not a Parquet file (it does not end in PAR1)`);
    if (footerLength + 8 > size) throw new HubError(`${label}: not a readable Parquet file (a footer of ${footerLength} bytes in a ${size}-byte file)`);
    if (footerLength + 8 > tail.byteLength) tail = await readRange(files.repo, url, size - footerLength - 8, size, label, noCache, () => {});
    await cachePut(cache, key, tail, { 'content-type': 'application/octet-stream', 'x-file-size': String(size) }, files.repo, opts);
  }
  try {
    const buf = tail.buffer.slice(tail.byteOffset, tail.byteOffset + tail.byteLength) as ArrayBuffer;
    return { metadata: parquetMetadata(buf, { geoparquet: false }), size };
  } catch (e) {
    throw new HubError(`${label}: not a readable Parquet file: ${footerProblem(e)}`);
  }
}

function topColumns(metadata: FileMetaData): string[] {
  // The schema is flattened depth-first: its root's children are the top-level columns.
  const out: string[] = [];
  const root = metadata.schema[0];
  let i = 1;
  const skip = (): void => {
    const el = metadata.schema[i++];
    for (let k = 0; k < (el?.num_children ?? 0); k++) skip();
  };
  for (let k = 0; k < (root?.num_children ?? 0) && i < metadata.schema.length; k++) {
    out.push(metadata.schema[i].name);
    skip();
  }
  return out;
}

/** Lists the dataset's files for the reference and reads the first file's footer: its columns and rows. */
export async function inspectHubDataset(ref: HubDatasetRef, opts: HubDataOptions = {}): Promise<HubDatasetInfo> {
  const files = chooseFiles(ref, await listDatasetParquet(ref.repo, opts));
  const { metadata } = await readFooter(files, 0, opts);
  return { ...files, columns: topColumns(metadata), firstFileRows: Number(metadata.num_rows) };
}

/** Where a chunk starts (its dictionary page when it has one) and its size. */
function chunkRange(meta: NonNullable<RowGroup['columns'][number]['meta_data']>): [number, number] {
  const start = Number(meta.dictionary_page_offset || meta.data_page_offset);
  return [start, start + Number(meta.total_compressed_size)];
}

/**
 * Reads up to `limit` rows of the dataset's files in order, only the columns the mapping reads.
 * The wanted chunks of the row groups needed are fetched (adjacent ones in one request), laid end
 * to end in a compact buffer with a footer rewritten to their new offsets, checked page by page
 * (parquet-guard.ts, as a picked file is) and decoded by hyparquet.
 */
export async function readHubDatasetRows(
  files: HubDatasetFiles,
  mapping: ColumnMapping,
  limit: number,
  opts: HubDataOptions = {},
): Promise<Record<string, unknown>[]> {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new HubError(`the row limit must be a whole number of at least 1, not ${limit}`);
  if (limit > MAX_DATASET_RECORDS) throw new HubError(`the row limit is ${limit.toLocaleString('en-US')}, over the ${MAX_DATASET_RECORDS.toLocaleString('en-US')} records a dataset may hold`);
  const wanted = mappingColumns(mapping);
  const rows: Record<string, unknown>[] = [];
  let loaded = 0;
  let total = 0;
  for (let f = 0; f < files.urls.length && rows.length < limit; f++) {
    const label = fileLabel(files, f);
    const { metadata, size } = await readFooter(files, f, opts);
    const problem = mappingProblem(mapping, topColumns(metadata));
    if (problem) throw new HubError(`${label}: ${problem}`);
    // The row groups that hold the rows still wanted, and their wanted chunks.
    const groups: RowGroup[] = [];
    let groupRows = 0;
    for (const rg of metadata.row_groups) {
      if (groupRows >= limit - rows.length) break;
      groups.push(rg);
      groupRows += Number(rg.num_rows);
    }
    const chunks = groups.flatMap((rg) => rg.columns.filter((c) => c.meta_data && wanted.includes(c.meta_data.path_in_schema[0])));
    const codecs = [...new Set(chunks.map((c) => c.meta_data!.codec))].filter((k) => k !== 'SNAPPY' && k !== 'UNCOMPRESSED');
    if (codecs.length > 0) throw new HubError(`${label}: the Parquet file is compressed with ${codecs.join(', ')}, which this importer cannot read`);
    // Byte ranges to fetch: each chunk's, adjacent ones merged.
    const ranges = chunks.map((c) => chunkRange(c.meta_data!)).sort((a, b) => a[0] - b[0]);
    // A damaged footer must not send a request (or an allocation) past the file.
    const outside = ranges.find(([a, b]) => !(Number.isSafeInteger(a) && Number.isSafeInteger(b) && a >= 4 && a < b && b <= size));
    if (outside) throw new HubError(`${label}: not a readable Parquet file: a column chunk at bytes ${outside[0]}-${outside[1]} is not inside the ${size}-byte file`);
    const wantedBytes = ranges.reduce((n, [a, b]) => n + b - a, 0);
    if (wantedBytes > MAX_DATASET_BYTES) {
      throw new HubError(`${label}: the rows asked for take ${Math.round(wantedBytes / 2 ** 20)} MiB of this file, over the ${MAX_DATASET_BYTES / 2 ** 20} MiB a dataset may take; ask for fewer rows`);
    }
    // Chunks end to end are fetched together (one request), and cached one by one.
    const merged: { range: [number, number]; pieces: [number, number][] }[] = [];
    for (const r of ranges) {
      const last = merged[merged.length - 1];
      if (last && r[0] === last.range[1]) {
        last.range[1] = r[1];
        last.pieces.push(r);
      } else {
        merged.push({ range: [r[0], r[1]], pieces: [r] });
      }
    }
    total += merged.reduce((n, { range: [a, b] }) => n + b - a, 0);
    const parts: Uint8Array[] = [];
    const placed: { start: number; at: number }[] = [];
    // The compact buffer starts with the magic, as a file does: no chunk sits at offset 0, which
    // readers take for "no dictionary page".
    let at = 4;
    for (const { range: [a, b], pieces } of merged) {
      if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new DOMException('The operation was aborted.', 'AbortError');
      const bytes = await readRange(files.repo, files.urls[f], a, b, label, opts, (n, fromCache) => {
        loaded += n;
        opts.onProgress?.({ stage: 'rows', loaded, total, rows: rows.length, fromCache });
      }, pieces);
      parts.push(bytes);
      placed.push({ start: a, at });
      at += bytes.byteLength;
    }
    const compact = new Uint8Array(at);
    compact.set([0x50, 0x41, 0x52, 0x31]);
    parts.forEach((p, k) => compact.set(p, placed[k].at));
    // Where a byte of the file sits in the compact buffer.
    const shift = (offset: bigint | undefined): bigint | undefined => {
      if (offset === undefined) return undefined;
      const o = Number(offset);
      const p = [...placed].reverse().find((x) => x.start <= o);
      return BigInt(p ? p.at + (o - p.start) : o);
    };
    const compactMeta: FileMetaData = {
      ...metadata,
      num_rows: BigInt(groupRows),
      row_groups: groups.map((rg) => ({
        ...rg,
        columns: rg.columns
          .filter((c) => c.meta_data && wanted.includes(c.meta_data.path_in_schema[0]))
          .map((c) => ({
            file_offset: 0n,
            meta_data: {
              ...c.meta_data!,
              data_page_offset: shift(c.meta_data!.data_page_offset)!,
              dictionary_page_offset: c.meta_data!.dictionary_page_offset ? shift(c.meta_data!.dictionary_page_offset) : undefined,
              index_page_offset: undefined,
              bloom_filter_offset: undefined,
            },
          })),
      })),
    };
    try {
      checkParquetPages(compact, compactMeta, wanted);
    } catch (e) {
      // The guard counts bytes in the compact buffer: name them as the file's.
      const inFile = (at: number): number => {
        const p = [...placed].reverse().find((x) => x.at <= at);
        return p ? p.start + (at - p.at) : at;
      };
      if (e instanceof ParquetPageError) throw new HubError(`${label}: not a readable Parquet file: ${e.message.replace(/byte (\d+) of the file/g, (_, n: string) => `byte ${inFile(Number(n))} of the file`)}`);
      throw e;
    }
    const take = Math.min(groupRows, limit - rows.length);
    let objects: Record<string, unknown>[];
    try {
      objects = (await parquetReadObjects({
        file: compact.buffer,
        metadata: compactMeta,
        columns: wanted,
        rowEnd: take,
        parsers: { stringFromBytes: parquetString },
        compressors: { SNAPPY: snappyDecompress },
      })) as Record<string, unknown>[];
    } catch (e) {
      throw new HubError(`${label}: the Parquet data could not be read: ${errorMessage(e)}`);
    }
    if (objects.length !== take) throw new HubError(`${label}: ${objects.length} rows decoded where ${take} were expected: the file is damaged`);
    rows.push(...objects);
    opts.onProgress?.({ stage: 'rows', loaded, total, rows: rows.length, fromCache: false });
  }
  return rows;
}

// ---- the cache, as the page lists it -----------------------------------------------------------------

export interface CachedDataset {
  repo: string;
  bytes: number;
}

/** A cached dataset entry: the listing and the files under the Hub's API, or files on the converted branch. */
const CACHED_DATASET = /^https:\/\/huggingface\.co\/(?:api\/datasets\/([^/]+\/[^/]+)\/parquet|datasets\/([^/]+\/[^/]+)\/resolve\/refs%2Fconvert%2Fparquet\/)/;
const cachedRepo = (url: string): string | undefined => {
  const m = CACHED_DATASET.exec(url);
  return m ? (m[1] ?? m[2]) : undefined;
};

/** Every dataset with something in the cache, and the bytes it takes. */
export async function listCachedDatasets(cacheStorage: CacheStorage | null = typeof caches !== 'undefined' ? caches : null): Promise<CachedDataset[]> {
  const byRepo = new Map<string, number>();
  for (const { key: repo, bytes } of await hubCacheEntries(cacheStorage, cachedRepo)) byRepo.set(repo, (byRepo.get(repo) ?? 0) + bytes);
  return [...byRepo].map(([repo, bytes]) => ({ repo, bytes })).sort((a, b) => a.repo.localeCompare(b.repo));
}

export async function deleteCachedDataset(repo: string, cacheStorage: CacheStorage | null = typeof caches !== 'undefined' ? caches : null): Promise<void> {
  if (!cacheStorage) return;
  const cache = await cacheStorage.open(HUB_CACHE);
  for (const req of await cache.keys()) {
    if (cachedRepo(req.url) === repo) await cache.delete(req);
  }
}
