/**
 * The engine worker's side of a training run: the page's device, IndexedDB and messages around the
 * run driver (src/run/driver.ts), which does everything else. A new run (from the page's run spec, RunSettings)
 * or one continued from its checkpoint in the library is prepared by the driver, its weights are
 * built on the session's shared backbone, and the run is handed to the session, its one owner.
 * Warming the pipelines a run will use, before Train is pressed, is here too.
 */
import type { EncodedSample } from '../data/template';
import type { GpuWeights } from '../model/weights';
import { loadCheckpoint, persistenceAvailable, saveCheckpoint as storeCheckpoint, saveRunAdapter, StorageFullError } from '../io/persist';
import { type AdapterSet, initAdapter } from '../loramoe/init';
import { type AdapterConfig, hasAdapter } from '../method/adapter';
import { decodeCheckpoint, encodeCheckpoint, newRunMeta, type RunMeta } from '../run/checkpoint';
import {
  type CheckpointExtra,
  type CheckpointStore,
  type DriverEvent,
  type GoodState,
  heldOutTasks,
  makeTrainer,
  type PreparedData,
  prepareNew,
  prepareResume,
  samplesLeftOut,
  TrainingRun,
} from '../run/driver';
import { comparedAdapter } from '../train/comparison';
import { adapterSpecOf, runAdapterConfig, type RunSettings, trainSettingsOf } from '../train/run-settings';
import type { StepMetrics, Trainer, TrainSettings } from '../train/trainer';
import { type WarmupResult, warmTrainingPipelines } from '../train/warmup';
import { errorMessage } from '../util/errors';
import { adapterZip } from './adapter-files';
import { type BackboneRef, backboneName } from './protocol';
import type { WorkerState } from './state';

/** What decides the pipelines a trainer build asks for: the adapter, the batch and the padded length. */
function buildShape(cfg: AdapterConfig, train: Pick<TrainSettings, 'batchSize' | 'maxLength'>): string {
  return JSON.stringify([cfg, train.batchSize, train.maxLength]);
}

function sameRef(a: BackboneRef, b: BackboneRef): boolean {
  return backboneName(a) === backboneName(b) && a.kind === b.kind;
}

/** The session's trainer for these samples: on its device, with its tokenizer's padding. */
export function sessionTrainer(s: WorkerState, weights: GpuWeights, samples: readonly EncodedSample[], typeNames: readonly string[], train: TrainSettings): Trainer {
  return makeTrainer(s.ctx, weights, samples, typeNames, train, s.requireBackbone().tokenizer.padId);
}

/**
 * Compiles the pipelines a run with these settings will use (src/train/warmup.ts), once a backbone
 * and training data are loaded and nothing is training; the page asks after each of those loads.
 * Null when there is nothing to warm yet, or the backbone is too large to warm.
 */
export async function warmUp(s: WorkerState, spec: RunSettings): Promise<WarmupResult | null> {
  const data = s.datasets.get('train');
  if (!s.backbone || !data || s.isTraining() || s.run?.status === 'paused') return null;
  const b = s.backbone;
  const names = data.info.typeNames;
  const cfg = runAdapterConfig(adapterSpecOf(spec), spec.groups, names);
  let prepared: PreparedData;
  try {
    prepared = prepareNew({ tokenizer: b.tokenizer, records: data.records, typeNames: names, adapter: cfg, train: trainSettingsOf(spec), positions: s.maxPositions, scores: false, tokenise: (n, each) => s.startup.tokenise(n, each) });
  } catch {
    return null;
  }
  const settings = prepared.train;
  return s.serial(async () =>
    s.startup.build(s.ctx.pipelines, buildShape(cfg, settings), () => warmTrainingPipelines(s.ctx, b, cfg, settings, prepared.samples, names, s.maxPositions, s.model.precisionFor(cfg))),
  );
}

