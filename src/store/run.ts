/**
 * The training run on screen: status, metric series, routing summaries, checkpoints and the adapter
 * the model carries. Written only by ./run.ts (this file): every change it can undergo is one of the
 * functions below, named for what happened. The worker's events reach them through
 * ./worker-events.ts; the run, model and data actions, the runs library and the persistence call
 * them for what the page itself does. Components read it.
 */
import { create } from 'zustand';
import type { CheckpointPointer } from '../io/persist';
import type { CurvePoint } from '../train/comparison';
import type { RoutingSummary } from '../train/routing';
import type { StepMetrics } from '../train/trainer';
import type { RunMeta } from '../run/checkpoint';
import { type AdapterState, type DisplayGroup, type MeasuredMemory, noAdapter, type RunEvent, type RunStatus, type StartupProgress, type WorkerEvent } from '../worker/protocol';

interface RunState {
  runId: string | null;
  status: RunStatus;
  step: number;
  totalSteps: number;
  /** Step the current session of the run started from (0, or a checkpoint's step). */
  startStep: number;
  metrics: StepMetrics[];
  /** Routing over the last training window (dropout on): the secondary view. */
  routing: RoutingSummary | null;
  routingStep: number;
  /** The held-out scores of a run that takes them (the comparison's runs): probe and task accuracy by samples seen. */
  evalCurve: CurvePoint[];
  /** Routing measured on the run's fixed routing set (dropout off): the primary view. */
  routingSet: RoutingSummary | null;
  routingSetStep: number;
  groups: DisplayGroup[];
  typeNames: string[];
  seqLen: number;
  memory: MeasuredMemory | null;
  checkpoint: { step: number; savedAt: number; bytes: number } | null;
  /** A checkpoint stored by an earlier visit that this session can continue. */
  resumable: CheckpointPointer<RunMeta> | null;
  /**
   * A run the reload interrupted, resumed without a click: its name, the last step the page had shown
   * (seenStep), the checkpoint's step it continues from, and how many steps are trained again.
   */
  autoResumed: { runId: string; name: string; seenStep: number; fromStep: number; redone: number; state: 'resuming' | 'resumed' | 'failed' } | null;
  message: string | null;
  storageError: string | null;
  /** What happened to the run that the user must know (faults, rollbacks, a lost device), oldest first. */
  events: RunEvent[];
  adapter: AdapterState;
  /** The run whose weights the model carries (probe results and chat are recorded with it); null: the frozen backbone. */
  modelRun: string | null;
  busy: null | 'starting' | 'restoring' | 'exporting' | 'importing';
  /** What the run's start is doing (tokenising, compiling, uploading, the first step); null once the first metrics arrive or the run ends. */
  startup: StartupProgress | null;
  /** performance.now() when the run (or its resumption) started, for the ETA. */
  startedAt: number;
}

/** A run's views before its first step: no metrics, routing, expert groups or events. */
export function noRunViews(): Pick<RunState, 'step' | 'metrics' | 'routing' | 'routingStep' | 'routingSet' | 'routingSetStep' | 'groups' | 'typeNames' | 'seqLen' | 'events'> {
  return { step: 0, metrics: [], routing: null, routingStep: 0, routingSet: null, routingSetStep: 0, groups: [], typeNames: [], seqLen: 0, events: [] };
}

/** The run store. Written only by ./run.ts (the functions below). */
export const useRunStore = create<RunState>(() => ({
  runId: null,
  status: 'idle',
  step: 0,
  totalSteps: 0,
  startStep: 0,
  metrics: [],
  routing: null,
  routingStep: 0,
  routingSet: null,
  routingSetStep: 0,
  evalCurve: [],
  groups: [],
  typeNames: [],
  seqLen: 0,
  memory: null,
  checkpoint: null,
  resumable: null,
  autoResumed: null,
  message: null,
  storageError: null,
  events: [],
  adapter: noAdapter(),
  modelRun: null,
  busy: null,
  startup: null,
  startedAt: 0,
}));

