/**
 * Starting the engine worker's training run: a new one from the page's RunSpec, or one continued
 * from its checkpoint in the library. Both encode the training data, hold the run's routing set
 * out (src/train/routing-set.ts), upload the weights, make the run's Trainer (makeTrainer, the one
 * place one is made) and hand the run to the loop (./run-loop.ts). Warming the pipelines a run will
 * use, before Train is pressed, is here too.
 */
import type { ImportedRecord } from '../data/import';
import { encodeOfficial, type EncodedSample, hasAnswer, type InstructionRecord } from '../data/template';
import { answerlessMessage } from '../data/unknown';
import { loadCheckpoint } from '../io/persist';
import { type AdapterSet, initAdapter } from '../loramoe/init';
import { type AdapterConfig, hasAdapter, isRouted } from '../method/adapter';
import { WORLD_KNOWLEDGE } from '../method/data-types';
import type { Backbone } from '../model/load';
import type { GpuWeights } from '../model/weights';
import { comparedAdapter } from '../train/comparison';
import { routingSetBatch, routingSetIndices, type RoutingSetSelection, routingSetTypes, selectRoutingSet, trainingIndices } from '../train/routing-set';
import { runAdapterConfig, type RunSpec } from '../train/run-settings';
import { Trainer, type TrainerCheckpoint, type TrainSettings } from '../train/trainer';
import { type WarmupResult, warmTrainingPipelines } from '../train/warmup';
import { decodeCheckpoint, type RunMeta } from './checkpoint';
import { DEFAULT_FAULT_LIMIT, NumericGuard } from './faults';
import { displayGroups } from './groups';
import { type BackboneRef, backboneName, type RunOptions } from './protocol';
import { loop } from './run-loop';
import { type CheckpointExtra, type GoodState, postRunStarted, type RoutingSetRun } from './run-state';
import type { LoadedDataset, Session } from './session';

/** The one place a run's Trainer is made: samples' data types indexed by the run's type names. */
export function makeTrainer(s: Session, weights: GpuWeights, samples: readonly EncodedSample[], typeNames: readonly string[], train: TrainSettings): Trainer {
  return new Trainer(s.ctx, weights, samples, (t) => typeNames.indexOf(t), typeNames, train, s.requireBackbone().tokenizer.padId);
}

/** What decides the pipelines a trainer build asks for: the adapter, the batch and the padded length. */
function buildShape(cfg: AdapterConfig, train: Pick<TrainSettings, 'batchSize' | 'maxLength'>): string {
  return JSON.stringify([cfg, train.batchSize, train.maxLength]);
}

function sameRef(a: BackboneRef, b: BackboneRef): boolean {
  return backboneName(a) === backboneName(b) && a.kind === b.kind;
}

/**
 * Splits a run's encoded dataset (samples[i] is record i) into its training samples and its routing
 * set (src/train/routing-set.ts). Without a router there is no set and nothing is held out. Training
 * keeps the records `trains` accepts: by default those with an answer token left after cutting.
 */
function splitRoutingSet(
  samples: readonly EncodedSample[],
  sel: RoutingSetSelection | null,
  typeNames: readonly string[],
  seqLen: number,
  trainBatch: number,
  trains: (i: number) => boolean = (i) => hasAnswer(samples[i]),
): { train: EncodedSample[]; set: RoutingSetRun | null } {
  if (!sel) return { train: samples.filter((_, i) => trains(i)), set: null };
  const types = samples.map((s) => s.type);
  const setSamples = routingSetIndices(sel).map((i) => samples[i]);
  return {
    train: trainingIndices(samples.length, sel, trains).map((i) => samples[i]),
    set: setSamples.length > 0 ? { samples: setSamples, types: routingSetTypes(sel, types, typeNames), batch: routingSetBatch(setSamples.length, seqLen, trainBatch) } : null,
  };
}

/**
 * Every record encoded (samples[i] is record i); the padded length is the longest sample training
 * keeps, and `answerless` counts the samples whose answer the maximum length cuts away.
 */
function encode(s: Session, records: readonly ImportedRecord[], maxLength: number): { samples: EncodedSample[]; seqLen: number; answerless: number } {
  const tok = s.requireBackbone().tokenizer;
  const samples = s.startup.tokenise(records.length, (i) => encodeOfficial(tok, records[i], maxLength));
  let seqLen = 2;
  let answerless = 0;
  for (const x of samples) {
    if (hasAnswer(x)) seqLen = Math.max(seqLen, x.ids.length);
    else answerless++;
  }
  return { samples, seqLen, answerless };
}

