/**
 * Run actions: warm the kernels, start (the form's run or another, such as the comparison's),
 * pause, resume, stop; continue a run from its checkpoint (the resumable one, one of the library,
 * or one a reload interrupted, by itself); discard it; the run's metrics as CSV or JSON.
 */
import type { CheckpointPointer } from '../io/persist';
import { downloadBlob } from '../io/download';
import * as persist from '../io/persist';
import { methodLabel } from '../method/adapter';
import { type RunSettings, runSpecOf } from '../train/run-settings';
import type { StepMetrics } from '../train/trainer';
import type { RunMeta } from '../run/checkpoint';
import { loadRunBackbone } from './backbone-actions';
import { trainFingerprint } from './data-actions';
import { useDatasetStore } from './dataset';
import { useModelStore } from './model';
import { useProbeStore } from './probe';
import { autoResumeEnded, noRunViews, autoResumeStarted, holdsModel, isTraining, offerResume, resumeDiscarded, runBusy, runIdle, runStartFailed, runStarting, showRunMessage, useRunStore } from './run';
import { pointerRun, whenRestored } from './run-persistence';
import { clearRunViews, deleteRun, findRun, followRecord, type LibraryEntry, showLibraryError, showRecord, useLibraryStore } from './run-library';
import { awaitRun, claimRun, heldElsewhere, releaseRun, useOwnershipStore } from './run-ownership';
import { useSettingsStore } from './settings';
import { useViewStore } from './view';
import { call, send } from './worker-link';
import { errorMessage } from '../util/errors';

/**
 * Compiles the kernels of a run with the form's settings ahead of Train, once a backbone and
 * training data are loaded (the worker does nothing until both are). A failure here is reported
 * as the run's message: Train would meet the same problem.
 */
export function warmUp(): void {
  call({ type: 'warmUp', spec: runSpecOf(useSettingsStore.getState().values) }).catch((e: unknown) =>
    showRunMessage(`Preparing the kernels for these settings failed: ${errorMessage(e)}`),
  );
}

/** A run to start other than the form's: settings that differ, the compared method it is, and how the library names it. */
export interface StartRequest {
  settings?: Partial<RunSettings>;
  /** A compared method's run (the run spec's method and evalEvery). */
  compared?: Required<Pick<RunSettings, 'method' | 'evalEvery'>>;
  /** The library's name for the run, and the comparison it belongs to. */
  name?: string;
  comparison?: LibraryEntry['comparison'];
}

/** What the run being started was asked with (its record is made when the worker says it started). */
let starting: (StartRequest & { settings: RunSettings }) | null = null;

/** Starts a run with the form's settings (or `req`'s). Resolves true once the run has started; a failure is the run's message. */
export async function startRun(req: StartRequest = {}): Promise<boolean> {
  runStarting();
  const settings: RunSettings = { ...useSettingsStore.getState().values, ...req.settings };
  starting = { ...req, settings };
  try {
    await call({ type: 'startRun', spec: { ...runSpecOf(settings), ...req.compared }, continueAdapter: req.compared ? false : useViewStore.getState().continueAdapter });
    return true;
  } catch (e) {
    runStartFailed(errorMessage(e));
    return false;
  } finally {
    starting = null;
    runIdle();
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
    showLibraryError('Stop the current run before continuing another one.');
    return;
  }
  if (heldElsewhere(runId)) {
    showLibraryError(elsewhereMessage(runId));
    return;
  }
  try {
    const cp = await persist.loadCheckpointPointer<RunMeta>(runId);
    if (!cp) throw new Error(`run ${runId} has no checkpoint in this browser`);
    if (cp.step >= cp.totalSteps) throw new Error(`run ${runId} has finished all its ${cp.totalSteps} steps: load its adapter and train on from it instead`);
    const rec = findRun(runId);
    if (rec) showRecord(rec);
    showLibraryError(null);
    await continueFrom(cp);
  } catch (e) {
    showLibraryError(errorMessage(e));
  }
}

/** What a tab says when it may not train a run because another tab holds it. */
export function elsewhereMessage(runId: string): string {
  const name = findRun(runId)?.name ?? runId;
  return `${name} is training in another tab of this browser: switch to that tab to watch or stop it; it can be continued here once that tab stops it or is closed`;
}

