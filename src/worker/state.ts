/**
 * What the engine worker's modules share: the GPU device, the loaded backbone, the datasets, the
 * model on the GPU (./gpu-model.ts: weights, shared backbone, the adapter in use), the current run
 * (a TrainingRun of src/run/driver.ts, owned by the Session), the queue that serialises GPU work,
 * and the line to the page. The Session (./session.ts) extends it with the page's commands and
 * hands each job to a module (./run.ts, ./chat.ts, ./adapter-files.ts, ./device.ts,
 * ./test-hooks.ts); those modules see this class, never the Session, so no file imports another
 * round a circle.
 */
import type { ImportedRecord } from '../data/import';
import type { GpuContext } from '../engine/gpu';
import { hasAdapter } from '../method/adapter';
import type { Backbone } from '../model/load';
import type { WeightSetting } from '../model/tensor-plan';
import type { TrainingRun } from '../run/driver';
import { GpuModel } from './gpu-model';
import type { BackboneRef, DatasetInfo, DatasetRole, MeasuredMemory, RunEvent, WorkerEvent } from './protocol';
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
  readonly datasets = new Map<DatasetRole, LoadedDataset>();
  /** The model on the GPU: weights, the shared backbone, the adapter in use (./gpu-model.ts). */
  readonly model: GpuModel = new GpuModel(this);
  /** The run on the weights: made by ./run.ts, owned here (only the session takes, drops or steers it). */
  private current: TrainingRun | null = null;
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
    return { weights: this.model.weights?.bytes ?? 0, graph: t ? t.graph.bytes : 0, optimizer: t ? t.optimizerBytes : 0, precision: this.model.weights?.precision ?? null };
  }

  isTraining(): boolean {
    return this.current?.busy ?? false;
  }

  requireBackbone(): Backbone {
    if (!this.backbone) throw new Error('load a backbone first');
    return this.backbone;
  }

  /**
   * A new weight setting. With no run holding the weights, they are stored again now (the adapter
   * read back and kept), so chat, the probe and the measured memory follow at once; a run, going or
   * finished, keeps the weights it trained on (to continue, and for its chat) until the next run or
   * load, which takes the setting.
   */
  async setWeightSetting(setting: WeightSetting): Promise<void> {
    const m = this.model;
    m.weightSetting = setting;
    await this.serial(async () => {
      const w = m.weights;
      if (!w || this.run || m.precisionFor(w.adapterCfg) === w.precision) return;
      const set = hasAdapter(w.adapterCfg) ? await w.readAdapter() : null;
      m.rebuildWeights(w.adapterCfg, set);
    });
    this.postAdapter();
  }

  runEvent(ev: Omit<RunEvent, 'at'>): void {
    this.post({ type: 'runEvent', event: { ...ev, at: Date.now() } });
  }

  postStatus(msg?: string): void {
    const r = this.run;
    this.post({ type: 'runStatus', status: r?.status ?? 'idle', step: r?.trainer.stepsDone ?? 0, ...(msg ? { message: msg } : {}) });
  }

  postAdapter(): void {
    this.post({ type: 'adapter', state: this.model.adapter, memory: this.memory() });
  }

}
