/**
 * Messages between the page and the engine worker, which owns the GPU device and every piece of
 * model and training state. Commands go to the worker, events come back; both are discriminated
 * unions so each side handles every case (a `never` check in each switch).
 *
 * Conventions:
 * - A command with a `reqId` is answered by exactly one `reply` event with the same id (ok or the
 *   error message); progress and results travel as their own events before it.
 * - Bytes travel as transferred ArrayBuffers (datasets, adapter zips); files the user picked travel
 *   as Blob/File objects (structured clone shares them; the worker reads them lazily).
 * - Training metrics are batched: one `metrics` event carries every step finished since the last.
 */
import type { CurvePoint } from '../train/comparison';
import type { DatasetSummary } from '../data/summary';
import type { DatasetFormat, ImportCounts, RecordLocation } from '../data/import';
import type { KernelReport } from '../engine/autotune';
import type { SelfCheckResult } from '../engine/selfcheck';
import type { WeightPrecision, WeightSetting } from '../model/tensor-plan';
import type { AdapterSummary } from '../engine/gpu';
import type { FileEntry } from '../io/browser-files';
import type { AdapterConfig } from '../method/adapter';
import type { ModelConfig } from '../model/config';
import type { ChatToken } from '../model/generate';
import type { ProbeResult } from '../train/probe';
import type { RoutingSummary } from '../train/routing';
import type { RunSettings } from '../train/run-settings';
import type { StepMetrics } from '../train/trainer';

import { type BackboneRef, backboneName, type DisplayGroup, type RunEvent, type RunStatus } from '../run/events';

// The run's words live with the run driver (src/run/events.ts); the protocol speaks them unchanged.
export { backboneName };
export type { BackboneRef, DisplayGroup, RunEvent, RunStatus };

/** One file of a picked folder, a zip or the Hub cache, under its path relative to the model folder. */
export type { FileEntry };

export type BackboneSource =
  /** Files under a same-origin URL (the shipped demo). */
  | { kind: 'url'; ref: BackboneRef; baseUrl: string }
  /** Files the page holds: picked or dropped, or read from the Hub cache. */
  | { kind: 'files'; ref: BackboneRef; files: FileEntry[] };

export interface BackboneInfo {
  ref: BackboneRef;
  name: string;
  config: ModelConfig;
  parameters: number;
  vocabulary: number;
  warnings: string[];
  /** Positions of the RoPE tables the weights are built with (min(max_position_embeddings, 2048)). */
  maxPositions: number;
}

export type DatasetRole = 'train' | 'probe';

export interface PreviewRecord {
  location: string;
  instruction: string;
  input: string;
  output: string;
  type: string;
}

export interface DatasetInfo {
  role: DatasetRole;
  name: string;
  bytes: number;
  format: DatasetFormat;
  counts: ImportCounts;
  /** Data types present, in the index order training uses (official types first). */
  typeNames: string[];
  preview: PreviewRecord[];
  /** The first problems found (at most MAX_ERRORS_SENT), with their locations. */
  errors: { location: RecordLocation; where: string; field: string; message: string }[];
  errorCount: number;
  notes: string[];
}

export const MAX_ERRORS_SENT = 200;
export const PREVIEW_RECORDS = 8;

export interface MeasuredMemory {
  /** GpuWeights.bytes: backbone, adapter and RoPE tables. */
  weights: number;
  /** LlamaGraph.bytes: activations, gradients, scratch (0 before a run). */
  graph: number;
  /** Trainer.optimizerBytes: AdamW moments and clip buffers (0 before a run). */
  optimizer: number;
  /** How the weights on the GPU store the backbone's matrices (null: none loaded). */
  precision: WeightPrecision | null;
}


export interface AdapterState {
  /** none: the frozen backbone; trained: by a run of this session; imported: from files. */
  origin: 'none' | 'trained' | 'imported';
  cfg: AdapterConfig | null;
  label: string;
  typeNames: string[];
  groups: DisplayGroup[];
  /** An imported adapter's base_model_name_or_path ('' when its config names none). */
  baseModel?: string;
  /** How an imported adapter's settings were read where that is not plain (PEFT's use_rslora folded into alpha). */
  note?: string;
}

/** The frozen backbone alone: no adapter trained or imported. A function, so no caller shares its arrays. */
export function noAdapter(): AdapterState {
  return { origin: 'none', cfg: null, label: 'none', typeNames: [], groups: [] };
}

export interface SamplingSettings {
  temperature: number;
  topK: number;
  topP: number;
  maxNewTokens: number;
  seed: number;
}

/**
 * What a run's start is doing, from Train to its first step: tokenising the dataset (records),
 * compiling the kernels (pipelines), uploading the weights, then the first step. `total` 0: not
 * known (the kernels of a shape not built before in this session).
 */
export type StartupPhase = 'tokenising' | 'compiling' | 'uploading' | 'firstStep';

export interface StartupProgress {
  phase: StartupPhase;
  done: number;
  total: number;
}

/**
 * Fault injection for the reliability tests, honoured only when the page was opened with
 * `?test-hooks` (the client then sends `init` with testHooks: true and exposes window.__loramoeTest).
 */
export type DebugAction =
  /** device.destroy(): the worker sees device.lost and must recover. */
  | { kind: 'loseDevice' }
  /** gradient: a NaN in the next step's gradient (one skipped step); parameter: a NaN written into a trainable tensor (every step faults until a rollback). */
  | { kind: 'injectFault'; target: 'gradient' | 'parameter' }
  /** The next checkpoint write: stall forever after its data is written (before the pointer switch), or fail with a QuotaExceededError. */
  | { kind: 'checkpointWrite'; fail: 'stall' | 'quota' };

