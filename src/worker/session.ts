/**
 * Everything the engine worker holds: the GPU device, the loaded backbone, the datasets, the GPU
 * weights (backbone + adapter), the trainer of the current run and the chat generator. Methods
 * answer the commands of ./protocol.ts; results go back through `post`.
 *
 * GPU work is serialised: each training step, probe, generation and export runs as one task on a
 * promise chain (`serial`), so a probe or a chat asked for during training runs between two steps
 * and never interleaves with one. Between steps the loop yields to the event loop, so pause, stop
 * and other commands are handled within one step.
 */
import { zipSync } from 'fflate';
import { DatasetImportError, formatLocation, type ImportedRecord, parseDataset, typeIndexMapping } from '../data/import';
import { summarizeDataset } from '../data/summary';
import { encodeOfficial, encodePrompt, type EncodedSample } from '../data/template';
import type { GpuContext } from '../engine/gpu';
import { ATTENTION_MAX_KEYS } from '../engine/kernels/attention';
import { BlobSource, entriesFromZip, isZip, normalizeEntries } from '../io/browser-files';
import { type FileSource } from '../io/files';
import { loadCheckpoint, saveCheckpoint, StorageFullError } from '../io/persist';
import { writeSafetensors } from '../io/safetensors';
import { type AdapterConfig, checkAdapterConfig, defaultAdapterConfig, hasAdapter, isRouted } from '../loramoe/config';
import { adapterFiles, loadAdapter } from '../loramoe/files';
import { type AdapterSet, initAdapter } from '../loramoe/init';
import { expectedTensorNames, parameterCount } from '../model/config';
import { Generator } from '../model/generate';
import { type Backbone, loadBackbone } from '../model/load';
import { GpuWeights } from '../model/weights';
import type { Settings } from '../store/settings-table';
import { exactMatchProbe } from '../train/probe';
import type { RoutingSummary } from '../train/routing';
import { defaultTrainSettings, type StepMetrics, Trainer, type TrainSettings } from '../train/trainer';
import type { ChatToken } from '../ui/views/types';
import { decodeCheckpoint, encodeCheckpoint, type RunMeta } from './checkpoint';
import { displayGroups, resolveGroups, tokenGroupShares, withDisplayGroups } from './groups';
import {
  type AdapterState,
  type BackboneRef,
  type BackboneSource,
  type DatasetInfo,
  type DatasetRole,
  type DisplayGroup,
  type FileEntry,
  MAX_ERRORS_SENT,
  type MeasuredMemory,
  PREVIEW_RECORDS,
  type RunStatus,
  type SamplingSettings,
  type WorkerEvent,
} from './protocol';

export type Post = (ev: WorkerEvent, transfer?: Transferable[]) => void;

/** Files of a backbone under a same-origin URL, known by name (a static server answers unknown paths with its index page). */
export class StaticUrlSource implements FileSource {
  constructor(
    readonly label: string,
    private readonly baseUrl: string,
    private readonly files: readonly string[],
  ) {}
  async has(path: string): Promise<boolean> {
    return this.files.includes(path);
  }
  async readBytes(path: string): Promise<Uint8Array> {
    const res = await fetch(`${this.baseUrl.replace(/\/$/, '')}/${path}`);
    if (!res.ok) throw new Error(`${this.label}/${path}: HTTP ${res.status} ${res.statusText}`);
    if ((res.headers.get('content-type') ?? '').includes('text/html')) throw new Error(`${this.label}/${path}: not found (the server answered with a web page)`);
    return new Uint8Array(await res.arrayBuffer());
  }
}

