/**
 * Backbones from the Hugging Face Hub, downloaded only when the user asks, with progress, and kept
 * in the browser's Cache Storage so the next visit reads them from disk.
 *
 *   file list   GET https://huggingface.co/api/models/{repo}            (siblings: the repo's files)
 *   each file   GET https://huggingface.co/{repo}/resolve/main/{file}   (LFS files redirect to a CDN)
 *
 * Files fetched: config.json, tokenizer.json, tokenizer_config.json, and model.safetensors or
 * model.safetensors.index.json with the shards it names. Each response is stored under its resolve
 * URL in the cache HUB_CACHE as soon as it is complete, so an interrupted download keeps the files
 * already finished. Nothing here runs unless called: the page never talks to the Hub on its own.
 */
import type { FileEntry } from './browser-files';
import { isQuotaError } from './persist';
import { errorMessage } from '../util/errors';

export const HUB_ORIGIN = 'https://huggingface.co';
export const HUB_CACHE = 'loramoe-hub-v1';
const REVISION = 'main';

const CONFIG = 'config.json';
const TOKENIZER = 'tokenizer.json';
const TOKENIZER_CONFIG = 'tokenizer_config.json';
const WEIGHTS = 'model.safetensors';
const WEIGHTS_INDEX = 'model.safetensors.index.json';

/** Why a repository id is not of the form owner/name, or null when it is. */
export function repoIdProblem(repo: string): string | null {
  if (repo.trim() === '') return 'enter a repository id such as HuggingFaceTB/SmolLM2-135M';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,95}\/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/.test(repo.trim())) {
    return `"${repo}" is not a repository id (owner/name, letters, digits, ".", "_" and "-")`;
  }
  if (repo.includes('..')) return `"${repo}" is not a repository id ("..")`;
  return null;
}

export function hubFileUrl(repo: string, file: string): string {
  const path = file.split('/').map(encodeURIComponent).join('/');
  return `${HUB_ORIGIN}/${repo}/resolve/${REVISION}/${path}`;
}

function hubApiUrl(repo: string): string {
  return `${HUB_ORIGIN}/api/models/${repo}`;
}

export interface HubProgress {
  file: string;
  /** Bytes of this file received so far, and its size when the server said (else 0). */
  fileLoaded: number;
  fileTotal: number;
  /** Files finished and files to fetch. */
  filesDone: number;
  filesTotal: number;
  /** Bytes received so far over all files (cached files count in full). */
  loaded: number;
  fromCache: boolean;
}

export interface HubOptions {
  fetchFn?: typeof fetch;
  /** The CacheStorage to use (default: the global `caches`; null: no caching). */
  cacheStorage?: CacheStorage | null;
  onProgress?(p: HubProgress): void;
  /** A file was downloaded but could not be cached (e.g. the storage quota is full). */
  onCacheError?(message: string): void;
  signal?: AbortSignal;
}

export class HubError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'HubError';
  }
}

function cacheOf(opts: HubOptions): CacheStorage | null {
  if (opts.cacheStorage !== undefined) return opts.cacheStorage;
  return typeof caches !== 'undefined' ? caches : null;
}

function explain(status: number, repo: string, file: string): string {
  if (status === 401 || status === 403) return `${repo}: ${file} needs a Hugging Face login (gated or private repository, HTTP ${status}); download the files yourself and pick the folder`;
  if (status === 404) return `${repo}: ${file} not found (HTTP 404): check the repository id`;
  return `${repo}: ${file}: HTTP ${status}`;
}

/** Reads a response body chunk by chunk, reporting bytes as they arrive. */
async function readBody(res: Response, onChunk: (loaded: number) => void): Promise<Blob> {
  if (!res.body) {
    const b = await res.blob();
    onChunk(b.size);
    return b;
  }
  const reader = res.body.getReader();
  const parts: Uint8Array<ArrayBuffer>[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value as Uint8Array<ArrayBuffer>);
    loaded += value.byteLength;
    onChunk(loaded);
  }
  return new Blob(parts);
}