/** Tells the run's page how many samples training left out, and why. */
function reportAnswerless(s: Session, answerless: number, records: number, maxLength: number): void {
  const msg = answerlessMessage(answerless, records, maxLength);
  if (msg) s.runEvent({ kind: 'samplesLeftOut', severity: 'warning', step: s.run?.trainer.stepsDone ?? 0, message: msg });
}

/**
 * Compiles the pipelines a run with these settings will use (src/train/warmup.ts), once a backbone
 * and training data are loaded and nothing is training; the page asks after each of those loads.
 * Null when there is nothing to warm yet, or the backbone is too large to warm.
 */
export async function warmUp(s: Session, spec: RunSpec): Promise<WarmupResult | null> {
  const data = s.datasets.get('train');
  if (!s.backbone || !data || s.isTraining() || s.run?.status === 'paused') return null;
  const b = s.backbone;
  const names = data.info.typeNames;
  const cfg = runAdapterConfig(spec.adapter, spec.groups, names);
  const { samples, seqLen } = encode(s, data.records, Math.min(spec.train.maxLength, s.maxPositions));
  const settings = { ...spec.train, maxLength: seqLen };
  const train = samples.filter(hasAnswer);
  if (train.length === 0) return null;
  return s.serial(async () => s.startup.build(s.ctx.pipelines, buildShape(cfg, settings), () => warmTrainingPipelines(s.ctx, b, cfg, settings, train, names, s.maxPositions, s.precisionFor(cfg))));
}

export async function startRun(s: Session, spec: RunSpec, continueAdapter: boolean, opts: RunOptions = {}): Promise<void> {
  if (s.isTraining()) throw new Error('a run is already going: pause or stop it first');
  const b = s.requireBackbone();
  const data = s.datasets.get('train');
  if (!data) throw new Error('load a training dataset first');
  if ((opts.evalEvery ?? 0) > 0 && !s.datasets.get('probe')) throw new Error('load probe questions first (the demo probe, or a file): the comparison scores the knowledge probe as it trains');
  const names = data.info.typeNames;
  // A compared method's adapter comes from the settings' LoRAMoE configuration (src/train/comparison.ts).
  const cfg = opts.method ? comparedAdapter(opts.method, runAdapterConfig({ ...spec.adapter, mode: 'loramoe' }, spec.groups, names)) : runAdapterConfig(spec.adapter, spec.groups, names);
  s.startup.begin();
  try {
    await startRunOf(s, spec, continueAdapter, b, data, names, cfg, opts);
  } finally {
    s.startup.end();
  }
  void loop(s);
}

