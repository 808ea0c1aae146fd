/**
 * The run's checkpoint: the trainer's state file (src/train/checkpoint-file.ts) with the run's
 * record (RunMeta) in its metadata under "run", so a reload (the page) or `train --resume` (the
 * runner) can rebuild the run around it.
 *
 * The record is versioned and read with validation (parseRunMeta): a record from a newer version is
 * refused, a damaged one names its first wrong field, and records of older versions go through
 * migrateRunMeta, the one place that knows them.
 *
 *   version 1 (no "version" field): faultLimit, weights and routingSet could be absent
 *   version 2: faultLimit and weights always written
 */
import { checkAdapterConfig } from '../loramoe/config';
import { type AdapterConfig, LBC_DIRECTIONS, LBC_IMPORTANCES } from '../method/adapter';
import { PROJECTIONS } from '../method/shapes';
import type { WeightPrecision } from '../model/tensor-plan';
import { decodeTrainerState, encodeTrainerState } from '../train/checkpoint-file';
import { isMethodKey, type MethodKey } from '../train/comparison';
import type { RoutingSetSelection } from '../train/routing-set';
import { checkSettings, type TrainerCheckpoint, type TrainSettings } from '../train/trainer';
import type { BackboneRef } from './events';
import { DEFAULT_FAULT_LIMIT } from './faults';
import { errorMessage, parseJson } from '../util/errors';

export const RUN_META_VERSION = 2;

/** What a checkpoint was trained on and with: enough to rebuild the run around it. */
export interface RunMeta {
  version: typeof RUN_META_VERSION;
  runId: string;
  backbone: BackboneRef;
  /** Name and byte size of the training dataset (the dataset itself is stored separately). */
  dataset: { name: string; bytes: number; records: number };
  adapter: AdapterConfig;
  /** The settings the Trainer was built with (maxLength already clamped to the padded length). */
  train: TrainSettings;
  typeNames: string[];
  /** Run length the user asked for. */
  totalSteps: number;
  /** Steps between checkpoints and between routing-heatmap updates. */
  checkpointEvery: number;
  routingEvery: number;
  /** Faulty steps in a row before a rollback. */
  faultLimit: number;
  /** The routing set's record indices (src/train/routing-set.ts); absent without a router (unless the run scores held-out examples) and in records of version 1 that predate routing sets. */
  routingSet?: RoutingSetSelection;
  /** The compared method the run is (src/train/comparison.ts), for a run of the method comparison. */
  method?: MethodKey;
  /** Steps between held-out scores (the probe and the routing set's task examples); absent: none. */
  evalEvery?: number;
  /** How the backbone's matrices were stored; a resumed run keeps it. */
  weights: WeightPrecision;
  savedAt: number;
}

/** What a new run's record is made of; the rest follows (newRunMeta). */
export interface NewRunFields {
  runId: string;
  backbone: BackboneRef;
  dataset: RunMeta['dataset'];
  adapter: AdapterConfig;
  /** The Trainer's settings; their steps are the run's length. */
  train: TrainSettings;
  typeNames: readonly string[];
  checkpointEvery: number;
  routingEvery: number;
  faultLimit: number;
  /** The routing set held out (prepareNew's selection), or null for none. */
  selection: RoutingSetSelection | null;
  method?: MethodKey;
  /** Steps between held-out scores; 0 or absent: none. */
  evalEvery?: number;
  weights: WeightPrecision;
}

/** A new run's record (the current version, not yet saved): the one place its fields are put together. */
export function newRunMeta(f: NewRunFields): RunMeta {
  return {
    version: RUN_META_VERSION,
    runId: f.runId,
    backbone: f.backbone,
    dataset: f.dataset,
    adapter: f.adapter,
    train: f.train,
    typeNames: [...f.typeNames],
    totalSteps: f.train.steps,
    checkpointEvery: f.checkpointEvery,
    routingEvery: f.routingEvery,
    faultLimit: f.faultLimit,
    ...(f.selection ? { routingSet: f.selection } : {}),
    ...(f.method ? { method: f.method } : {}),
    ...((f.evalEvery ?? 0) > 0 ? { evalEvery: f.evalEvery } : {}),
    weights: f.weights,
    savedAt: 0,
  };
}

export interface DecodedCheckpoint {
  meta: RunMeta;
  trainer: TrainerCheckpoint;
}

export function encodeCheckpoint(meta: RunMeta, cp: TrainerCheckpoint): Uint8Array<ArrayBuffer> {
  return encodeTrainerState(cp, { run: JSON.stringify(meta) });
}