/** One file: from the cache when there, else downloaded (with progress) and put in the cache. */
async function getFile(
  repo: string,
  file: string,
  opts: HubOptions,
  progress: (fileLoaded: number, fileTotal: number, fromCache: boolean) => void,
  optional = false,
): Promise<Blob | null> {
  const url = hubFileUrl(repo, file);
  const store = cacheOf(opts);
  const cache = store ? await store.open(HUB_CACHE) : null;
  const hit = cache ? await cache.match(url) : undefined;
  if (hit) {
    const blob = await hit.blob();
    progress(blob.size, blob.size, true);
    return blob;
  }
  const fetchFn = opts.fetchFn ?? ((...a: Parameters<typeof fetch>) => fetch(...a));
  let res: Response;
  try {
    res = await fetchFn(url, { signal: opts.signal });
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    throw new HubError(`${repo}: ${file}: the download failed (${errorMessage(e)}); check the connection`);
  }
  if (!res.ok) {
    if (optional && res.status === 404) return null;
    throw new HubError(explain(res.status, repo, file), res.status);
  }
  const total = Number(res.headers.get('content-length') ?? 0) || 0;
  const blob = await readBody(res, (n) => progress(n, total, false));
  if (total > 0 && blob.size !== total) throw new HubError(`${repo}: ${file}: received ${blob.size} of ${total} bytes; try again`);
  if (cache) {
    try {
      await cache.put(
        url,
        new Response(blob, { headers: { 'content-type': res.headers.get('content-type') ?? 'application/octet-stream', 'content-length': String(blob.size), 'x-cached-at': String(Date.now()) } }),
      );
    } catch (e) {
      // The download itself succeeded: load it, and tell the user it will not be there next time.
      const why = isQuotaError(e) ? 'browser storage is full' : errorMessage(e);
      opts.onCacheError?.(`${repo}: ${file} was downloaded but not cached (${why}); the next visit downloads it again`);
    }
  }
  return blob;
}

/** The repository's file names from the Hub API, or null when the API did not answer with a list. */
async function listRepoFiles(repo: string, opts: HubOptions): Promise<string[] | null> {
  const fetchFn = opts.fetchFn ?? ((...a: Parameters<typeof fetch>) => fetch(...a));
  let res: Response;
  try {
    res = await fetchFn(hubApiUrl(repo), { signal: opts.signal });
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    throw new HubError(`${repo}: the Hugging Face Hub could not be reached (${errorMessage(e)})`);
  }
  if (res.status === 404) throw new HubError(`${repo}: no such model repository on the Hugging Face Hub (HTTP 404)`, 404);
  if (res.status === 401 || res.status === 403) throw new HubError(explain(res.status, repo, 'the file list'), res.status);
  if (!res.ok) return null;
  // A list that is not JSON is no list: the caller then asks for the files themselves (index first).
  const json = (await res.json().catch(() => null)) as { siblings?: { rfilename?: unknown }[] } | null;
  if (!json || !Array.isArray(json.siblings)) return null;
  return json.siblings.map((s) => s.rfilename).filter((n): n is string => typeof n === 'string');
}

/** Only config.json (for the parameter count and memory estimate before a download). */
export async function fetchHubConfig(repo: string, opts: HubOptions = {}): Promise<unknown> {
  const problem = repoIdProblem(repo);
  if (problem) throw new HubError(problem);
  const blob = await getFile(repo.trim(), CONFIG, opts, () => {});
  try {
    return JSON.parse(await blob!.text()) as unknown;
  } catch (e) {
    throw new HubError(`${repo}: config.json is not JSON (${errorMessage(e)})`);
  }
}

/**
 * Fetches (or reads from the cache) every file a backbone needs. Returns them as FileEntry blobs
 * for the loader; the loader does all validation.
 */
