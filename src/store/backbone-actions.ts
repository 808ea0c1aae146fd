/**
 * Backbone actions: the demo's, a Hugging Face Hub repository's (config first, then download with
 * caching) or a local folder's; the preview the estimate reads; the Hub cache list. The one writer
 * of the model store (./model.ts): what the worker says of the backbone (its load's progress, the
 * backbone loaded, the memory measured) arrives through ./worker-events.ts as calls to the
 * functions at the end of this file.
 */
import type { FileEntry } from '../io/browser-files';
import { deleteHubCache, downloadHubModel, fetchHubConfig, listHubCache } from '../io/hub';
import { parseModelConfig } from '../model/config';
import type { BackboneInfo, BackboneRef, BackboneSource, MeasuredMemory } from '../worker/protocol';
import { type SourceKind, useModelStore } from './model';
import { setSettings } from './settings';
import { call } from './worker-link';
import { errorMessage } from '../util/errors';

/** Files of the local folder the user picked (kept here: Blobs are not store state). */
let localEntries: FileEntry[] = [];

const demoBase = () => new URL('models/demo/', document.baseURI).href;

export function chooseSource(source: SourceKind): void {
  useModelStore.setState({ source });
  if (source === 'demo') void inspectDemo();
  else if (source === 'local' && localEntries.length > 0) void inspectLocal();
  else useModelStore.setState({ preview: null });
}

function previewFrom(ref: BackboneRef, json: unknown, extra: { weightFileBytes?: number | null; files?: string[] } = {}): void {
  try {
    const config = parseModelConfig(json, `${ref.kind === 'hub' ? ref.repo : ref.kind === 'local' ? ref.name : 'demo'}/config.json`);
    useModelStore.setState({ preview: { ref, config, error: null, weightFileBytes: extra.weightFileBytes ?? null, files: extra.files ?? [] }, status: useModelStore.getState().info ? 'ready' : 'idle' });
  } catch (e) {
    useModelStore.setState({ preview: { ref, config: null, error: errorMessage(e), weightFileBytes: null, files: extra.files ?? [] }, status: 'idle' });
  }
}

/** Reads the demo's config.json (same origin) for the estimate. */
export async function inspectDemo(): Promise<void> {
  try {
    const res = await fetch(new URL('config.json', demoBase()));
    if (!res.ok) throw new Error(`demo backbone: config.json: HTTP ${res.status}`);
    previewFrom({ kind: 'demo' }, await res.json());
  } catch (e) {
    useModelStore.setState({ preview: { ref: { kind: 'demo' }, config: null, error: errorMessage(e), weightFileBytes: null, files: [] } });
  }
}

async function loadFrom(source: BackboneSource): Promise<void> {
  useModelStore.setState({ status: 'loading', error: null, progress: null });
  try {
    await call({ type: 'loadBackbone', source });
  } catch (e) {
    useModelStore.setState({ status: 'error', error: errorMessage(e), progress: null });
    throw e;
  }
}

export async function loadDemoBackbone(): Promise<void> {
  await loadFrom({ kind: 'url', ref: { kind: 'demo' }, baseUrl: demoBase() });
}

/** Fetches only config.json from the Hub (the user pressed "Check"). */
export async function inspectHub(repo: string): Promise<void> {
  useModelStore.setState({ status: 'inspecting', error: null });
  try {
    const json = await fetchHubConfig(repo);
    previewFrom({ kind: 'hub', repo: repo.trim() }, json);
    await refreshHubCache();
  } catch (e) {
    useModelStore.setState({ status: 'idle', preview: { ref: { kind: 'hub', repo }, config: null, error: errorMessage(e), weightFileBytes: null, files: [] } });
  }
}

/** Downloads (or reads from the cache) and loads a Hub backbone (the user pressed "Download and load"). */
export async function loadHubBackbone(repoIn: string): Promise<void> {
  const repo = repoIn.trim();
  useModelStore.setState({ status: 'downloading', error: null, progress: null, cacheNotes: [] });
  let files: FileEntry[];
  try {
    files = await downloadHubModel(repo, {
      onProgress: (p) => useModelStore.setState({ progress: { phase: 'download', ...p } }),
      onCacheError: (m) => useModelStore.setState((s) => ({ cacheNotes: [...s.cacheNotes, m] })),
    });
  } catch (e) {
    useModelStore.setState({ status: 'error', error: errorMessage(e), progress: null });
    await refreshHubCache();
    return;
  }
  await refreshHubCache();
  const ref: BackboneRef = { kind: 'hub', repo };
  const config = files.find((f) => f.path === 'config.json');
  if (config) {
    let json: unknown;
    try {
      json = JSON.parse(await config.file.text());
    } catch (e) {
      const error = `${repo}: config.json is not valid JSON (${errorMessage(e)}); the backbone was not loaded`;
      useModelStore.setState({ status: 'error', error, progress: null });
      return;
    }
    previewFrom(ref, json);
  }
  // A failed load is in the model store (status 'error' and its message), which the panel shows.
  await loadFrom({ kind: 'files', ref, files }).catch(() => undefined);
}

