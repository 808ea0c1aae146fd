/**
 * The page's side of the engine worker (the engine bridge, on the store floor): starts it, sends commands, and writes its events to the
 * stores (the only writer of the gpu, run, probe and chat stores, and of the worker-derived parts
 * of the model and dataset stores). Components call the functions exported here; none of them
 * waits on the GPU: a command's promise settles when the worker answers.
 *
 * Also the page's persistence: uploaded datasets go to IndexedDB (src/io/persist.ts), and the run
 * on screen is recorded in the runs library (./run-library.ts) as its events arrive. At startup the
 * library and the datasets come back, and a run a reload interrupted resumes by itself from its
 * last checkpoint.
 */
import { zipSync } from 'fflate';
import { type FileEntry, entriesFromZip, isZip } from '../io/browser-files';
import { deleteHubCache, downloadHubModel, fetchHubConfig, listHubCache } from '../io/hub';
import * as persist from '../io/persist';
import { methodLabel } from '../method/adapter';
import { parseModelConfig } from '../model/config';
import { useChatStore } from './chat';
import { useDatasetStore } from './dataset';
import { useGpuStore } from './gpu';
import { type SourceKind, useModelStore } from './model';
import { useProbeStore } from './probe';
import { isTraining, MAX_RUN_EVENTS, useRunStore } from './run';
import { clearRunViews, type DataFingerprint, deleteRun, findRun, recordFromStores, refreshLibrary, refreshUsage, type RunRecord, saveRecord, sha256Hex, showProbeAndChat, showRecord, useLibraryStore } from './run-library';
import { setSettings, useSettingsStore } from './settings';
import { sanitizeSettings } from './settings-table';
import { useViewStore } from './view';
import type { StepMetrics } from '../train/trainer';
import { downloadBlob } from '../io/download';
import type { CheckpointPointer } from '../io/persist';
import type { RunMeta } from '../worker/checkpoint';
import type { BackboneRef, BackboneSource, DatasetRole, DebugAction, RunOptions, WorkerCommand, WorkerEvent } from '../worker/protocol';
import { type RunSettings, runSpecOf } from '../train/run-settings';

let worker: Worker | null = null;
let nextReq = 1;
const pending = new Map<number, { resolve(): void; reject(e: Error): void }>();
/** Files of the local folder the user picked (kept here: Blobs are not store state). */
let localEntries: FileEntry[] = [];
let readyResolve: (() => void) | null = null;
const ready = new Promise<void>((r) => (readyResolve = r));
/** Settles when what an earlier visit stored is back (datasets sent to the worker). */
let restored: Promise<void> = Promise.resolve();

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

// ---- events -------------------------------------------------------------------------------------

