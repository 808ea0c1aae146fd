/**
 * The engine worker's session: the shared state of ./state.ts (the GPU device, the backbone, the
 * datasets, the weights, the current run) and the commands of ./protocol.ts; results go back
 * through `post`. The Session loads backbones and datasets; each other job is a module of its own,
 * handed the shared state:
 *
 * - ./run.ts: a run's device, storage and messages around the run driver (src/run/driver.ts),
 *   which encodes the data, trains, checks, rolls back, measures and checkpoints; the session owns
 *   the run it makes (a TrainingRun) and steers it (pause, resume, stop).
 * - ./chat.ts: generation; ./adapter-files.ts: adapter export, import and the official hand-off.
 * - ./device.ts: a lost GPU device replaced; ./test-hooks.ts: fault injection for the tests.
 *
 * GPU work is serialised: each training step, probe, generation and export runs as one task on a
 * promise chain (`serial`), so a probe or a chat asked for during training runs between two steps
 * and never interleaves with one. Between steps the loop yields to the event loop, so pause, stop
 * and other commands are handled within one step.
 *
 * Reliability (see src/run/faults.ts and docs/reliability.md): every step's loss and gradient norm are checked; a
 * faulty step is skipped and reported, `faultLimit` of them in a row roll the run back to its last
 * good state. The run keeps that state in memory (a checkpoint, or the state at its start or last
 * pause), besides the checkpoint in IndexedDB, so a lost GPU device (replaceDevice) costs at most the
 * steps since it: a new device gets the backbone again from the host copy and the run continues.
 */
import { DatasetImportError, formatLocation, parseDataset, typeIndexMapping } from '../data/import';
import { summarizeDataset } from '../data/summary';
import type { GpuContext } from '../engine/gpu';
import { BlobSource, normalizeEntries } from '../io/browser-files';
import { type FileSource, RecordingSource } from '../io/files';
import { StaticUrlSource } from '../io/url-files';
import { isRouted } from '../method/adapter';
import { parameterCount } from '../model/config';
import { loadBackbone } from '../model/load';
import type { GpuWeights } from '../model/weights';
import { runPositions, type TrainingRun } from '../run/driver';
import { exactMatchProbe } from '../train/probe';
import type { RunSettings } from '../train/run-settings';
import type { WarmupResult } from '../train/warmup';
import { errorMessage } from '../util/errors';
import * as adapterFiles from './adapter-files';
import { Chat } from './chat';
import * as device from './device';
import {
  backboneName,
  type BackboneSource,
  type DatasetInfo,
  type DatasetRole,
  type DebugAction,
  type FileEntry,
  MAX_ERRORS_SENT,
  PREVIEW_RECORDS,
  type SamplingSettings,
} from './protocol';
import * as runs from './run';
import { DEMO_FILES, WorkerState } from './state';
import { debugAction } from './test-hooks';

export { DEMO_FILES };
export type { LoadedDataset, Post, SessionOptions } from './state';

/** The engine worker's session: the shared state (./state.ts) and the commands of ./protocol.ts. */
export class Session extends WorkerState {
  readonly chat: Chat = new Chat(this);

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
      this.maxPositions = runPositions(backbone.config);
      // The frozen backbone on the GPU right away: chat and the "before" probe need nothing else.
      this.model.useFrozenBackbone();
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
    this.chat.drop();
    this.dropRun();
    this.model.drop();
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

  warmUp(spec: RunSettings): Promise<WarmupResult | null> {
    return runs.warmUp(this, spec);
  }

  /** Starts a new run (./run.ts makes it); resolves when its first step is under way. */
  startRun(spec: RunSettings, continueAdapter: boolean): Promise<void> {
    return this.take(() => runs.startRun(this, spec, continueAdapter), false);
  }

  /** Continues a run from its checkpoint in the library (the latest without `runId`). */
  restoreRun(runId?: string): Promise<void> {
    return this.take(() => runs.restoreRun(this, runId), true);
  }

  /** Makes the run `make` gives the session's, tells the page, makes its adapter the one in use, and starts its loop. */
  private async take(make: () => Promise<runs.StartedRun>, resumed: boolean): Promise<void> {
    this.startup.begin();
    let run: TrainingRun;
    try {
      const started = await make();
      run = started.run;
      this.adopt(run);
      this.model.imported = null;
      this.model.adapter = { origin: 'trained', cfg: run.meta.adapter, label: `run ${run.id}`, typeNames: [...run.meta.typeNames], groups: run.groups };
      runs.postRunStarted(this, run, resumed);
      this.postAdapter();
      this.postStatus();
      if (started.leftOut) this.runEvent(started.leftOut);
      this.startup.phase('firstStep');
    } finally {
      this.startup.end();
    }
    void run.loop();
  }

  pause(): void {
    this.run?.pause();
  }

  resume(): void {
    void this.run?.resume();
  }

  stop(): void {
    this.run?.stop();
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
      const trained = this.model.adapter.origin !== 'none';
      let temp: GpuWeights | null = null;
      const w = which === 'before' && trained ? (temp = this.model.frozenWeights()) : this.model.weights;
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

  exportOfficial(spec: RunSettings): Promise<void> {
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
