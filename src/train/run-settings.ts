/**
 * The run spec: `RunSettings`, what a run trains and how, under the settings form's names
 * (src/store/settings-table.ts defines every setting with its default, URL name and help; its
 * `Settings` satisfies this type). The page's form, a run description file (`settings`, without
 * the bookkeeping) and the engine worker's startRun all speak it; `adapterSpecOf` and
 * `trainSettingsOf` are the one translation into the adapter's and the trainer's own names.
 */
import { checkAdapterConfig, defaultAdapterConfig } from '../loramoe/config';
import { binaryGroups, parseTypeGroups } from '../loramoe/groups';
import type { AdapterConfig, AdapterMode } from '../method/adapter';
import type { MethodKey } from './comparison';
import { defaultTrainSettings, type TrainSettings } from './trainer';
import { errorMessage } from '../util/errors';

/** The adapter's fields that the form names as the adapter does (rank, alpha, dropout, targets, the LBC's). */
type SharedAdapterFields = Pick<AdapterConfig, 'rank' | 'alpha' | 'dropout' | 'targets' | 'lbcDelta' | 'lbcBeta' | 'lbcDirection' | 'lbcImportance'>;

export interface RunSettings extends SharedAdapterFields {
  // ---- what trains (and the adapter's fields of SharedAdapterFields)
  mode: Exclude<AdapterMode, 'none'>;
  /** Experts per adapted projection (LoRAMoE). */
  experts: number;
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
  // ---- a compared method's run (the Compare methods panel)
  /** Its adapter is built as this method from the LoRAMoE configuration (train/comparison.ts). */
  method?: MethodKey;
  /** Score the knowledge probe and the held-out task examples every this many steps, and before the first (absent or 0: never). */
  evalEvery?: number;
}

/** An adapter as the settings give it: everything but the expert groups, which only the data's types resolve. */
export type AdapterSpec = Omit<AdapterConfig, 'groups'>;

/** The fields of RunSettings that say what trains and how (a run description's `settings`); the rest is bookkeeping. */
export type TrainedSettings = Omit<RunSettings, 'checkpointEvery' | 'faultLimit' | 'routingEvery' | 'method' | 'evalEvery'>;

/** The run spec of the form's settings: its RunSettings fields and nothing else (the form holds more, such as the chat's). */
export function runSpecOf(s: RunSettings): RunSettings {
  const { mode, experts, rank, alpha, dropout, targets, lbcDelta, lbcBeta, lbcDirection, lbcImportance, groups } = s;
  const { lr, schedule, warmup, weightDecay, batch, accum, maxLength, steps, clip, seed, checkpointEvery, faultLimit, routingEvery, method, evalEvery } = s;
  return {
    ...{ mode, experts, rank, alpha, dropout, targets: [...targets], lbcDelta, lbcBeta, lbcDirection, lbcImportance, groups },
    ...{ lr, schedule, warmup, weightDecay, batch, accum, maxLength, steps, clip, seed, checkpointEvery, faultLimit, routingEvery },
    ...(method ? { method } : {}),
    ...(evalEvery ? { evalEvery } : {}),
  };
}

/** The adapter of the form's settings. A LoRA run has one expert; full fine-tuning keeps the form's adapter fields, unused. */
export function adapterSpecOf(s: TrainedSettings): AdapterSpec {
  return {
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
  };
}

/** The optimizer's settings of a run (TrainSettings under its own names; the rest at their defaults). */
export function trainSettingsOf(s: TrainedSettings): TrainSettings {
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

/**
 * The experts each data type is steered to under the form's settings: the official binary grouping
 * when the spec is empty, else the parsed spec. Returns the problem instead when there is one.
 */
export function resolveGroups(names: readonly string[], experts: number, spec: string): { groups: number[][]; error: null } | { groups: null; error: string } {
  try {
    if (spec.trim() === '') {
      if (experts % 2 !== 0) return { groups: null, error: `the official binary grouping needs an even number of experts, got ${experts}: change the expert count or write the groups` };
      return { groups: binaryGroups(names, experts), error: null };
    }
    return { groups: parseTypeGroups(spec, names, experts), error: null };
  } catch (e) {
    return { groups: null, error: errorMessage(e) };
  }
}

/** A run's adapter: the specification's, with the expert groups resolved against the data's types. */
export function runAdapterConfig(a: AdapterSpec, groupsText: string, names: readonly string[]): AdapterConfig {
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
