/**
 * A stand-in for the Hugging Face Hub's dataset API (unit tests and the e2e test share it): the
 * Parquet listing, HEAD and range requests on each file, a gated dataset that wants a token, and
 * the dataset pages that tell a missing dataset from one without a Parquet conversion.
 */
import { parquetWriteBuffer } from 'hyparquet-writer';

export interface StandInDataset {
  /** config -> split -> the Parquet files' bytes */
  splits: Record<string, Record<string, Uint8Array[]>>;
  /** The token the dataset wants (gated or private), if any. */
  token?: string;
  /** The dataset exists but has no Parquet conversion. */
  noConversion?: boolean;
  /** Files answer HEAD with 403, as a CDN URL signed for GET does. */
  noHead?: boolean;
}

export interface StandInRequest {
  method: string;
  url: string;
  range: string | null;
  authorization: string | null;
}

export interface StandInAnswer {
  status: number;
  body?: Uint8Array | string;
  headers?: Record<string, string>;
}

const fileUrl = (repo: string, config: string, split: string, n: number): string => `https://huggingface.co/api/datasets/${repo}/parquet/${config}/${split}/${n}.parquet`;

/** The stand-in Hub's answer to one request. */
export function standInAnswer(datasets: Record<string, StandInDataset>, req: StandInRequest): StandInAnswer {
  const m = /^https:\/\/huggingface\.co\/api\/datasets\/([^/]+\/[^/]+?)(\/parquet(?:\/([^/]+)\/([^/]+)\/(\d+)\.parquet)?)?$/.exec(req.url);
  const ds = m ? datasets[m[1]] : undefined;
  if (!m || !ds) return { status: 404, body: '{"error":"Repository not found"}' };
  const repo = m[1];
  if (ds.token && req.authorization !== `Bearer ${ds.token}`) return { status: 401, body: '{"error":"Access to this dataset is restricted"}' };
  if (!m[2]) return { status: 200, body: JSON.stringify({ id: repo }), headers: { 'content-type': 'application/json' } };
  if (ds.noConversion) return { status: 404, body: '{"error":"Not found"}' };
  if (!m[3]) {
    const listing = Object.fromEntries(Object.entries(ds.splits).map(([c, s]) => [c, Object.fromEntries(Object.entries(s).map(([sp, files]) => [sp, files.map((_, n) => fileUrl(repo, c, sp, n))]))]));
    return { status: 200, body: JSON.stringify(listing), headers: { 'content-type': 'application/json' } };
  }
  const file = ds.splits[m[3]]?.[m[4]]?.[Number(m[5])];
  if (!file) return { status: 404, body: 'not found' };
  if (req.method === 'HEAD') return ds.noHead ? { status: 403, body: 'signed for GET' } : { status: 200, headers: { 'content-length': String(file.byteLength) } };
  const r = req.range ? /^bytes=(\d+)-(\d+)$/.exec(req.range) : null;
  if (!r) return { status: 200, body: file, headers: { 'content-length': String(file.byteLength) } };
  const start = Number(r[1]);
  const end = Math.min(Number(r[2]) + 1, file.byteLength);
  return { status: 206, body: file.slice(start, end), headers: { 'content-length': String(end - start), 'content-range': `bytes ${start}-${end - 1}/${file.byteLength}` } };
}

/** A fetch function over the stand-in Hub; every request is logged. */
export function standInHub(datasets: Record<string, StandInDataset>): { fetchFn: typeof fetch; log: StandInRequest[]; offline: { on: boolean } } {
  const log: StandInRequest[] = [];
  const offline = { on: false };
  const fetchFn = (async (input: string | URL | Request, init?: RequestInit) => {
    const headers = new Headers(init?.headers);
    const req: StandInRequest = { method: init?.method ?? 'GET', url: String(input), range: headers.get('range'), authorization: headers.get('authorization') };
    log.push(req);
    if (offline.on) throw new TypeError('Failed to fetch');
    const a = standInAnswer(datasets, req);
    return new Response(req.method === 'HEAD' ? null : (a.body as BodyInit | undefined), { status: a.status, headers: a.headers });
  }) as typeof fetch;
  return { fetchFn, log, offline };
}

/** A Parquet file of string columns (null for an absent cell), `rowGroupSize` rows per row group. */
export function stringParquet(columns: Record<string, (string | null)[]>, rowGroupSize: number): Uint8Array {
  return new Uint8Array(parquetWriteBuffer({ columnData: Object.entries(columns).map(([name, data]) => ({ name, data, type: 'STRING' as const })), rowGroupSize }));
}

/** `n` Dolly-style rows (instruction, context, response, category, and a long unused column). */
export function dollyColumns(n: number, from = 0): Record<string, (string | null)[]> {
  const ids = Array.from({ length: n }, (_, i) => i + from);
  return {
    instruction: ids.map((i) => `question ${i}`),
    context: ids.map((i) => (i % 3 === 0 ? `context ${i}` : '')),
    response: ids.map((i) => `answer ${i}`),
    category: ids.map((i) => (i % 2 === 0 ? 'open_qa' : 'classification')),
    // Text that Snappy cannot shrink much, so that reading it or not shows in the bytes fetched.
    notes: ids.map((i) => Array.from({ length: 120 }, (_, k) => ((i * 7919 + k * 104729) % 46656).toString(36)).join('')),
  };
}