function onEvent(ev: WorkerEvent): void {
  switch (ev.type) {
    case 'ready':
      useGpuStore.setState({ status: 'ready', adapter: ev.adapter });
      send({ type: 'kernelCheck' });
      readyResolve?.();
      return;
    case 'unavailable':
      useGpuStore.setState({ status: 'unavailable', unavailableReason: ev.reason });
      return;
    case 'kernelCheck':
      useGpuStore.setState({ kernelCheck: ev.result });
      return;
    case 'error':
      useGpuStore.setState((s) => ({ errors: [...s.errors, ev.message] }));
      return;
    case 'reply': {
      const p = pending.get(ev.reqId);
      pending.delete(ev.reqId);
      if (ev.ok) p?.resolve();
      else p?.reject(new Error(ev.error ?? 'failed'));
      return;
    }
    case 'backboneProgress':
      useModelStore.setState((s) => ({
        progress: {
          phase: 'load',
          file: ev.file,
          fileLoaded: ev.loadedBytes,
          fileTotal: ev.loadedBytes,
          filesDone: ev.files,
          filesTotal: Math.max(ev.files, s.progress?.phase === 'load' ? s.progress.filesTotal : 4),
          loaded: (s.progress?.phase === 'load' ? s.progress.loaded : 0) + ev.loadedBytes,
          fromCache: false,
        },
      }));
      return;
    case 'backboneLoaded':
      useModelStore.setState({ status: 'ready', info: ev.info, memory: ev.memory, progress: null, error: null });
      useRunStore.setState({ modelRun: null });
      useProbeStore.setState({ before: null, after: null, error: null });
      useChatStore.setState({ tokens: [], finishReason: null });
      requestSummary();
      warmUp();
      return;
    case 'dataset':
      useDatasetStore.setState((s) => ({ [ev.info.role]: ev.info, errors: { ...s.errors, [ev.info.role]: undefined } }));
      if (ev.info.role === 'train') {
        requestSummary();
        warmUp();
      }
      return;
    case 'pipelinesReady':
      useGpuStore.setState({ warmup: { pipelines: ev.pipelines, ms: ev.ms } });
      return;
    case 'datasetSummary':
      useDatasetStore.setState({ summary: ev.summary });
      return;
    case 'runStarted': {
      const r = ev.run;
      const prev = useRunStore.getState();
      // A resumed run brings the series saved with its checkpoint (the page's own copy may lag behind it).
      const keep = r.resumed ? (r.metrics ?? (prev.runId === r.runId ? prev.metrics.filter((m) => m.step <= r.startStep) : [])) : [];
      useRunStore.setState({
        runId: r.runId,
        status: 'running',
        step: r.startStep,
        startStep: r.startStep,
        totalSteps: r.totalSteps,
        metrics: keep,
        routing: r.resumed ? (r.routing ?? prev.routing) : null,
        routingStep: r.resumed ? prev.routingStep : 0,
        routingSet: r.resumed ? (r.routingSet ?? prev.routingSet) : null,
        evalCurve: r.resumed && prev.runId === r.runId ? prev.evalCurve.filter((p) => p.step <= r.startStep) : [],
        routingSetStep: r.resumed ? (r.routingSet?.source?.kind === 'routingSet' ? r.routingSet.source.step : prev.routingSetStep) : 0,
        groups: r.groups,
        typeNames: r.typeNames,
        seqLen: r.seqLen,
        memory: r.memory,
        message: null,
        storageError: r.resumed ? prev.storageError : null,
        // A resumed run (a reload, a rollback, a new device) keeps what happened to it so far.
        events: r.resumed ? prev.events : [],
        resumable: null,
        busy: null,
        startedAt: performance.now(),
        checkpoint: r.resumed ? prev.checkpoint : null,
        modelRun: r.runId,
      });
      useModelStore.setState({ memory: r.memory });
      if (!r.resumed) useRunStore.setState({ autoResumed: null });
      const rec = findRun(r.runId);
      if (r.resumed && rec) showProbeAndChat(rec);
      if (!r.resumed || !rec) {
        // A new run starts with no probe result of its own (the frozen backbone's stays) and its own record.
        useProbeStore.setState({ after: null });
        void saveRecord(newRunRecord(r.runId, r.totalSteps, r.adapter)).catch(() => undefined /* shown in the runs panel */);
      }
      saveRunSoon();
      return;
    }
    case 'startup':
      // The warm-up's compiles count only while a start waits for them; the first step's phase comes after runStarted.
      useRunStore.setState((s) => (s.busy === 'starting' || s.busy === 'restoring' || ev.progress.phase === 'firstStep' ? { startup: ev.progress } : {}));
      return;
    case 'runStatus':
      useRunStore.setState((s) => ({
        status: ev.status,
        step: Math.max(s.step, ev.step),
        message: ev.message ?? (ev.status === 'error' ? 'failed' : null),
        startup: ev.status === 'running' || ev.status === 'starting' ? s.startup : null,
      }));
      // Where a run rests is recorded at once: whether a reload resumes it depends on it.
      saveRunSoon(ev.status === 'running' ? 1000 : 0);
      return;
    case 'metrics':
      useRunStore.setState((s) => ({ metrics: [...s.metrics, ...ev.points], step: ev.points[ev.points.length - 1]?.step ?? s.step, startup: null }));
      saveRunSoon();
      return;
    case 'routing':
      if (ev.summary.source?.kind === 'routingSet') useRunStore.setState({ routingSet: ev.summary, routingSetStep: ev.step });
      else useRunStore.setState({ routing: ev.summary, routingStep: ev.step });
      saveRunSoon();
      return;
    case 'checkpoint':
      if (ev.runId === useRunStore.getState().runId) useRunStore.setState({ checkpoint: { step: ev.step, savedAt: ev.savedAt, bytes: ev.bytes } });
      saveRunSoon(0);
      return;
    case 'adapterKept': {
      const rec = findRun(ev.runId);
      if (rec) void saveRecord({ ...rec, adapter: { name: ev.name, step: ev.step, bytes: ev.bytes } }).then(refreshUsage, () => undefined /* shown in the runs panel */);
      return;
    }
    case 'storageError':
      useRunStore.setState({ storageError: ev.message });
      return;
    case 'evalPoint':
      if (ev.runId === useRunStore.getState().runId) useRunStore.setState((s) => ({ evalCurve: [...s.evalCurve.filter((p) => p.step < ev.point.step), ev.point] }));
      saveRunSoon(0);
      return;
    case 'runEvent':
      useRunStore.setState((s) => ({ events: [...s.events, ev.event].slice(-MAX_RUN_EVENTS) }));
      if (ev.event.severity !== 'info') console.warn(`[run] ${ev.event.message}`);
      saveRunSoon(0);
      return;
    case 'adapter':
      useRunStore.setState({ adapter: ev.state });
      useModelStore.setState({ memory: ev.memory });
      return;
    case 'probe':
      useProbeStore.setState({ [ev.which]: ev.result, error: null });
      saveRunSoon(0);
      return;
    case 'chatStart':
      useChatStore.setState({ tokens: [], groups: ev.groups, promptTokens: ev.promptTokens, running: true, finishReason: null, error: null });
      return;
    case 'chatTokens':
      useChatStore.setState((s) => ({ tokens: [...s.tokens, ...ev.tokens] }));
      return;
    case 'chatDone':
      useChatStore.setState({ running: false, finishReason: ev.finishReason, tokensPerSecond: ev.tokensPerSecond });
      saveRunSoon(0);
      return;
    case 'adapterZip':
      downloadBlob(new Blob([ev.bytes], { type: 'application/zip' }), ev.name);
      return;
    default: {
      const never: never = ev;
      console.warn('unknown worker event', never);
    }
  }
}

