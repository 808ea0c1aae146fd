/**
 * The run driver: a training run's whole life, headless, the same on the page and in the terminal.
 * It encodes the data and holds the routing set out (prepareNew, prepareResume), makes the trainer
 * (makeTrainer), loops over steps (TrainingRun.loop), checks every step (./faults.ts NumericGuard)
 * and rolls back to the last good state after a fault streak, measures routing on the routing set
 * and scores held-out examples, and checkpoints through an injected CheckpointStore. What happens is
 * told through an injected sink (DriverEvent). The hosts are thin:
 *
 * - the engine worker (src/worker/run.ts): the device it shares with chat and the probe, IndexedDB
 *   as the store, postMessage as the sink;
 * - the runner's `train` (src/cli/main.ts): a Node device, a run folder as the store, the
 *   progress bar or JSON as the sink;
 * - the runner's `experiment` (src/demo/experiment.ts), each of its runs: its own data (no routing
 *   set), a study's checkpoint file as the store, its curves and log lines as the sink.
 *
 * Both size RoPE and the attention window the same way (runPositions), cut and pad the samples the
 * same way and hold out the same routing set, so the same settings and seed train the same samples
 * in the same order and give the same adapter bytes (src/worker/page-equals-runner.test.ts).
 *
 * A TrainingRun has one owner (the worker's Session, or the runner's train command): only it starts,
 * pauses, stops, moves (to a new device) or disposes the run. A loop still in flight when the run is
 * moved or disposed notices by its epoch and ends without touching anything.
 */
import type { ImportedRecord } from '../data/import';
import { encodeOfficial, type EncodedSample, hasAnswer, type InstructionRecord } from '../data/template';
import type { TextTokenizer } from '../data/tokenizer';
import { answerlessMessage } from '../data/unknown';
import type { GpuContext } from '../engine/gpu';
import { ATTENTION_MAX_KEYS } from '../engine/kernels/attention';
import { type AdapterConfig, isRouted } from '../method/adapter';
import { WORLD_KNOWLEDGE } from '../method/data-types';
import type { ModelConfig } from '../model/config';
import type { GpuWeights } from '../model/weights';
import { type CurvePoint, heldOutScore, knockoutScores } from '../train/comparison';
import { evaluate } from '../train/evaluate';
import type { RoutingSummary } from '../train/routing';
import { routingSetBatch, routingSetIndices, type RoutingSetSelection, type RoutingSetType, routingSetTypes, selectRoutingSet, trainingIndices } from '../train/routing-set';
import { type StepMetrics, Trainer, type TrainerCheckpoint, type TrainSettings } from '../train/trainer';
import { errorMessage } from '../util/errors';
import type { RunMeta } from './checkpoint';
import type { DisplayGroup, RunEvent, RunStatus } from './events';
import { describeFault, describeRollback, NumericGuard, type StepFault } from './faults';
import { displayGroups, withDisplayGroups } from './groups';

/**
 * Seconds of training a lost process may cost at most: besides every `checkpointEvery` steps, a
 * checkpoint is written once this much time has passed since the last one (or ten times as long as
 * writing the last one took, so checkpoints never take more than a tenth of the run's time).
 */
export const CHECKPOINT_SECONDS = 5;

/**
 * Positions a run's weights hold RoPE tables for, and the longest sample it trains on: the
 * backbone's context, at most what the attention kernel holds. The page and the runner both size
 * by it, so their samples are cut the same way.
 */
export function runPositions(config: Pick<ModelConfig, 'maxPositionEmbeddings'>): number {
  return Math.min(config.maxPositionEmbeddings, ATTENTION_MAX_KEYS);
}

// ---- the data -----------------------------------------------------------------------------------

/** A run's routing set, encoded. */
export interface HeldOutSet {
  samples: EncodedSample[];
  types: RoutingSetType[];
  /** Samples per evaluation batch. */
  batch: number;
}

