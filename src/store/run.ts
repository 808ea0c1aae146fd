/**
 * The training run: status, metric series, routing summaries, checkpoints and the adapter the model
 * carries. Written only by the worker client (src/store/engine-bridge.ts); components read it.
 */
import { create } from 'zustand';
import type { CheckpointPointer } from '../io/persist';
import type { CurvePoint } from '../train/comparison';
import type { RoutingSummary } from '../train/routing';
import type { StepMetrics } from '../train/trainer';
import type { RunMeta } from '../worker/checkpoint';
import { type AdapterState, type DisplayGroup, type MeasuredMemory, noAdapter, type RunEvent, type RunStatus, type StartupProgress } from '../worker/protocol';

export interface RunState {
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