/** Keeps the bytes of the small JSON files read through a source (for exporting a full fine-tune). */
class RecordingSource implements FileSource {
  readonly kept = new Map<string, Uint8Array>();
  constructor(private readonly inner: FileSource) {}
  get label(): string {
    return this.inner.label;
  }
  has(path: string): Promise<boolean> {
    return this.inner.has(path);
  }
  async readBytes(path: string): Promise<Uint8Array> {
    const b = await this.inner.readBytes(path);
    if (path.endsWith('.json') && b.byteLength < 64 * 1024 * 1024) this.kept.set(path, b);
    return b;
  }
}

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
  /** The last routing summary posted (types without tokens in a window keep their previous values). */
  lastRouting: RoutingSummary | null;
  /** Every step's metrics of the run (saved with each checkpoint). */
  history: StepMetrics[];
}

/** What a checkpoint record carries besides the checkpoint itself. */
interface CheckpointExtra {
  metrics: StepMetrics[];
  routing: RoutingSummary | null;
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

const sleep0 = () => new Promise<void>((r) => setTimeout(r, 0));

export class Session {
  private backbone: Backbone | null = null;
  private ref: BackboneRef | null = null;
  private rawFiles = new Map<string, Uint8Array>();
  private maxPositions = 0;
  private weights: GpuWeights | null = null;
  private adapter: AdapterState = { origin: 'none', cfg: null, label: 'none', typeNames: [], groups: [] };
  private readonly datasets = new Map<DatasetRole, LoadedDataset>();
  private run: Run | null = null;
  private generator: Generator | null = null;
  private stopGeneration = false;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ctx: GpuContext,
    private readonly post: Post,
  ) {}

