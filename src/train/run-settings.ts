/**
 * What the engine worker reads of the page's settings to start a run: the adapter, the training
 * schedule and the run's bookkeeping, under the settings form's names (src/store/settings-table.ts
 * defines every setting with its default, URL name and help; its `Settings` satisfies this type, so
 * the page passes its settings as they are). The worker and the tests see this type, never the
 * store's table.
 */
import type { AdapterConfig, AdapterMode } from '../method/adapter';
import type { Projection } from '../method/shapes';
import { defaultTrainSettings, type TrainSettings } from './trainer';

export interface RunSettings {
  // ---- what trains
  mode: Exclude<AdapterMode, 'none'>;
  /** Experts per adapted projection (LoRAMoE). */
  experts: number;
  rank: number;
  alpha: number;
  dropout: number;
  targets: Projection[];
  lbcDelta: number;
  lbcBeta: number;
  lbcDirection: AdapterConfig['lbcDirection'];
  lbcImportance: AdapterConfig['lbcImportance'];
  /** Data type to experts ("world knowledge=0-3; *=4-7"); empty: the official binary grouping. */
  groups: string;
  // ---- how it trains (TrainSettings under the form's names)
  lr: number;
  schedule: TrainSettings['schedule'];
  /** TrainSettings.warmupRatio */
  warmup: number;
  weightDecay: number;
  /** TrainSettings.batchSize */
  batch: number;
  /** TrainSettings.gradAccum */
  accum: number;
  maxLength: number;
  steps: number;
  /** TrainSettings.maxGradNorm */
  clip: number;
  seed: number;
  // ---- run bookkeeping
  /** Steps between checkpoints (0: none). */
  checkpointEvery: number;
  /** Non-finite steps in a row before a rollback. */
  faultLimit: number;
  /** Steps per routing-heatmap window. */
  routingEvery: number;
}

/** The optimizer's settings of a run (TrainSettings under its own names; the rest at their defaults). */
export function trainSettingsOf(s: RunSettings): TrainSettings {
  return {
    ...defaultTrainSettings(),
    lr: s.lr,
    weightDecay: s.weightDecay,
    warmupRatio: s.warmup,
    schedule: s.schedule,
    batchSize: s.batch,
    gradAccum: s.accum,
    maxLength: s.maxLength,
    steps: s.steps,
    maxGradNorm: s.clip,
    seed: s.seed,
  };
}