/** Events kept per run (the oldest are dropped beyond it). */
export const MAX_RUN_EVENTS = 200;

/** Seconds per step over the last few steps (from tokens and throughput). */
export function secondsPerStep(metrics: readonly StepMetrics[], window = 10): number | null {
  const recent = metrics.slice(-window).filter((m) => m.tokensPerSecond > 0);
  if (recent.length === 0) return null;
  return recent.reduce((s, m) => s + m.tokens / m.tokensPerSecond, 0) / recent.length;
}

/** A step is running or about to finish (running, pausing, stopping). */
export function isTraining(status: RunStatus): boolean {
  return status === 'running' || status === 'pausing' || status === 'stopping' || status === 'starting';
}

/** A run holds the model: training, or paused and resumable. Backbone and settings changes wait for it to stop. */
export function holdsModel(status: RunStatus): boolean {
  return isTraining(status) || status === 'paused';
}

// ---- what can happen to the run on screen (the store's one writer) -----------------------------

/** What the worker says of a run that started (a new one, or one resumed from its checkpoint). */
export type StartedRun = Extract<WorkerEvent, { type: 'runStarted' }>['run'];

/** A run started in the worker: a new run starts empty; a resumed one keeps what the page showed up to its checkpoint. */
export function runStarted(r: StartedRun): void {
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
    // The auto-resume banner speaks of this start only.
    autoResumed: r.resumed ? prev.autoResumed : null,
  });
}

/** How far a run's start is. The warm-up's compiles count only while a start waits for them; the first step's phase comes after runStarted. */
export function startupProgressed(progress: StartupProgress): void {
  useRunStore.setState((s) => (s.busy === 'starting' || s.busy === 'restoring' || progress.phase === 'firstStep' ? { startup: progress } : {}));
}

/** The worker's status of the run (its step never goes back); a run that rests has no start in progress. */
export function runStatusChanged(status: RunStatus, step: number, message: string | undefined): void {
  useRunStore.setState((s) => ({
    status,
    step: Math.max(s.step, step),
    message: message ?? (status === 'error' ? 'failed' : null),
    startup: status === 'running' || status === 'starting' ? s.startup : null,
  }));
}

/** Steps trained: their metrics join the series, and the run has started for good. */
export function metricsArrived(points: readonly StepMetrics[]): void {
  useRunStore.setState((s) => ({ metrics: [...s.metrics, ...points], step: points[points.length - 1]?.step ?? s.step, startup: null }));
}

/** A routing summary measured at `step`: on the routing set, or over the last training window. */
export function routingMeasured(step: number, summary: RoutingSummary): void {
  if (summary.source?.kind === 'routingSet') useRunStore.setState({ routingSet: summary, routingSetStep: step });
  else useRunStore.setState({ routing: summary, routingStep: step });
}

/** A checkpoint of run `runId` was stored (ignored when another run is on screen). */
export function checkpointStored(runId: string, checkpoint: NonNullable<RunState['checkpoint']>): void {
  if (runId === useRunStore.getState().runId) useRunStore.setState({ checkpoint });
}

/** The latest checkpoint stored by an earlier visit (restored at startup). */
export function showCheckpoint(checkpoint: NonNullable<RunState['checkpoint']>): void {
  useRunStore.setState({ checkpoint });
}

/** A held-out score of run `runId` (ignored when another run is on screen); it replaces the points from its step on. */
export function evalPointArrived(runId: string, point: CurvePoint): void {
  if (runId === useRunStore.getState().runId) useRunStore.setState((s) => ({ evalCurve: [...s.evalCurve.filter((p) => p.step < point.step), point] }));
}

/** Something happened to the run that the user must know (the oldest beyond MAX_RUN_EVENTS are dropped). */
export function runEventHappened(event: RunEvent): void {
  useRunStore.setState((s) => ({ events: [...s.events, event].slice(-MAX_RUN_EVENTS) }));
}