/** What a run trains on, and what it holds out, ready for a Trainer. */
export interface PreparedData {
  /** The training samples, in record order. */
  samples: EncodedSample[];
  routingSet: HeldOutSet | null;
  /** The routing set's record indices (null: none, the run has no router and scores nothing). */
  selection: RoutingSetSelection | null;
  /** The trainer's settings: the run's, with maxLength the padded length of its batches. */
  train: TrainSettings;
  /** Records encoded, and those left out of training because the maximum length cut their answer away. */
  records: number;
  answerless: number;
  /** The maximum length samples were cut to. */
  maxLength: number;
}

/** Encodes every record one after another; the worker passes its startup reporter to count them. */
export type Tokenise = (n: number, each: (i: number) => EncodedSample) => EncodedSample[];

const plainTokenise: Tokenise = (n, each) => Array.from({ length: n }, (_, i) => each(i));

/**
 * Every record encoded (samples[i] is record i); the padded length is the longest sample training
 * keeps, and `answerless` counts the samples whose answer the maximum length cuts away.
 */
function encode(tok: TextTokenizer, records: readonly ImportedRecord[], maxLength: number, tokenise: Tokenise): { samples: EncodedSample[]; seqLen: number; answerless: number } {
  const samples = tokenise(records.length, (i) => encodeOfficial(tok, records[i], maxLength));
  let seqLen = 2;
  let answerless = 0;
  for (const x of samples) {
    if (hasAnswer(x)) seqLen = Math.max(seqLen, x.ids.length);
    else answerless++;
  }
  return { samples, seqLen, answerless };
}

/**
 * Splits a run's encoded dataset (samples[i] is record i) into its training samples and its routing
 * set (src/train/routing-set.ts). Without a selection nothing is held out. Training keeps the
 * records `trains` accepts: by default those with an answer token left after cutting.
 */
function splitRoutingSet(
  samples: readonly EncodedSample[],
  sel: RoutingSetSelection | null,
  typeNames: readonly string[],
  seqLen: number,
  trainBatch: number,
  trains: (i: number) => boolean = (i) => hasAnswer(samples[i]),
): { train: EncodedSample[]; set: HeldOutSet | null } {
  if (!sel) return { train: samples.filter((_, i) => trains(i)), set: null };
  const types = samples.map((s) => s.type);
  const setSamples = routingSetIndices(sel).map((i) => samples[i]);
  return {
    train: trainingIndices(samples.length, sel, trains).map((i) => samples[i]),
    set: setSamples.length > 0 ? { samples: setSamples, types: routingSetTypes(sel, types, typeNames), batch: routingSetBatch(setSamples.length, seqLen, trainBatch) } : null,
  };
}

export interface NewRunData {
  tokenizer: TextTokenizer;
  records: readonly ImportedRecord[];
  typeNames: readonly string[];
  adapter: AdapterConfig;
  train: TrainSettings;
  /** runPositions of the backbone. */
  positions: number;
  /** The run scores held-out examples (evalEvery > 0): it holds the routing set out whatever its method. */
  scores: boolean;
  tokenise?: Tokenise;
}

/**
 * A new run's data: samples cut to the settings' maximum length (at most the positions the weights
 * hold), the routing set held out when the adapter routes or the run scores held-out examples
 * (every compared method then trains on the same samples in the same order), samples without an
 * answer token left out. Refuses a dataset that leaves nothing to train on, saying why.
 */
export function prepareNew(d: NewRunData): PreparedData {
  const maxLength = Math.min(d.train.maxLength, d.positions);
  const { samples: encoded, seqLen, answerless } = encode(d.tokenizer, d.records, maxLength, d.tokenise ?? plainTokenise);
  const train: TrainSettings = { ...d.train, maxLength: seqLen };
  const selection = isRouted(d.adapter) || d.scores ? selectRoutingSet(encoded.map((x) => (hasAnswer(x) ? x.type : null)), d.typeNames, train.seed) : null;
  const { train: samples, set } = splitRoutingSet(encoded, selection, d.typeNames, seqLen, train.batchSize);
  if (samples.length === 0 && answerless === encoded.length) throw new Error(`no sample keeps an answer token: ${answerlessMessage(answerless, encoded.length, maxLength)}`);
  if (samples.length === 0) throw new Error('no training samples are left once the routing set is held out');
  return { samples, routingSet: set, selection, train, records: encoded.length, answerless, maxLength };
}

