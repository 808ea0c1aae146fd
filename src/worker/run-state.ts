/**
 * What the engine worker keeps of a training run (./run.ts starts it, ./run-loop.ts drives it,
 * ./run-checkpoints.ts keeps its good states, ./device.ts moves it onto a new device), and the two
 * events every part of it posts: the run itself (runStarted) and its queued metrics.
 */
import type { EncodedSample, InstructionRecord } from '../data/template';
import type { RoutingSummary } from '../train/routing';
import type { RoutingSetType } from '../train/routing-set';
import type { StepMetrics, Trainer, TrainerCheckpoint } from '../train/trainer';
import type { RunMeta } from './checkpoint';
import type { NumericGuard } from './faults';
import type { DisplayGroup, RunStatus } from './protocol';
import type { Session } from './session';

export interface Run {
  id: string;
  status: RunStatus;
  trainer: Trainer;
  totalSteps: number;
  meta: RunMeta;
  groups: DisplayGroup[];
  checkpointEvery: number;
  routingEvery: number;
  /** Metrics not yet posted. */
  pending: StepMetrics[];
  lastFlush: number;
  looping: boolean;
  /** The last training-window routing summary posted (types without tokens in a window keep their previous values). */
  lastRouting: RoutingSummary | null;
  /** The first step of the current training window. */
  windowFrom: number;
  /** The fixed routing set the run measures its routing on (null without a router). */
  routingSet: RoutingSetRun | null;
  /** The last routing-set summary posted. */
  lastRoutingSet: RoutingSummary | null;
  /** Every step's metrics of the run (saved with each checkpoint). */
  history: StepMetrics[];
  /** Padded sequence length of the run's batches. */
  seqLen: number;
  /** Counts faulty steps in a row. */
  guard: NumericGuard;
  /** What a rollback or a lost device goes back to (never null once the run has started). */
  lastGood: GoodState | null;
  /** The step of the last rollback's checkpoint, until a newer good checkpoint exists. */
  rolledBackTo: number | null;
  /** A checkpoint fell on a faulty step: it is written at the next good step instead. */
  checkpointDue: boolean;
  /** performance.now() of the last checkpoint written (or of the run's start), and how long writing it took. */
  lastCheckpointAt: number;
  checkpointMs: number;
  /** The step of the checkpoint last stored in the library (-1: none this session). */
  savedStep: number;
  /** Steps between held-out scores (0: none), the held-out task examples scored, and the last step scored (-1: none). */
  evalEvery: number;
  evalTasks: InstructionRecord[];
  lastScored: number;
}

/** A run's state known to be good (no fault streak when it was taken), kept in memory. */
export interface GoodState {
  cp: TrainerCheckpoint;
  /** checkpoint: a periodic checkpoint (or one restored from storage); start: the run's first state; rest: kept when the run paused, stopped or ended. */
  origin: 'checkpoint' | 'start' | 'rest';
  /** The metric series up to cp.stepsDone. */
  metrics: StepMetrics[];
}

/** What a checkpoint record carries besides the checkpoint itself. */
export interface CheckpointExtra {
  metrics: StepMetrics[];
  routing: RoutingSummary | null;
  /** The last routing-set summary (absent in checkpoints of older versions). */
  routingSet?: RoutingSummary | null;
}

/** A run's routing set, encoded. */
export interface RoutingSetRun {
  samples: EncodedSample[];
  types: RoutingSetType[];
  /** Samples per evaluation batch. */
  batch: number;
}

/** How messages name a good state: "the checkpoint at step 10". */
export function goodStateName(g: GoodState): string {
  const step = g.cp.stepsDone;
  if (g.origin === 'checkpoint') return `the checkpoint at step ${step}`;
  if (g.origin === 'start') return `the checkpoint at step ${step} (the start of the run)`;
  return `the checkpoint at step ${step} (kept in memory when the run last paused or stopped)`;
}

/** Tells the page about the run; a resumed one brings its series (the page replaces its own with it). */
export function postRunStarted(s: Session, r: Run, resumed: boolean): void {
  const meta = r.meta;
  s.post({
    type: 'runStarted',
    run: {
      runId: meta.runId,
      totalSteps: meta.totalSteps,
      startStep: r.trainer.stepsDone,
      typeNames: [...meta.typeNames],
      groups: r.groups,
      adapter: meta.adapter,
      seqLen: r.seqLen,
      memory: s.memory(),
      resumed,
      ...(resumed ? { metrics: r.history, routing: r.lastRouting, routingSet: r.lastRoutingSet } : {}),
    },
  });
}

/** Posts the current run's queued metrics: at once when forced, else at most every 250 ms. */
export function flushMetrics(s: Session, force: boolean): void {
  const r = s.run;
  if (!r || r.pending.length === 0) return;
  const now = performance.now();
  if (!force && now - r.lastFlush < 250) return;
  s.post({ type: 'metrics', points: r.pending });
  r.pending = [];
  r.lastFlush = now;
}