/** `source` names the file in errors ("run-x checkpoint: run.train must be ..."). */
export function decodeCheckpoint(bytes: Uint8Array, source = 'checkpoint'): DecodedCheckpoint {
  const { trainer, metadata } = decodeTrainerState(bytes, source);
  if (metadata.run === undefined) throw new Error(`${source}: holds no run record (metadata "run")`);
  return { meta: parseRunMeta(metadata.run, source), trainer };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Brings a run record of an older version up to the current one: the only place that knows the
 * older formats. Version 1 (no "version" field) left faultLimit (then 3) and weights (then f32)
 * out when they had their first value.
 */
export function migrateRunMeta(raw: Record<string, unknown>, source: string): Record<string, unknown> {
  const v = raw.version ?? 1;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error(`${source}: run.version must be a whole number of at least 1, got ${JSON.stringify(v)}`);
  if (v > RUN_META_VERSION) {
    throw new Error(`${source}: written by a newer version of the playground (run record version ${v}; this one reads up to ${RUN_META_VERSION}): update it to continue this run`);
  }
  if (v === 1) return { ...raw, version: 2, faultLimit: raw.faultLimit ?? DEFAULT_FAULT_LIMIT, weights: raw.weights ?? 'f32' };
  return raw;
}

/** `v` once `check` passes it; its error is prefixed with where `v` stands (`source: field: ...`). */
function checkedAt<T>(v: T, check: (v: T) => void, field: string, source: string): T {
  try {
    check(v);
  } catch (e) {
    throw new Error(`${source}: ${field}: ${errorMessage(e)}`, { cause: e });
  }
  return v;
}

/** Checks that `v` (the field `field` of `source`) is a whole adapter configuration, naming what is wrong. */
export function readAdapterConfig(v: unknown, field: string, source: string): AdapterConfig {
  if (
    !isObject(v) ||
    !['loramoe', 'lora', 'full', 'none'].includes(v.mode as string) ||
    !Array.isArray(v.targets) ||
    !v.targets.every((t) => (PROJECTIONS as readonly unknown[]).includes(t)) ||
    !Array.isArray(v.groups) ||
    !v.groups.every((g) => Array.isArray(g) && g.every((e) => Number.isInteger(e) && e >= 0)) ||
    !(LBC_DIRECTIONS as readonly unknown[]).includes(v.lbcDirection) ||
    !(LBC_IMPORTANCES as readonly unknown[]).includes(v.lbcImportance) ||
    !['numExperts', 'rank', 'alpha', 'dropout', 'lbcDelta', 'lbcBeta'].every((k) => typeof v[k] === 'number')
  ) {
    throw new Error(`${source}: ${field} must be an adapter configuration (mode, numExperts, rank, alpha, dropout, targets, groups and the balancing constraint's settings)`);
  }
  return checkedAt(v as unknown as AdapterConfig, checkAdapterConfig, field, source);
}

const TRAIN_KEYS = ['lr', 'weightDecay', 'beta1', 'beta2', 'eps', 'warmupRatio', 'batchSize', 'gradAccum', 'maxLength', 'steps', 'maxGradNorm', 'seed'] as const;

/** Checks that `v` (the field `field` of `source`) is whole training settings, naming what is wrong. */
export function readTrainSettings(v: unknown, field: string, source: string): TrainSettings {
  if (!isObject(v) || !TRAIN_KEYS.every((k) => typeof v[k] === 'number') || (v.schedule !== 'cosine' && v.schedule !== 'constant')) {
    throw new Error(`${source}: ${field} must be training settings (${TRAIN_KEYS.join(', ')}, schedule)`);
  }
  return checkedAt(v as unknown as TrainSettings, checkSettings, field, source);
}

/** Reads a run record (a checkpoint's metadata "run"), checking every field; `source` names the file in errors. */
export function parseRunMeta(json: string, source: string): RunMeta {
  const raw = parseJson(json, (m) => `${source}: the run record is not valid JSON (${m})`);
  if (!isObject(raw)) throw new Error(`${source}: the run record must be a JSON object`);
  const m = migrateRunMeta(raw, source);
  const bad = (field: string, expected: string) => new Error(`${source}: run.${field} must be ${expected}, got ${JSON.stringify(field.split('.').reduce<unknown>((o, k) => (isObject(o) ? o[k] : undefined), m)) ?? 'nothing'}`);
  const int = (v: unknown, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min;
  const indices = (v: unknown) => Array.isArray(v) && v.every((i) => int(i, 0));
  if (typeof m.runId !== 'string' || m.runId === '') throw bad('runId', 'a non-empty string');
  const b = m.backbone;
  if (!isObject(b) || !((b.kind === 'demo') || (b.kind === 'hub' && typeof b.repo === 'string') || (b.kind === 'local' && typeof b.name === 'string'))) {
    throw bad('backbone', '{"kind":"demo"}, {"kind":"hub","repo":...} or {"kind":"local","name":...}');
  }
  const d = m.dataset;
  if (!isObject(d) || typeof d.name !== 'string' || !int(d.bytes, 0) || !int(d.records, 0)) throw bad('dataset', 'the dataset\'s name, bytes and records');
  readAdapterConfig(m.adapter, 'run.adapter', source);
  readTrainSettings(m.train, 'run.train', source);
  if (!Array.isArray(m.typeNames) || !m.typeNames.every((n) => typeof n === 'string')) throw bad('typeNames', 'a list of data type names');
  if (!int(m.totalSteps, 1)) throw bad('totalSteps', 'a whole number of at least 1');
  if (!int(m.checkpointEvery, 0)) throw bad('checkpointEvery', 'a whole number of at least 0');
  if (!int(m.routingEvery, 0)) throw bad('routingEvery', 'a whole number of at least 0');
  if (!int(m.faultLimit, 1)) throw bad('faultLimit', 'a whole number of at least 1');
  const r = m.routingSet;
  if (r !== undefined && !(isObject(r) && indices(r.heldOut) && indices(r.sampled))) throw bad('routingSet', 'record indices under heldOut and sampled');
  if (m.method !== undefined && !(typeof m.method === 'string' && isMethodKey(m.method))) throw bad('method', 'a compared method\'s key');
  if (m.evalEvery !== undefined && !int(m.evalEvery, 0)) throw bad('evalEvery', 'a whole number of at least 0');
  if (m.weights !== 'f32' && m.weights !== 'f16') throw bad('weights', '"f32" or "f16"');
  if (typeof m.savedAt !== 'number') throw bad('savedAt', 'a time (milliseconds)');
  return m as unknown as RunMeta;
}