  /** Runs GPU work after every task queued before it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
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
      this.adapter = { origin: 'none', cfg: null, label: 'none', typeNames: [], groups: [] };
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
      throw new Error(e instanceof DatasetImportError ? e.message : `${name}: ${message(e)}`);
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

  private adapterConfigFrom(s: Settings, names: readonly string[]): AdapterConfig {
    const mode = s.mode;
    if (mode === 'full') return defaultAdapterConfig('full');
    const N = mode === 'loramoe' ? s.experts : 1;
    let groups: number[][] = [[0]];
    if (mode === 'loramoe') {
      const r = resolveGroups(names, N, s.groups);
      if (r.error !== null) throw new Error(r.error);
      groups = r.groups;
    }
    const cfg: AdapterConfig = { mode, numExperts: N, rank: s.rank, alpha: s.alpha, dropout: s.dropout, targets: [...s.targets], lbcDelta: s.lbcDelta, lbcBeta: s.lbcBeta, groups };
    checkAdapterConfig(cfg);
    return cfg;
  }

  private encode(records: readonly ImportedRecord[], maxLength: number): { samples: EncodedSample[]; seqLen: number } {
    const tok = this.requireBackbone().tokenizer;
    const samples = records.map((r) => encodeOfficial(tok, r, maxLength));
    return { samples, seqLen: Math.max(2, ...samples.map((s) => s.ids.length)) };
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

  async startRun(s: Settings, continueAdapter: boolean): Promise<void> {
    if (this.isTraining()) throw new Error('a run is already going: pause or stop it first');
    const b = this.requireBackbone();
    const data = this.datasets.get('train');
    if (!data) throw new Error('load a training dataset first');
    const names = data.info.typeNames;
    const cfg = this.adapterConfigFrom(s, names);
    const { samples, seqLen } = this.encode(data.records, Math.min(s.maxLength, this.maxPositions));
    const train: TrainSettings = {
      ...defaultTrainSettings(),
      lr: s.lr,
      weightDecay: s.weightDecay,
      warmupRatio: s.warmup,
      schedule: s.schedule,
      batchSize: s.batch,
      gradAccum: s.accum,
      maxLength: seqLen,
      steps: s.steps,
      maxGradNorm: s.clip,
      seed: s.seed,
    };
    const runId = `run-${Date.now().toString(36)}`;
    await this.serial(async () => {
      let set: AdapterSet | null = null;
      if (hasAdapter(cfg)) {
        const cur = this.adapter.cfg;
        const compatible = continueAdapter && this.weights && cur && cur.mode === cfg.mode && cur.numExperts === cfg.numExperts && cur.rank === cfg.rank && cur.targets.join() === cfg.targets.join();
        if (continueAdapter && !compatible) throw new Error('the current adapter does not match these settings (mode, experts, rank and targets must be equal) to continue from it');
        set = compatible ? await this.weights!.readAdapter() : initAdapter(b.config, cfg, s.seed);
      }
      this.run?.trainer.destroy();
      this.run = null;
      let trainer: Trainer;
      try {
        const weights = this.rebuildWeights(cfg, set);
        trainer = new Trainer(this.ctx, weights, samples, (t) => names.indexOf(t), names, train, b.tokenizer.padId);
      } catch (e) {
        // Leave a usable model behind: the frozen backbone.
        this.rebuildWeights(defaultAdapterConfig('none'), null);
        this.adapter = { origin: 'none', cfg: null, label: 'none', typeNames: [], groups: [] };
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
        totalSteps: s.steps,
        checkpointEvery: s.checkpointEvery,
        routingEvery: s.routingEvery,
        savedAt: 0,
      };
      this.beginRun(trainer, meta, false, seqLen);
    });
    void this.loop();
  }

  private beginRun(trainer: Trainer, meta: RunMeta, resumed: boolean, seqLen: number, saved?: CheckpointExtra): void {
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
      history: saved ? saved.metrics.filter((m) => m.step <= trainer.stepsDone) : [],
    };
    this.adapter = { origin: 'trained', cfg: meta.adapter, label: `run ${meta.runId}`, typeNames: [...meta.typeNames], groups };
    this.post({
      type: 'runStarted',
      run: {
        runId: meta.runId,
        totalSteps: meta.totalSteps,
        startStep: trainer.stepsDone,
        typeNames: [...meta.typeNames],
        groups,
        adapter: meta.adapter,
        seqLen,
        memory: this.memory(),
        resumed,
        ...(saved ? { metrics: this.run.history, routing: this.run.lastRouting } : {}),
      },
    });
    this.postAdapter();
    this.postStatus();
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
    const fresh = withDisplayGroups(stats.summary(), r.groups);
    stats.reset();
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

  /** The training loop: one serialised step at a time until done, paused, stopped or failed. */
  private async loop(): Promise<void> {
    const r = this.run;
    if (!r || r.looping) return;
    r.looping = true;
    try {
      while (r.status === 'running' && r.trainer.stepsDone < r.totalSteps && this.run === r) {
        const m = await this.serial(() => r.trainer.step());
        r.pending.push(m);
        r.history.push(m);
        const step = m.step;
        if (step % r.routingEvery === 0 || step === r.totalSteps) {
          this.flushMetrics(true);
          this.postRouting();
        } else this.flushMetrics(false);
        if (r.checkpointEvery > 0 && (step % r.checkpointEvery === 0 || step === r.totalSteps)) {
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
      this.postStatus();
    } catch (e) {
      this.flushMetrics(true);
      r.status = 'error';
      this.postStatus(message(e));
    } finally {
      r.looping = false;
    }
  }

  private async saveCheckpoint(r: Run): Promise<void> {
    try {
      const cp = await this.serial(() => r.trainer.exportCheckpoint());
      const meta: RunMeta = { ...r.meta, savedAt: Date.now() };
      const bytes = encodeCheckpoint(meta, cp);
      const extra: CheckpointExtra = { metrics: r.history.filter((m) => m.step <= cp.stepsDone), routing: r.lastRouting };
      const pointer = await saveCheckpoint(bytes.buffer, { step: cp.stepsDone, totalSteps: r.totalSteps, meta }, extra);
      this.post({ type: 'checkpoint', step: pointer.step, savedAt: pointer.savedAt, bytes: pointer.bytes });
    } catch (e) {
      // Training goes on; the user is told the checkpoint is missing and why.
      if (e instanceof StorageFullError) this.post({ type: 'storageError', message: e.message });
      else this.post({ type: 'storageError', message: `The checkpoint could not be saved: ${message(e)}` });
    }
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

  /** Continues the run of the stored checkpoint on the loaded backbone and training dataset. */
  async restoreRun(): Promise<void> {
    if (this.isTraining()) throw new Error('a run is already going');
    const b = this.requireBackbone();
    const stored = await loadCheckpoint<RunMeta>();
    if (!stored) throw new Error('there is no saved checkpoint in this browser');
    const { meta, trainer: cp } = decodeCheckpoint(new Uint8Array(stored.bytes));
    if (!this.ref || !sameRef(meta.backbone, this.ref)) throw new Error(`the checkpoint was trained on ${backboneName(meta.backbone)}; load that backbone first`);
    const data = this.datasets.get('train');
    if (!data || data.info.name !== meta.dataset.name || data.info.bytes !== meta.dataset.bytes) {
      throw new Error(`the checkpoint was trained on the dataset ${meta.dataset.name} (${meta.dataset.bytes} bytes); load it first`);
    }
    if (data.info.typeNames.join('\n') !== meta.typeNames.join('\n')) throw new Error('the dataset has other data types than the checkpoint was trained with');
    const { samples } = this.encode(data.records, meta.train.maxLength);
    await this.serial(async () => {
      this.run?.trainer.destroy();
      this.run = null;
      const set = hasAdapter(meta.adapter) ? initAdapter(b.config, meta.adapter, meta.train.seed) : null;
      const weights = this.rebuildWeights(meta.adapter, set);
      const trainer = new Trainer(this.ctx, weights, samples, (t) => meta.typeNames.indexOf(t), meta.typeNames, meta.train, b.tokenizer.padId);
      try {
        trainer.importCheckpoint(cp);
      } catch (e) {
        trainer.destroy();
        throw e;
      }
      const extra = (stored.extra ?? {}) as Partial<CheckpointExtra>;
      this.beginRun(trainer, meta, true, meta.train.maxLength, { metrics: Array.isArray(extra.metrics) ? extra.metrics : [], routing: extra.routing ?? null });
    });
    void this.loop();
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
            // The end of sequence is shown too (with its routing): it is the model's answer to stop.
            piece = tok.decode([t.id], false) || '</s>';
          } else {
            out.push(t.id);
            // Incremental decoding: the text this token adds to the whole answer (keeps BPE spaces).
            const text = tok.decode(out);
            piece = text.startsWith(prevText) ? text.slice(prevText.length) : tok.decode([t.id]);
            prevText = text;
          }
          const token: ChatToken = { id: t.id, text: piece };
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
      return zipSync(files, { level: 6 });
    });
    const step = this.run?.trainer.stepsDone;
    const name = `${cfg.mode === 'full' ? 'full-finetune' : cfg.mode === 'lora' ? 'lora-adapter' : 'loramoe-adapter'}${step ? `-step${step}` : ''}.zip`;
    const buf = zipped.buffer as ArrayBuffer;
    this.post({ type: 'adapterZip', name, bytes: buf }, [buf]);
  }

  async importAdapter(name: string, files: FileEntry[]): Promise<void> {
    if (this.isTraining() || this.run?.status === 'paused') throw new Error('stop the training run before importing an adapter');
    const b = this.requireBackbone();
    const entries = isZip(files) ? entriesFromZip(new Uint8Array(await files[0].file.arrayBuffer()), files[0].path) : normalizeEntries(files);
    const loaded = await loadAdapter(new BlobSource(name, entries), b.config);
    const names = loaded.dataTypes ?? this.datasets.get('train')?.info.typeNames ?? [];
    const typeNames = names.length === loaded.cfg.groups.length ? names : [];
    await this.serial(async () => {
      this.run?.trainer.destroy();
      this.run = null;
      this.rebuildWeights(loaded.cfg, loaded.set);
      this.adapter = { origin: 'imported', cfg: loaded.cfg, label: name + (loaded.baseModel ? ` (trained on ${loaded.baseModel})` : ''), typeNames, groups: displayGroups(loaded.cfg, typeNames) };
    });
    this.postStatus();
    this.postAdapter();
  }
}