export interface ResumedRunData {
  tokenizer: TextTokenizer;
  records: readonly ImportedRecord[];
  meta: RunMeta;
  /** The checkpoint's sampler size: how many samples the run trained on. */
  samplerSize: number;
  tokenise?: Tokenise;
}

/**
 * A checkpointed run's data, as it was: its recorded routing set held out (a run from before routing
 * sets held nothing out and is measured on a seeded sample of its training data), and samples
 * without an answer token left out unless the run trained on them (a run from before they were).
 */
export function prepareResume(d: ResumedRunData): PreparedData {
  const { meta } = d;
  const { samples: encoded, answerless } = encode(d.tokenizer, d.records, meta.train.maxLength, d.tokenise ?? plainTokenise);
  const selection = meta.routingSet ?? (isRouted(meta.adapter) ? selectRoutingSet(encoded.map((x) => x.type), meta.typeNames, meta.train.seed, { holdOut: false }) : null);
  if (selection && routingSetIndices(selection).some((i) => !(Number.isInteger(i) && i >= 0 && i < encoded.length))) throw new Error("the checkpoint's routing set does not fit the loaded dataset");
  let split = splitRoutingSet(encoded, selection, meta.typeNames, meta.train.maxLength, meta.train.batchSize);
  let leftOut = answerless;
  if (answerless > 0 && split.train.length !== d.samplerSize) {
    const all = splitRoutingSet(encoded, selection, meta.typeNames, meta.train.maxLength, meta.train.batchSize, () => true);
    if (all.train.length === d.samplerSize) [split, leftOut] = [all, 0];
  }
  return { samples: split.train, routingSet: split.set, selection, train: meta.train, records: encoded.length, answerless: leftOut, maxLength: meta.train.maxLength };
}

/** The notice that training left samples out, or null when it left none. */
export function samplesLeftOut(data: PreparedData, step: number): Omit<RunEvent, 'at'> | null {
  const message = answerlessMessage(data.answerless, data.records, data.maxLength);
  return message ? { kind: 'samplesLeftOut', severity: 'warning', step, message } : null;
}

/**
 * The routing set's held-out task examples of a run that scores them (world knowledge is the
 * probe's part), as records; examples longer than the weights hold are left out.
 */
export function heldOutTasks(tok: TextTokenizer, records: readonly ImportedRecord[], meta: RunMeta, positions: number): InstructionRecord[] {
  return (meta.routingSet?.heldOut ?? [])
    .map((i) => records[i])
    .filter((r): r is ImportedRecord => r !== undefined && r.type !== WORLD_KNOWLEDGE && !encodeOfficial(tok, r, positions).truncated);
}

/** The one place a run's Trainer is made: samples' data types indexed by the run's type names. */
export function makeTrainer(ctx: GpuContext, weights: GpuWeights, samples: readonly EncodedSample[], typeNames: readonly string[], train: TrainSettings, padId: number): Trainer {
  return new Trainer(ctx, weights, samples, (t) => typeNames.indexOf(t), typeNames, train, padId);
}

// ---- the run ------------------------------------------------------------------------------------

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

/** How messages name a good state: "the checkpoint at step 10". */
export function goodStateName(g: GoodState): string {
  const step = g.cp.stepsDone;
  if (g.origin === 'checkpoint') return `the checkpoint at step ${step}`;
  if (g.origin === 'start') return `the checkpoint at step ${step} (the start of the run)`;
  return `the checkpoint at step ${step} (kept in memory when the run last paused or stopped)`;
}