export async function downloadHubModel(repoIn: string, opts: HubOptions = {}): Promise<FileEntry[]> {
  const problem = repoIdProblem(repoIn);
  if (problem) throw new HubError(problem);
  const repo = repoIn.trim();
  const entries: FileEntry[] = [];
  let loadedBefore = 0;
  let filesDone = 0;
  let filesTotal = 4;
  const fetchOne = async (file: string, optional = false) => {
    const blob = await getFile(
      repo,
      file,
      opts,
      (fileLoaded, fileTotal, fromCache) =>
        opts.onProgress?.({ file, fileLoaded, fileTotal, filesDone, filesTotal, loaded: loadedBefore + fileLoaded, fromCache }),
      optional,
    );
    if (blob) {
      entries.push({ path: file, file: blob });
      loadedBefore += blob.size;
    }
    filesDone++;
    return blob;
  };

  const cached = await cachedFiles(repo, opts);
  // The file list decides single file vs shards; a fully cached model needs no request at all.
  let names: string[] | null;
  if (cached.has(CONFIG) && cached.has(TOKENIZER) && cached.has(TOKENIZER_CONFIG) && (cached.has(WEIGHTS) || cached.has(WEIGHTS_INDEX))) {
    names = [...cached];
  } else {
    names = await listRepoFiles(repo, opts);
  }
  await fetchOne(CONFIG);
  await fetchOne(TOKENIZER);
  await fetchOne(TOKENIZER_CONFIG);
  const sharded = names ? names.includes(WEIGHTS_INDEX) && !names.includes(WEIGHTS) : false;
  if (names && !names.includes(WEIGHTS) && !names.includes(WEIGHTS_INDEX)) {
    const bin = names.some((n) => n.startsWith('pytorch_model'));
    throw new HubError(`${repo}: the repository has no ${WEIGHTS}${bin ? ' (only PyTorch .bin weights, which are not supported: pick a safetensors repository)' : ''}`);
  }
  if (sharded || !names) {
    const index = await fetchOne(WEIGHTS_INDEX, !names);
    if (index) {
      let map: Record<string, unknown>;
      try {
        map = (JSON.parse(await index.text()) as { weight_map: Record<string, unknown> }).weight_map;
      } catch (e) {
        throw new HubError(`${repo}: ${WEIGHTS_INDEX} is not valid JSON (${errorMessage(e)})`);
      }
      const shards = [...new Set(Object.values(map ?? {}).filter((v): v is string => typeof v === 'string'))];
      filesTotal = 4 + shards.length;
      for (const s of shards) {
        if (s.startsWith('/') || s.split('/').includes('..')) throw new HubError(`${repo}: shard name ${JSON.stringify(s)} leaves the repository`);
        await fetchOne(s);
      }
      return entries;
    }
  }
  await fetchOne(WEIGHTS);
  return entries;
}

// ---- the cache, as the page lists it ------------------------------------------------------------------

export interface CachedRepo {
  repo: string;
  files: { path: string; bytes: number }[];
  bytes: number;
}

function parseResolveUrl(url: string): { repo: string; file: string } | null {
  const prefix = `${HUB_ORIGIN}/`;
  if (!url.startsWith(prefix)) return null;
  const m = /^([^/]+\/[^/]+)\/resolve\/[^/]+\/(.+)$/.exec(url.slice(prefix.length));
  return m ? { repo: m[1], file: decodeURIComponent(m[2]) } : null;
}

async function cachedFiles(repo: string, opts: HubOptions): Promise<Set<string>> {
  const store = cacheOf(opts);
  if (!store) return new Set();
  const cache = await store.open(HUB_CACHE);
  const out = new Set<string>();
  for (const req of await cache.keys()) {
    const p = parseResolveUrl(req.url);
    if (p && p.repo === repo) out.add(p.file);
  }
  return out;
}

/**
 * The entries of the Hub cache whose URL `pick` maps to something (a repository and file, a
 * dataset), each with what it mapped to and its size in bytes (content-length; 0 when absent).
 */
export async function hubCacheEntries<T>(cacheStorage: CacheStorage | null, pick: (url: string) => T | undefined | null): Promise<{ key: T; bytes: number }[]> {
  if (!cacheStorage) return [];
  const cache = await cacheStorage.open(HUB_CACHE);
  const out: { key: T; bytes: number }[] = [];
  for (const req of await cache.keys()) {
    const key = pick(req.url);
    if (key === undefined || key === null) continue;
    const res = await cache.match(req);
    out.push({ key, bytes: Number(res?.headers.get('content-length') ?? 0) || 0 });
  }
  return out;
}

/** Every cached repository with its files and sizes. */
export async function listHubCache(cacheStorage: CacheStorage | null = typeof caches !== 'undefined' ? caches : null): Promise<CachedRepo[]> {
  const byRepo = new Map<string, CachedRepo>();
  for (const { key: p, bytes } of await hubCacheEntries(cacheStorage, parseResolveUrl)) {
    let r = byRepo.get(p.repo);
    if (!r) byRepo.set(p.repo, (r = { repo: p.repo, files: [], bytes: 0 }));
    r.files.push({ path: p.file, bytes });
    r.bytes += bytes;
  }
  return [...byRepo.values()].sort((a, b) => a.repo.localeCompare(b.repo));
}

export async function deleteHubCache(repo: string, cacheStorage: CacheStorage | null = typeof caches !== 'undefined' ? caches : null): Promise<void> {
  if (!cacheStorage) return;
  const cache = await cacheStorage.open(HUB_CACHE);
  for (const req of await cache.keys()) {
    const p = parseResolveUrl(req.url);
    if (p && p.repo === repo) await cache.delete(req);
  }
}