export function send(cmd: WorkerCommand, transfer: Transferable[] = []): void {
  if (!worker) throw new Error('engine worker not started');
  worker.postMessage(cmd, transfer);
}

type Requested = Extract<WorkerCommand, { reqId: number }>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Sends a command with a reqId; settles when the worker replies. */
async function call(cmd: DistributiveOmit<Requested, 'reqId'>, transfer: Transferable[] = []): Promise<void> {
  await ready;
  const reqId = nextReq++;
  return new Promise<void>((resolve, reject) => {
    pending.set(reqId, { resolve, reject });
    send({ ...cmd, reqId } as Requested, transfer);
  });
}

export function startEngineWorker(): void {
  if (worker) return;
  if (!('gpu' in navigator) || !navigator.gpu) {
    useGpuStore.setState({ status: 'unavailable', unavailableReason: 'this browser has no navigator.gpu' });
    return;
  }
  worker = new Worker(new URL('../worker/engine.worker.ts', import.meta.url), { type: 'module', name: 'engine' });
  worker.onmessage = (e: MessageEvent<WorkerEvent>) => onEvent(e.data);
  worker.onerror = (e) => useGpuStore.setState((s) => ({ errors: [...s.errors, `engine worker failed: ${e.message}`] }));
  const testHooks = new URLSearchParams(location.search).has('test-hooks');
  if (testHooks) exposeTestHooks();
  send({ type: 'init', testHooks });
  const interrupted = restoreFromStorage();
  restored = interrupted.then(() => undefined);
  void interrupted.then((p) => (p ? resumeInterrupted(p) : undefined));
}

/** What `?test-hooks` exposes to the reliability e2e tests (fault injection; nothing runs unless called). */
export interface TestHooks {
  loseDevice(): void;
  injectFault(target: 'gradient' | 'parameter'): void;
  failCheckpointWrite(fail: 'stall' | 'quota'): void;
}

declare global {
  interface Window {
    __loramoeTest?: TestHooks;
  }
}

function exposeTestHooks(): void {
  const debug = (action: DebugAction) => send({ type: 'debug', action });
  window.__loramoeTest = {
    loseDevice: () => debug({ kind: 'loseDevice' }),
    injectFault: (target) => debug({ kind: 'injectFault', target }),
    failCheckpointWrite: (fail) => debug({ kind: 'checkpointWrite', fail }),
  };
}

// ---- backbone -----------------------------------------------------------------------------------

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
    useModelStore.setState({ preview: { ref, config: null, error: errorText(e), weightFileBytes: null, files: extra.files ?? [] }, status: 'idle' });
  }
}

/** Reads the demo's config.json (same origin) for the estimate. */
export async function inspectDemo(): Promise<void> {
  try {
    const res = await fetch(new URL('config.json', demoBase()));
    if (!res.ok) throw new Error(`demo backbone: config.json: HTTP ${res.status}`);
    previewFrom({ kind: 'demo' }, await res.json());
  } catch (e) {
    useModelStore.setState({ preview: { ref: { kind: 'demo' }, config: null, error: errorText(e), weightFileBytes: null, files: [] } });
  }
}