/** Where a run's checkpoints go: IndexedDB on the page, the run folder in the runner. */
export interface CheckpointStore {
  /** Checkpoints outlive the process (the browser has IndexedDB; a folder): a run that rests is checkpointed only then. */
  readonly persistent: boolean;
  /** Stores a checkpoint; false when it was not stored (the store has told the user why). */
  save(meta: RunMeta, cp: TrainerCheckpoint, extra: CheckpointExtra): Promise<boolean>;
  /** A stopped or finished run's adapter, kept beside its checkpoint. */
  keepAdapter?(run: TrainingRun): Promise<void>;
}

/** What a run tells its host, in order. */
export type DriverEvent =
  /** A step's metrics (faulty ones too: their update was skipped). */
  | { type: 'metrics'; point: StepMetrics }
  /** A routing summary: the training window's, or the routing set's (summary.source says which). */
  | { type: 'routing'; step: number; summary: RoutingSummary }
  | { type: 'notice'; event: Omit<RunEvent, 'at'> }
  /** Held-out scores (a run with evalEvery). */
  | { type: 'evalPoint'; runId: string; point: CurvePoint }
  /** The series went back (a rollback, a move to a new device): the run's history replaces what was told. */
  | { type: 'rewound' }
  /** The run's status changed; an error's message with it. */
  | { type: 'status'; message?: string };

export interface TrainingRunOptions {
  trainer: Trainer;
  meta: RunMeta;
  tokenizer: TextTokenizer;
  routingSet: HeldOutSet | null;
  /** Positions the weights hold (runPositions). */
  positions: number;
  sink: (ev: DriverEvent) => void;
  store: CheckpointStore;
  /** The state a rollback goes back to first: the start, or the checkpoint resumed from. */
  good: GoodState;
  /** A resumed run: its saved series and summaries. */
  saved?: CheckpointExtra;
  resumed: boolean;
  /** Runs GPU work in turn with the host's other GPU work (the worker's chat and probe); default: at once. */
  serial?: <T>(fn: () => Promise<T>) => Promise<T>;
  /** The knowledge probe's records (a run with evalEvery scores them). */
  probe?: () => readonly InstructionRecord[] | undefined;
  /** The held-out task examples a run with evalEvery scores (heldOutTasks). */
  evalTasks?: InstructionRecord[];
  /**
   * The model before the first step is already scored (the host has the backbone's score, as the
   * runner's `experiment` does): a new run's loop does not score step 0 again.
   */
  originScored?: boolean;
  /** Seconds after which a checkpoint is due whatever the step (default CHECKPOINT_SECONDS; Infinity: by steps only). */
  checkpointSeconds?: number;
  /** True when the step that failed failed because the device was lost: the host moves the run, no error. */
  deviceLost?: (ctx: GpuContext) => Promise<boolean>;
}

const sleep0 = () => new Promise<void>((r) => setTimeout(r, 0));

export class TrainingRun {
  readonly id: string;
  private current: RunStatus = 'running';
  private active: Trainer;
  readonly meta: RunMeta;
  readonly groups: DisplayGroup[];
  readonly routingSet: HeldOutSet | null;
  /** Every step's metrics of the run (saved with each checkpoint). */
  history: StepMetrics[];
  /** The last training-window routing summary (types without tokens in a window keep their previous values). */
  lastRouting: RoutingSummary | null;
  /** The last routing-set summary. */
  lastRoutingSet: RoutingSummary | null;
  /** What a rollback or a lost device goes back to. */
  lastGood: GoodState;
  readonly evalTasks: InstructionRecord[];

