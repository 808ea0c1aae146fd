/**
 * What the engine worker's modules share: the GPU device, the loaded backbone and its weights on the
 * GPU, the datasets, the adapter in use, the current run (a TrainingRun of src/run/driver.ts, owned
 * by the Session), the queue that serialises GPU work, and the line to the page. The Session
 * (./session.ts) extends it with the page's commands and hands each job to a module (./run.ts,
 * ./chat.ts, ./adapter-files.ts, ./device.ts, ./test-hooks.ts); those modules see this class,
 * never the Session, so no file imports another round a circle.
 */
import type { ImportedRecord } from '../data/import';
import { isSoftwareAdapter } from '../engine/autotune';
import type { GpuContext } from '../engine/gpu';
import { defaultAdapterConfig } from '../loramoe/config';
import type { AdapterSet } from '../loramoe/init';
import { type AdapterConfig, hasAdapter } from '../method/adapter';
import type { Backbone } from '../model/load';
import { resolvePrecision, usablePrecision, type WeightPrecision, type WeightSetting } from '../model/tensor-plan';
import { GpuBackbone, GpuWeights } from '../model/weights';
import type { TrainingRun } from '../run/driver';
import { type AdapterState, type BackboneRef, type DatasetInfo, type DatasetRole, type MeasuredMemory, noAdapter, type RunEvent, type WorkerEvent } from './protocol';
import { StartupReporter } from './startup';

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

export abstract class WorkerState {

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
  /** The run on the weights: made by ./run.ts, owned here (only the session takes, drops or steers it). */
  private current: TrainingRun | null = null;
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
  /** The chat's generator, dropped whenever the weights change (the Session's ./chat.ts Chat). */
  abstract readonly chat: { drop(): void };
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

  /** The current run (going, resting or ended), if any. */
  get run(): TrainingRun | null {
    return this.current;
  }

  /** The run the session just made becomes the current one (Session.take, the run's one owner). */
  protected adopt(run: TrainingRun): void {
    this.current = run;
  }

  /** The current run ends: its loop stops touching it and its trainer's buffers go. */
  dropRun(): void {
    this.current?.dispose();
    this.current = null;
  }

  /** True when `ctx`'s device is lost or being replaced (waits briefly for device.lost to settle). */
  async deviceGone(ctx: GpuContext): Promise<boolean> {
    if (this.recovering || ctx !== this.ctx) return true;
    return Promise.race([ctx.device.lost.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1000))]);
  }

  memory(): MeasuredMemory {
    const t = this.run?.trainer;
    return { weights: this.weights?.bytes ?? 0, graph: t ? t.graph.bytes : 0, optimizer: t ? t.optimizerBytes : 0, precision: this.weights?.precision ?? null };
  }

  isTraining(): boolean {
    return this.current?.busy ?? false;
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

}