async function loadFrom(source: BackboneSource): Promise<void> {
  useModelStore.setState({ status: 'loading', error: null, progress: null });
  try {
    await call({ type: 'loadBackbone', source });
  } catch (e) {
    useModelStore.setState({ status: 'error', error: errorText(e), progress: null });
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
    useModelStore.setState({ status: 'idle', preview: { ref: { kind: 'hub', repo }, config: null, error: errorText(e), weightFileBytes: null, files: [] } });
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
    useModelStore.setState({ status: 'error', error: errorText(e), progress: null });
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
      const error = `${repo}: config.json is not valid JSON (${errorText(e)}); the backbone was not loaded`;
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
    useModelStore.setState({ hubCache: [], cacheError: `The models cached in this browser could not be listed: ${errorText(e)}` });
  }
}

export async function deleteCachedRepo(repo: string): Promise<void> {
  try {
    await deleteHubCache(repo);
  } catch (e) {
    await refreshHubCache();
    useModelStore.setState({ cacheError: `${repo} could not be deleted from the cache: ${errorText(e)}` });
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
    useModelStore.setState({ preview: { ref, config: null, error: `config.json: ${errorText(e)}`, weightFileBytes, files } });
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

// ---- datasets -----------------------------------------------------------------------------------

async function sendDataset(role: DatasetRole, name: string, bytes: ArrayBuffer): Promise<void> {
  useDatasetStore.setState((s) => ({ loading: { ...s.loading, [role]: name }, errors: { ...s.errors, [role]: undefined } }));
  try {
    // The worker gets its own copy (transferred); the page keeps the original for storage.
    const copy = bytes.slice(0);
    await call({ type: 'loadDataset', role, name, bytes: copy }, [copy]);
  } catch (e) {
    useDatasetStore.setState((s) => ({ errors: { ...s.errors, [role]: errorText(e) } }));
    throw e;
  } finally {
    useDatasetStore.setState((s) => ({ loading: { ...s.loading, [role]: undefined } }));
  }
}

/** A dataset the user gave (picked, dropped, or the demo's): parsed by the worker, then kept in the browser. */
export async function uploadDataset(role: DatasetRole, name: string, bytes: ArrayBuffer): Promise<void> {
  try {
    await sendDataset(role, name, bytes);
  } catch {
    return;
  }
  useDatasetStore.setState((s) => ({ restored: s.restored.filter((r) => r !== role) }));
  if (role === 'train') trainFingerprint = await fingerprintOf(name, bytes);
  if (!persist.persistenceAvailable()) return;
  try {
    await persist.saveDataset(role, name, bytes);
  } catch (e) {
    // The dataset stays loaded for this visit; the user is told it will not survive a reload.
    useRunStore.setState({ storageError: `${errorText(e)} The dataset ${name} is loaded for this visit but will not be there after a reload.` });
  }
}

/** A dataset file the user picked or dropped: read, then as uploadDataset. A file that cannot be read is reported in its panel. */
export async function uploadDatasetFile(role: DatasetRole, entry: FileEntry): Promise<void> {
  const name = entry.path.split('/').pop() ?? entry.path;
  let bytes: ArrayBuffer;
  try {
    bytes = await entry.file.arrayBuffer();
  } catch (e) {
    useDatasetStore.setState((s) => ({ errors: { ...s.errors, [role]: `${name} could not be read: ${errorText(e)}` } }));
    return;
  }
  await uploadDataset(role, name, bytes);
}

async function fetchBytes(path: string): Promise<ArrayBuffer> {
  const res = await fetch(new URL(path, document.baseURI));
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.arrayBuffer();
}

export async function loadDemoData(): Promise<void> {
  try {
    await uploadDataset('train', 'demo-train.jsonl', await fetchBytes('data/demo-train.jsonl'));
  } catch (e) {
    useDatasetStore.setState((s) => ({ errors: { ...s.errors, train: errorText(e) } }));
  }
}

export async function loadDemoProbe(): Promise<void> {
  try {
    await uploadDataset('probe', 'demo-probe.jsonl', await fetchBytes('data/demo-probe.jsonl'));
  } catch (e) {
    useDatasetStore.setState((s) => ({ errors: { ...s.errors, probe: errorText(e) } }));
  }
}

let summaryTimer: ReturnType<typeof setTimeout> | null = null;

/** Asks for the token-length summary (after the backbone, the dataset or the maximum length changed). */
export function requestSummary(): void {
  if (summaryTimer) clearTimeout(summaryTimer);
  summaryTimer = setTimeout(() => {
    if (!worker || !useModelStore.getState().info || !useDatasetStore.getState().train) return;
    send({ type: 'summarizeDataset', maxLength: useSettingsStore.getState().values.maxLength });
  }, 200);
}

// ---- training -----------------------------------------------------------------------------------

/**
 * Compiles the kernels of a run with the form's settings ahead of Train, once a backbone and
 * training data are loaded (the worker does nothing until both are). A failure here is reported
 * as the run's message: Train would meet the same problem.
 */
function warmUp(): void {
  call({ type: 'warmUp', spec: runSpecOf(useSettingsStore.getState().values) }).catch((e: unknown) =>
    useRunStore.setState({ message: `Preparing the kernels for these settings failed: ${errorText(e)}` }),
  );
}

/** A run to start other than the form's: settings that differ, run options, and how the library names it. */
export interface RunRequest {
  settings?: Partial<RunSettings>;
  options?: RunOptions;
  /** The library's name for the run, and the comparison it belongs to. */
  name?: string;
  comparison?: RunRecord['comparison'];
}

/** What the run being started was asked with (its record is made when the worker says it started). */
let starting: (RunRequest & { settings: RunSettings }) | null = null;

/** Starts a run with the form's settings (or `req`'s). Resolves true once the run has started; a failure is the run's message. */
export async function startRun(req: RunRequest = {}): Promise<boolean> {
  useRunStore.setState({ busy: 'starting', message: null, storageError: null, startup: null });
  const settings: RunSettings = { ...useSettingsStore.getState().values, ...req.settings };
  starting = { ...req, settings };
  try {
    await call({ type: 'startRun', spec: runSpecOf(settings), continueAdapter: req.options ? false : useViewStore.getState().continueAdapter, ...(req.options ? { options: req.options } : {}) });
    return true;
  } catch (e) {
    useRunStore.setState({ message: errorText(e), startup: null });
    return false;
  } finally {
    starting = null;
    useRunStore.setState({ busy: null });
  }
}

export const pauseRun = () => send({ type: 'pauseRun' });
export const resumeRun = () => send({ type: 'resumeRun' });
export const stopRun = () => send({ type: 'stopRun' });

/** Continues the run saved by an earlier visit (the resumable one): loads its backbone when needed, then its checkpoint. */
export async function resumeFromCheckpoint(): Promise<void> {
  const cp = useRunStore.getState().resumable;
  if (!cp) return;
  await continueFrom(cp);
}

/** Continues a run of the library from its checkpoint (the run panel's Continue). */
export async function continueRun(runId: string): Promise<void> {
  if (isTraining(useRunStore.getState().status)) {
    useLibraryStore.setState({ error: 'Stop the current run before continuing another one.' });
    return;
  }
  try {
    const cp = await persist.loadCheckpointPointer<RunMeta>(runId);
    if (!cp) throw new Error(`run ${runId} has no checkpoint in this browser`);
    if (cp.step >= cp.totalSteps) throw new Error(`run ${runId} has finished all its ${cp.totalSteps} steps: load its adapter and train on from it instead`);
    const rec = findRun(runId);
    if (rec) showRecord(rec);
    useLibraryStore.setState({ error: null });
    await continueFrom(cp);
  } catch (e) {
    useLibraryStore.setState({ error: errorText(e) });
  }
}

async function continueFrom(cp: CheckpointPointer<RunMeta>): Promise<void> {
  useRunStore.setState({ busy: 'restoring', message: null });
  try {
    await restored;
    const ref = cp.meta.backbone;
    const info = useModelStore.getState().info;
    const loaded = info && info.ref.kind === ref.kind && info.name === (ref.kind === 'hub' ? ref.repo : ref.kind === 'local' ? ref.name : info.name);
    if (!loaded) {
      if (ref.kind === 'demo') {
        useModelStore.setState({ source: 'demo' });
        await loadDemoBackbone();
      } else if (ref.kind === 'hub') {
        useModelStore.setState({ source: 'hub' });
        setSettings({ hubRepo: ref.repo });
        await loadHubBackbone(ref.repo);
      } else throw new Error(`the run was trained on the local folder ${ref.name}: pick it again in the backbone panel, then resume`);
    }
    const ds = useDatasetStore.getState().train;
    if (!ds || ds.name !== cp.meta.dataset.name) throw new Error(`the run was trained on ${cp.meta.dataset.name}: load that dataset again, then resume`);
    await call({ type: 'restoreRun', runId: pointerRun(cp) });
  } catch (e) {
    useRunStore.setState({ message: errorText(e) });
  } finally {
    useRunStore.setState({ busy: null });
  }
}

/**
 * Discards the resumable run: its record, checkpoint and adapter leave the library, and its curves,
 * routing and step leave the screen. A failed delete keeps the box and says why.
 */
export async function discardCheckpoint(): Promise<void> {
  const cp = useRunStore.getState().resumable;
  if (!cp) return;
  const ok = await deleteRun(pointerRun(cp));
  if (!ok) {
    useRunStore.setState({ message: `The saved run could not be discarded: ${useLibraryStore.getState().error ?? 'unknown error'}` });
    return;
  }
  useRunStore.setState({ resumable: null, autoResumed: null });
  clearRunViews();
}

// ---- probe, chat, adapter files -------------------------------------------------------------------

export async function runProbe(which: 'before' | 'after'): Promise<void> {
  useProbeStore.setState({ running: which, error: null });
  try {
    await call({ type: 'runProbe', which });
  } catch (e) {
    useProbeStore.setState({ error: errorText(e) });
  } finally {
    useProbeStore.setState({ running: null });
  }
}

export async function generate(prompt: string, useAdapter: boolean): Promise<void> {
  const s = useSettingsStore.getState().values;
  const full = useRunStore.getState().adapter.cfg?.mode === 'full';
  const answeredBy = full ? 'fully fine-tuned weights' : useAdapter ? 'adapter on' : 'frozen backbone';
  useChatStore.setState({ running: true, error: null, prompt, answeredBy, tokens: [], finishReason: null });
  try {
    await call({ type: 'generate', prompt, useAdapter, sampling: { temperature: s.temperature, topK: s.topK, topP: s.topP, maxNewTokens: s.maxNewTokens, seed: s.seed } });
  } catch (e) {
    useChatStore.setState({ error: errorText(e) });
  } finally {
    useChatStore.setState({ running: false });
  }
}

export const stopGenerate = () => send({ type: 'stopGenerate' });

/** Runs a worker command that produces a download (the worker answers with an 'adapterZip'). */
async function exportZip(cmd: DistributiveOmit<Requested, 'reqId'>): Promise<void> {
  useRunStore.setState({ busy: 'exporting', message: null });
  try {
    await call(cmd);
  } catch (e) {
    useRunStore.setState({ message: errorText(e) });
  } finally {
    useRunStore.setState({ busy: null });
  }
}

export const exportAdapter = () => exportZip({ type: 'exportAdapter' });

/** The training data and the form's settings as a zip for the official LoRAMoE trainer. */
export const exportOfficialRun = () => exportZip({ type: 'exportOfficial', spec: runSpecOf(useSettingsStore.getState().values) });

/** An adapter zip or folder: loaded onto the backbone for inspection, chat or further training. */
export async function importAdapter(entries: FileEntry[], name: string): Promise<void> {
  useRunStore.setState({ busy: 'importing', message: null });
  try {
    if (!isZip(entries) && entries.length === 0) throw new Error('no files');
    if (isZip(entries)) entriesFromZip(new Uint8Array(await entries[0].file.arrayBuffer()), entries[0].path); // fails fast on a bad zip
    await call({ type: 'importAdapter', name, files: entries });
    const a = useRunStore.getState().adapter;
    if (a.cfg && a.cfg.mode !== 'full' && a.cfg.mode !== 'none') {
      // The form follows the imported adapter, so "continue training" starts from its shape.
      setSettings({
        mode: a.cfg.mode,
        experts: a.cfg.mode === 'loramoe' ? a.cfg.numExperts : useSettingsStore.getState().values.experts,
        rank: a.cfg.rank,
        alpha: a.cfg.alpha,
        dropout: a.cfg.dropout,
        targets: [...a.cfg.targets],
        lbcDelta: a.cfg.lbcDelta,
        lbcBeta: a.cfg.lbcBeta,
        lbcDirection: a.cfg.lbcDirection,
        lbcImportance: a.cfg.lbcImportance,
      });
      useViewStore.setState({ continueAdapter: true });
    }
    await recordImport(entries, name);
  } catch (e) {
    useRunStore.setState({ message: errorText(e) });
  } finally {
    useRunStore.setState({ busy: null });
  }
}

/**
 * An imported adapter gets its own entry in the runs library (its file kept, so it downloads again
 * after the browser is reopened) and the views switch to it; every other run stays as it was.
 */
async function recordImport(entries: FileEntry[], name: string): Promise<void> {
  const a = useRunStore.getState().adapter;
  const bytes = isZip(entries)
    ? await entries[0].file.arrayBuffer()
    : (zipSync(Object.fromEntries(await Promise.all(entries.map(async (e) => [e.path, new Uint8Array(await e.file.arrayBuffer())] as const))), { level: 6 }).buffer as ArrayBuffer);
  const id = `import-${Date.now().toString(36)}`;
  const rec: RunRecord = {
    ...newRunRecord(id, 0, a.cfg),
    name: `Imported: ${name}`,
    origin: 'imported',
    status: 'idle',
    groups: a.groups,
    typeNames: a.typeNames,
    probe: { before: useProbeStore.getState().before, after: null },
  };
  clearRunViews();
  useRunStore.setState({ runId: id, modelRun: id, groups: a.groups, typeNames: a.typeNames });
  useChatStore.setState({ tokens: [], finishReason: null, prompt: '' });
  if (persist.persistenceAvailable()) {
    try {
      const file = await persist.saveRunAdapter(id, isZip(entries) ? name : `${name}.zip`, bytes, 0);
      rec.adapter = { name: file.name, step: 0, bytes: file.bytes.byteLength };
    } catch (e) {
      useRunStore.setState({ storageError: `The imported adapter is loaded but could not be kept in the runs library: ${errorText(e)}` });
    }
  }
  await saveRecord(rec).catch(() => undefined /* shown in the runs panel */);
  await refreshUsage();
}

// ---- metrics export -----------------------------------------------------------------------------

const METRIC_COLUMNS: (keyof StepMetrics)[] = ['step', 'ce', 'lbc', 'loss', 'gradNorm', 'lr', 'tokens', 'tokensPerSecond', 'skipped', 'epoch'];

export function metricsCsv(metrics: readonly StepMetrics[]): string {
  const rows = metrics.map((m) => METRIC_COLUMNS.map((c) => String(m[c])).join(','));
  return `${METRIC_COLUMNS.join(',')}\n${rows.join('\n')}\n`;
}

export function exportMetrics(format: 'csv' | 'json'): void {
  const r = useRunStore.getState();
  const base = `metrics-${r.runId ?? 'run'}`;
  if (format === 'csv') downloadBlob(new Blob([metricsCsv(r.metrics)], { type: 'text/csv' }), `${base}.csv`);
  else {
    const body = { runId: r.runId, settings: useSettingsStore.getState().values, totalSteps: r.totalSteps, metrics: r.metrics, routing: r.routing, routingSet: r.routingSet, groups: r.groups };
    downloadBlob(new Blob([JSON.stringify(body, null, 1)], { type: 'application/json' }), `${base}.json`);
  }
}

// ---- persistence: the runs library ------------------------------------------------------------

/** The fingerprint of the training data loaded now (set when it is loaded or restored). */
let trainFingerprint: DataFingerprint | null = null;

function backboneLabel(): string {
  const info = useModelStore.getState().info;
  return info ? info.name : '';
}

/** A new run's record, from the settings it started with and the data and backbone loaded now. */
function newRunRecord(runId: string, totalSteps: number, adapter: RunRecord['adapterCfg']): RunRecord {
  const now = Date.now();
  const method = adapter ? methodLabel(adapter) : '';
  const n = useLibraryStore.getState().runs.filter((r) => r.origin === 'trained').length + 1;
  return {
    id: runId,
    name: starting?.name ?? `Run ${n}: ${method}`,
    ...(starting?.comparison ? { comparison: starting.comparison } : {}),
    origin: 'trained',
    createdAt: now,
    updatedAt: now,
    status: 'running',
    method,
    adapterCfg: adapter,
    settings: { ...(starting?.settings ?? useSettingsStore.getState().values) },
    backbone: backboneLabel(),
    dataset: trainFingerprint,
    totalSteps,
    step: 0,
    metrics: [],
    routing: null,
    routingStep: 0,
    routingSet: null,
    routingSetStep: 0,
    groups: [],
    typeNames: [],
    seqLen: 0,
    events: [],
    probe: { before: useProbeStore.getState().before, after: null },
    chat: null,
    checkpoint: null,
    adapter: null,
  };
}

let saveTimer: ReturnType<typeof setTimeout> | null = null;

/** Records the run on screen in the library, after `delay` ms (events come in bursts). */
function saveRunSoon(delay = 1000): void {
  if (saveTimer) clearTimeout(saveTimer);
  saveTimer = setTimeout(() => {
    saveTimer = null;
    const base = findRun(useRunStore.getState().runId);
    if (!base) return;
    saveRecord(recordFromStores(base)).catch((e: unknown) => useRunStore.setState({ storageError: `The run could not be recorded: ${errorText(e)}` }));
  }, delay);
}

let settingsTimer: ReturnType<typeof setTimeout> | null = null;

/** The checkpoint pointer's run (pointers of older versions carry it only in their metadata). */
const pointerRun = (p: CheckpointPointer<RunMeta>): string => p.runId ?? p.meta.runId;

/**
 * Restores what an earlier visit stored: settings (when the URL has none), the runs library (the
 * run trained last comes back on screen), the latest checkpoint's pointer and the datasets. Returns
 * the pointer of a run the reload interrupted (its record says it was training), which then resumes
 * by itself.
 */
async function restoreFromStorage(): Promise<CheckpointPointer<RunMeta> | null> {
  if (!persist.persistenceAvailable()) {
    await refreshLibrary();
    return null;
  }
  let interrupted: CheckpointPointer<RunMeta> | null = null;
  try {
    const fromUrl = useSettingsStore.getState().fromUrl;
    const saved = await persist.loadValue<unknown>('settings');
    if (saved && !fromUrl) setSettings(sanitizeSettings(saved));
    useSettingsStore.subscribe((s, prev) => {
      if (s.values === prev.values) return;
      if (settingsTimer) clearTimeout(settingsTimer);
      settingsTimer = setTimeout(() => persist.saveValue('settings', s.values, 'settings').catch((e: unknown) => useRunStore.setState({ storageError: errorText(e) })), 500);
      if (s.values.maxLength !== prev.values.maxLength) requestSummary();
    });
    await refreshLibrary();
    const removed = await persist.removeOrphanCheckpoints();
    if (removed > 0) console.info(`[storage] removed ${removed} checkpoint(s) that an interrupted save left behind`);
    const pointer = await persist.loadCheckpointPointer<RunMeta>();
    const last = pointer ? findRun(pointerRun(pointer)) : null;
    const shown = last ?? useLibraryStore.getState().runs.find((r) => r.origin === 'trained') ?? null;
    if (shown) showRecord(shown);
    if (pointer && pointer.step < pointer.totalSteps) {
      useRunStore.setState({ resumable: pointer, checkpoint: { step: pointer.step, savedAt: pointer.savedAt, bytes: pointer.bytes } });
      if (last && isTraining(last.status)) interrupted = pointer;
    }
    await ready;
    for (const role of ['train', 'probe'] as const) {
      const d = await persist.loadDataset(role);
      if (!d) continue;
      try {
        await sendDataset(role, d.name, d.bytes);
      } catch (e) {
        // Shown in the data panel (sendDataset set the error); the dataset is not marked restored.
        console.warn(`[storage] the stored ${role} dataset ${d.name} could not be loaded: ${errorText(e)}`);
        continue;
      }
      if (role === 'train') trainFingerprint = await fingerprintOf(d.name, d.bytes);
      useDatasetStore.setState((s) => ({ restored: [...s.restored, role] }));
    }
  } catch (e) {
    useRunStore.setState({ storageError: `Stored data could not be read: ${errorText(e)}` });
  }
  return interrupted;
}

async function fingerprintOf(name: string, bytes: ArrayBuffer): Promise<DataFingerprint> {
  return { name, bytes: bytes.byteLength, records: useDatasetStore.getState().train?.counts.good ?? 0, sha256: await sha256Hex(bytes) };
}

/**
 * A run the reload interrupted continues by itself from its last checkpoint; the banner names the
 * step and how many steps are trained again (those the page had seen after the checkpoint).
 */
async function resumeInterrupted(pointer: CheckpointPointer<RunMeta>): Promise<void> {
  const rec = findRun(pointerRun(pointer));
  const seen = rec ? rec.step : pointer.step;
  useRunStore.setState({ autoResumed: { runId: pointerRun(pointer), fromStep: pointer.step, redone: Math.max(0, seen - pointer.step), state: 'resuming' } });
  await resumeFromCheckpoint();
  const failed = useRunStore.getState().status !== 'running' && useRunStore.getState().status !== 'done';
  useRunStore.setState((s) => ({ autoResumed: s.autoResumed ? { ...s.autoResumed, state: failed ? 'failed' : 'resumed' } : null }));
}