  private readonly opts: TrainingRunOptions;
  private readonly guard: NumericGuard;
  private readonly routingEvery: number;
  private looping = false;
  /** Bumped when the run moves to a new trainer or is disposed: a loop of an older epoch ends. */
  private epoch = 0;
  /** The first step of the current training window. */
  private windowFrom: number;
  /** The step of the last rollback's checkpoint, until a newer good checkpoint exists. */
  private rolledBackTo: number | null = null;
  /** A checkpoint fell on a faulty step: it is written at the next good step instead. */
  private checkpointDue = false;
  /** performance.now() of the last checkpoint written (or of the run's start), and how long writing it took. */
  private lastCheckpointAt = performance.now();
  private checkpointMs = 0;
  /** The step of the checkpoint last stored (-1: none in this process). */
  private savedStep: number;
  private lastScored: number;

  constructor(o: TrainingRunOptions) {
    this.opts = o;
    this.active = o.trainer;
    this.meta = o.meta;
    this.id = o.meta.runId;
    this.groups = displayGroups(o.meta.adapter, o.meta.typeNames);
    this.routingSet = o.routingSet;
    this.routingEvery = Math.max(1, o.meta.routingEvery);
    this.guard = new NumericGuard(o.meta.faultLimit);
    this.history = o.saved ? o.saved.metrics.filter((m) => m.step <= o.trainer.stepsDone) : [];
    this.lastRouting = o.saved?.routing ?? null;
    this.lastRoutingSet = o.saved?.routingSet ?? null;
    this.lastGood = o.good;
    this.windowFrom = o.trainer.stepsDone + 1;
    this.savedStep = o.resumed ? o.trainer.stepsDone : -1;
    this.lastScored = o.resumed || o.originScored ? o.trainer.stepsDone : -1;
    this.evalTasks = o.evalTasks ?? [];
  }

  /** Where the run is: running, pausing, paused, stopping, stopped, done or error (only the run changes it). */
  get status(): RunStatus {
    return this.current;
  }

  /** The trainer on the current device (a new one after moveTo). */
  get trainer(): Trainer {
    return this.active;
  }

  get totalSteps(): number {
    return this.meta.totalSteps;
  }

  get evalEvery(): number {
    return this.meta.evalEvery ?? 0;
  }

  /** Training, or about to be: a step may be in flight. */
  get busy(): boolean {
    const s = this.current;
    return s === 'running' || s === 'pausing' || s === 'stopping' || s === 'starting';
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.opts.serial ? this.opts.serial(fn) : fn();
  }

  private emit(ev: DriverEvent): void {
    this.opts.sink(ev);
  }

  private notice(event: Omit<RunEvent, 'at'>): void {
    this.emit({ type: 'notice', event });
  }