/** Lists the models cached in this browser; a failure is shown in the cache list (cacheError). */
export async function refreshHubCache(): Promise<void> {
  try {
    useModelStore.setState({ hubCache: await listHubCache(), cacheError: null });
  } catch (e) {
    useModelStore.setState({ hubCache: [], cacheError: `The models cached in this browser could not be listed: ${errorMessage(e)}` });
  }
}

export async function deleteCachedRepo(repo: string): Promise<void> {
  try {
    await deleteHubCache(repo);
  } catch (e) {
    await refreshHubCache();
    useModelStore.setState({ cacheError: `${repo} could not be deleted from the cache: ${errorMessage(e)}` });
    return;
  }
  await refreshHubCache();
}

/** Files of a local model folder (picked or dropped): kept, and config.json read for the estimate. */
export async function setLocalFiles(entries: FileEntry[], name: string): Promise<void> {
  localEntries = entries;
  useModelStore.setState({ source: 'local' });
  await inspectLocal(name);
}

async function inspectLocal(nameIn?: string): Promise<void> {
  const name = nameIn ?? (useModelStore.getState().preview?.ref.kind === 'local' ? (useModelStore.getState().preview!.ref as { name: string }).name : 'local model');
  const ref: BackboneRef = { kind: 'local', name };
  const files = localEntries.map((e) => e.path).sort();
  const weightFileBytes = localEntries.filter((e) => e.path.endsWith('.safetensors')).reduce((n, e) => n + e.file.size, 0);
  const config = localEntries.find((e) => e.path === 'config.json');
  if (!config) {
    useModelStore.setState({ preview: { ref, config: null, error: `no config.json among the ${files.length} file(s) picked (pick the model folder itself)`, weightFileBytes, files } });
    return;
  }
  try {
    previewFrom(ref, JSON.parse(await config.file.text()), { weightFileBytes, files });
  } catch (e) {
    useModelStore.setState({ preview: { ref, config: null, error: `config.json: ${errorMessage(e)}`, weightFileBytes, files } });
  }
}

export async function loadLocalBackbone(): Promise<void> {
  const p = useModelStore.getState().preview;
  if (localEntries.length === 0 || !p || p.ref.kind !== 'local') {
    useModelStore.setState({ status: 'error', error: 'pick a model folder first' });
    return;
  }
  // A failed load is in the model store (status 'error' and its message), which the panel shows.
  await loadFrom({ kind: 'files', ref: p.ref, files: localEntries }).catch(() => undefined);
}


/**
 * Loads the backbone a run was trained on, with the backbone panel switched to its source (a run
 * continued from its checkpoint). A local folder cannot be loaded again without the user picking it.
 */
export async function loadRunBackbone(ref: BackboneRef): Promise<void> {
  if (ref.kind === 'demo') {
    useModelStore.setState({ source: 'demo' });
    await loadDemoBackbone();
  } else if (ref.kind === 'hub') {
    useModelStore.setState({ source: 'hub' });
    setSettings({ hubRepo: ref.repo });
    await loadHubBackbone(ref.repo);
  } else throw new Error(`the run was trained on the local folder ${ref.name}: pick it again in the backbone panel, then resume`);
}

// ---- what the worker says of the backbone (called by ./worker-events.ts) ------------------------

/** The worker read `loadedBytes` more of file `file` (`files` files so far). */
export function backboneLoadProgressed(file: string, loadedBytes: number, files: number): void {
  useModelStore.setState((s) => ({
    progress: {
      phase: 'load',
      file,
      fileLoaded: loadedBytes,
      fileTotal: loadedBytes,
      filesDone: files,
      filesTotal: Math.max(files, s.progress?.phase === 'load' ? s.progress.filesTotal : 4),
      loaded: (s.progress?.phase === 'load' ? s.progress.loaded : 0) + loadedBytes,
      fromCache: false,
    },
  }));
}

export function backboneLoaded(info: BackboneInfo, memory: MeasuredMemory): void {
  useModelStore.setState({ status: 'ready', info, memory, progress: null, error: null });
}

/** The worker measured the GPU memory again (a run started, the adapter changed). */
export function gpuMemoryMeasured(memory: MeasuredMemory): void {
  useModelStore.setState({ memory });
}