async function startRunOf(s: Session, spec: RunSpec, continueAdapter: boolean, b: Backbone, data: LoadedDataset, names: readonly string[], cfg: AdapterConfig, opts: RunOptions): Promise<void> {
  const maxLength = Math.min(spec.train.maxLength, s.maxPositions);
  const { samples: encoded, seqLen, answerless } = encode(s, data.records, maxLength);
  const train: TrainSettings = { ...spec.train, maxLength: seqLen };
  const runId = `run-${Date.now().toString(36)}`;
  // The routing set is held out of training (src/train/routing-set.ts); its indices go into the
  // checkpoint, so a resumed run trains on the same samples. Samples without an answer token are
  // left out of training and never drawn.
  // A run that scores held-out examples holds the set out whatever its method, so every compared
  // method trains on the same samples in the same order.
  const selection = isRouted(cfg) || (opts.evalEvery ?? 0) > 0 ? selectRoutingSet(encoded.map((x) => (hasAnswer(x) ? x.type : null)), names, train.seed) : null;
  const { train: samples, set: routingSet } = splitRoutingSet(encoded, selection, names, seqLen, train.batchSize);
  if (samples.length === 0 && answerless === encoded.length) throw new Error(`no sample keeps an answer token: ${answerlessMessage(answerless, encoded.length, maxLength)}`);
  if (samples.length === 0) throw new Error('no training samples are left once the routing set is held out');
  await s.serial(async () => {
    let set: AdapterSet | null = null;
    if (hasAdapter(cfg)) {
      const cur = s.adapter.cfg;
      const compatible = continueAdapter && s.weights && cur && cur.mode === cfg.mode && cur.numExperts === cfg.numExperts && cur.rank === cfg.rank && cur.targets.join() === cfg.targets.join();
      if (continueAdapter && !compatible) throw new Error('the current adapter does not match these settings (mode, experts, rank and targets must be equal) to continue from it');
      set = compatible ? await s.weights!.readAdapter() : initAdapter(b.config, cfg, train.seed);
    }
    s.run?.trainer.destroy();
    s.run = null;
    let trainer: Trainer;
    try {
      s.startup.phase('uploading');
      // A compared method runs on f32 weights whatever the setting: full fine-tuning needs them,
      // and every method must start from the same backbone bits (the same "before" scores).
      const weights = s.rebuildWeights(cfg, set, opts.method ? 'f32' : undefined);
      trainer = s.startup.build(s.ctx.pipelines, buildShape(cfg, train), () => makeTrainer(s, weights, samples, names, train));
      s.startup.phase('uploading');
    } catch (e) {
      // Leave a usable model behind: the frozen backbone.
      s.useFrozenBackbone();
      s.postAdapter();
      throw e;
    }
    const meta: RunMeta = {
      runId,
      backbone: s.ref!,
      dataset: { name: data.info.name, bytes: data.info.bytes, records: data.records.length },
      adapter: cfg,
      train,
      typeNames: [...names],
      totalSteps: train.steps,
      checkpointEvery: spec.run.checkpointEvery,
      routingEvery: spec.run.routingEvery,
      faultLimit: spec.run.faultLimit,
      ...(selection ? { routingSet: selection } : {}),
      ...(opts.method ? { method: opts.method } : {}),
      ...((opts.evalEvery ?? 0) > 0 ? { evalEvery: opts.evalEvery } : {}),
      weights: trainer.weights.precision,
      savedAt: 0,
    };
    // The state at step 0 is the first good state a rollback or a lost device can go back to.
    let start: TrainerCheckpoint;
    try {
      start = await trainer.exportCheckpoint();
    } catch (e) {
      trainer.destroy();
      throw e;
    }
    beginRun(s, trainer, meta, false, seqLen, routingSet, undefined, { cp: start, metrics: [], origin: 'start' });
    reportAnswerless(s, answerless, encoded.length, maxLength);
    s.startup.phase('firstStep');
  });
}

/** Makes the trainer's run the session's, tells the page, and makes its adapter the one in use. */
function beginRun(s: Session, trainer: Trainer, meta: RunMeta, resumed: boolean, seqLen: number, routingSet: RoutingSetRun | null, saved: CheckpointExtra | undefined, good: GoodState): void {
  const groups = displayGroups(meta.adapter, meta.typeNames);
  s.run = {
    id: meta.runId,
    status: 'running',
    trainer,
    totalSteps: meta.totalSteps,
    meta,
    groups,
    checkpointEvery: meta.checkpointEvery,
    routingEvery: Math.max(1, meta.routingEvery),
    pending: [],
    lastFlush: performance.now(),
    looping: false,
    lastRouting: saved?.routing ?? null,
    windowFrom: trainer.stepsDone + 1,
    routingSet,
    lastRoutingSet: saved?.routingSet ?? null,
    history: saved ? saved.metrics.filter((m) => m.step <= trainer.stepsDone) : [],
    seqLen,
    guard: new NumericGuard(meta.faultLimit ?? DEFAULT_FAULT_LIMIT),
    lastGood: good,
    rolledBackTo: null,
    checkpointDue: false,
    lastCheckpointAt: performance.now(),
    checkpointMs: 0,
    savedStep: resumed ? trainer.stepsDone : -1,
    evalEvery: meta.evalEvery ?? 0,
    evalTasks: meta.evalEvery ? heldOutTasks(s, meta) : [],
    lastScored: resumed ? trainer.stepsDone : -1,
  };
  s.imported = null;
  s.adapter = { origin: 'trained', cfg: meta.adapter, label: `run ${meta.runId}`, typeNames: [...meta.typeNames], groups };
  postRunStarted(s, s.run, resumed);
  s.postAdapter();
  s.postStatus();
}

/**
 * The routing set's held-out task examples of a run that scores them (world knowledge is the
 * probe's part), as records; examples longer than the backbone holds are left out.
 */