  /**
   * The training loop: one step at a time until done, paused, stopped or failed. Each step's
   * metrics go through the run's NumericGuard: a faulty step is reported (its update was skipped)
   * and never checkpointed; `faultLimit` in a row roll the run back (see ./faults.ts). Resolves
   * when the loop ends (at once when a loop is already going).
   */
  async loop(): Promise<void> {
    if (this.looping) return;
    this.looping = true;
    const epoch = this.epoch;
    const live = () => this.epoch === epoch;
    const trainer = this.active;
    try {
      // A run that scores held-out examples scores the model before its first step (the curves' origin).
      if (this.evalEvery > 0 && trainer.stepsDone === 0 && this.lastScored !== 0) await this.scoreHeldOut(live);
      while (this.current === 'running' && trainer.stepsDone < this.totalSteps && live()) {
        const m = await this.serial(() => trainer.step());
        if (!live()) return;
        this.history.push(m);
        this.emit({ type: 'metrics', point: m });
        const step = m.step;
        const verdict = this.guard.observe(m);
        if (verdict.kind !== 'ok') {
          const fault = verdict.kind === 'fault' ? verdict.fault : verdict.faults[verdict.faults.length - 1];
          const streak = verdict.kind === 'fault' ? verdict.streak : verdict.faults.length;
          this.notice({ kind: 'nonFinite', severity: 'warning', step, nonFinite: { loss: fault.loss, gradNorm: fault.gradNorm }, message: describeFault(fault, streak, this.guard.limit) });
        }
        if (verdict.kind === 'rollback') {
          await this.rollback(verdict.faults, live);
          await sleep0();
          continue;
        }
        if (step % this.routingEvery === 0 || step === this.totalSteps) {
          this.emitWindowRouting();
          await this.measureRoutingSet(live);
          if (!live()) return;
        }
        if (this.evalEvery > 0 && verdict.kind === 'ok' && (step % this.evalEvery === 0 || step === this.totalSteps)) {
          await this.scoreHeldOut(live);
          if (!live()) return;
        }
        const every = this.meta.checkpointEvery;
        const late = performance.now() - this.lastCheckpointAt >= Math.max((this.opts.checkpointSeconds ?? CHECKPOINT_SECONDS) * 1000, 10 * this.checkpointMs);
        const due = every > 0 && (step % every === 0 || step === this.totalSteps || this.checkpointDue || late);
        if (due && verdict.kind === 'fault') {
          // A state inside a fault streak is never stored: the checkpoint waits for the next good step.
          this.checkpointDue = true;
        } else if (due) {
          this.checkpointDue = false;
          await this.saveCheckpoint(live);
        }
        await sleep0();
      }
      if (!live()) return;
      if (this.current === 'stopping') this.current = 'stopped';
      else if (trainer.stepsDone >= this.totalSteps) this.current = 'done';
      else if (this.current === 'pausing') this.current = 'paused';
      const resting = this.guard.streakLength === 0 && trainer.stepsDone > 0;
      // Where the run rests, its routing is measured on the routing set (unless it just was).
      const measured = this.lastRoutingSet?.source?.kind === 'routingSet' ? this.lastRoutingSet.source.step : -1;
      if (resting && measured !== trainer.stepsDone) await this.measureRoutingSet(live);
      if (!live()) return;
      // Where the run rests is its checkpoint (a paused or stopped run continues from there after
      // the process ends) and its good state in memory (a lost device costs no step).
      if (resting && this.meta.checkpointEvery > 0 && this.savedStep !== trainer.stepsDone && this.opts.store.persistent) await this.saveCheckpoint(live);
      if (!live()) return;
      if (this.guard.streakLength === 0 && this.lastGood.cp.stepsDone !== trainer.stepsDone) await this.remember('rest', live);
      if (!live()) return;
      if (resting && (this.current === 'stopped' || this.current === 'done')) await this.opts.store.keepAdapter?.(this);
      if (!live()) return;
      this.emit({ type: 'status' });
    } catch (e) {
      if (!live()) return;
      // A lost device fails the step in flight: the host moves the run onto a new one, this is no error.
      if (this.opts.deviceLost && (await this.opts.deviceLost(trainer.ctx))) return;
      this.fail(errorMessage(e));
    } finally {
      if (live()) this.looping = false;
    }
  }

  /** Ends the run in an error that says why. */
  fail(message: string): void {
    this.current = 'error';
    this.emit({ type: 'status', message });
  }

  pause(): void {
    if (this.current !== 'running') return;
    this.current = this.looping ? 'pausing' : 'paused';
    this.emit({ type: 'status' });
  }

  /** Continues a paused run; the promise is the loop's. */
  resume(): Promise<void> {
    if (this.current !== 'paused' && this.current !== 'pausing') return Promise.resolve();
    this.current = 'running';
    this.emit({ type: 'status' });
    return this.loop();
  }

  stop(): void {
    if (this.current === 'done' || this.current === 'stopped' || this.current === 'stopping') return;
    // A step in flight finishes first (its metrics are told), then the loop reports 'stopped'.
    this.current = this.looping ? 'stopping' : 'stopped';
    this.emit({ type: 'status' });
  }

