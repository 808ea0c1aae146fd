/**
 * A run's settings in two shapes: `RunSettings`, the settings form's fields under the form's names
 * (src/store/settings-table.ts defines every setting with its default, URL name and help; its
 * `Settings` satisfies this type), and `RunSpec`, what the engine worker is sent to start a run:
 * the adapter, the trainer's settings and the run's bookkeeping under the names the code below uses.
 * `runSpecOf` is the one translation between the two, so the worker renames nothing.
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

/** What the worker is sent to start (or prepare, or hand off) a run. */
export interface RunSpec {
  /** The adapter; its expert groups come from `groups` and the data's types, which only the worker knows. */
  adapter: Omit<AdapterConfig, 'groups'>;
  /** Data type to experts ("world knowledge=0-3; *=4-7"); empty: the official binary grouping. */
  groups: string;
  train: TrainSettings;
  /** Steps between checkpoints (0: none), non-finite steps in a row before a rollback, steps per routing window. */
  run: { checkpointEvery: number; faultLimit: number; routingEvery: number };
}

/** The run specification of the form's settings. A LoRA run has one expert; full fine-tuning keeps the form's adapter fields, unused. */
export function runSpecOf(s: RunSettings): RunSpec {
  return {
    adapter: {
      mode: s.mode,
      numExperts: s.mode === 'loramoe' ? s.experts : 1,
      rank: s.rank,
      alpha: s.alpha,
      dropout: s.dropout,
      targets: [...s.targets],
      lbcDelta: s.lbcDelta,
      lbcBeta: s.lbcBeta,
      lbcDirection: s.lbcDirection,
      lbcImportance: s.lbcImportance,
    },
    groups: s.groups,
    train: trainSettingsOf(s),
    run: { checkpointEvery: s.checkpointEvery, faultLimit: s.faultLimit, routingEvery: s.routingEvery },
  };
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