export type WorkerCommand =
  /** matmul: a kernel the page forces on every matmul (`?matmul=NAME`, engine/kernel-choices.ts MATMUL_FORCES); none: the autotuner's. */
  | { type: 'init'; testHooks?: boolean; matmul?: string; weights?: WeightSetting }
  /** The `weights` setting changed: how the backbone's matrices are stored (model/tensor-plan.ts WeightSetting). */
  | { type: 'setWeights'; setting: WeightSetting }
  | { type: 'debug'; action: DebugAction }
  | { type: 'kernelCheck' }
  | { type: 'loadBackbone'; reqId: number; source: BackboneSource }
  | { type: 'loadDataset'; reqId: number; role: DatasetRole; name: string; bytes: ArrayBuffer }
  | { type: 'summarizeDataset'; maxLength: number }
  | { type: 'startRun'; reqId: number; spec: RunSettings; continueAdapter: boolean }
  | { type: 'pauseRun' }
  | { type: 'resumeRun' }
  | { type: 'stopRun' }
  /** Continue a run from its checkpoint in the library (`runId`; without it, the latest checkpoint). The backbone and dataset must be loaded. */
  | { type: 'restoreRun'; reqId: number; runId?: string }
  /** expertMask: experts of the adapter switched off for 'after' (knockout; src/method/expert-mask.ts). */
  | { type: 'runProbe'; reqId: number; which: 'before' | 'after'; expertMask?: number[] }
  | { type: 'generate'; reqId: number; prompt: string; useAdapter: boolean; sampling: SamplingSettings; expertMask?: number[] }
  | { type: 'stopGenerate' }
  /** Compile the pipelines of a run with these settings ahead of Train (answered when done). */
  | { type: 'warmUp'; reqId: number; spec: RunSettings }
  | { type: 'exportAdapter'; reqId: number }
  /** The training data and these settings for the official trainer, answered as an 'adapterZip' download. */
  | { type: 'exportOfficial'; reqId: number; spec: RunSettings }
  | { type: 'importAdapter'; reqId: number; name: string; files: FileEntry[] };

/** The startup matmul check's outcome (engine/selfcheck.ts). */
export type KernelCheckResult = SelfCheckResult;

export type WorkerEvent =
  | { type: 'ready'; adapter: AdapterSummary }
  /** The matmul kernels the device uses after a backbone load: tuned, read from the cache, or forced (the GPU panel shows them). */
  | { type: 'kernelChoices'; report: KernelReport }
  | { type: 'unavailable'; reason: string }
  | { type: 'kernelCheck'; result: KernelCheckResult }
  /** The warm-up compiled a run's pipelines ahead of Train (0 pipelines: all were there). */
  | { type: 'pipelinesReady'; pipelines: number; ms: number }
  | { type: 'error'; message: string }
  | { type: 'reply'; reqId: number; ok: boolean; error?: string }
  | { type: 'backboneProgress'; file: string; loadedBytes: number; files: number }
  | { type: 'backboneLoaded'; info: BackboneInfo; memory: MeasuredMemory }
  | { type: 'dataset'; info: DatasetInfo }
  | { type: 'datasetSummary'; summary: DatasetSummary }
  /** A run's start in progress (startRun, restoreRun): the phase and how far it is; the first metrics end it. */
  | { type: 'startup'; progress: StartupProgress }
  | {
      type: 'runStarted';
      run: {
        runId: string;
        totalSteps: number;
        /** Steps already done (0, or the checkpoint's step when resuming). */
        startStep: number;
        typeNames: string[];
        groups: DisplayGroup[];
        adapter: AdapterConfig;
        /** Padded sequence length (the longest sample, at most the maximum length). */
        seqLen: number;
        memory: MeasuredMemory;
        resumed: boolean;
        /** Resumed runs: the metric series and routing saved with the checkpoint. */
        metrics?: StepMetrics[];
        routing?: RoutingSummary | null;
        /** Resumed runs: the last routing-set summary saved with the checkpoint. */
        routingSet?: RoutingSummary | null;
      };
    }
  | { type: 'runStatus'; status: RunStatus; step: number; message?: string }
  | { type: 'metrics'; points: StepMetrics[] }
  /** A routing summary: on the run's routing set or over the last training window (summary.source says which). */
  | { type: 'routing'; step: number; summary: RoutingSummary }
  | { type: 'checkpoint'; runId: string; step: number; savedAt: number; bytes: number }
  /** A run that stopped or finished kept its adapter in the library (the zip Download gives, byte for byte). */
  | { type: 'adapterKept'; runId: string; name: string; step: number; bytes: number }
  | { type: 'storageError'; message: string }
  /** A run with `evalEvery` scored the knowledge probe and the held-out task examples (at step 0 and every evalEvery steps). */
  | { type: 'evalPoint'; runId: string; point: CurvePoint }
  | { type: 'runEvent'; event: RunEvent }
  | { type: 'adapter'; state: AdapterState; memory: MeasuredMemory }
  | { type: 'probe'; which: 'before' | 'after'; result: ProbeResult }
  | { type: 'chatStart'; reqId: number; promptTokens: number; groups: DisplayGroup[]; expertMask: number[] }
  | { type: 'chatTokens'; reqId: number; tokens: ChatToken[] }
  | { type: 'chatDone'; reqId: number; finishReason: string; tokensPerSecond: number }
  | { type: 'adapterZip'; name: string; bytes: ArrayBuffer };