/**
 * The run's messages: the driver's events as the page's (src/worker/protocol.ts). Metrics are
 * batched, at most one message every 250 ms; any other event sends the batch before it.
 */
function sinkFor(s: WorkerState, getRun: () => TrainingRun | null): (ev: DriverEvent) => void {
  let pending: StepMetrics[] = [];
  let lastFlush = performance.now();
  const flush = () => {
    if (pending.length === 0) return;
    // Taken before posting: the page's handler may steer the run (pause), which flushes again.
    const points = pending;
    pending = [];
    lastFlush = performance.now();
    s.post({ type: 'metrics', points });
  };
  return (ev) => {
    if (ev.type === 'metrics') {
      pending.push(ev.point);
      if (performance.now() - lastFlush >= 250) flush();
      return;
    }
    flush();
    const run = getRun();
    switch (ev.type) {
      case 'routing':
        s.post({ type: 'routing', step: ev.step, summary: ev.summary });
        return;
      case 'notice':
        s.runEvent(ev.event);
        return;
      case 'evalPoint':
        s.post({ type: 'evalPoint', runId: ev.runId, point: ev.point });
        return;
      case 'rewound':
        if (run) postRunStarted(s, run, true);
        return;
      case 'status':
        if (run) s.post({ type: 'runStatus', status: run.status, step: run.trainer.stepsDone, ...(ev.message ? { message: ev.message } : {}) });
        return;
      default: {
        const never: never = ev;
        throw new Error(`unknown driver event ${JSON.stringify(never)}`);
      }
    }
  };
}

/** The page's checkpoint store: IndexedDB under the run's id; a missing or failed write is told, never thrown. */
function storeFor(s: WorkerState): CheckpointStore {
  return {
    persistent: persistenceAvailable(),
    async save(meta, cp, extra) {
      if (!persistenceAvailable()) {
        if (!s.toldNoStorage) {
          s.toldNoStorage = true;
          s.post({ type: 'storageError', message: 'This browser offers no storage (IndexedDB): checkpoints are kept in memory only, and a reload loses the run.' });
        }
        return false;
      }
      try {
        const bytes = encodeCheckpoint(meta, cp);
        const pointer = await storeCheckpoint(bytes.buffer, { runId: meta.runId, step: cp.stepsDone, totalSteps: meta.totalSteps, meta }, extra);
        s.post({ type: 'checkpoint', runId: meta.runId, step: pointer.step, savedAt: pointer.savedAt, bytes: pointer.bytes });
        return true;
      } catch (e) {
        // Training goes on; the user is told the checkpoint is missing and why.
        s.post({ type: 'storageError', message: e instanceof StorageFullError ? e.message : `The checkpoint could not be saved: ${errorMessage(e)}` });
        return false;
      }
    },
    // A run that stopped or finished keeps its adapter in the library: the zip Download gives,
    // stored with the run, so it can be downloaded after the browser is closed and opened again.
    async keepAdapter(run) {
      if (!persistenceAvailable()) return;
      try {
        const zip = await adapterZip(s);
        const file = await saveRunAdapter(run.id, zip.name, zip.bytes.buffer, run.trainer.stepsDone);
        s.post({ type: 'adapterKept', runId: run.id, name: file.name, step: file.step, bytes: file.bytes.byteLength });
      } catch (e) {
        s.post({ type: 'storageError', message: e instanceof StorageFullError ? e.message : `The adapter of run ${run.id} could not be kept in the library: ${errorMessage(e)}` });
      }
    },
  };
}

/** Tells the page about the run; a resumed one brings its series (the page replaces its own with it). */
export function postRunStarted(s: WorkerState, r: TrainingRun, resumed: boolean): void {
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
      seqLen: meta.train.maxLength,
      memory: s.memory(),
      resumed,
      ...(resumed ? { metrics: r.history, routing: r.lastRouting, routingSet: r.lastRoutingSet } : {}),
    },
  });
}

