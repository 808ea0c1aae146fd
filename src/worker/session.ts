/**
 * Everything the engine worker holds: the GPU device, the loaded backbone, the datasets, the GPU
 * weights (backbone + adapter), the trainer of the current run and the chat generator. Methods
 * answer the commands of ./protocol.ts; results go back through `post`.
 *
 * GPU work is serialised: each training step, probe, generation and export runs as one task on a
 * promise chain (`serial`), so a probe or a chat asked for during training runs between two steps
 * and never interleaves with one. Between steps the loop yields to the event loop, so pause, stop
 * and other commands are handled within one step.
 *
 * Reliability (see ./faults.ts and the README): every step's loss and gradient norm are checked; a
 * faulty step is skipped and reported, `faultLimit` of them in a row roll the run back to its last
 * good state. The run keeps that state in memory (a checkpoint, or the state at its start or last
 * pause), besides the checkpoint in IndexedDB, so a lost GPU device (replaceDevice) costs at most the
 * steps since it: a new device gets the backbone again from the host copy and the run continues.
 */
import { zipSync } from 'fflate';
import { DatasetImportError, formatLocation, type ImportedRecord, parseDataset, typeIndexMapping } from '../data/import';
import { summarizeDataset } from '../data/summary';
import { adapterTypeNames, WORLD_KNOWLEDGE } from '../method/data-types';
import { encodeOfficial, encodePrompt, type EncodedSample, hasAnswer, type InstructionRecord } from '../data/template';
import { comparedAdapter, heldOutScore } from '../train/comparison';
import { answerlessMessage } from '../data/unknown';
import type { GpuContext } from '../engine/gpu';
import { ATTENTION_MAX_KEYS } from '../engine/kernels/attention';
import { BlobSource, entriesFromZip, isZip, normalizeEntries } from '../io/browser-files';
import { type FileSource, RecordingSource } from '../io/files';
import { StaticUrlSource } from '../io/url-files';
import { loadCheckpoint, persistenceAvailable, saveCheckpoint, saveRunAdapter, setCheckpointWriteHook, StorageFullError } from '../io/persist';
import { writeSafetensors } from '../io/safetensors';
import { checkAdapterConfig, defaultAdapterConfig } from '../loramoe/config';
import { type AdapterConfig, hasAdapter, isRouted } from '../method/adapter';
import { adapterFiles, loadAdapter } from '../loramoe/files';
import { type AdapterSet, initAdapter } from '../loramoe/init';
import { expectedTensorNames, parameterCount } from '../model/config';
import { type ChatToken, Generator } from '../model/generate';
import { type Backbone, loadBackbone } from '../model/load';
import { GpuWeights } from '../model/weights';
import { exactMatchProbe } from '../train/probe';
import { evaluate } from '../train/evaluate';
import type { RoutingSummary } from '../train/routing';
import { routingSetBatch, routingSetIndices, type RoutingSetSelection, type RoutingSetType, routingSetTypes, selectRoutingSet, trainingIndices } from '../train/routing-set';
import { officialRunZip } from '../train/official-export';
import type { RunSpec } from '../train/run-settings';
import { type WarmupResult, warmTrainingPipelines } from '../train/warmup';
import { type StepMetrics, Trainer, type TrainerCheckpoint, type TrainSettings } from '../train/trainer';
import { decodeCheckpoint, encodeCheckpoint, type RunMeta } from './checkpoint';
import { DEFAULT_FAULT_LIMIT, describeFault, describeRollback, NumericGuard, type StepFault } from './faults';
import { displayGroups, resolveGroups, tokenGroupShares, withDisplayGroups } from './groups';
import { StartupReporter } from './startup';
import {
  type AdapterState,
  noAdapter,
  type BackboneRef,
  type BackboneSource,
  type DatasetInfo,
  type DatasetRole,
  type DebugAction,
  type DisplayGroup,
  type FileEntry,
  MAX_ERRORS_SENT,
  type MeasuredMemory,
  PREVIEW_RECORDS,
  type RunEvent,
  type RunOptions,
  type RunStatus,
  type SamplingSettings,
  type WorkerEvent,
} from './protocol';

export type Post = (ev: WorkerEvent, transfer?: Transferable[]) => void;

export const DEMO_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

interface LoadedDataset {
  info: DatasetInfo;
  records: ImportedRecord[];
}