/** The adapter the model carries changed (a run's, an import's, or none). */
export function adapterChanged(adapter: AdapterState): void {
  useRunStore.setState({ adapter });
}

/** A new backbone is loaded: the model carries no run's weights. */
export function backboneReplaced(): void {
  useRunStore.setState({ modelRun: null });
}

/** Something could not be stored or read (the run, a dataset, settings): said once, beside the run. */
export function storageFailed(message: string): void {
  useRunStore.setState({ storageError: message });
}

/** The run's message (a failure the user must read, or null to clear it). */
export function showRunMessage(message: string | null): void {
  useRunStore.setState({ message });
}

/** A run's start is asked of the worker: the last start's message, storage error and progress go. */
export function runStarting(): void {
  useRunStore.setState({ busy: 'starting', message: null, storageError: null, startup: null });
}

/** A run's start failed before it began: why, and no start in progress. */
export function runStartFailed(message: string): void {
  useRunStore.setState({ message, startup: null });
}

/** The page waits on the worker for something that holds the model (restoring, exporting, importing): the last message goes. */
export function runBusy(busy: 'restoring' | 'exporting' | 'importing'): void {
  useRunStore.setState({ busy, message: null });
}

/** What the page waited on is over (started, failed or done). */
export function runIdle(): void {
  useRunStore.setState({ busy: null });
}

/** A checkpoint to continue from is offered (the resume box), or withdrawn (null). */
export function offerResume(resumable: CheckpointPointer<RunMeta> | null): void {
  useRunStore.setState({ resumable });
}

/** The resumable run was discarded: neither the resume box nor the auto-resume banner stays. */
export function resumeDiscarded(): void {
  useRunStore.setState({ resumable: null, autoResumed: null });
}

/** A run the reload interrupted resumes by itself (the banner's figures). */
export function autoResumeStarted(autoResumed: Omit<NonNullable<RunState['autoResumed']>, 'state'>): void {
  useRunStore.setState({ autoResumed: { ...autoResumed, state: 'resuming' } });
}

/** The interrupted run's resume ended: resumed, or failed. */
export function autoResumeEnded(failed: boolean): void {
  useRunStore.setState((s) => ({ autoResumed: s.autoResumed ? { ...s.autoResumed, state: failed ? 'failed' : 'resumed' } : null }));
}

/** What the run views show of a run of the library (its record's figures). */
export type RecordViews = Pick<
  RunState,
  'status' | 'step' | 'totalSteps' | 'metrics' | 'routing' | 'routingStep' | 'routingSet' | 'routingSetStep' | 'evalCurve' | 'groups' | 'typeNames' | 'seqLen' | 'events' | 'checkpoint'
>;

/** A run of the library goes on screen (opened, restored at startup, or taken over from another tab). */
export function showRun(runId: string, views: RecordViews): void {
  useRunStore.setState({ ...views, runId, startStep: 0, message: null, memory: null });
}

/** The run on screen, which another tab trains, moved on there. */
export function followRun(views: RecordViews): void {
  useRunStore.setState(views);
}

/** The run views empty (the run on screen was deleted or discarded). */
export function clearRun(): void {
  useRunStore.setState({ ...noRunViews(), runId: null, status: 'idle', totalSteps: 0, startStep: 0, evalCurve: [], checkpoint: null, resumable: null, message: null });
}

/** An imported adapter is on screen and in the model, as run `runId` of the library. */
export function importedRunShown(runId: string, groups: DisplayGroup[], typeNames: string[]): void {
  useRunStore.setState({ runId, modelRun: runId, groups, typeNames });
}

/** A run of the library had its adapter loaded: the model carries it, under the run's name. */
export function runModelLoaded(runId: string, origin: AdapterState['origin'], label: string): void {
  useRunStore.setState((s) => ({ modelRun: runId, runId, adapter: { ...s.adapter, origin, label } }));
}