  /**
   * The run goes on with a new trainer (the same samples and settings on a new device) from its
   * last good state; the loop in flight on the old one ends. A run that was training goes on when
   * the owner calls loop(); one pausing is paused, one stopping stopped. Emits 'rewound'. Returns
   * the step resumed from.
   */
  moveTo(trainer: Trainer): number {
    this.epoch++;
    this.looping = false;
    trainer.importCheckpoint(this.lastGood.cp);
    this.active = trainer;
    const s = this.current;
    this.current = s === 'running' || s === 'starting' ? 'running' : s === 'pausing' ? 'paused' : s === 'stopping' ? 'stopped' : s;
    this.history = this.lastGood.metrics.slice();
    this.windowFrom = this.lastGood.cp.stepsDone + 1;
    this.guard.reset();
    this.checkpointDue = false;
    // Told through the sink, after any metrics it still holds: the page's series is the good
    // state's, and the steps after it come again from the new trainer.
    this.emit({ type: 'rewound' });
    return this.lastGood.cp.stepsDone;
  }

  /** The run ends here: a loop in flight stops touching it, and its trainer's buffers go. */
  dispose(): void {
    this.epoch++;
    this.active.destroy();
  }

  /**
   * Keeps the trainer's current state as the run's good state (in memory), unless it holds a
   * non-finite value: an update can overflow a parameter while its step looked healthy (the fault
   * shows only at the next step), and such a state must never become a checkpoint.
   */
  private async remember(origin: GoodState['origin'], live: () => boolean): Promise<TrainerCheckpoint | null> {
    const cp = await this.serial(() => this.active.exportCheckpoint());
    if (!live()) return null;
    const bad = firstNonFinite(cp);
    if (bad) {
      this.notice({
        kind: 'checkpointRefused',
        severity: 'warning',
        step: cp.stepsDone,
        message: `The state at step ${cp.stepsDone} holds a non-finite value (${bad}): it was not kept as a checkpoint; the last good one stays (${goodStateName(this.lastGood)}).`,
      });
      return null;
    }
    this.lastGood = { cp, metrics: this.history.filter((m) => m.step <= cp.stepsDone), origin };
    // A newer good state: a later rollback goes there, and may do so again.
    if (this.rolledBackTo !== null && cp.stepsDone > this.rolledBackTo) this.rolledBackTo = null;
    return cp;
  }

  /** A checkpoint: the good state in memory, and in the store. */
  async saveCheckpoint(live: () => boolean = () => true): Promise<void> {
    const began = performance.now();
    this.lastCheckpointAt = began;
    const cp = await this.remember('checkpoint', live);
    if (!cp) return;
    const meta: RunMeta = { ...this.meta, savedAt: Date.now() };
    const stored = await this.opts.store.save(meta, cp, { metrics: this.lastGood.metrics, routing: this.lastRouting, routingSet: this.lastRoutingSet });
    if (!stored || !live()) return;
    this.savedStep = cp.stepsDone;
    this.lastCheckpointAt = performance.now();
    this.checkpointMs = this.lastCheckpointAt - began;
  }

  /** Whether the checkpoint of the current step is stored. */
  get saved(): boolean {
    return this.savedStep === this.active.stepsDone;
  }

  /**
   * `faultLimit` faulty steps in a row: the trainer goes back to the run's last good state
   * (parameters, AdamW moments, step count, data order, dropout stream) and the host gets the series
   * up to it. A second rollback to the same state pauses the run (the fault is reproducible).
   */
  private async rollback(faults: StepFault[], live: () => boolean): Promise<void> {
    const good = this.lastGood;
    const toStep = good.cp.stepsDone;
    const again = this.rolledBackTo === toStep;
    await this.serial(async () => this.active.importCheckpoint(good.cp));
    if (!live()) return;
    this.active.routing?.reset();
    this.windowFrom = toStep + 1;
    this.rolledBackTo = toStep;
    this.checkpointDue = false;
    this.history = good.metrics.slice();
    if (again && this.current === 'running') this.current = 'paused';
    this.emit({ type: 'rewound' });
    this.notice({
      kind: 'rollback',
      severity: again ? 'error' : 'warning',
      step: faults[faults.length - 1].step,
      toStep,
      nonFinite: { loss: faults.some((f) => f.loss), gradNorm: faults.some((f) => f.gradNorm) },
      message: describeRollback(faults, goodStateName(good), again),
    });
  }

