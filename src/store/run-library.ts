/**
 * The runs library, the page's side: one record per run (its settings, the fingerprint of its data,
 * metric series, routing summaries, probe results, chat, events, and what it keeps in storage: its
 * checkpoint and the adapter it ended with), kept in IndexedDB (src/io/persist.ts) until the user
 * deletes it. The record of the run on screen is written as the worker's events arrive
 * (./worker-events.ts, ./run-persistence.ts); the runs panel lists the records, opens one, downloads
 * its adapter, overlays curves and deletes. The library store is written only here.
 *
 * A record is the page's copy of what it showed; the worker writes the heavy parts (checkpoints,
 * adapter zips) straight into storage under the run's id. Records never go backwards: every write
 * is compare-and-set on the record's version (updateRecord re-reads and redoes a write another tab
 * overtook), and recordMayFollow refuses, inside the write's transaction, a step or a status that
 * would go back within one start of the run.
 */
import { create } from 'zustand';
import { downloadBlob } from '../io/download';
import * as persist from '../io/persist';
import type { AdapterConfig } from '../method/adapter';
import type { ProbeResult } from '../train/probe';
import type { CurvePoint, MethodKey } from '../train/comparison';
import type { RoutingSummary } from '../train/routing';
import type { RunSettings } from '../train/run-settings';
import type { StepMetrics } from '../train/trainer';
import type { DisplayGroup, RunEvent, RunStatus } from '../worker/protocol';
import { chatShown, type SavedChat, useChatStore } from './chat';
import { probeRunCleared, probeShown, useProbeStore } from './probe';
import { clearRun, followRun, holdsModel, offerResume, type RecordViews, showRun, useRunStore } from './run';
import { heldElsewhere } from './run-ownership';
import { errorMessage } from '../util/errors';
import { sha256Hex } from '../util/sha256';

/** The data a run trained on: enough to tell whether the loaded dataset is the same one. */
export interface DataFingerprint {
  name: string;
  bytes: number;
  records: number;
  /** SHA-256 of the file's bytes, hex (empty where the browser offers no crypto.subtle). */
  sha256: string;
}

/** A run's entry in the runs library: its name and origin, its status and figures as last recorded. */
export interface LibraryEntry extends persist.StoredRun {
  name: string;
  /** trained: a run of this playground; imported: an adapter file the user loaded. */
  origin: 'trained' | 'imported';
  createdAt: number;
  /** Where the run was when last recorded: 'running' at a reload means it resumes by itself. */
  status: RunStatus;
  /**
   * How many times the run was started again (a resume, a continue, a rollback, a new device; absent
   * in older records: 0). Within one start its step and status only go forward (recordMayFollow).
   */
  leg?: number;
  method: string;
  adapterCfg: AdapterConfig | null;
  settings: RunSettings | null;
  backbone: string;
  dataset: DataFingerprint | null;
  totalSteps: number;
  step: number;
  metrics: StepMetrics[];
  routing: RoutingSummary | null;
  routingStep: number;
  routingSet: RoutingSummary | null;
  routingSetStep: number;
  /** Held-out probe and task scores by samples seen (runs of the method comparison; absent in older records). */
  evalCurve?: CurvePoint[];
  /** The comparison the run belongs to, and the method it is there. */
  comparison?: { id: string; method: MethodKey };
  groups: DisplayGroup[];
  typeNames: string[];
  seqLen: number;
  events: RunEvent[];
  probe: { before: ProbeResult | null; after: ProbeResult | null };
  chat: SavedChat | null;
  checkpoint: { step: number; savedAt: number; bytes: number } | null;
  /** The adapter zip kept in storage (a stopped or finished run's, or an imported file). */
  adapter: { name: string; step: number; bytes: number } | null;
}

export interface LibraryState {
  runs: LibraryEntry[];
  /** Runs whose loss curves the overlay chart draws. */
  overlay: string[];
  /** Bytes the library holds, and the browser's own figures for this site (null where it gives none). */
  usage: { library: number; used: number | null; quota: number | null } | null;
  /**
   * Whether the browser keeps this site's storage under pressure (navigator.storage.persisted()):
   * null where it does not say; `asked`: this visit asked for it (keepStorage) and what it answered.
   */
  persistence: { persisted: boolean | null; asked: boolean };
  /** The last storage problem of the library (a full quota, a failed delete), shown in the runs panel. */
  error: string | null;
  loaded: boolean;
}

/** The runs library store. Written only by ./run-library.ts (this file). */
export const useLibraryStore = create<LibraryState>(() => ({ runs: [], overlay: [], usage: null, persistence: { persisted: null, asked: false }, error: null, loaded: false }));

