/**
 * Everything the engine worker holds: the GPU device, the loaded backbone, the datasets, the GPU
 * weights (backbone + adapter), the current run and the chat. Methods answer the commands of
 * ./protocol.ts; results go back through `post`. The Session owns the shared state and loads
 * backbones and datasets; each other job is a module of its own, handed the session:
 *
 * - ./run.ts: starting a run (new, or continued from its checkpoint), warming its pipelines, and
 *   makeTrainer, the one place a run's Trainer is made; ./run-loop.ts: the training loop, pause,
 *   resume and stop; ./run-checkpoints.ts: good states, checkpoints, rollback; ./run-state.ts: what
 *   a run holds.
 * - ./chat.ts: generation; ./adapter-files.ts: adapter export, import and the official hand-off.
 * - ./device.ts: a lost GPU device replaced; ./test-hooks.ts: fault injection for the tests.
 *
 * GPU work is serialised: each training step, probe, generation and export runs as one task on a
 * promise chain (`serial`), so a probe or a chat asked for during training runs between two steps
 * and never interleaves with one. Between steps the loop yields to the event loop, so pause, stop
 * and other commands are handled within one step.
 *
 * Reliability (see ./faults.ts and docs/reliability.md): every step's loss and gradient norm are checked; a
 * faulty step is skipped and reported, `faultLimit` of them in a row roll the run back to its last
 * good state. The run keeps that state in memory (a checkpoint, or the state at its start or last
 * pause), besides the checkpoint in IndexedDB, so a lost GPU device (replaceDevice) costs at most the
 * steps since it: a new device gets the backbone again from the host copy and the run continues.
 */
import { DatasetImportError, formatLocation, type ImportedRecord, parseDataset, typeIndexMapping } from '../data/import';
import { summarizeDataset } from '../data/summary';
import { isSoftwareAdapter } from '../engine/autotune';
import type { GpuContext } from '../engine/gpu';
import { ATTENTION_MAX_KEYS } from '../engine/kernels/attention';
import { BlobSource, normalizeEntries } from '../io/browser-files';
import { type FileSource, RecordingSource } from '../io/files';
import { StaticUrlSource } from '../io/url-files';
import { defaultAdapterConfig } from '../loramoe/config';
import type { AdapterSet } from '../loramoe/init';
import { type AdapterConfig, hasAdapter, isRouted } from '../method/adapter';
import { parameterCount } from '../model/config';
import { type Backbone, loadBackbone } from '../model/load';
import { resolvePrecision, usablePrecision, type WeightPrecision, type WeightSetting } from '../model/tensor-plan';
import { GpuBackbone, GpuWeights } from '../model/weights';
import { exactMatchProbe } from '../train/probe';
import type { RunSpec } from '../train/run-settings';
import type { WarmupResult } from '../train/warmup';
import * as adapterFiles from './adapter-files';
import { Chat } from './chat';
import * as device from './device';
import {
  type AdapterState,
  noAdapter,
  type BackboneRef,
  backboneName,
  type BackboneSource,
  type DatasetInfo,
  type DatasetRole,
  type DebugAction,
  type FileEntry,
  MAX_ERRORS_SENT,
  type MeasuredMemory,
  PREVIEW_RECORDS,
  type RunEvent,
  type RunOptions,
  type SamplingSettings,
  type WorkerEvent,
} from './protocol';
import * as runs from './run';
import * as runLoop from './run-loop';
import type { Run } from './run-state';
import { StartupReporter } from './startup';
import { debugAction } from './test-hooks';
import { errorMessage } from '../util/errors';

export type Post = (ev: WorkerEvent, transfer?: Transferable[]) => void;

/** The files of the shipped demo backbone (under its URL, or read from disk by tools/soak.ts). */
export const DEMO_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

export interface LoadedDataset {
  info: DatasetInfo;
  records: ImportedRecord[];
}

export interface SessionOptions {
  /** Honour `debug` commands (fault injection for the reliability tests). */
  testHooks?: boolean;
}

export class Session {
  // ---- state the worker's modules share (read and written by ./run.ts, ./chat.ts, ./device.ts ...) ----