interface Run {
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
interface GoodState {
  cp: TrainerCheckpoint;
  /** checkpoint: a periodic checkpoint (or one restored from storage); start: the run's first state; rest: kept when the run paused, stopped or ended. */
  origin: 'checkpoint' | 'start' | 'rest';
  /** The metric series up to cp.stepsDone. */
  metrics: StepMetrics[];
}

/** What a checkpoint record carries besides the checkpoint itself. */
interface CheckpointExtra {
  metrics: StepMetrics[];
  routing: RoutingSummary | null;
  /** The last routing-set summary (absent in checkpoints of older versions). */
  routingSet?: RoutingSummary | null;
}

/** A run's routing set, encoded. */
interface RoutingSetRun {
  samples: EncodedSample[];
  types: RoutingSetType[];
  /** Samples per evaluation batch. */
  batch: number;
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

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function backboneName(ref: BackboneRef): string {
  switch (ref.kind) {
    case 'demo':
      return 'loramoe-playground/demo';
    case 'hub':
      return ref.repo;
    case 'local':
      return ref.name;
  }
}

function sameRef(a: BackboneRef, b: BackboneRef): boolean {
  return backboneName(a) === backboneName(b) && a.kind === b.kind;
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

/** How messages name a good state: "the checkpoint at step 10". */
function goodStateName(g: GoodState): string {
  const step = g.cp.stepsDone;
  if (g.origin === 'checkpoint') return `the checkpoint at step ${step}`;
  if (g.origin === 'start') return `the checkpoint at step ${step} (the start of the run)`;
  return `the checkpoint at step ${step} (kept in memory when the run last paused or stopped)`;
}

const sleep0 = () => new Promise<void>((r) => setTimeout(r, 0));

/** What decides the pipelines a trainer build asks for: the adapter, the batch and the padded length. */
function buildShape(cfg: AdapterConfig, train: Pick<TrainSettings, 'batchSize' | 'maxLength'>): string {
  return JSON.stringify([cfg, train.batchSize, train.maxLength]);
}

/**
 * Seconds of training a reload may cost at most: besides every `checkpointEvery` steps, a checkpoint
 * is written once this much time has passed since the last one (or ten times as long as writing the
 * last one took, so checkpoints never take more than a tenth of the run's time).
 */
export const CHECKPOINT_SECONDS = 5;

/** Adapter zips carry this date on every entry, so the same weights always give the same bytes. */
const ZIP_DATE = new Date(2000, 0, 1);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface SessionOptions {
  /** Honour `debug` commands (fault injection for the reliability tests). */
  testHooks?: boolean;
}

export class Session {
  private backbone: Backbone | null = null;
  private ref: BackboneRef | null = null;
  private rawFiles = new Map<string, Uint8Array>();
  private maxPositions = 0;
  private weights: GpuWeights | null = null;
  private adapter: AdapterState = noAdapter();
  private readonly datasets = new Map<DatasetRole, LoadedDataset>();
  private run: Run | null = null;
  private generator: Generator | null = null;
  private stopGeneration = false;
  private chain: Promise<unknown> = Promise.resolve();
  /** The host copy of an imported adapter (rebuilt onto a new device after a device loss). */
  private imported: { cfg: AdapterConfig; set: AdapterSet | null } | null = null;
  private toldNoStorage = false;
  /** Set while a lost device is being replaced. */
  private recovering = false;
  /** What a run's start is doing, for the run bar. */
  private readonly startup = new StartupReporter((progress) => this.post({ type: 'startup', progress }));

  constructor(
    private ctx: GpuContext,
    private readonly post: Post,
    private readonly options: SessionOptions = {},
  ) {}

  /** The GPU context in use (a new one after replaceDevice). */
  get gpu(): GpuContext {
    return this.ctx;
  }

  /** Runs GPU work after every task queued before it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    // The caller gets p's rejection; the queue only needs to go on after it.
    this.chain = p.catch(() => undefined);
    return p;
  }

  private memory(): MeasuredMemory {
    const t = this.run?.trainer;
    return { weights: this.weights?.bytes ?? 0, graph: t ? t.graph.bytes : 0, optimizer: t ? t.optimizerBytes : 0 };
  }

  private isTraining(): boolean {
    const s = this.run?.status;
    return s === 'running' || s === 'pausing' || s === 'stopping' || s === 'starting';
  }

  private requireBackbone(): Backbone {
    if (!this.backbone) throw new Error('load a backbone first');
    return this.backbone;
  }

  // ---- backbone ----------------------------------------------------------------------------------

  async loadBackbone(source: BackboneSource): Promise<void> {
    if (this.isTraining() || this.run?.status === 'paused') throw new Error('stop the training run before loading another backbone');
    const label = backboneName(source.ref);
    const inner: FileSource = source.kind === 'url' ? new StaticUrlSource(label, source.baseUrl, DEMO_FILES) : new BlobSource(label, normalizeEntries(source.files));
    const src = new RecordingSource(inner);
    let files = 0;
    const backbone = await loadBackbone(src, {
      onProgress: (loaded, _total, file) => this.post({ type: 'backboneProgress', file, loadedBytes: loaded, files: ++files }),
    });
    await this.serial(async () => {
      this.dropModelState();
      this.backbone = backbone;
      this.ref = source.ref;
      this.rawFiles = src.kept;
      this.maxPositions = Math.min(backbone.config.maxPositionEmbeddings, ATTENTION_MAX_KEYS);
      // The frozen backbone on the GPU right away: chat and the "before" probe need nothing else.
      this.weights = new GpuWeights(this.ctx, backbone.config, backbone.weights, defaultAdapterConfig('none'), null, this.maxPositions);
      this.adapter = noAdapter();
    });
    this.post({
      type: 'backboneLoaded',
      info: {
        ref: source.ref,
        name: label,
        config: backbone.config,
        parameters: parameterCount(backbone.config),
        vocabulary: backbone.tokenizer.size,
        warnings: backbone.warnings,
        maxPositions: this.maxPositions,
      },
      memory: this.memory(),
    });
    this.postAdapter();
  }

  private dropModelState(): void {
    this.imported = null;
    this.generator?.destroy();
    this.generator = null;
    this.run?.trainer.destroy();
    this.run = null;
    this.weights?.destroy();
    this.weights = null;
  }

  // ---- datasets ------------------------------------------------------------------------------------

  async loadDataset(role: DatasetRole, name: string, bytes: ArrayBuffer): Promise<void> {
    let res;
    try {
      res = await parseDataset(new Uint8Array(bytes), name);
    } catch (e) {
      throw new Error(e instanceof DatasetImportError ? e.message : `${name}: ${message(e)}`, { cause: e });
    }
    if (res.records.length === 0) throw new Error(`${name}: no usable records (${res.errors.length} problems; the first: ${res.errors[0] ? `${formatLocation(res.errors[0].location)}: ${res.errors[0].message}` : 'none'})`);
    const info: DatasetInfo = {
      role,
      name,
      bytes: bytes.byteLength,
      format: res.format,
      counts: res.counts,
      typeNames: typeIndexMapping(res.records).names,
      preview: res.records.slice(0, PREVIEW_RECORDS).map((r) => ({ location: formatLocation(r.location), instruction: r.instruction, input: r.input, output: r.output, type: r.type })),
      errors: res.errors.slice(0, MAX_ERRORS_SENT).map((e) => ({ location: e.location, where: formatLocation(e.location), field: e.field, message: e.message })),
      errorCount: res.errors.length,
      notes: res.notes,
    };
    this.datasets.set(role, { info, records: res.records });
    this.post({ type: 'dataset', info });
  }

  summarize(maxLength: number): void {
    const d = this.datasets.get('train');
    if (!d || !this.backbone) return;
    const len = Math.max(1, Math.min(maxLength, this.maxPositions));
    this.post({ type: 'datasetSummary', summary: summarizeDataset(d.records, this.backbone.tokenizer, len) });
  }

  // ---- training ------------------------------------------------------------------------------------

  /** The run's adapter: the specification's, with the expert groups resolved against the data's types. */
  private adapterConfigFrom(a: RunSpec['adapter'], groupsText: string, names: readonly string[]): AdapterConfig {
    if (a.mode === 'full') return defaultAdapterConfig('full');
    const N = a.mode === 'loramoe' ? a.numExperts : 1;
    let groups: number[][] = [[0]];
    if (a.mode === 'loramoe') {
      const r = resolveGroups(names, N, groupsText);
      if (r.error !== null) throw new Error(r.error);
      groups = r.groups;
    }
    const cfg: AdapterConfig = { ...a, numExperts: N, targets: [...a.targets], groups };
    checkAdapterConfig(cfg);
    return cfg;
  }

  /**
   * Every record encoded (samples[i] is record i); the padded length is the longest sample training
   * keeps, and `answerless` counts the samples whose answer the maximum length cuts away.
   */
  private encode(records: readonly ImportedRecord[], maxLength: number): { samples: EncodedSample[]; seqLen: number; answerless: number } {
    const tok = this.requireBackbone().tokenizer;
    const samples = this.startup.tokenise(records.length, (i) => encodeOfficial(tok, records[i], maxLength));
    let seqLen = 2;
    let answerless = 0;
    for (const s of samples) {
      if (hasAnswer(s)) seqLen = Math.max(seqLen, s.ids.length);
      else answerless++;
    }
    return { samples, seqLen, answerless };
  }

  /** Tells the run's page how many samples training left out, and why. */
  private reportAnswerless(answerless: number, records: number, maxLength: number): void {
    const msg = answerlessMessage(answerless, records, maxLength);
    if (msg) this.runEvent({ kind: 'samplesLeftOut', severity: 'warning', step: this.run?.trainer.stepsDone ?? 0, message: msg });
  }

  /** The one place a run's Trainer is made: samples' data types indexed by the run's type names. */
  private makeTrainer(weights: GpuWeights, samples: readonly EncodedSample[], typeNames: readonly string[], train: TrainSettings): Trainer {
    return new Trainer(this.ctx, weights, samples, (t) => typeNames.indexOf(t), typeNames, train, this.requireBackbone().tokenizer.padId);
  }

  private rebuildWeights(cfg: AdapterConfig, set: AdapterSet | null): GpuWeights {
    const b = this.requireBackbone();
    this.generator?.destroy();
    this.generator = null;
    this.weights?.destroy();
    this.weights = null;
    this.weights = new GpuWeights(this.ctx, b.config, b.weights, cfg, set, this.maxPositions);
    return this.weights;
  }

  /**
   * Compiles the pipelines a run with these settings will use (src/train/warmup.ts), once a backbone
   * and training data are loaded and nothing is training; the page asks after each of those loads.
   * Null when there is nothing to warm yet, or the backbone is too large to warm.
   */
  async warmUp(spec: RunSpec): Promise<WarmupResult | null> {
    const data = this.datasets.get('train');
    if (!this.backbone || !data || this.isTraining() || this.run?.status === 'paused') return null;
    const b = this.backbone;
    const names = data.info.typeNames;
    const cfg = this.adapterConfigFrom(spec.adapter, spec.groups, names);
    const { samples, seqLen } = this.encode(data.records, Math.min(spec.train.maxLength, this.maxPositions));
    const settings = { ...spec.train, maxLength: seqLen };
    const train = samples.filter(hasAnswer);
    if (train.length === 0) return null;
    return this.serial(async () => this.startup.build(this.ctx.pipelines, buildShape(cfg, settings), () => warmTrainingPipelines(this.ctx, b, cfg, settings, train, names, this.maxPositions)));
  }

  async startRun(spec: RunSpec, continueAdapter: boolean, opts: RunOptions = {}): Promise<void> {
    if (this.isTraining()) throw new Error('a run is already going: pause or stop it first');
    const b = this.requireBackbone();
    const data = this.datasets.get('train');
    if (!data) throw new Error('load a training dataset first');
    if ((opts.evalEvery ?? 0) > 0 && !this.datasets.get('probe')) throw new Error('load probe questions first (the demo probe, or a file): the comparison scores the knowledge probe as it trains');
    const names = data.info.typeNames;
    // A compared method's adapter comes from the settings' LoRAMoE configuration (src/train/comparison.ts).
    const cfg = opts.method ? comparedAdapter(opts.method, this.adapterConfigFrom({ ...spec.adapter, mode: 'loramoe' }, spec.groups, names)) : this.adapterConfigFrom(spec.adapter, spec.groups, names);
    this.startup.begin();
    try {
      await this.startRunOf(spec, continueAdapter, b, data, names, cfg, opts);
    } finally {
      this.startup.end();
    }
    void this.loop();
  }

  private async startRunOf(spec: RunSpec, continueAdapter: boolean, b: Backbone, data: LoadedDataset, names: readonly string[], cfg: AdapterConfig, opts: RunOptions): Promise<void> {
    const maxLength = Math.min(spec.train.maxLength, this.maxPositions);
    const { samples: encoded, seqLen, answerless } = this.encode(data.records, maxLength);
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
    await this.serial(async () => {
      let set: AdapterSet | null = null;
      if (hasAdapter(cfg)) {
        const cur = this.adapter.cfg;
        const compatible = continueAdapter && this.weights && cur && cur.mode === cfg.mode && cur.numExperts === cfg.numExperts && cur.rank === cfg.rank && cur.targets.join() === cfg.targets.join();
        if (continueAdapter && !compatible) throw new Error('the current adapter does not match these settings (mode, experts, rank and targets must be equal) to continue from it');
        set = compatible ? await this.weights!.readAdapter() : initAdapter(b.config, cfg, train.seed);
      }
      this.run?.trainer.destroy();
      this.run = null;
      let trainer: Trainer;
      try {
        this.startup.phase('uploading');
        const weights = this.rebuildWeights(cfg, set);
        trainer = this.startup.build(this.ctx.pipelines, buildShape(cfg, train), () => this.makeTrainer(weights, samples, names, train));
        this.startup.phase('uploading');
      } catch (e) {
        // Leave a usable model behind: the frozen backbone.
        this.rebuildWeights(defaultAdapterConfig('none'), null);
        this.adapter = noAdapter();
        this.postAdapter();
        throw e;
      }
      const meta: RunMeta = {
        runId,
        backbone: this.ref!,
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
      this.beginRun(trainer, meta, false, seqLen, routingSet, undefined, { cp: start, metrics: [], origin: 'start' });
      this.reportAnswerless(answerless, encoded.length, maxLength);
      this.startup.phase('firstStep');
    });
  }

  private beginRun(trainer: Trainer, meta: RunMeta, resumed: boolean, seqLen: number, routingSet: RoutingSetRun | null, saved: CheckpointExtra | undefined, good: GoodState): void {
    const groups = displayGroups(meta.adapter, meta.typeNames);
    this.run = {
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
      evalTasks: meta.evalEvery ? this.heldOutTasks(meta) : [],
      lastScored: resumed ? trainer.stepsDone : -1,
    };
    this.imported = null;
    this.adapter = { origin: 'trained', cfg: meta.adapter, label: `run ${meta.runId}`, typeNames: [...meta.typeNames], groups };
    this.postRunStarted(this.run, resumed);
    this.postAdapter();
    this.postStatus();
  }

  /** Tells the page about the run; a resumed one brings its series (the page replaces its own with it). */
  private postRunStarted(r: Run, resumed: boolean): void {
    const meta = r.meta;
    this.post({
      type: 'runStarted',
      run: {
        runId: meta.runId,
        totalSteps: meta.totalSteps,
        startStep: r.trainer.stepsDone,
        typeNames: [...meta.typeNames],
        groups: r.groups,
        adapter: meta.adapter,
        seqLen: r.seqLen,
        memory: this.memory(),
        resumed,
        ...(resumed ? { metrics: r.history, routing: r.lastRouting, routingSet: r.lastRoutingSet } : {}),
      },
    });
  }

  private runEvent(ev: Omit<RunEvent, 'at'>): void {
    this.post({ type: 'runEvent', event: { ...ev, at: Date.now() } });
  }

  private postStatus(msg?: string): void {
    const r = this.run;
    this.post({ type: 'runStatus', status: r?.status ?? 'idle', step: r?.trainer.stepsDone ?? 0, ...(msg ? { message: msg } : {}) });
  }

  private postAdapter(): void {
    this.post({ type: 'adapter', state: this.adapter, memory: this.memory() });
  }

  private flushMetrics(force: boolean): void {
    const r = this.run;
    if (!r || r.pending.length === 0) return;
    const now = performance.now();
    if (!force && now - r.lastFlush < 250) return;
    this.post({ type: 'metrics', points: r.pending });
    r.pending = [];
    r.lastFlush = now;
  }

  private postRouting(): void {
    const r = this.run;
    const stats = r?.trainer.routing;
    if (!r || !stats) return;
    const fresh: RoutingSummary = { ...withDisplayGroups(stats.summary(), r.groups), source: { kind: 'window', fromStep: r.windowFrom, toStep: r.trainer.stepsDone } };
    stats.reset();
    r.windowFrom = r.trainer.stepsDone + 1;
    // A small batch may hold no sample of some type in a window: that type keeps its last values.
    const prev = r.lastRouting;
    const keep = (t: number) => prev !== null && !(fresh.tokens[t] > 0) && prev.tokens[t] > 0;
    const summary: RoutingSummary = prev
      ? {
          ...fresh,
          tokens: fresh.tokens.map((n, t) => (keep(t) ? prev.tokens[t] : n)),
          mean: fresh.mean.map((m, t) => (keep(t) ? prev.mean[t] : m)),
          groupMean: fresh.groupMean.map((g, t) => (keep(t) ? prev.groupMean[t] : g)),
        }
      : fresh;
    r.lastRouting = summary;
    this.post({ type: 'routing', step: r.trainer.stepsDone, summary });
  }

  /**
   * The routing set's held-out task examples of a run that scores them (world knowledge is the
   * probe's part), as records; examples longer than the backbone holds are left out.
   */
  private heldOutTasks(meta: RunMeta): InstructionRecord[] {
    const records = this.datasets.get('train')?.records ?? [];
    const tok = this.requireBackbone().tokenizer;
    return (meta.routingSet?.heldOut ?? [])
      .map((i) => records[i])
      .filter((r): r is ImportedRecord => r !== undefined && r.type !== WORLD_KNOWLEDGE && !encodeOfficial(tok, r, this.maxPositions).truncated);
  }

  /** Scores the knowledge probe and the held-out task examples with the current weights (a run with evalEvery). */
  private async scoreHeldOut(r: Run): Promise<void> {
    const probe = this.datasets.get('probe');
    if (!probe || this.run !== r) return;
    const step = r.trainer.stepsDone;
    const tok = this.requireBackbone().tokenizer;
    const score = await this.serial(() => heldOutScore(this.ctx, r.trainer.weights, tok, probe.records, r.evalTasks, { maxLength: this.maxPositions }));
    if (this.run !== r) return;
    r.lastScored = step;
    const t = r.meta.train;
    this.post({ type: 'evalPoint', runId: r.id, point: { step, samples: step * t.batchSize * t.gradAccum, ...score } });
  }

  /**
   * Measures routing on the run's routing set with the current weights, dropout off (evaluate(),
   * in batches of at most ROUTING_SET_BATCH_ROWS token rows), and posts it as the primary summary.
   */
  private async measureRoutingSet(r: Run): Promise<void> {
    const set = r.routingSet;
    if (!set || this.run !== r || !isRouted(r.meta.adapter)) return;
    const step = r.trainer.stepsDone;
    const padId = this.requireBackbone().tokenizer.padId;
    const res = await this.serial(() => evaluate(this.ctx, r.trainer.weights, set.samples, r.trainer.typeIndex, r.meta.typeNames, { batchSize: set.batch, padId }));
    if (this.run !== r || !res.routing) return;
    const summary: RoutingSummary = { ...withDisplayGroups(res.routing, r.groups), source: { kind: 'routingSet', step, types: set.types } };
    r.lastRoutingSet = summary;
    this.post({ type: 'routing', step, summary });
  }

  /**
   * The training loop: one serialised step at a time until done, paused, stopped or failed. Each
   * step's metrics go through the run's NumericGuard: a faulty step is reported (its update was
   * skipped) and never checkpointed; `faultLimit` in a row roll the run back (see ./faults.ts).
   */
  private async loop(): Promise<void> {
    const r = this.run;
    if (!r || r.looping) return;
    r.looping = true;
    const ctx = this.ctx;
    try {
      // A run that scores held-out examples scores the model before its first step (the curves' origin).
      if (r.evalEvery > 0 && r.trainer.stepsDone === 0 && r.lastScored !== 0) await this.scoreHeldOut(r);
      while (r.status === 'running' && r.trainer.stepsDone < r.totalSteps && this.run === r) {
        const m = await this.serial(() => r.trainer.step());
        if (this.run !== r) return;
        r.pending.push(m);
        r.history.push(m);
        const step = m.step;
        const verdict = r.guard.observe(m);
        if (verdict.kind !== 'ok') {
          const fault = verdict.kind === 'fault' ? verdict.fault : verdict.faults[verdict.faults.length - 1];
          const streak = verdict.kind === 'fault' ? verdict.streak : verdict.faults.length;
          this.runEvent({ kind: 'nonFinite', severity: 'warning', step, nonFinite: { loss: fault.loss, gradNorm: fault.gradNorm }, message: describeFault(fault, streak, r.guard.limit) });
        }
        if (verdict.kind === 'rollback') {
          await this.rollback(r, verdict.faults);
          await sleep0();
          continue;
        }
        if (step % r.routingEvery === 0 || step === r.totalSteps) {
          this.flushMetrics(true);
          this.postRouting();
          await this.measureRoutingSet(r);
          if (this.run !== r) return;
        } else this.flushMetrics(false);
        if (r.evalEvery > 0 && verdict.kind === 'ok' && (step % r.evalEvery === 0 || step === r.totalSteps)) {
          this.flushMetrics(true);
          await this.scoreHeldOut(r);
          if (this.run !== r) return;
        }
        const late = performance.now() - r.lastCheckpointAt >= Math.max(CHECKPOINT_SECONDS * 1000, 10 * r.checkpointMs);
        const due = r.checkpointEvery > 0 && (step % r.checkpointEvery === 0 || step === r.totalSteps || r.checkpointDue || late);
        if (due && verdict.kind === 'fault') {
          // A state inside a fault streak is never stored: the checkpoint waits for the next good step.
          r.checkpointDue = true;
        } else if (due) {
          r.checkpointDue = false;
          this.flushMetrics(true);
          await this.saveCheckpoint(r);
        }
        await sleep0();
      }
      this.flushMetrics(true);
      if (this.run !== r) return;
      if (r.status === 'stopping') r.status = 'stopped';
      else if (r.trainer.stepsDone >= r.totalSteps) r.status = 'done';
      else if (r.status === 'pausing') r.status = 'paused';
      // Where the run rests, its routing is measured on the routing set (unless it just was).
      const measured = r.lastRoutingSet?.source?.kind === 'routingSet' ? r.lastRoutingSet.source.step : -1;
      if (r.guard.streakLength === 0 && r.trainer.stepsDone > 0 && measured !== r.trainer.stepsDone) await this.measureRoutingSet(r);
      if (this.run !== r) return;
      // Where the run rests is its checkpoint in the library (a paused or stopped run continues from
      // there after the browser is closed) and its good state in memory (a lost device costs no step).
      const resting = r.guard.streakLength === 0 && r.trainer.stepsDone > 0;
      if (resting && r.checkpointEvery > 0 && r.savedStep !== r.trainer.stepsDone && persistenceAvailable()) await this.saveCheckpoint(r);
      if (this.run !== r) return;
      if (r.guard.streakLength === 0 && r.lastGood?.cp.stepsDone !== r.trainer.stepsDone) await this.remember(r, 'rest');
      if (this.run !== r) return;
      if (resting && (r.status === 'stopped' || r.status === 'done')) await this.keepAdapter(r);
      if (this.run !== r) return;
      this.postStatus();
    } catch (e) {
      if (this.run !== r) return;
      // A lost device fails the step in flight: replaceDevice takes the run over, this is no error.
      if (await this.lostDevice(ctx)) return;
      this.flushMetrics(true);
      r.status = 'error';
      this.postStatus(message(e));
    } finally {
      r.looping = false;
    }
  }

  /** True when `ctx`'s device is lost or being replaced (waits briefly for device.lost to settle). */
  private async lostDevice(ctx: GpuContext): Promise<boolean> {
    if (this.recovering || ctx !== this.ctx) return true;
    return Promise.race([ctx.device.lost.then(() => true), sleep(1000).then(() => false)]);
  }

  /**
   * Keeps the trainer's current state as the run's good state (in memory), unless it holds a
   * non-finite value: an update can overflow a parameter while its step looked healthy (the fault
   * shows only at the next step), and such a state must never become a checkpoint.
   */
  private async remember(r: Run, origin: GoodState['origin']): Promise<TrainerCheckpoint | null> {
    const cp = await this.serial(() => r.trainer.exportCheckpoint());
    if (this.run !== r) return null;
    const bad = firstNonFinite(cp);
    if (bad) {
      const prev = r.lastGood ? goodStateName(r.lastGood) : 'none';
      this.runEvent({
        kind: 'checkpointRefused',
        severity: 'warning',
        step: cp.stepsDone,
        message: `The state at step ${cp.stepsDone} holds a non-finite value (${bad}): it was not kept as a checkpoint; the last good one stays (${prev}).`,
      });
      return null;
    }
    r.lastGood = { cp, metrics: r.history.filter((m) => m.step <= cp.stepsDone), origin };
    // A newer good state: a later rollback goes there, and may do so again.
    if (r.rolledBackTo !== null && cp.stepsDone > r.rolledBackTo) r.rolledBackTo = null;
    return cp;
  }

  /** A checkpoint: the good state in memory, and in IndexedDB when the browser has it. */
  private async saveCheckpoint(r: Run): Promise<void> {
    const began = performance.now();
    r.lastCheckpointAt = began;
    const cp = await this.remember(r, 'checkpoint');
    if (!cp) return;
    if (!persistenceAvailable()) {
      if (!this.toldNoStorage) {
        this.toldNoStorage = true;
        this.post({ type: 'storageError', message: 'This browser offers no storage (IndexedDB): checkpoints are kept in memory only, and a reload loses the run.' });
      }
      return;
    }
    try {
      const meta: RunMeta = { ...r.meta, savedAt: Date.now() };
      const bytes = encodeCheckpoint(meta, cp);
      const extra: CheckpointExtra = { metrics: r.lastGood!.metrics, routing: r.lastRouting, routingSet: r.lastRoutingSet };
      const pointer = await saveCheckpoint(bytes.buffer, { runId: r.id, step: cp.stepsDone, totalSteps: r.totalSteps, meta }, extra);
      r.savedStep = cp.stepsDone;
      r.lastCheckpointAt = performance.now();
      r.checkpointMs = r.lastCheckpointAt - began;
      this.post({ type: 'checkpoint', runId: r.id, step: pointer.step, savedAt: pointer.savedAt, bytes: pointer.bytes });
    } catch (e) {
      // Training goes on; the user is told the checkpoint is missing and why.
      if (e instanceof StorageFullError) this.post({ type: 'storageError', message: e.message });
      else this.post({ type: 'storageError', message: `The checkpoint could not be saved: ${message(e)}` });
    }
  }

  /**
   * `faultLimit` faulty steps in a row: the trainer goes back to the run's last good state
   * (parameters, AdamW moments, step count, data order, dropout stream) and the page gets the series
   * up to it. A second rollback to the same state pauses the run (the fault is reproducible).
   */
  private async rollback(r: Run, faults: StepFault[]): Promise<void> {
    const good = r.lastGood;
    if (!good) throw new Error(`${faults.length} faulty steps in a row and no good state to roll back to`);
    const toStep = good.cp.stepsDone;
    const again = r.rolledBackTo === toStep;
    await this.serial(async () => r.trainer.importCheckpoint(good.cp));
    if (this.run !== r) return;
    r.trainer.routing?.reset();
    r.windowFrom = toStep + 1;
    r.rolledBackTo = toStep;
    r.checkpointDue = false;
    this.flushMetrics(true);
    r.history = good.metrics.slice();
    r.pending = [];
    if (again && r.status === 'running') r.status = 'paused';
    this.postRunStarted(r, true);
    this.runEvent({
      kind: 'rollback',
      severity: again ? 'error' : 'warning',
      step: faults[faults.length - 1].step,
      toStep,
      nonFinite: { loss: faults.some((f) => f.loss), gradNorm: faults.some((f) => f.gradNorm) },
      message: describeRollback(faults, goodStateName(good), again),
    });
  }

  pause(): void {
    const r = this.run;
    if (r && r.status === 'running') {
      r.status = r.looping ? 'pausing' : 'paused';
      this.postStatus();
    }
  }

  resume(): void {
    const r = this.run;
    if (r && (r.status === 'paused' || r.status === 'pausing')) {
      r.status = 'running';
      this.postStatus();
      void this.loop();
    }
  }

  stop(): void {
    const r = this.run;
    if (!r || r.status === 'done' || r.status === 'stopped' || r.status === 'stopping') return;
    // A step in flight finishes first (its metrics are posted), then the loop reports 'stopped'.
    r.status = r.looping ? 'stopping' : 'stopped';
    this.postStatus();
  }

  /**
   * A run that stopped or finished keeps its adapter in the library: the zip Download gives, stored
   * with the run, so it can be downloaded after the browser is closed and opened again.
   */
  private async keepAdapter(r: Run): Promise<void> {
    if (!persistenceAvailable() || this.run !== r) return;
    try {
      const zip = await this.adapterZip();
      const file = await saveRunAdapter(r.id, zip.name, zip.bytes.buffer, r.trainer.stepsDone);
      this.post({ type: 'adapterKept', runId: r.id, name: file.name, step: file.step, bytes: file.bytes.byteLength });
    } catch (e) {
      this.post({ type: 'storageError', message: e instanceof StorageFullError ? e.message : `The adapter of run ${r.id} could not be kept in the library: ${message(e)}` });
    }
  }

  /** Continues a run from its checkpoint in the library (the latest checkpoint without `runId`) on the loaded backbone and training dataset. */
  async restoreRun(runId?: string): Promise<void> {
    this.startup.begin();
    try {
      await this.restoreRunOf(runId);
    } finally {
      this.startup.end();
    }
    void this.loop();
  }

  private async restoreRunOf(runId?: string): Promise<void> {
    if (this.isTraining()) throw new Error('a run is already going');
    const b = this.requireBackbone();
    const stored = await loadCheckpoint<RunMeta>(runId);
    if (!stored) throw new Error(runId ? `run ${runId} has no checkpoint in this browser` : 'there is no saved checkpoint in this browser');
    const { meta, trainer: cp } = decodeCheckpoint(new Uint8Array(stored.bytes));
    if (!this.ref || !sameRef(meta.backbone, this.ref)) throw new Error(`the checkpoint was trained on ${backboneName(meta.backbone)}; load that backbone first`);
    const data = this.datasets.get('train');
    if (!data || data.info.name !== meta.dataset.name || data.info.bytes !== meta.dataset.bytes) {
      throw new Error(`the checkpoint was trained on the dataset ${meta.dataset.name} (${meta.dataset.bytes} bytes); load it first`);
    }
    if (data.info.typeNames.join('\n') !== meta.typeNames.join('\n')) throw new Error('the dataset has other data types than the checkpoint was trained with');
    const { samples: encoded, answerless } = this.encode(data.records, meta.train.maxLength);
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
    await this.serial(async () => {
      this.run?.trainer.destroy();
      this.run = null;
      const set = hasAdapter(meta.adapter) ? initAdapter(b.config, meta.adapter, meta.train.seed) : null;
      this.startup.phase('uploading');
      const weights = this.rebuildWeights(meta.adapter, set);
      const trainer = this.startup.build(this.ctx.pipelines, buildShape(meta.adapter, meta.train), () => this.makeTrainer(weights, samples, meta.typeNames, meta.train));
      try {
        trainer.importCheckpoint(cp);
      } catch (e) {
        trainer.destroy();
        throw e;
      }
      const extra = (stored.extra ?? {}) as Partial<CheckpointExtra>;
      const metrics = Array.isArray(extra.metrics) ? extra.metrics : [];
      this.beginRun(trainer, meta, true, meta.train.maxLength, routingSet, { metrics, routing: extra.routing ?? null, routingSet: extra.routingSet ?? null }, { cp, metrics: metrics.filter((m) => m.step <= cp.stepsDone), origin: 'checkpoint' });
      this.reportAnswerless(leftOut, encoded.length, meta.train.maxLength);
      this.startup.phase('firstStep');
    });
  }

  // ---- probe ---------------------------------------------------------------------------------------

  async probe(which: 'before' | 'after'): Promise<void> {
    const b = this.requireBackbone();
    const data = this.datasets.get('probe');
    if (!data) throw new Error('load probe questions first (the demo probe, or a file)');
    const result = await this.serial(async () => {
      // "before" is the frozen backbone: the current weights when they carry nothing trained.
      const trained = this.adapter.origin !== 'none';
      let temp: GpuWeights | null = null;
      const w = which === 'before' && trained ? (temp = new GpuWeights(this.ctx, b.config, b.weights, defaultAdapterConfig('none'), null, this.maxPositions)) : this.weights;
      if (!w) throw new Error('no model on the GPU');
      try {
        return await exactMatchProbe(this.ctx, w, b.tokenizer, data.records, { batchSize: 64, maxLength: this.maxPositions });
      } finally {
        temp?.destroy();
      }
    });
    this.post({ type: 'probe', which, result });
  }

  // ---- chat ----------------------------------------------------------------------------------------

  async generate(reqId: number, prompt: string, useAdapter: boolean, sampling: SamplingSettings): Promise<void> {
    const b = this.requireBackbone();
    if (prompt.trim() === '') throw new Error('type a prompt first');
    const tok = b.tokenizer;
    const ids = encodePrompt(tok, prompt);
    const want = Math.min(this.maxPositions, ids.length + sampling.maxNewTokens);
    if (ids.length >= this.maxPositions) throw new Error(`the prompt has ${ids.length} tokens; this backbone holds ${this.maxPositions}`);
    this.stopGeneration = false;
    await this.serial(async () => {
      const weights = this.weights;
      if (!weights) throw new Error('no model on the GPU');
      if (!this.generator || this.generator.weights !== weights || this.generator.capacity < want) {
        this.generator?.destroy();
        this.generator = new Generator(this.ctx, weights, { maxLength: Math.min(this.maxPositions, Math.max(want, 64)) });
      }
      const gen = this.generator;
      const routed = useAdapter && isRouted(weights.adapterCfg);
      const groups = routed ? (this.adapter.groups.length > 0 ? this.adapter.groups : displayGroups(weights.adapterCfg, [])) : [];
      this.post({ type: 'chatStart', reqId, promptTokens: ids.length, groups });
      const out: number[] = [];
      let prevText = '';
      const res = await gen.generate(
        ids,
        {
          temperature: sampling.temperature,
          topK: sampling.topK,
          topP: sampling.topP,
          maxNewTokens: Math.min(sampling.maxNewTokens, gen.capacity - ids.length),
          seed: sampling.seed,
          stopIds: [tok.eosId],
          useAdapter,
          returnRouting: routed,
        },
        (t) => {
          let piece: string;
          if (t.id === tok.eosId) {
            // The end of sequence is sent too (marked special: the transcript leaves it out of the text).
            piece = tok.decode([t.id], false) || '</s>';
          } else {
            out.push(t.id);
            // Incremental decoding: the text this token adds to the whole answer (keeps BPE spaces).
            const text = tok.decode(out);
            piece = text.startsWith(prevText) ? text.slice(prevText.length) : tok.decode([t.id]);
            prevText = text;
          }
          const token: ChatToken = t.id === tok.eosId ? { id: t.id, text: piece, special: true } : { id: t.id, text: piece };
          if (t.routing) {
            token.groupShares = tokenGroupShares(t.routing, groups);
            token.perLayer = Object.fromEntries([...t.routing].map(([k, v]) => [k, Array.from(v)]));
          }
          this.post({ type: 'chatTokens', reqId, tokens: [token] });
          return !this.stopGeneration;
        },
      );
      const n = res.tokens.length;
      this.post({ type: 'chatDone', reqId, finishReason: res.finishReason, tokensPerSecond: n > 1 && res.decodeMs > 0 ? ((n - 1) * 1000) / res.decodeMs : 0 });
    });
  }

  stopGenerate(): void {
    this.stopGeneration = true;
  }

  // ---- adapter files -------------------------------------------------------------------------------

  async exportAdapter(): Promise<void> {
    const { name, bytes } = await this.adapterZip();
    const buf = bytes.buffer;
    this.post({ type: 'adapterZip', name, bytes: buf }, [buf]);
  }

  /** The model's adapter (or, after full fine-tuning, the whole model) as the zip Download gives. */
  private async adapterZip(): Promise<{ name: string; bytes: Uint8Array<ArrayBuffer> }> {
    const b = this.requireBackbone();
    const cfg = this.adapter.cfg;
    if (!cfg || this.adapter.origin === 'none' || !this.weights) throw new Error('there is no adapter yet: train or import one');
    const zipped = await this.serial(async () => {
      const w = this.weights!;
      const files: Record<string, Uint8Array> = {};
      if (hasAdapter(cfg)) {
        for (const [name, bytes] of adapterFiles(cfg, b.config, await w.readAdapter(), backboneName(this.ref!), this.adapter.typeNames)) files[name] = bytes;
      } else {
        // Full fine-tuning: the whole model in the backbone's layout, with its configuration files.
        const host = await w.readBackbone();
        const shapes = new Map(expectedTensorNames(b.config).map((t) => [t.name, t.shape]));
        files['model.safetensors'] = writeSafetensors([...host].map(([name, data]) => ({ name, dtype: 'F32' as const, shape: shapes.get(name)!, data })), { format: 'pt' });
        for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) {
          const raw = this.rawFiles.get(f);
          if (raw) files[f] = raw;
        }
      }
      return zipSync(files, { level: 6, mtime: ZIP_DATE });
    });
    const step = this.run?.trainer.stepsDone;
    const name = `${cfg.mode === 'full' ? 'full-finetune' : cfg.mode === 'lora' ? 'lora-adapter' : 'loramoe-adapter'}${step ? `-step${step}` : ''}.zip`;
    return { name, bytes: zipped as Uint8Array<ArrayBuffer> };
  }

  /** The training data and these settings as a zip for the official LoRAMoE trainer (src/train/official-export.ts). */
  async exportOfficial(spec: RunSpec): Promise<void> {
    const data = this.datasets.get('train');
    if (!data) throw new Error('load a training dataset first: the hand-off carries the data');
    const names = data.info.typeNames;
    const cfg = this.adapterConfigFrom(spec.adapter, spec.groups, names);
    const base = this.ref ? backboneName(this.ref) : '';
    const zipped = officialRunZip(data.records, names, cfg, spec.train, base);
    const buf = zipped.buffer as ArrayBuffer;
    this.post({ type: 'adapterZip', name: 'loramoe-official-run.zip', bytes: buf }, [buf]);
  }

  async importAdapter(name: string, files: FileEntry[]): Promise<void> {
    if (this.isTraining() || this.run?.status === 'paused') throw new Error('stop the training run before importing an adapter');
    const b = this.requireBackbone();
    const entries = isZip(files) ? entriesFromZip(new Uint8Array(await files[0].file.arrayBuffer()), files[0].path) : normalizeEntries(files);
    const loaded = await loadAdapter(new BlobSource(name, entries), b.config);
    // By the adapter's own names (or the official task types), never by the current dataset's order.
    const typeNames = adapterTypeNames(loaded.dataTypes, loaded.cfg.groups.length) ?? [];
    await this.serial(async () => {
      this.run?.trainer.destroy();
      this.run = null;
      this.rebuildWeights(loaded.cfg, loaded.set);
      this.imported = { cfg: loaded.cfg, set: loaded.set };
      this.adapter = { origin: 'imported', cfg: loaded.cfg, label: name + (loaded.baseModel ? ` (trained on ${loaded.baseModel})` : ''), typeNames, groups: displayGroups(loaded.cfg, typeNames) };
    });
    this.postStatus();
    this.postAdapter();
  }

  // ---- a lost GPU device ---------------------------------------------------------------------------

  /**
   * The device is lost (the worker saw device.lost): GPU work stops failing loudly until
   * replaceDevice. Returns the step the run had finished.
   */
  deviceLost(): number {
    this.recovering = true;
    return this.run?.trainer.stepsDone ?? 0;
  }

  /** No new device could be had: the run ends in an error the user can act on (reload and resume). */
  deviceUnavailable(reason: string, error: string): void {
    this.recovering = false;
    const r = this.run;
    const step = r?.trainer.stepsDone ?? 0;
    const msg =
      `The GPU device was lost${r ? ` at step ${step}` : ''} (${reason}) and no new device could be acquired (${error}). ` +
      'Datasets, settings and the last checkpoint are kept in this browser: reload the page to resume.';
    if (r) {
      r.status = 'error';
      this.postStatus(msg);
    }
    this.runEvent({ kind: 'deviceFailed', severity: 'error', step, message: msg });
  }

  /**
   * A new device was acquired but moving onto it failed (uploading the backbone again, rebuilding the
   * run): the run, if any, ends in an error that names the reason; `step` is where the device was lost.
   */
  deviceReplacementFailed(reason: string, error: string, step: number): void {
    this.recovering = false;
    if (this.run) this.run.status = 'error';
    const msg =
      `The GPU device was lost${step > 0 ? ` at step ${step}` : ''} (${reason}); a new device was acquired, but the backbone and the run could not be moved onto it (${error}). ` +
      'Datasets, settings and the last checkpoint are kept in this browser: reload the page to resume.';
    this.post({ type: 'runStatus', status: 'error', step, message: msg });
    this.runEvent({ kind: 'deviceFailed', severity: 'error', step, message: msg });
  }

  /**
   * Moves everything onto a new device after the old one was lost: the backbone is uploaded again
   * from its host copy, and a run continues from its last good state (a checkpoint, or where it was
   * paused): a new Trainer over the same samples and settings imports it. A run that was training
   * goes on by itself; a paused one waits for Resume. Datasets, settings and the metric series up to
   * that state are untouched (the steps after it are computed again, identically).
   */
  async replaceDevice(ctx: GpuContext, reason: string): Promise<void> {
    const old = this.run;
    const lostAt = old?.trainer.stepsDone ?? 0;
    this.recovering = true;
    this.ctx = ctx;
    // Work queued on the lost device may never settle: the queue starts afresh. The old objects
    // are dropped (their buffers went with the device; destroy() on them is harmless).
    this.chain = Promise.resolve();
    this.run = null;
    this.generator?.destroy();
    this.generator = null;
    old?.trainer.destroy();
    this.weights?.destroy();
    this.weights = null;
    const b = this.backbone;
    let restoredTo: number | null = null;
    let goodName = '';
    try {
      if (!b) {
        this.runEvent({ kind: 'deviceLost', severity: 'warning', step: 0, message: `The GPU device was lost (${reason}); a new device was acquired. Nothing was loaded on it yet.` });
        return;
      }
      await this.serial(async () => {
        if (old && old.lastGood) {
          const meta = old.meta;
          const good = old.lastGood;
          const set = hasAdapter(meta.adapter) ? initAdapter(b.config, meta.adapter, meta.train.seed) : null;
          const weights = this.rebuildWeights(meta.adapter, set);
          const trainer = this.makeTrainer(weights, old.trainer.samples, meta.typeNames, meta.train);
          trainer.importCheckpoint(good.cp);
          const status: RunStatus =
            old.status === 'running' || old.status === 'starting' ? 'running' : old.status === 'pausing' ? 'paused' : old.status === 'stopping' ? 'stopped' : old.status;
          this.run = {
            ...old,
            trainer,
            status,
            pending: [],
            lastFlush: performance.now(),
            looping: false,
            history: good.metrics.slice(),
            windowFrom: good.cp.stepsDone + 1,
            guard: new NumericGuard(old.guard.limit),
            checkpointDue: false,
          };
          restoredTo = good.cp.stepsDone;
          goodName = goodStateName(good);
        } else {
          const imp = this.imported;
          this.rebuildWeights(imp ? imp.cfg : defaultAdapterConfig('none'), imp ? imp.set : null);
          if (!imp) this.adapter = noAdapter();
        }
      });
    } finally {
      this.recovering = false;
    }
    const r = this.run as Run | null;
    if (r && restoredTo !== null) {
      const next = r.status === 'running' ? 'training goes on' : r.status === 'paused' ? 'press Resume to continue' : `the run stays ${r.status}`;
      const redo = lostAt > restoredTo ? ` Steps ${restoredTo + 1}-${lostAt} are computed again (the same batches and dropout masks, so the same results).` : '';
      this.postRunStarted(r, true);
      this.runEvent({
        kind: 'deviceLost',
        severity: 'warning',
        step: lostAt,
        toStep: restoredTo,
        message:
          `The GPU device was lost at step ${lostAt} (${reason}); resumed from ${goodName}: ` +
          `a new device was acquired and the backbone loaded again, ${next}. Datasets, settings and the metric series are kept.${redo}`,
      });
    } else {
      const what = this.adapter.origin === 'imported' ? ' with the imported adapter' : '';
      this.runEvent({ kind: 'deviceLost', severity: 'warning', step: 0, message: `The GPU device was lost (${reason}); a new device was acquired and the backbone loaded again${what}.` });
    }
    this.postAdapter();
    this.postStatus();
    if (r?.status === 'running') void this.loop();
  }

  // ---- test hooks ----------------------------------------------------------------------------------

  /** Fault injection for the reliability tests (only with SessionOptions.testHooks). */
  async debug(a: DebugAction): Promise<void> {
    if (!this.options.testHooks) throw new Error('test hooks are off (open the page with ?test-hooks)');
    const step = this.run?.trainer.stepsDone ?? 0;
    switch (a.kind) {
      case 'loseDevice':
        this.runEvent({ kind: 'testHook', severity: 'info', step, message: `Test hook: device.destroy() at step ${step}.` });
        this.ctx.device.destroy();
        return;
      case 'injectFault': {
        const r = this.run;
        if (!r) throw new Error('no run to inject a fault into');
        if (a.target === 'gradient') r.trainer.injectGradientNaN();
        else {
          await this.serial(async () => {
            const p = r.trainer.graph.params[0];
            this.ctx.device.queue.writeBuffer(p.param.buffer, 0, new Float32Array([NaN]));
          });
        }
        const what = a.target === 'gradient' ? "a NaN is written into the next step's gradient" : `a NaN was written into ${r.trainer.graph.params[0].name}`;
        this.runEvent({ kind: 'testHook', severity: 'info', step, message: `Test hook: ${what} (after step ${step}).` });
        return;
      }
      case 'checkpointWrite':
        setCheckpointWriteHook(async (phase, at) => {
          if (a.fail === 'quota' && phase === 'data') {
            setCheckpointWriteHook(null);
            throw new DOMException('test hook: the storage quota is full', 'QuotaExceededError');
          }
          if (a.fail === 'stall' && phase === 'pointer') {
            setCheckpointWriteHook(null);
            this.runEvent({ kind: 'testHook', severity: 'info', step: at, message: `Test hook: the checkpoint of step ${at} is written, its pointer switch stalls.` });
            await new Promise<never>(() => undefined);
          }
        });
        return;
      default: {
        const never: never = a;
        throw new Error(`unknown debug action ${JSON.stringify(never)}`);
      }
    }
  }
}