/** The library's last problem, shown in the runs panel (null: none to show). */
export function showLibraryError(error: string | null): void {
  useLibraryStore.setState({ error });
}

/** The loss a run ended on (its last step's), or null before any step. */
export function finalLoss(r: Pick<LibraryEntry, 'metrics'>): number | null {
  const last = r.metrics[r.metrics.length - 1];
  return last ? last.loss : null;
}

/** Hex SHA-256 of a file's bytes (the data fingerprint). */
export { sha256Hex };

/** Replaces (or adds) a record in the list the panel shows, newest first. */
function putInList(rec: LibraryEntry): void {
  useLibraryStore.setState((s) => ({ runs: [rec, ...s.runs.filter((r) => r.id !== rec.id)].sort((a, b) => b.updatedAt - a.updatedAt) }));
}

export function findRun(id: string | null): LibraryEntry | null {
  if (!id) return null;
  return useLibraryStore.getState().runs.find((r) => r.id === id) ?? null;
}

/** A status where a run rests for good within one start: only a new start (leg) trains it again. */
const settled = (s: RunStatus): boolean => s === 'stopped' || s === 'done' || s === 'error';
const trains = (s: RunStatus): boolean => s === 'starting' || s === 'running' || s === 'pausing' || s === 'paused' || s === 'stopping';

/**
 * Whether `next` may replace the stored record `stored` (null), or why not: within one start of the
 * run (the same leg) the step never goes back and a stopped, finished or failed run never trains
 * again; a record of an earlier start never replaces a later one.
 */
export function recordMayFollow(stored: LibraryEntry, next: LibraryEntry): string | null {
  const was = stored.leg ?? 0;
  const now = next.leg ?? 0;
  if (now < was) return `it is of start ${now} of the run, and the stored record of start ${was}`;
  if (now > was) return null;
  if (next.step < stored.step) return `its step ${next.step} is behind the stored step ${stored.step}`;
  if (settled(stored.status) && trains(next.status)) return `the run is ${stored.status}; only continuing it trains it again`;
  return null;
}

/** Writes run records one after another: each write starts from the version the previous one stored. */
let writes: Promise<unknown> = Promise.resolve();

function serialWrite<T>(job: () => Promise<T>): Promise<T> {
  const next = writes.then(job);
  writes = next.catch(() => undefined);
  return next;
}

/** Stores `rec` compare-and-set on its version and shows it in the list; a failure is reported in the panel and thrown. */
async function storeRecord(rec: LibraryEntry): Promise<LibraryEntry> {
  if (!persist.persistenceAvailable()) {
    putInList(rec);
    return rec;
  }
  const saved = await persist.saveRunRecord(rec, recordMayFollow);
  putInList(saved);
  return saved;
}

function reportRecordError(e: unknown): void {
  useLibraryStore.setState({ error: errorMessage(e) });
}

/** Stores a new record, or `rec` over the version it carries (and shows it in the list). A storage failure is reported in the panel and thrown. */
export function saveRecord(rec: LibraryEntry): Promise<void> {
  return serialWrite(async () => {
    try {
      await storeRecord(rec);
    } catch (e) {
      reportRecordError(e);
      throw e;
    }
  });
}

/**
 * Writes run `id`'s record as `make` makes it from the latest record (this tab's copy; when another
 * tab wrote since, the stored one, read again, and `make` runs again). Resolves with the record as
 * stored, or null when the run is not in the library. A refused write (a conflict twice, a step or
 * status going back, a full quota) is reported in the panel and thrown.
 */
export function updateRecord(id: string, make: (latest: LibraryEntry) => LibraryEntry): Promise<LibraryEntry | null> {
  return serialWrite(async () => {
    let base = findRun(id);
    if (!base) return null;
    try {
      try {
        return await storeRecord(make(base));
      } catch (e) {
        if (!(e instanceof persist.RecordConflictError) || e.found === null) throw e;
        base = await persist.loadRunRecord<LibraryEntry>(id);
        if (!base) throw e;
        putInList(base);
        return await storeRecord(make(base));
      }
    } catch (e) {
      reportRecordError(e);
      throw e;
    }
  });
}

/**
 * The record of the run on screen, from the run, probe and chat stores over `base` (the record as
 * stored, which holds what the stores do not: name, settings, data fingerprint, kept adapter).
 */