  backbone: Backbone | null = null;
  ref: BackboneRef | null = null;
  /** The backbone's JSON files as read (a full fine-tune's zip carries them again). */
  rawFiles = new Map<string, Uint8Array>();
  /** Positions the weights' RoPE tables and the attention kernel hold. */
  maxPositions = 0;
  weights: GpuWeights | null = null;
  /** The backbone on the GPU that the weights of LoRA and LoRAMoE runs share (see sharedBackbone). */
  private gpuBackbone: GpuBackbone | null = null;
  adapter: AdapterState = noAdapter();
  readonly datasets = new Map<DatasetRole, LoadedDataset>();
  run: Run | null = null;
  /** The host copy of an imported adapter (rebuilt onto a new device after a device loss). */
  imported: { cfg: AdapterConfig; set: AdapterSet | null } | null = null;
  /** How the backbone's matrices are stored (the `weights` setting; precisionFor resolves it). */
  weightSetting: WeightSetting = 'auto';
  /** The page was told this browser keeps no checkpoints. */
  toldNoStorage = false;
  /** Set while a lost device is being replaced. */
  recovering = false;
  /** What a run's start is doing, for the run bar. */
  readonly startup = new StartupReporter((progress) => this.post({ type: 'startup', progress }));
  readonly chat = new Chat(this);
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    /** The GPU context in use (replaced by ./device.ts after a device loss). */
    public ctx: GpuContext,
    readonly post: Post,
    readonly options: SessionOptions = {},
  ) {}

  /** The GPU context in use (a new one after replaceDevice). */
  get gpu(): GpuContext {
    return this.ctx;
  }

  /** Runs GPU work after every task queued before it. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    // The caller gets p's rejection; the queue only needs to go on after it.
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Forgets the queued GPU work (it was queued on a lost device and may never settle). */
  restartQueue(): void {
    this.chain = Promise.resolve();
  }

  memory(): MeasuredMemory {
    const t = this.run?.trainer;
    return { weights: this.weights?.bytes ?? 0, graph: t ? t.graph.bytes : 0, optimizer: t ? t.optimizerBytes : 0, precision: this.weights?.precision ?? null };
  }

  isTraining(): boolean {
    const s = this.run?.status;
    return s === 'running' || s === 'pausing' || s === 'stopping' || s === 'starting';
  }

  requireBackbone(): Backbone {
    if (!this.backbone) throw new Error('load a backbone first');
    return this.backbone;
  }

  /** The precision the weight setting gives on this adapter (f32 for full fine-tuning). */
  precisionFor(cfg: Pick<AdapterConfig, 'mode'>): WeightPrecision {
    return usablePrecision(cfg, resolvePrecision(this.weightSetting, isSoftwareAdapter(this.ctx.adapter)));
  }

  /** New GPU weights for the backbone with this adapter (the generator reading the old ones goes). */
  rebuildWeights(cfg: AdapterConfig, set: AdapterSet | null, precision: WeightPrecision = this.precisionFor(cfg)): GpuWeights {
    const b = this.requireBackbone();
    this.chat.drop();
    this.weights?.destroy();
    this.weights = null;
    // Full fine-tuning trains its own copy: the shared one goes first, so two never sit side by side.
    const shared = cfg.mode === 'full' ? (this.dropSharedBackbone(), null) : this.sharedBackbone(precision);
    this.weights = new GpuWeights(this.ctx, b.config, b.weights, cfg, set, this.maxPositions, precision, shared);
    return this.weights;
  }

  /**
   * The frozen backbone on the GPU in this precision, uploaded on first use and kept for the next
   * runs (model/weights.ts GpuBackbone); a new one after a device, backbone or precision change.
   */
  sharedBackbone(precision: WeightPrecision): GpuBackbone {
    const b = this.requireBackbone();
    const cur = this.gpuBackbone;
    if (cur && cur.ctx === this.ctx && cur.shape === b.config && cur.precision === precision) return cur;
    this.dropSharedBackbone();
    this.gpuBackbone = new GpuBackbone(this.ctx, b.config, b.weights, precision);
    return this.gpuBackbone;
  }

  /**
   * New weights of the frozen backbone alone (no adapter; the caller destroys them): on the shared
   * backbone when it is in the setting's precision, else on a copy of their own, since the shared
   * one may hold a run's weights in another precision.
   */
  frozenWeights(): GpuWeights {
    const b = this.requireBackbone();
    const precision = this.precisionFor({ mode: 'none' });
    const cur = this.gpuBackbone;
    const shared = cur && cur.ctx === this.ctx && cur.shape === b.config && cur.precision === precision ? cur : null;
    return new GpuWeights(this.ctx, b.config, b.weights, defaultAdapterConfig('none'), null, this.maxPositions, precision, shared);
  }

  /** Frees the shared backbone (the weights built on it must be gone or about to go). */
  dropSharedBackbone(): void {
    this.gpuBackbone?.destroy();
    this.gpuBackbone = null;
  }

  /**
   * A new weight setting. With no run holding the weights, they are stored again now (the adapter
   * read back and kept), so chat, the probe and the measured memory follow at once; a run, going or
   * finished, keeps the weights it trained on (to continue, and for its chat) until the next run or
   * load, which takes the setting.
   */
  async setWeightSetting(setting: WeightSetting): Promise<void> {
    this.weightSetting = setting;
    await this.serial(async () => {
      const w = this.weights;
      if (!w || this.run || this.precisionFor(w.adapterCfg) === w.precision) return;
      const set = hasAdapter(w.adapterCfg) ? await w.readAdapter() : null;
      this.rebuildWeights(w.adapterCfg, set);
    });
    this.postAdapter();
  }

  /** The frozen backbone alone on the GPU, and no adapter. */
  useFrozenBackbone(): void {
    this.rebuildWeights(defaultAdapterConfig('none'), null);
    this.adapter = noAdapter();
  }

  runEvent(ev: Omit<RunEvent, 'at'>): void {
    this.post({ type: 'runEvent', event: { ...ev, at: Date.now() } });
  }

  postStatus(msg?: string): void {
    const r = this.run;
    this.post({ type: 'runStatus', status: r?.status ?? 'idle', step: r?.trainer.stepsDone ?? 0, ...(msg ? { message: msg } : {}) });
  }

  postAdapter(): void {
    this.post({ type: 'adapter', state: this.adapter, memory: this.memory() });
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
      this.useFrozenBackbone();
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
    this.chat.drop();
    this.run?.trainer.destroy();
    this.run = null;
    this.weights?.destroy();
    this.weights = null;
    this.dropSharedBackbone();
  }

  // ---- datasets ------------------------------------------------------------------------------------

  async loadDataset(role: DatasetRole, name: string, bytes: ArrayBuffer): Promise<void> {
    let res;
    try {
      res = await parseDataset(new Uint8Array(bytes), name);
    } catch (e) {
      throw new Error(e instanceof DatasetImportError ? e.message : `${name}: ${errorMessage(e)}`, { cause: e });
    }
    if (res.records.length === 0) throw new Error(`${name}: no usable records (${res.errors.length} problem${res.errors.length === 1 ? '' : 's'}; the first: ${res.errors[0] ? `${formatLocation(res.errors[0].location)}: ${res.errors[0].message}` : 'none'})`);
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

  // ---- the run (./run.ts, ./run-loop.ts) ------------------------------------------------------------

  warmUp(spec: RunSpec): Promise<WarmupResult | null> {
    return runs.warmUp(this, spec);
  }

  startRun(spec: RunSpec, continueAdapter: boolean, opts: RunOptions = {}): Promise<void> {
    return runs.startRun(this, spec, continueAdapter, opts);
  }

  restoreRun(runId?: string): Promise<void> {
    return runs.restoreRun(this, runId);
  }

  pause(): void {
    runLoop.pause(this);
  }

  resume(): void {
    runLoop.resume(this);
  }

  stop(): void {
    runLoop.stop(this);
  }

  // ---- probe ---------------------------------------------------------------------------------------

  /** `expertMask`: the adapter's experts switched off for 'after' (the frozen backbone has none to switch off). */
  async probe(which: 'before' | 'after', expertMask: readonly number[] = []): Promise<void> {
    const b = this.requireBackbone();
    const data = this.datasets.get('probe');
    if (!data) throw new Error('load probe questions first (the demo probe, or a file)');
    if (which === 'before' && expertMask.length > 0) throw new Error('the frozen backbone has no experts to switch off');
    const result = await this.serial(async () => {
      // "before" is the frozen backbone: the current weights when they carry nothing trained.
      const trained = this.adapter.origin !== 'none';
      let temp: GpuWeights | null = null;
      const w = which === 'before' && trained ? (temp = this.frozenWeights()) : this.weights;
      if (!w) throw new Error('no model on the GPU');
      try {
        if (expertMask.length > 0 && !isRouted(w.adapterCfg)) throw new Error('switching experts off needs a LoRAMoE adapter');
        return await exactMatchProbe(this.ctx, w, b.tokenizer, data.records, { batchSize: 64, maxLength: this.maxPositions, expertMask });
      } finally {
        temp?.destroy();
      }
    });
    this.post({ type: 'probe', which, result });
  }

  // ---- chat (./chat.ts) ----------------------------------------------------------------------------

  generate(reqId: number, prompt: string, useAdapter: boolean, sampling: SamplingSettings, expertMask: readonly number[] = []): Promise<void> {
    return this.chat.generate(reqId, prompt, useAdapter, sampling, expertMask);
  }

  stopGenerate(): void {
    this.chat.stop();
  }

  // ---- adapter files (./adapter-files.ts) ----------------------------------------------------------

  exportAdapter(): Promise<void> {
    return adapterFiles.exportAdapter(this);
  }

  exportOfficial(spec: RunSpec): Promise<void> {
    return adapterFiles.exportOfficial(this, spec);
  }

  importAdapter(name: string, files: FileEntry[]): Promise<void> {
    return adapterFiles.importAdapter(this, name, files);
  }

  // ---- a lost GPU device (./device.ts) -------------------------------------------------------------

  deviceLost(): number {
    return device.deviceLost(this);
  }

  deviceUnavailable(reason: string, error: string): void {
    device.deviceUnavailable(this, reason, error);
  }

  deviceReplacementFailed(reason: string, error: string, step: number): void {
    device.deviceReplacementFailed(this, reason, error, step);
  }

  replaceDevice(ctx: GpuContext, reason: string): Promise<void> {
    return device.replaceDevice(this, ctx, reason);
  }

  // ---- test hooks (./test-hooks.ts) ----------------------------------------------------------------

  debug(a: DebugAction): Promise<void> {
    return debugAction(this, a);
  }
}