/** The driver of a prepared run on the session: its device, queue, store and messages. */
function driverFor(s: WorkerState, trainer: Trainer, meta: RunMeta, data: PreparedData, resumed: boolean, good: GoodState, saved?: CheckpointExtra): TrainingRun {
  const b = s.requireBackbone();
  const records = s.datasets.get('train')?.records ?? [];
  let run: TrainingRun | null = null;
  run = new TrainingRun({
    trainer,
    meta,
    tokenizer: b.tokenizer,
    routingSet: data.routingSet,
    positions: s.maxPositions,
    sink: sinkFor(s, () => run),
    store: storeFor(s),
    good,
    saved,
    resumed,
    serial: (fn) => s.serial(fn),
    probe: () => s.datasets.get('probe')?.records,
    evalTasks: meta.evalEvery ? heldOutTasks(b.tokenizer, records, meta, s.maxPositions) : [],
    deviceLost: (ctx) => s.deviceGone(ctx),
  });
  return run;
}

/** Starts a new run from the page's settings; the session owns it from here. */
/** A run made and ready, for the session to take: the notice of samples training left out, if any. */
export interface StartedRun {
  run: TrainingRun;
  leftOut: ReturnType<typeof samplesLeftOut>;
}

/** Makes a new run from the page's settings; the session takes it (Session.startRun). */
export async function startRun(s: WorkerState, spec: RunSettings, continueAdapter: boolean): Promise<StartedRun> {
  const opts = { method: spec.method, evalEvery: spec.evalEvery };
  if (s.isTraining()) throw new Error('a run is already going: pause or stop it first');
  const b = s.requireBackbone();
  const data = s.datasets.get('train');
  if (!data) throw new Error('load a training dataset first');
  if ((opts.evalEvery ?? 0) > 0 && !s.datasets.get('probe')) throw new Error('load probe questions first (the demo probe, or a file): the comparison scores the knowledge probe as it trains');
  const names = data.info.typeNames;
  // A compared method's adapter comes from the settings' LoRAMoE configuration (src/train/comparison.ts).
  const cfg = opts.method ? comparedAdapter(opts.method, runAdapterConfig(adapterSpecOf({ ...spec, mode: 'loramoe' }), spec.groups, names)) : runAdapterConfig(adapterSpecOf(spec), spec.groups, names);
  // The routing set is held out of training; its indices go into the checkpoint, so a resumed run
  // trains on the same samples. A run that scores held-out examples holds the set out whatever its
  // method, so every compared method trains on the same samples in the same order.
  const prepared = prepareNew({ tokenizer: b.tokenizer, records: data.records, typeNames: names, adapter: cfg, train: trainSettingsOf(spec), positions: s.maxPositions, scores: (opts.evalEvery ?? 0) > 0, tokenise: (n, each) => s.startup.tokenise(n, each) });
  const train = prepared.train;
  return s.serial(async () => {
    let set: AdapterSet | null = null;
    if (hasAdapter(cfg)) {
      const cur = s.model.adapter.cfg;
      const compatible = continueAdapter && s.model.weights && cur && cur.mode === cfg.mode && cur.numExperts === cfg.numExperts && cur.rank === cfg.rank && cur.targets.join() === cfg.targets.join();
      if (continueAdapter && !compatible) throw new Error('the current adapter does not match these settings (mode, experts, rank and targets must be equal) to continue from it');
      set = compatible ? await s.model.weights!.readAdapter() : initAdapter(b.config, cfg, train.seed);
    }
    s.dropRun();
    let trainer: Trainer;
    try {
      s.startup.phase('uploading');
      // A compared method runs on f32 weights whatever the setting: full fine-tuning needs them,
      // and every method must start from the same backbone bits (the same "before" scores).
      const weights = s.model.rebuildWeights(cfg, set, opts.method ? 'f32' : undefined);
      trainer = s.startup.build(s.ctx.pipelines, buildShape(cfg, train), () => sessionTrainer(s, weights, prepared.samples, names, train));
      s.startup.phase('uploading');
    } catch (e) {
      // Leave a usable model behind: the frozen backbone.
      s.model.useFrozenBackbone();
      s.postAdapter();
      throw e;
    }
    const meta = newRunMeta({
      runId: `run-${Date.now().toString(36)}`,
      backbone: s.ref!,
      dataset: { name: data.info.name, bytes: data.info.bytes, records: data.records.length },
      adapter: cfg,
      train,
      typeNames: names,
      checkpointEvery: spec.checkpointEvery,
      routingEvery: spec.routingEvery,
      faultLimit: spec.faultLimit,
      selection: prepared.selection,
      method: opts.method,
      evalEvery: opts.evalEvery,
      weights: trainer.weights.precision,
    });
    // The state at step 0 is the first good state a rollback or a lost device can go back to.
    let start;
    try {
      start = await trainer.exportCheckpoint();
    } catch (e) {
      trainer.destroy();
      throw e;
    }
    return { run: driverFor(s, trainer, meta, prepared, false, { cp: start, metrics: [], origin: 'start' }), leftOut: samplesLeftOut(prepared, 0) };
  });
}