  /** Tells the training window's routing summary (the steps since the last one) and starts the next window. */
  private emitWindowRouting(): void {
    const stats = this.active.routing;
    if (!stats) return;
    const fresh: RoutingSummary = { ...withDisplayGroups(stats.summary(), this.groups), source: { kind: 'window', fromStep: this.windowFrom, toStep: this.active.stepsDone } };
    stats.reset();
    this.windowFrom = this.active.stepsDone + 1;
    // A small batch may hold no sample of some type in a window: that type keeps its last values.
    const prev = this.lastRouting;
    const keep = (t: number) => prev !== null && !(fresh.tokens[t] > 0) && prev.tokens[t] > 0;
    const summary: RoutingSummary = prev
      ? {
          ...fresh,
          tokens: fresh.tokens.map((n, t) => (keep(t) ? prev.tokens[t] : n)),
          mean: fresh.mean.map((m, t) => (keep(t) ? prev.mean[t] : m)),
          groupMean: fresh.groupMean.map((g, t) => (keep(t) ? prev.groupMean[t] : g)),
        }
      : fresh;
    this.lastRouting = summary;
    this.emit({ type: 'routing', step: this.active.stepsDone, summary });
  }

  /**
   * Measures routing on the run's routing set with the current weights, dropout off (evaluate(),
   * in batches of at most ROUTING_SET_BATCH_ROWS token rows), and tells it as the primary summary.
   */
  private async measureRoutingSet(live: () => boolean): Promise<void> {
    const set = this.routingSet;
    if (!set || !isRouted(this.meta.adapter)) return;
    const t = this.active;
    const step = t.stepsDone;
    const res = await this.serial(() => evaluate(t.ctx, t.weights, set.samples, t.typeIndex, this.meta.typeNames, { batchSize: set.batch, padId: t.padId }));
    if (!live() || !res.routing) return;
    const summary: RoutingSummary = { ...withDisplayGroups(res.routing, this.groups), source: { kind: 'routingSet', step, types: set.types } };
    this.lastRoutingSet = summary;
    this.emit({ type: 'routing', step, summary });
  }

  /** Scores the knowledge probe and the held-out task examples with the current weights (a run with evalEvery). */
  private async scoreHeldOut(live: () => boolean): Promise<void> {
    const probe = this.opts.probe?.();
    if (!probe) return;
    const t = this.active;
    const step = t.stepsDone;
    const tok = this.opts.tokenizer;
    const positions = this.opts.positions;
    const score = await this.serial(() => heldOutScore(t.ctx, t.weights, tok, probe, this.evalTasks, { maxLength: positions }));
    // At the end, a LoRAMoE run is also scored with each expert group off: the specialisation table.
    const knockout =
      step === this.totalSteps && isRouted(this.meta.adapter) ? await this.serial(() => knockoutScores(t.ctx, t.weights, tok, probe, this.evalTasks, this.meta.typeNames, { maxLength: positions })) : null;
    if (!live()) return;
    this.lastScored = step;
    const s = this.meta.train;
    this.emit({ type: 'evalPoint', runId: this.id, point: { step, samples: step * s.batchSize * s.gradAccum, ...score, ...(knockout ? { knockout } : {}) } });
  }
}

/** "param of L0 gate_proj router" for the first non-finite value of a checkpoint, or null. */
function firstNonFinite(cp: TrainerCheckpoint): string | null {
  for (const t of cp.tensors) {
    for (const [part, data] of [['parameter', t.param], ['first moment', t.m], ['second moment', t.v]] as const) {
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i])) return `${data[i]} in the ${part} of ${t.name}`;
      }
    }
  }
  return null;
}