async function continueFrom(cp: CheckpointPointer<RunMeta>): Promise<void> {
  const runId = pointerRun(cp);
  runBusy('restoring');
  let ok = false;
  try {
    // One owner per run: this tab trains it only once it holds its lock.
    if (!(await claimRun(runId))) throw new Error(elsewhereMessage(runId));
    await whenRestored();
    const ref = cp.meta.backbone;
    const info = useModelStore.getState().info;
    const loaded = info && info.ref.kind === ref.kind && info.name === (ref.kind === 'hub' ? ref.repo : ref.kind === 'local' ? ref.name : info.name);
    if (!loaded) await loadRunBackbone(ref);
    const ds = useDatasetStore.getState().train;
    if (!ds || ds.name !== cp.meta.dataset.name) throw new Error(`the run was trained on ${cp.meta.dataset.name}: load that dataset again, then resume`);
    await call({ type: 'restoreRun', runId });
    ok = true;
  } catch (e) {
    showRunMessage(errorMessage(e));
  } finally {
    if (!ok && !heldElsewhere(runId)) void releaseRun(runId);
    runIdle();
  }
}

/**
 * Decides, once this tab got the lock of a run another tab held, whether it takes the run over:
 * only when the stored record still says the run was training (its tab went without a clean stop),
 * this tab trains nothing, and a checkpoint is stored to resume from. Otherwise the run is shown
 * as stored now (stopped, finished) and the lock goes back.
 */
async function takeOver(runId: string): Promise<boolean> {
  const rec = await persist.loadRunRecord<LibraryEntry>(runId);
  if (rec) followRecord(rec);
  const status = useRunStore.getState();
  const pointer = rec ? await persist.loadCheckpointPointer<RunMeta>(runId) : null;
  if (!rec || !pointer || !isTraining(rec.status) || holdsModel(status.status) || status.busy !== null || pointer.step >= pointer.totalSteps) {
    if (rec && pointer && pointer.step < pointer.totalSteps && !holdsModel(status.status) && status.runId === runId) offerResume(pointer);
    return false;
  }
  if (status.runId !== runId) showRecord(rec);
  // Offered again should the resume fail.
  offerResume(pointer);
  void resumeInterrupted(pointer);
  return true;
}

/** Waits on every run other tabs hold: one whose tab goes without a clean stop resumes in exactly one tab. */
export function watchRunsElsewhere(): void {
  for (const id of useOwnershipStore.getState().elsewhere) awaitRun(id, () => takeOver(id));
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
    showRunMessage(`The saved run could not be discarded: ${useLibraryStore.getState().error ?? 'unknown error'}`);
    return;
  }
  resumeDiscarded();
  clearRunViews();
}


// ---- the run's record --------------------------------------------------------------------------

function backboneLabel(): string {
  const info = useModelStore.getState().info;
  return info ? info.name : '';
}

/** A new run's record, from the settings it started with and the data and backbone loaded now. */
export function newRunRecord(runId: string, totalSteps: number, adapter: LibraryEntry['adapterCfg']): LibraryEntry {
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
    dataset: trainFingerprint(),
    totalSteps,
    ...noRunViews(),
    probe: { before: useProbeStore.getState().before, after: null },
    chat: null,
    checkpoint: null,
    adapter: null,
  };
}

/**
 * The last step the page showed of a run, kept synchronously in localStorage on every metrics batch:
 * the library's record is written a second after a burst of events, so at a reload it may lag the
 * step the header showed. The resume banner reads it.
 */
const SEEN_KEY = (runId: string) => `loramoe-seen-step:${runId}`;

export function rememberSeenStep(runId: string | null, step: number): void {
  if (!runId) return;
  try {
    localStorage.setItem(SEEN_KEY(runId), String(step));
  } catch {
    // No localStorage (a private window's quota): the banner falls back to the library's record.
  }
}

export function forgetSeenStep(runId: string): void {
  try {
    localStorage.removeItem(SEEN_KEY(runId));
  } catch {
    // As above.
  }
}

function seenStep(runId: string): number | null {
  try {
    const v = Number(localStorage.getItem(SEEN_KEY(runId)));
    return Number.isInteger(v) && v > 0 ? v : null;
  } catch {
    return null;
  }
}

/**
 * A run the reload interrupted continues by itself from its last checkpoint; the banner names the
 * run, the step the page had shown, the checkpoint it continues from and the steps trained again.
 */
export async function resumeInterrupted(pointer: CheckpointPointer<RunMeta>): Promise<void> {
  const runId = pointerRun(pointer);
  const rec = findRun(runId);
  const seen = Math.max(rec ? rec.step : 0, seenStep(runId) ?? 0, pointer.step);
  autoResumeStarted({ runId, name: rec?.name ?? runId, seenStep: seen, fromStep: pointer.step, redone: seen - pointer.step });
  // The run this was called for, from its own checkpoint (not whichever the resume box last offered).
  await continueFrom(pointer);
  const failed = useRunStore.getState().status !== 'running' && useRunStore.getState().status !== 'done';
  autoResumeEnded(failed);
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