export function recordFromStores(base: LibraryEntry): LibraryEntry {
  const r = useRunStore.getState();
  const p = useProbeStore.getState();
  const c = useChatStore.getState();
  return {
    ...base,
    updatedAt: Date.now(),
    status: r.status === 'idle' ? base.status : r.status,
    totalSteps: r.totalSteps || base.totalSteps,
    step: r.step,
    metrics: r.metrics,
    routing: r.routing,
    routingStep: r.routingStep,
    routingSet: r.routingSet,
    routingSetStep: r.routingSetStep,
    evalCurve: r.evalCurve,
    groups: r.groups.length > 0 ? r.groups : base.groups,
    typeNames: r.typeNames.length > 0 ? r.typeNames : base.typeNames,
    seqLen: r.seqLen || base.seqLen,
    events: r.events,
    checkpoint: r.checkpoint ?? base.checkpoint,
    // What the model answers belongs to the run whose weights it carries.
    probe: { before: p.before ?? base.probe.before, after: r.modelRun === base.id ? p.after : base.probe.after },
    chat: r.modelRun === base.id && c.tokens.length > 0 && !c.running ? { prompt: c.prompt, answeredBy: c.answeredBy, tokens: c.tokens, groups: c.groups, finishReason: c.finishReason } : base.chat,
  };
}

/** Puts a record's probe results and chat on screen (a resumed run gets them back after its backbone loaded). */
export function showProbeAndChat(rec: LibraryEntry): void {
  probeShown(rec.probe, true);
  chatShown(rec.chat);
}

/** What the run views show of a record: its status (a run no tab trains shows as stopped), step, curves and routing. */
function recordViews(rec: LibraryEntry): RecordViews {
  return {
    status: holdsModel(rec.status) ? ('stopped' as const) : rec.status,
    step: rec.step,
    totalSteps: rec.totalSteps,
    metrics: rec.metrics,
    routing: rec.routing,
    routingStep: rec.routingStep,
    routingSet: rec.routingSet,
    routingSetStep: rec.routingSetStep,
    evalCurve: rec.evalCurve ?? [],
    groups: rec.groups,
    typeNames: rec.typeNames,
    seqLen: rec.seqLen,
    events: rec.events,
    checkpoint: rec.checkpoint,
  };
}

/** Puts a record on screen: its curves, routing, events, probe results and chat. */
export function showRecord(rec: LibraryEntry): void {
  showRun(rec.id, recordViews(rec));
  probeShown(rec.probe, false);
  chatShown(rec.chat);
}

/**
 * A record another tab wrote: it replaces this tab's copy in the list, and when the run is on
 * screen here (read-only: this tab trains nothing), its step, status, curves and routing follow it.
 * The probe and chat on screen stay: they are this tab's.
 */
export function followRecord(rec: LibraryEntry): void {
  putInList(rec);
  const r = useRunStore.getState();
  if (r.runId !== rec.id || holdsModel(r.status) || r.busy !== null) return;
  followRun(recordViews(rec));
}

/** Clears the run views (after the run on screen was deleted or discarded). */
export function clearRunViews(): void {
  clearRun();
  probeRunCleared();
}

/**
 * The run an earlier version of the playground kept (one record under the key "run", before the
 * library existed) as a library record, so its curves stay listed; null when there is none or it is
 * not such a record. It is marked stopped: whether it was training is not known, and its
 * checkpoint, if any, is offered for Resume.
 */
export function recordFromEarlierVersion(saved: unknown, now: number): LibraryEntry | null {
  if (typeof saved !== 'object' || saved === null) return null;
  const r = saved as Partial<{ runId: string | null; totalSteps: number; metrics: StepMetrics[]; routing: RoutingSummary | null; routingStep: number; routingSet: RoutingSummary | null; routingSetStep: number; groups: DisplayGroup[]; typeNames: string[]; events: RunEvent[] }>;
  if (typeof r.runId !== 'string' || !Array.isArray(r.metrics)) return null;
  const last = r.metrics[r.metrics.length - 1];
  return {
    id: r.runId,
    updatedAt: now,
    name: `Run from before the library (${r.runId})`,
    origin: 'trained',
    createdAt: now,
    status: 'stopped',
    method: '',
    adapterCfg: null,
    settings: null,
    backbone: '',
    dataset: null,
    totalSteps: typeof r.totalSteps === 'number' ? r.totalSteps : (last?.step ?? 0),
    step: last?.step ?? 0,
    metrics: r.metrics,
    routing: r.routing ?? null,
    routingStep: r.routingStep ?? 0,
    routingSet: r.routingSet ?? null,
    routingSetStep: r.routingSetStep ?? 0,
    groups: Array.isArray(r.groups) ? r.groups : [],
    typeNames: Array.isArray(r.typeNames) ? r.typeNames : [],
    seqLen: 0,
    events: Array.isArray(r.events) ? r.events : [],
    probe: { before: null, after: null },
    chat: null,
    checkpoint: null,
    adapter: null,
  };
}