/** Continues a run from its checkpoint in the library (the latest checkpoint without `runId`) on the loaded backbone and training dataset. */
export async function restoreRun(s: WorkerState, runId?: string): Promise<StartedRun> {
  if (s.isTraining()) throw new Error('a run is already going');
  const b = s.requireBackbone();
  const stored = await loadCheckpoint<RunMeta>(runId);
  if (!stored) throw new Error(runId ? `run ${runId} has no checkpoint in this browser` : 'there is no saved checkpoint in this browser');
  const { meta, trainer: cp } = decodeCheckpoint(new Uint8Array(stored.bytes), `the checkpoint of run ${stored.pointer.runId}`);
  if (!s.ref || !sameRef(meta.backbone, s.ref)) throw new Error(`the checkpoint was trained on ${backboneName(meta.backbone)}; load that backbone first`);
  const data = s.datasets.get('train');
  if (!data || data.info.name !== meta.dataset.name || data.info.bytes !== meta.dataset.bytes) {
    throw new Error(`the checkpoint was trained on the dataset ${meta.dataset.name} (${meta.dataset.bytes} bytes); load it first`);
  }
  if (data.info.typeNames.join('\n') !== meta.typeNames.join('\n')) throw new Error('the dataset has other data types than the checkpoint was trained with');
  const prepared = prepareResume({ tokenizer: b.tokenizer, records: data.records, meta, samplerSize: cp.sampler.n, tokenise: (n, each) => s.startup.tokenise(n, each) });
  return s.serial(async () => {
    s.dropRun();
    const set = hasAdapter(meta.adapter) ? initAdapter(b.config, meta.adapter, meta.train.seed) : null;
    s.startup.phase('uploading');
    // The run's own precision, whatever the setting now: the run continues as it started.
    const weights = s.model.rebuildWeights(meta.adapter, set, meta.weights);
    const trainer = s.startup.build(s.ctx.pipelines, buildShape(meta.adapter, meta.train), () => sessionTrainer(s, weights, prepared.samples, meta.typeNames, meta.train));
    try {
      trainer.importCheckpoint(cp);
    } catch (e) {
      trainer.destroy();
      throw e;
    }
    const extra = (stored.extra ?? {}) as Partial<CheckpointExtra>;
    const metrics = Array.isArray(extra.metrics) ? extra.metrics : [];
    const saved: CheckpointExtra = { metrics, routing: extra.routing ?? null, routingSet: extra.routingSet ?? null };
    const run = driverFor(s, trainer, meta, prepared, true, { cp, metrics: metrics.filter((m) => m.step <= cp.stepsDone), origin: 'checkpoint' }, saved);
    return { run, leftOut: samplesLeftOut(prepared, cp.stepsDone) };
  });
}
