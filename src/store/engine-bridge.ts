/**
 * The page's side of the engine worker (the engine bridge, on the store floor): starts it, sends commands, and writes its events to the
 * stores (the only writer of the gpu, run, probe and chat stores, and of the worker-derived parts
 * of the model and dataset stores). Components call the functions exported here; none of them
 * waits on the GPU: a command's promise settles when the worker answers.
 *
 * Also the page's persistence: uploaded datasets and the run's metric series go to IndexedDB
 * (src/io/persist.ts) and come back at startup with the latest checkpoint's pointer, so a reload
 * can resume the run.
 */
import { type FileEntry, entriesFromZip, isZip } from '../io/browser-files';
import { deleteHubCache, downloadHubModel, fetchHubConfig, listHubCache } from '../io/hub';
import * as persist from '../io/persist';
import { parseModelConfig } from '../model/config';
import { useChatStore } from './chat';
import { useDatasetStore } from './dataset';
import { useGpuStore } from './gpu';
import { type SourceKind, useModelStore } from './model';
import { useProbeStore } from './probe';
import { MAX_RUN_EVENTS, useRunStore } from './run';
import { setSettings, useSettingsStore } from './settings';
import { sanitizeSettings } from './settings-table';
import { useViewStore } from './view';
import type { StepMetrics } from '../train/trainer';
import type { RoutingSummary } from '../train/routing';
import { downloadBlob } from '../io/download';
import type { RunMeta } from '../worker/checkpoint';
import type { BackboneRef, BackboneSource, DatasetRole, DebugAction, DisplayGroup, RunEvent, WorkerCommand, WorkerEvent } from '../worker/protocol';

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
      });
      useModelStore.setState({ memory: r.memory });
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
      saveRunSoon();
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
      useRunStore.setState({ checkpoint: { step: ev.step, savedAt: ev.savedAt, bytes: ev.bytes } });
      saveRunSoon(0);
      return;
    case 'storageError':
      useRunStore.setState({ storageError: ev.message });
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
      return;
    case 'chatStart':
      useChatStore.setState({ tokens: [], groups: ev.groups, promptTokens: ev.promptTokens, running: true, finishReason: null, error: null });
      return;
    case 'chatTokens':
      useChatStore.setState((s) => ({ tokens: [...s.tokens, ...ev.tokens] }));
      return;
    case 'chatDone':
      useChatStore.setState({ running: false, finishReason: ev.finishReason, tokensPerSecond: ev.tokensPerSecond });
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
  restored = restoreFromStorage();
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
  call({ type: 'warmUp', settings: useSettingsStore.getState().values }).catch((e: unknown) =>
    useRunStore.setState({ message: `Preparing the kernels for these settings failed: ${errorText(e)}` }),
  );
}

export async function startRun(): Promise<void> {
  useRunStore.setState({ busy: 'starting', message: null, storageError: null, startup: null });
  try {
    await call({ type: 'startRun', settings: useSettingsStore.getState().values, continueAdapter: useViewStore.getState().continueAdapter });
  } catch (e) {
    useRunStore.setState({ message: errorText(e), startup: null });
  } finally {
    useRunStore.setState({ busy: null });
  }
}

export const pauseRun = () => send({ type: 'pauseRun' });
export const resumeRun = () => send({ type: 'resumeRun' });
export const stopRun = () => send({ type: 'stopRun' });

/** Continues the run saved by an earlier visit: loads its backbone when needed, then its checkpoint. */
export async function resumeFromCheckpoint(): Promise<void> {
  const cp = useRunStore.getState().resumable;
  if (!cp) return;
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
    await call({ type: 'restoreRun' });
  } catch (e) {
    useRunStore.setState({ message: errorText(e) });
  } finally {
    useRunStore.setState({ busy: null });
  }
}

export async function discardCheckpoint(): Promise<void> {
  await persist.deleteCheckpoints().catch(() => undefined);
  useRunStore.setState({ resumable: null });
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
export const exportOfficialRun = () => exportZip({ type: 'exportOfficial', settings: useSettingsStore.getState().values });

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
    useRunStore.setState({ status: 'idle', metrics: [], routing: null, routingSet: null, step: 0, totalSteps: 0, runId: null });
  } catch (e) {
    useRunStore.setState({ message: errorText(e) });
  } finally {
    useRunStore.setState({ busy: null });
  }
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

// ---- persistence ----------------------------------------------------------------------------------

interface SavedRun {
  runId: string | null;
  totalSteps: number;
  metrics: StepMetrics[];
  routing: RoutingSummary | null;
  routingStep: number;
  /** Absent in records of older versions. */
  routingSet?: RoutingSummary | null;
  routingSetStep?: number;
  groups: DisplayGroup[];
  typeNames: string[];
  events?: RunEvent[];
}

let saveTimer: ReturnType<typeof setTimeout> | null = null;

function saveRunSoon(delay = 1000): void {
  if (!persist.persistenceAvailable()) return;
  if (saveTimer) clearTimeout(saveTimer);
  saveTimer = setTimeout(() => {
    saveTimer = null;
    const r = useRunStore.getState();
    const rec: SavedRun = { runId: r.runId, totalSteps: r.totalSteps, metrics: r.metrics, routing: r.routing, routingStep: r.routingStep, routingSet: r.routingSet, routingSetStep: r.routingSetStep, groups: r.groups, typeNames: r.typeNames, events: r.events };
    persist.saveValue('run', rec, 'metric series').catch((e: unknown) => useRunStore.setState({ storageError: errorText(e) }));
  }, delay);
}

let settingsTimer: ReturnType<typeof setTimeout> | null = null;

/** Restores what an earlier visit stored: datasets, settings (when the URL has none), metrics, the checkpoint pointer. */
async function restoreFromStorage(): Promise<void> {
  if (!persist.persistenceAvailable()) return;
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
    const run = await persist.loadValue<SavedRun>('run');
    if (run && Array.isArray(run.metrics)) {
      useRunStore.setState({
        runId: run.runId,
        totalSteps: run.totalSteps,
        metrics: run.metrics,
        step: run.metrics[run.metrics.length - 1]?.step ?? 0,
        routing: run.routing,
        routingStep: run.routingStep,
        routingSet: run.routingSet ?? null,
        routingSetStep: run.routingSetStep ?? 0,
        groups: run.groups ?? [],
        typeNames: run.typeNames ?? [],
        events: Array.isArray(run.events) ? run.events : [],
      });
    }
    await persist.removeOrphanCheckpoints().catch(() => 0);
    const pointer = await persist.loadCheckpointPointer<RunMeta>();
    if (pointer && pointer.step < pointer.totalSteps) useRunStore.setState({ resumable: pointer, checkpoint: { step: pointer.step, savedAt: pointer.savedAt, bytes: pointer.bytes } });
    await ready;
    for (const role of ['train', 'probe'] as const) {
      const d = await persist.loadDataset(role);
      if (!d) continue;
      await sendDataset(role, d.name, d.bytes).catch(() => undefined);
      useDatasetStore.setState((s) => ({ restored: [...s.restored, role] }));
    }
  } catch (e) {
    useRunStore.setState({ storageError: `Stored data could not be read: ${errorText(e)}` });
  }
}