/** Reads the library from storage, and how much it and the site use. */
export async function refreshLibrary(): Promise<void> {
  if (!persist.persistenceAvailable()) {
    useLibraryStore.setState({ loaded: true, error: 'This browser offers no storage (IndexedDB): runs are not kept after the tab is closed.' });
    return;
  }
  try {
    const runs = await persist.loadRunRecords<LibraryEntry>();
    useLibraryStore.setState({ runs, loaded: true });
    await refreshUsage();
  } catch (e) {
    useLibraryStore.setState({ loaded: true, error: `The runs library could not be read: ${errorMessage(e)}` });
  }
}

const storageManager = (): StorageManager | null => (typeof navigator !== 'undefined' && navigator.storage ? navigator.storage : null);

export async function refreshUsage(): Promise<void> {
  try {
    const library = await persist.libraryBytes();
    const st = storageManager();
    const est = st?.estimate ? await st.estimate() : null;
    const persisted = st?.persisted ? await st.persisted() : null;
    useLibraryStore.setState((s) => ({ usage: { library, used: est?.usage ?? null, quota: est?.quota ?? null }, persistence: { ...s.persistence, persisted } }));
  } catch (e) {
    useLibraryStore.setState({ error: `Storage use could not be measured: ${errorMessage(e)}` });
  }
}

/**
 * Asks the browser to keep this site's storage (navigator.storage.persist()), so that it does not
 * evict the runs under storage pressure: once a visit, when a run or a dataset is first stored and
 * storage is not persistent yet. The answer is shown in the runs panel.
 */
export async function keepStorage(): Promise<void> {
  const st = storageManager();
  if (!st?.persist || !st.persisted || useLibraryStore.getState().persistence.asked) return;
  try {
    let persisted = await st.persisted();
    if (!persisted) {
      useLibraryStore.setState((s) => ({ persistence: { ...s.persistence, asked: true } }));
      persisted = await st.persist();
    }
    useLibraryStore.setState({ persistence: { persisted, asked: true } });
  } catch (e) {
    useLibraryStore.setState({ persistence: { persisted: false, asked: true }, error: `Persistent storage could not be requested: ${errorMessage(e)}` });
  }
}

/**
 * Opens a run of the library: its curves, routing, probe and chat replace the views (not while a run
 * holds the model). True when it did; model-actions.ts openRunWithModel also loads its adapter.
 */
export function openRun(id: string): boolean {
  const rec = findRun(id);
  if (!rec) return false;
  if (holdsModel(useRunStore.getState().status) && useRunStore.getState().runId !== id) {
    useLibraryStore.setState({ error: 'Stop the current run before opening another one.' });
    return false;
  }
  useLibraryStore.setState({ error: null });
  showRecord(rec);
  return true;
}

/** Downloads the adapter a run keeps (the zip its Download gave when it stopped or finished). */
export async function downloadRunAdapter(id: string): Promise<void> {
  try {
    const file = await persist.loadRunAdapter(id);
    if (!file) throw new Error(`run ${id} keeps no adapter (it has not stopped or finished, or was trained before runs kept theirs)`);
    downloadBlob(new Blob([file.bytes], { type: 'application/zip' }), file.name);
  } catch (e) {
    useLibraryStore.setState({ error: `The adapter could not be downloaded: ${errorMessage(e)}` });
  }
}

/** Deletes a run with its checkpoint and adapter. The run on screen is cleared when it is the one deleted. */
export async function deleteRun(id: string): Promise<boolean> {
  if (holdsModel(useRunStore.getState().status) && useRunStore.getState().runId === id) {
    useLibraryStore.setState({ error: 'Stop the run before deleting it.' });
    return false;
  }
  if (heldElsewhere(id)) {
    useLibraryStore.setState({ error: `Run ${findRun(id)?.name ?? id} is training in another tab: stop it there before deleting it.` });
    return false;
  }
  try {
    if (persist.persistenceAvailable()) await persist.deleteRun(id);
  } catch (e) {
    useLibraryStore.setState({ error: `Run ${id} could not be deleted: ${errorMessage(e)}` });
    return false;
  }
  useLibraryStore.setState((s) => ({ runs: s.runs.filter((r) => r.id !== id), overlay: s.overlay.filter((o) => o !== id), error: null }));
  if (useRunStore.getState().runId === id) clearRunViews();
  if (useRunStore.getState().resumable?.runId === id) offerResume(null);
  await refreshUsage();
  return true;
}

export function toggleOverlay(id: string): void {
  useLibraryStore.setState((s) => ({ overlay: s.overlay.includes(id) ? s.overlay.filter((o) => o !== id) : [...s.overlay, id] }));
}