function heldOutTasks(s: Session, meta: RunMeta): InstructionRecord[] {
  const records = s.datasets.get('train')?.records ?? [];
  const tok = s.requireBackbone().tokenizer;
  return (meta.routingSet?.heldOut ?? [])
    .map((i) => records[i])
    .filter((r): r is ImportedRecord => r !== undefined && r.type !== WORLD_KNOWLEDGE && !encodeOfficial(tok, r, s.maxPositions).truncated);
}

/** Continues a run from its checkpoint in the library (the latest checkpoint without `runId`) on the loaded backbone and training dataset. */
export async function restoreRun(s: Session, runId?: string): Promise<void> {
  s.startup.begin();
  try {
    await restoreRunOf(s, runId);
  } finally {
    s.startup.end();
  }
  void loop(s);
}

async function restoreRunOf(s: Session, runId?: string): Promise<void> {
  if (s.isTraining()) throw new Error('a run is already going');
  const b = s.requireBackbone();
  const stored = await loadCheckpoint<RunMeta>(runId);
  if (!stored) throw new Error(runId ? `run ${runId} has no checkpoint in this browser` : 'there is no saved checkpoint in this browser');
  const { meta, trainer: cp } = decodeCheckpoint(new Uint8Array(stored.bytes));
  if (!s.ref || !sameRef(meta.backbone, s.ref)) throw new Error(`the checkpoint was trained on ${backboneName(meta.backbone)}; load that backbone first`);
  const data = s.datasets.get('train');
  if (!data || data.info.name !== meta.dataset.name || data.info.bytes !== meta.dataset.bytes) {
    throw new Error(`the checkpoint was trained on the dataset ${meta.dataset.name} (${meta.dataset.bytes} bytes); load it first`);
  }
  if (data.info.typeNames.join('\n') !== meta.typeNames.join('\n')) throw new Error('the dataset has other data types than the checkpoint was trained with');
  const { samples: encoded, answerless } = encode(s, data.records, meta.train.maxLength);
  // The run's routing set: held out as recorded; a checkpoint from before routing sets held nothing
  // out, and its run is measured on a seeded sample of its training data.
  const selection = isRouted(meta.adapter) ? (meta.routingSet ?? selectRoutingSet(encoded.map((x) => x.type), meta.typeNames, meta.train.seed, { holdOut: false })) : null;
  if (selection && routingSetIndices(selection).some((i) => !(Number.isInteger(i) && i >= 0 && i < encoded.length))) throw new Error('the checkpoint\'s routing set does not fit the loaded dataset');
  let split = splitRoutingSet(encoded, selection, meta.typeNames, meta.train.maxLength, meta.train.batchSize);
  // A checkpoint from before samples without an answer token were left out trained on them: its run keeps them.
  let leftOut = answerless;
  if (answerless > 0 && split.train.length !== cp.sampler.n) {
    const all = splitRoutingSet(encoded, selection, meta.typeNames, meta.train.maxLength, meta.train.batchSize, () => true);
    if (all.train.length === cp.sampler.n) [split, leftOut] = [all, 0];
  }
  const { train: samples, set: routingSet } = split;
  await s.serial(async () => {
    s.run?.trainer.destroy();
    s.run = null;
    const set = hasAdapter(meta.adapter) ? initAdapter(b.config, meta.adapter, meta.train.seed) : null;
    s.startup.phase('uploading');
    // The run's own precision, whatever the setting now: the run continues as it started.
    const weights = s.rebuildWeights(meta.adapter, set, meta.weights ?? 'f32');
    const trainer = s.startup.build(s.ctx.pipelines, buildShape(meta.adapter, meta.train), () => makeTrainer(s, weights, samples, meta.typeNames, meta.train));
    try {
      trainer.importCheckpoint(cp);
    } catch (e) {
      trainer.destroy();
      throw e;
    }
    const extra = (stored.extra ?? {}) as Partial<CheckpointExtra>;
    const metrics = Array.isArray(extra.metrics) ? extra.metrics : [];
    beginRun(s, trainer, meta, true, meta.train.maxLength, routingSet, { metrics, routing: extra.routing ?? null, routingSet: extra.routingSet ?? null }, { cp, metrics: metrics.filter((m) => m.step <= cp.stepsDone), origin: 'checkpoint' });
    reportAnswerless(s, leftOut, encoded.length, meta.train.maxLength);
    s.startup.phase('firstStep');
  });
}
