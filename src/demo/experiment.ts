/**
 * The forgetting experiment: fine-tune the demo backbone on the demo data with full fine-tuning,
 * plain LoRA, LoRAMoE without the LBC and LoRAMoE with it in each direction (same steps, same data,
 * same order, same seed), then score the held-out knowledge probe, the downstream tasks, and where
 * the router sends each data type. With `evalEvery`, the probe and the tasks are also scored during
 * training: the forgetting and learning curves against instruction samples seen. Each LoRAMoE
 * variant is also scored with each expert group switched off (the specialisation table). With
 * `seeds`, every method trains from each seed, and the tables give each figure as the mean and 95%
 * Student-t interval over the seeds (summarizeSeeds), with differences tested in pairs by seed
 * (methodDifferences, NOISE_RULE). Each run trains through the run driver (src/run/driver.ts
 * TrainingRun): its loop, NaN guard, held-out scores and knockouts, checkpoints into the study.
 */
import { parseDataset } from '../data/import';
import { DOWNSTREAM_TASK, WORLD_KNOWLEDGE, typeNamesFor } from '../method/data-types';
import { type EncodedSample, encodeOfficial, type InstructionRecord } from '../data/template';
import type { GpuContext } from '../engine/gpu';
import { defaultAdapterConfig } from '../loramoe/config';
import { type AdapterConfig, hasAdapter } from '../method/adapter';
import { type Projection } from '../method/shapes';
import { binaryGroups } from '../loramoe/groups';
import { initAdapter } from '../loramoe/init';
import type { Backbone } from '../model/load';
import { GpuWeights } from '../model/weights';
import { comparedAdapter, COMPARISON_DEFAULTS, type CurvePoint, type HeldOutScore, heldOutScore, isMethodKey, knockoutScores, type KnockoutScore, METHOD_KEYS, METHOD_NAMES, type MethodKey } from '../train/comparison';
import { decodeTrainerState, encodeTrainerState } from '../train/checkpoint-file';
import { evaluate } from '../train/evaluate';
import { defaultTrainSettings, type TrainerCheckpoint, type TrainSettings } from '../train/trainer';
import { newRunMeta } from '../run/checkpoint';
import { type CheckpointStore, type DriverEvent, makeTrainer, TrainingRun } from '../run/driver';
import { DEFAULT_FAULT_LIMIT } from '../run/faults';
import { errorMessage } from '../util/errors';
import { formatPercentCI, type MeanCI, meanCI, pairedDifference, type PairedDifference } from '../util/stats';

export interface Method {
  /** Short key for --methods. */
  key: MethodKey;
  name: string;
  adapter: AdapterConfig;
  lr: number;
}

/** One method trained from one seed. */
export interface MethodResult {
  key: MethodKey;
  method: string;
  lr: number;
  /** The seed of this run: the adapter's initialisation, the data order and the dropout masks. */
  seed: number;
  probeBefore: number;
  probeAfter: number;
  probeLogLikelihoodAfter: number;
  /** Exact match per downstream task before training (the backbone alone) and after. */
  tasksBefore: Record<string, number>;
  tasks: Record<string, number>;
  taskMean: number;
  finalCe: number;
  /** Share of router weight held by the world-knowledge group, per data type (LoRAMoE only). */
  knowledgeShare: Record<string, number> | null;
  /** Share of router weight on each data type's own expert group (LoRAMoE only). */
  ownGroupShare: Record<string, number> | null;
  /** Probe and task accuracy every `evalEvery` steps, from step 0 (empty without evalEvery). */
  curve: CurvePoint[];
  /** The specialisation table: probe and task accuracy after training with each expert group switched off (LoRAMoE only). */
  knockout: KnockoutScore[] | null;
  seconds: number;
}

export interface ExperimentOptions {
  steps: number;
  batchSize: number;
  maxLength: number;
  /** The first seed; with `seeds` N every method trains from seed, seed + 1, ..., seed + N - 1. */
  seed: number;
  /** Runs per method, one per seed (default 1). */
  seeds?: number;
  /** Learning rate of the adapter methods and of full fine-tuning. */
  lrAdapter: number;
  lrFull: number;
  /** Learning rates per method (parseLrGrid): every method listed trains once per rate, the others at lrAdapter / lrFull. */
  lrGrid?: LrGrid;
  /** Projections LoRA and LoRAMoE adapt (default: the official feed-forward three). */
  targets?: Projection[];
  /** Keys of the methods to run (default: all, see experimentMethods). */
  methods?: string[];
  /** Score the probe and the tasks every this many steps (0: only before and after). */
  evalEvery?: number;
  /** Keeps finished runs and checkpoints of runs in progress: an interrupted study resumes (see StudyStore). */
  study?: StudyStore;
  /** Steps between a study run's checkpoints (default 50). */
  checkpointEvery?: number;
  /**
   * Trains only the runs whose place in the run list, modulo `count`, is `index` (the runs are
   * methods x learning rates x seeds, in that order); finished runs of other shards found in the
   * study are read. `experiment --jobs N` starts N processes, one shard each, on one study.
   */
  shard?: { index: number; count: number };
  log: (line: string) => void;
}

/** The experiment command's defaults: the README's table is this command at these settings. */
export const EXPERIMENT_DEFAULTS = { ...COMPARISON_DEFAULTS, seeds: 3 };

/** The seeds of an experiment: seed, seed + 1, ... (`count` of them, at least one). */
export function experimentSeeds(seed: number, count: number): number[] {
  if (!Number.isInteger(count) || count < 1) throw new Error(`--seeds must be a positive integer, got ${count}`);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer, got ${seed}`);
  return Array.from({ length: count }, (_, i) => seed + i);
}

export { METHOD_KEYS };

/** Learning rates per method: each listed method trains once per rate (and per seed). */
export type LrGrid = Partial<Record<MethodKey, number[]>>;

/**
 * The documented grid (`--lr-grid default`): about a factor of 2.5 between neighbours around each
 * method's rate in the shipped experiment (5e-3 for the adapters, 1e-3 for full fine-tuning), one
 * step down and one up, so that a method's forgetting can be told apart from its step size.
 */
export const DEFAULT_LR_GRID: LrGrid = Object.fromEntries(METHOD_KEYS.map((k) => [k, k === 'full' ? [4e-4, 1e-3, 2.5e-3] : [2e-3, 5e-3, 1.25e-2]]));

/**
 * `--lr-grid`: "default" (DEFAULT_LR_GRID), or "KEY=LR,LR;KEY=LR" per method (keys: METHOD_KEYS),
 * or a plain "LR,LR" for every adapter method (full fine-tuning keeps --lr-full).
 */
export function parseLrGrid(text: string): LrGrid {
  if (text.trim() === 'default') return DEFAULT_LR_GRID;
  const rates = (list: string, what: string): number[] => {
    const out = list.split(',').map((x) => x.trim()).filter((x) => x !== '').map(Number);
    if (out.length === 0 || out.some((x) => !Number.isFinite(x) || x <= 0)) throw new Error(`--lr-grid: ${what} needs a list of positive learning rates, got "${list}"`);
    return [...new Set(out)];
  };
  if (!text.includes('=')) {
    const lrs = rates(text, 'the adapter methods');
    return Object.fromEntries(METHOD_KEYS.filter((k) => k !== 'full').map((k) => [k, lrs]));
  }
  const grid: LrGrid = {};
  for (const part of text.split(';').map((p) => p.trim()).filter((p) => p !== '')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    if (eq < 0 || !isMethodKey(key)) throw new Error(`--lr-grid: "${part}" should be METHOD=LR,LR with METHOD one of ${METHOD_KEYS.join(', ')}`);
    grid[key] = rates(part.slice(eq + 1), key);
  }
  return grid;
}

export function experimentMethods(o: ExperimentOptions, typeNames: readonly string[]): Method[] {
  const base = defaultAdapterConfig('loramoe');
  const moe: AdapterConfig = { ...base, ...(o.targets ? { targets: o.targets } : {}), groups: binaryGroups(typeNames, base.numExperts) };
  if (o.methods) for (const k of o.methods) if (!isMethodKey(k)) throw new Error(`unknown method "${k}"; known: ${METHOD_KEYS.join(', ')}`);
  const keys = METHOD_KEYS.filter((k) => !o.methods || o.methods.includes(k));
  // One method per learning rate of the grid; its name says the rate when the grid gives it several.
  return keys.flatMap((key) => {
    const lrs = o.lrGrid?.[key] ?? [key === 'full' ? o.lrFull : o.lrAdapter];
    return lrs.map((lr) => ({ key, name: lrs.length > 1 ? `${METHOD_NAMES[key]}, lr ${lr.toExponential()}` : METHOD_NAMES[key], adapter: comparedAdapter(key, moe), lr }));
  });
}

async function readJsonl(readFile: (path: string) => Promise<Uint8Array>, path: string): Promise<{ records: InstructionRecord[]; bytes: Uint8Array }> {
  const bytes = await readFile(path);
  const res = await parseDataset(bytes, path.split('/').pop() ?? path);
  if (res.errors.length > 0) throw new Error(`${path}: ${res.errors.length} bad records`);
  return { records: res.records, bytes };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * Where a study keeps its progress, so that an interrupted `experiment --study DIR` resumes where it
 * stopped: the settings it was started with (`study.json`, checked on every start), the backbone's
 * scores before training, one file per finished run, and the latest checkpoint of each run in
 * progress. Names are plain file names; `where` names the study in messages.
 */
export interface StudyStore {
  where: string;
  read(name: string): Promise<Uint8Array | null>;
  /** Replaces the file whole or not at all (a crash mid-write leaves the previous version). */
  write(name: string, bytes: Uint8Array | string): Promise<void>;
  remove(name: string): Promise<void>;
}

/** A run's name in a study: method, learning rate and seed (its result is NAME.json, its checkpoint NAME.checkpoint). */
export function studyRunName(key: MethodKey, lr: number, seed: number): string {
  return `${key}_lr${lr.toExponential()}_seed${seed}`;
}

/**
 * What a study's results depend on besides the run names: a resumed study must train with the same
 * steps, batch, length, scoring cadence and targets, on the same backbone and data (SHA-256 of the
 * weights and of each data file). Methods, learning rates and seeds are not here: they only pick
 * runs, so a study can be widened later (more seeds, another rate) and keeps what it has.
 */
interface StudySettings {
  version: 1;
  steps: number;
  batchSize: number;
  maxLength: number;
  evalEvery: number;
  targets: string;
  backbone: string;
  data: { train: string; probe: string; taskEval: string };
}

async function sha256(parts: readonly Uint8Array[]): Promise<string> {
  const hex = (b: ArrayBuffer) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
  // One digest per part, then a digest of the digests: no copy of a large backbone into one buffer.
  const digests = await Promise.all(parts.map((p) => crypto.subtle.digest('SHA-256', p.slice())));
  if (digests.length === 1) return hex(digests[0]);
  const joined = new Uint8Array(digests.length * 32);
  digests.forEach((d, i) => joined.set(new Uint8Array(d), i * 32));
  return hex(await crypto.subtle.digest('SHA-256', joined));
}

/** Checks a study's saved settings against this command's (first start: saves them). */
async function openStudy(store: StudyStore, settings: StudySettings): Promise<void> {
  const saved = await store.read('study.json');
  if (!saved) {
    await store.write('study.json', JSON.stringify(settings, null, 1));
    return;
  }
  let old: Record<string, unknown>;
  try {
    old = JSON.parse(new TextDecoder().decode(saved)) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${store.where}/study.json is damaged (${errorMessage(e)}); remove the folder to start the study again`, { cause: e });
  }
  for (const [k, v] of Object.entries(settings)) {
    if (JSON.stringify(old[k]) !== JSON.stringify(v)) {
      throw new Error(`${store.where} was started with ${k} ${JSON.stringify(old[k])}, this command has ${JSON.stringify(v)}: results trained differently cannot be pooled; give another --study folder, or the study's own settings`);
    }
  }
}

/** What a run in progress keeps beside its trainer checkpoint (in the checkpoint's metadata). */
interface RunProgress {
  curve: CurvePoint[];
  finalCe: number;
  seconds: number;
}

/**
 * Where a study run's checkpoints go: `NAME.checkpoint`, the trainer's state with the run's progress
 * in its metadata (the format studies on disk resume from), every `checkpointEvery` steps before the
 * last. The last step's state is declined: the run's result (NAME.json) replaces its checkpoint, so
 * a run cut off before writing it resumes from its last checkpoint and trains the rest again.
 */
function studyCheckpoints(study: StudyStore, name: string, steps: number, progress: () => RunProgress): CheckpointStore {
  return {
    persistent: true,
    async save(_meta, cp) {
      if (cp.stepsDone >= steps) return false;
      await study.write(`${name}.checkpoint`, encodeTrainerState(cp, { progress: JSON.stringify(progress()) }));
      return true;
    },
  };
}

/** What every run of an experiment shares: the engine, the encoded data and the backbone's scores. */
interface ExperimentInputs {
  ctx: GpuContext;
  backbone: Backbone;
  o: ExperimentOptions;
  study: StudyStore | null;
  /** The training file: its name, size and records (the run record names them). */
  trainFile: { name: string; bytes: number; records: number };
  samples: EncodedSample[];
  names: string[];
  probe: InstructionRecord[];
  taskEval: InstructionRecord[];
  /** The backbone's scores before fine-tuning: every curve's origin. */
  before: HeldOutScore;
  /** The probe questions and the task evaluation set, encoded: where routing is read after training. */
  routingSet: EncodedSample[];
}

export async function runExperiment(
  ctx: GpuContext,
  backbone: Backbone,
  files: { train: string; probe: string; taskEval: string; readFile: (path: string) => Promise<Uint8Array> },
  o: ExperimentOptions,
): Promise<MethodResult[]> {
  const trainFile = await readJsonl(files.readFile, files.train);
  const probeFile = await readJsonl(files.readFile, files.probe);
  const taskEvalFile = await readJsonl(files.readFile, files.taskEval);
  const [train, probe, taskEval] = [trainFile.records, probeFile.records, taskEvalFile.records];
  const tok = backbone.tokenizer;
  const names = typeNamesFor(train.map((r) => r.type));
  const samples = train.map((r) => encodeOfficial(tok, r, o.maxLength));
  const cut = samples.filter((s) => s.truncated).length;
  if (cut > 0) o.log(`note: ${cut} training samples cut to ${o.maxLength} tokens`);
  const study = o.study ?? null;
  if (study) {
    await openStudy(study, {
      version: 1,
      steps: o.steps,
      batchSize: o.batchSize,
      maxLength: o.maxLength,
      evalEvery: o.evalEvery ?? 0,
      targets: (o.targets ?? defaultAdapterConfig('loramoe').targets).join(','),
      backbone: await sha256([...backbone.weights.values()].map((w) => new Uint8Array(w.buffer, w.byteOffset, w.byteLength))),
      data: { train: await sha256([trainFile.bytes]), probe: await sha256([probeFile.bytes]), taskEval: await sha256([taskEvalFile.bytes]) },
    });
  }
  const readJson = async <T>(name: string): Promise<T | null> => {
    const bytes = study ? await study.read(name) : null;
    return bytes ? (JSON.parse(new TextDecoder().decode(bytes)) as T) : null;
  };
  let before = await readJson<HeldOutScore>('before.json');
  if (!before) {
    const baseline = new GpuWeights(ctx, backbone.config, backbone.weights, defaultAdapterConfig('none'), null, o.maxLength);
    before = await heldOutScore(ctx, baseline, tok, probe, taskEval);
    baseline.destroy();
    await study?.write('before.json', JSON.stringify(before));
  }
  o.log(`knowledge probe before fine-tuning: ${pct(before.probe)} (${probe.length} held-out questions); tasks: ${Object.entries(before.tasks).map(([t, v]) => `${t} ${pct(v)}`).join(', ')}`);
  const inputs: ExperimentInputs = {
    ctx,
    backbone,
    o,
    study,
    trainFile: { name: files.train.split('/').pop() ?? files.train, bytes: trainFile.bytes.length, records: train.length },
    samples,
    names,
    probe,
    taskEval,
    before,
    // Routing is read on a fixed mix: the probe questions (world knowledge) and the task evaluation set.
    routingSet: [...probe, ...taskEval].map((r) => encodeOfficial(tok, r, o.maxLength)),
  };
  const seeds = experimentSeeds(o.seed, o.seeds ?? 1);
  const runs = experimentMethods(o, names).flatMap((m) => seeds.map((seed) => ({ m, seed })));
  const shard = o.shard ?? { index: 0, count: 1 };
  const results: MethodResult[] = [];
  for (const [ordinal, { m, seed }] of runs.entries()) {
    const name = studyRunName(m.key, m.lr, seed);
    const label = seeds.length > 1 ? `${m.name} (seed ${seed})` : m.name;
    const done = await readJson<MethodResult>(`${name}.json`);
    if (done) {
      o.log(`${label}: finished earlier (${study!.where}/${name}.json)`);
      results.push(done);
      continue;
    }
    // Another shard's run: its result is read when that shard has written it.
    if (ordinal % shard.count !== shard.index) continue;
    results.push(await trainMethod(inputs, m, seed, name, label));
  }
  return results;
}

/**
 * One method from one seed: trains it through the run driver (resuming from the study's checkpoint
 * of this run when there is one), then scores it, with each expert group switched off and its routing
 * shares for LoRAMoE. In a study, the result replaces the run's checkpoint.
 */
async function trainMethod(inp: ExperimentInputs, m: Method, seed: number, name: string, label: string): Promise<MethodResult> {
  const { ctx, backbone, o, study, before } = inp;
  const tok = backbone.tokenizer;
  const evalEvery = o.evalEvery ?? 0;
  const t0 = performance.now();
  const adapter = hasAdapter(m.adapter) ? initAdapter(backbone.config, m.adapter, seed) : null;
  const weights = new GpuWeights(ctx, backbone.config, backbone.weights, m.adapter, adapter, o.maxLength);
  try {
    const settings: TrainSettings = { ...defaultTrainSettings(), lr: m.lr, steps: o.steps, batchSize: o.batchSize, maxLength: o.maxLength, seed };
    const trainer = makeTrainer(ctx, weights, inp.samples, inp.names, settings, tok.padId);
    let progress: RunProgress = { curve: evalEvery > 0 ? [{ step: 0, samples: 0, ...before }] : [], finalCe: 0, seconds: 0 };
    const saved = study ? await study.read(`${name}.checkpoint`) : null;
    let resumedFrom: TrainerCheckpoint | null = null;
    if (saved) {
      // The same trainer state (weights, moments, sampler, dropout RNG) as when it was saved: the run
      // goes on bit-identical to one never interrupted.
      const cp = decodeTrainerState(saved, `${study!.where}/${name}.checkpoint`);
      trainer.importCheckpoint(cp.trainer);
      progress = JSON.parse(cp.metadata.progress) as RunProgress;
      resumedFrom = cp.trainer;
      o.log(`${label}: resumed at step ${cp.trainer.stepsDone}/${o.steps}`);
    }
    const { curve } = progress;
    const meta = newRunMeta({
      runId: name,
      backbone: { kind: 'local', name: backbone.name },
      dataset: inp.trainFile,
      adapter: m.adapter,
      train: settings,
      typeNames: inp.names,
      // Only a study keeps checkpoints (studyCheckpoints).
      checkpointEvery: study ? (o.checkpointEvery ?? 50) : 0,
      // Routing is measured once, after training, on the probe and the task set (below): no window before the last step.
      routingEvery: o.steps,
      faultLimit: DEFAULT_FAULT_LIMIT,
      // The whole training file trains: the probe and the task examples are files of their own.
      selection: null,
      method: m.key,
      evalEvery,
      weights: weights.precision,
    });
    /** The score at the last step, and the knockouts the driver scores with it (LoRAMoE). */
    const end: { score: HeldOutScore | null; knockout: KnockoutScore[] | null } = { score: null, knockout: null };
    let failure: string | null = null;
    const run: TrainingRun = new TrainingRun({
      trainer,
      meta,
      tokenizer: tok,
      routingSet: null,
      // Held-out examples are cut as the weights' positions allow: the experiment's maximum length.
      positions: weights.maxPositions,
      store: study ? studyCheckpoints(study, name, o.steps, () => ({ ...progress, seconds: progress.seconds + (performance.now() - t0) / 1000 })) : { persistent: false, save: async () => false },
      probe: () => inp.probe,
      evalTasks: inp.taskEval,
      // The backbone's score is the curves' origin: step 0 is not scored again.
      originScored: true,
      checkpointSeconds: Infinity,
      good: resumedFrom ? { cp: resumedFrom, metrics: [], origin: 'checkpoint' } : { cp: await trainer.exportCheckpoint(), metrics: [], origin: 'start' },
      resumed: resumedFrom !== null,
      sink: (ev: DriverEvent) => {
        switch (ev.type) {
          case 'metrics': {
            const s = ev.point;
            progress.finalCe = s.ce;
            if (s.step % 50 === 0 || s.step === o.steps) o.log(`${label}: step ${s.step}/${o.steps} ce ${s.ce.toFixed(4)} lbc ${s.lbc.toFixed(4)}`);
            return;
          }
          case 'evalPoint': {
            // The knockouts are the run's result, not a point of its curves.
            const { knockout, ...point } = ev.point;
            curve.push(point);
            o.log(`${label}: step ${point.step}: probe ${pct(point.probe)}, tasks ${pct(point.taskMean)} (${Object.entries(point.tasks).map(([t, v]) => `${t} ${pct(v)}`).join(', ')})`);
            if (point.step === o.steps) [end.score, end.knockout] = [point, knockout ?? null];
            return;
          }
          case 'rewound': {
            // A rollback: the points after the state gone back to are trained again.
            const kept = curve.filter((p) => p.step <= run.trainer.stepsDone);
            curve.splice(0, curve.length, ...kept);
            return;
          }
          case 'notice':
            o.log(`${label}: ${ev.event.message}`);
            if (ev.event.kind === 'rollback' && ev.event.severity === 'error') failure = ev.event.message;
            return;
          case 'status':
            if (ev.message) failure = ev.message;
            return;
          case 'routing':
            return;
        }
      },
    });
    try {
      await run.loop();
      if (run.status !== 'done') throw new Error(`${label}: training ${run.status === 'error' ? 'failed' : 'stopped'} at step ${run.trainer.stepsDone} of ${o.steps}: ${failure ?? 'unknown error'}`);
    } finally {
      run.dispose();
    }
    // Without evalEvery (or when the last step was faulty) the driver did not score the end.
    const after = end.score ?? (await heldOutScore(ctx, weights, tok, inp.probe, inp.taskEval));
    let shares: RoutingShares = { knowledgeShare: null, ownGroupShare: null };
    let knockout: KnockoutScore[] | null = null;
    if (m.adapter.mode === 'loramoe') {
      knockout = end.knockout ?? (await knockoutScores(ctx, weights, tok, inp.probe, inp.taskEval, inp.names));
      for (const k of knockout) o.log(`${label}, ${k.group} experts off: probe ${pct(k.probe)}, tasks ${pct(k.taskMean)}`);
      shares = await routingShares(inp, weights, m.adapter);
    }
    const r: MethodResult = {
      key: m.key,
      method: m.name,
      lr: m.lr,
      seed,
      probeBefore: before.probe,
      probeAfter: after.probe,
      probeLogLikelihoodAfter: after.probeLogLikelihood,
      tasksBefore: before.tasks,
      tasks: after.tasks,
      taskMean: after.taskMean,
      finalCe: progress.finalCe,
      ...shares,
      curve,
      knockout,
      seconds: progress.seconds + (performance.now() - t0) / 1000,
    };
    o.log(`${label}: probe ${pct(r.probeAfter)}, tasks ${pct(r.taskMean)}, ${r.seconds.toFixed(0)} s`);
    if (study) {
      await study.write(`${name}.json`, JSON.stringify(r));
      await study.remove(`${name}.checkpoint`);
    }
    return r;
  } finally {
    weights.destroy();
  }
}

/** Where a trained LoRAMoE sends each data type (MethodResult's knowledgeShare and ownGroupShare). */
type RoutingShares = Pick<MethodResult, 'knowledgeShare' | 'ownGroupShare'>;

/** Routing on the experiment's routing set: each type's weight on the world-knowledge group, and on its own group. */
async function routingShares(inp: ExperimentInputs, weights: GpuWeights, adapter: AdapterConfig): Promise<RoutingShares> {
  const { names } = inp;
  const typeIndex = (t: string) => names.indexOf(t);
  const ev = await evaluate(inp.ctx, weights, inp.routingSet, typeIndex, names, { padId: inp.backbone.tokenizer.padId, batchSize: 256 });
  const routing = ev.routing!;
  const kGroup = adapter.groups[names.indexOf(WORLD_KNOWLEDGE)];
  const knowledgeShare: Record<string, number> = {};
  const ownGroupShare: Record<string, number> = {};
  routing.types.forEach((t, ti) => {
    if (routing.tokens[ti] === 0) return;
    let share = 0;
    for (const layer of routing.mean[ti]) for (const row of layer) for (const e of kGroup) share += row[e];
    knowledgeShare[t] = share / (routing.layers * routing.projections.length);
  });
  for (const g of routing.ownGroup) if (g.samples > 0) ownGroupShare[g.type] = g.share;
  return { knowledgeShare, ownGroupShare };
}

/** A curve point over seeds: probe and task mean with their 95% intervals. */
export interface CurvePointCI {
  step: number;
  samples: number;
  probe: MeanCI;
  taskMean: MeanCI;
}

/** One method over its seeds: every figure as mean and 95% confidence interval (Student t over seeds). */
export interface MethodSummary {
  key: MethodKey;
  method: string;
  lr: number;
  seeds: number[];
  /** The backbone alone (the same for every seed). */
  probeBefore: number;
  tasksBefore: Record<string, number>;
  probeAfter: MeanCI;
  probeLogLikelihoodAfter: MeanCI;
  tasks: Record<string, MeanCI>;
  taskMean: MeanCI;
  finalCe: MeanCI;
  knowledgeShare: Record<string, MeanCI> | null;
  ownGroupShare: Record<string, MeanCI> | null;
  /** Per expert group: probe and task mean with it off, and the paired difference from all groups on. */
  knockout: { group: string; experts: number[]; probe: MeanCI; taskMean: MeanCI; probeDrop: PairedDifference; taskDrop: PairedDifference }[] | null;
  /** The curves, point by point over the seeds (points every run has). */
  curve: CurvePointCI[];
}

/** The runs of each method and learning rate, in method order (results come method by method, seed by seed). */
function byMethod(results: readonly MethodResult[]): MethodResult[][] {
  const groups = new Map<string, MethodResult[]>();
  for (const r of results) {
    const g = groups.get(`${r.key}@${r.lr}`);
    if (g) g.push(r);
    else groups.set(`${r.key}@${r.lr}`, [r]);
  }
  return [...groups.values()];
}

/** Mean and interval per key of records that every run has (null when the first run has none). */
function ciRecord(runs: readonly MethodResult[], get: (r: MethodResult) => Record<string, number> | null): Record<string, MeanCI> | null {
  const first = get(runs[0]);
  if (!first) return null;
  return Object.fromEntries(Object.keys(first).map((k) => [k, meanCI(runs.map((r) => get(r)?.[k] ?? NaN))]));
}

/** Every method's figures over its seeds. */
export function summarizeSeeds(results: readonly MethodResult[]): MethodSummary[] {
  return byMethod(results).map((runs) => {
    const r0 = runs[0];
    const over = (get: (r: MethodResult) => number) => meanCI(runs.map(get));
    const curve: CurvePointCI[] = r0.curve
      .filter((p) => runs.every((r) => r.curve.some((q) => q.step === p.step)))
      .map((p) => {
        const at = runs.map((r) => r.curve.find((q) => q.step === p.step)!);
        return { step: p.step, samples: p.samples, probe: meanCI(at.map((q) => q.probe)), taskMean: meanCI(at.map((q) => q.taskMean)) };
      });
    const knockout = r0.knockout
      ? r0.knockout.map((k) => {
          const off = runs.map((r) => r.knockout?.find((x) => x.group === k.group));
          const probe = off.map((x) => x?.probe ?? NaN);
          const task = off.map((x) => x?.taskMean ?? NaN);
          return {
            group: k.group,
            experts: k.experts,
            probe: meanCI(probe),
            taskMean: meanCI(task),
            probeDrop: pairedDifference(runs.map((r) => r.probeAfter), probe),
            taskDrop: pairedDifference(runs.map((r) => r.taskMean), task),
          };
        })
      : null;
    return {
      key: r0.key,
      method: r0.method,
      lr: r0.lr,
      seeds: runs.map((r) => r.seed),
      probeBefore: r0.probeBefore,
      tasksBefore: r0.tasksBefore,
      probeAfter: over((r) => r.probeAfter),
      probeLogLikelihoodAfter: over((r) => r.probeLogLikelihoodAfter),
      tasks: ciRecord(runs, (r) => r.tasks) ?? {},
      taskMean: over((r) => r.taskMean),
      finalCe: over((r) => r.finalCe),
      knowledgeShare: ciRecord(runs, (r) => r.knowledgeShare),
      ownGroupShare: ciRecord(runs, (r) => r.ownGroupShare),
      knockout,
      curve,
    };
  });
}

/** The rule that marks a difference beyond noise, as the tables and the JSON state it. */
export const NOISE_RULE = 'paired t-test across seeds at the 5% level: * where the 95% interval of the per-seed differences excludes 0';

/** Two methods compared seed by seed on the probe and the task mean (paired t-test: beyondNoise). */
export interface MethodDifference {
  a: string;
  b: string;
  /** a - b, per seed, over the seeds. */
  probe: PairedDifference;
  taskMean: PairedDifference;
}

/**
 * Pairs of methods compared on the seeds both ran (a before b in method order): every pair when each
 * method has one learning rate; with a learning-rate grid, the pairs of different methods at the same
 * rate (the comparisons where only the method differs; how a method's rates trade tasks against
 * knowledge is the chart's to show, and 15 rates would make 105 rows).
 */
export function methodDifferences(results: readonly MethodResult[]): MethodDifference[] {
  const methods = byMethod(results);
  const grid = new Set(results.map((r) => r.key)).size < methods.length;
  const out: MethodDifference[] = [];
  for (let i = 0; i < methods.length; i++) {
    for (let j = i + 1; j < methods.length; j++) {
      if (grid && (methods[i][0].lr !== methods[j][0].lr || methods[i][0].key === methods[j][0].key)) continue;
      const seeds = methods[i].map((r) => r.seed).filter((s) => methods[j].some((r) => r.seed === s));
      const pick = (runs: MethodResult[], f: (r: MethodResult) => number) => seeds.map((s) => f(runs.find((r) => r.seed === s)!));
      out.push({
        a: methods[i][0].method,
        b: methods[j][0].method,
        probe: pairedDifference(pick(methods[i], (r) => r.probeAfter), pick(methods[j], (r) => r.probeAfter)),
        taskMean: pairedDifference(pick(methods[i], (r) => r.taskMean), pick(methods[j], (r) => r.taskMean)),
      });
    }
  }
  return out;
}

const ci = (c: MeanCI) => formatPercentCI(c);
const share3 = (c: MeanCI | undefined) => (!c || !Number.isFinite(c.mean) ? '—' : c.half === null ? c.mean.toFixed(3) : `${c.mean.toFixed(3)} ± ${c.half.toFixed(3)}`);

/**
 * The results as a Markdown table (README): per method, every figure as the mean over the seeds ±
 * the half-width of its 95% confidence interval (Student t; no ± with one seed).
 */
export function experimentTable(results: readonly MethodResult[]): string {
  const summary = summarizeSeeds(results);
  const taskNames = Object.keys(summary[0]?.tasks ?? {}).sort();
  const head = ['method', 'probe before', 'probe after', 'probe log-lik. after', ...taskNames, 'tasks mean', 'own-group share: world knowledge / tasks'];
  const rows = summary.map((s) => {
    let share = '—';
    if (s.ownGroupShare) {
      // The tasks' share: per seed, the mean over the task types; then over the seeds.
      const runs = results.filter((r) => r.key === s.key && r.lr === s.lr);
      const taskShare = meanCI(runs.map((r) => mean(Object.entries(r.ownGroupShare ?? {}).filter(([t]) => t !== WORLD_KNOWLEDGE && t !== DOWNSTREAM_TASK).map(([, v]) => v))));
      share = `${share3(s.ownGroupShare[WORLD_KNOWLEDGE])} / ${share3(taskShare)}`;
    }
    const ll = s.probeLogLikelihoodAfter;
    return [s.method.includes(', lr ') ? s.method : `${s.method} (lr ${s.lr.toExponential()})`, pct(s.probeBefore), ci(s.probeAfter), ll.half === null ? ll.mean.toFixed(2) : `${ll.mean.toFixed(2)} ± ${ll.half.toFixed(2)}`, ...taskNames.map((t) => ci(s.tasks[t])), ci(s.taskMean), share];
  });
  const base = summary[0];
  const before = base ? [['backbone alone', pct(base.probeBefore), '', '', ...taskNames.map((t) => pct(base.tasksBefore[t] ?? NaN)), pct(mean(Object.values(base.tasksBefore))), '—']] : [];
  return [head, head.map(() => '---'), ...before, ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

/** A paired difference in percentage points, marked * when beyond noise. */
function diffText(d: PairedDifference): string {
  if (!Number.isFinite(d.mean)) return '—';
  const m = `${d.mean >= 0 ? '+' : '−'}${Math.abs(d.mean * 100).toFixed(1)}`;
  return `${m}${d.half === null ? '' : ` ± ${(d.half * 100).toFixed(1)}`} pp${d.beyondNoise ? ' *' : ''}`;
}

/**
 * The pairs of methodDifferences: the per-seed difference in probe and task accuracy (mean ± 95%
 * interval, percentage points), marked * where a paired t-test across seeds finds it beyond noise
 * (the interval excludes zero). Empty with one seed.
 */
export function differencesTable(results: readonly MethodResult[]): string {
  const diffs = methodDifferences(results);
  if (diffs.length === 0 || diffs.every((d) => d.probe.n < 2)) return '';
  const head = ['methods (a − b)', 'probe after', 'tasks mean'];
  const rows = diffs.map((d) => [`${d.a} − ${d.b}`, diffText(d.probe), diffText(d.taskMean)]);
  return [head, head.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

/**
 * The specialisation table (Markdown): for each LoRAMoE variant, probe and task accuracy with every
 * group on and with each expert group switched off (mean ± 95% interval over the seeds); a cell is
 * marked * when its paired difference from all groups on is beyond noise. Experts that hold world
 * knowledge show as a probe drop when their group is off; experts that hold task skill, as a task drop.
 */
export function specialisationTable(results: readonly MethodResult[]): string {
  const moe = summarizeSeeds(results).filter((s) => s.knockout && s.knockout.length > 0);
  if (moe.length === 0) return '';
  const groups = moe[0].knockout!.map((k) => k.group);
  const head = ['method', 'probe, all on', ...groups.map((g) => `probe, ${g} off`), 'tasks, all on', ...groups.map((g) => `tasks, ${g} off`)];
  const mark = (d: PairedDifference) => (d.beyondNoise ? ' *' : '');
  const rows = moe.map((s) => {
    const by = (g: string) => s.knockout!.find((k) => k.group === g);
    const cell = (g: string, which: 'probe' | 'taskMean') => {
      const k = by(g);
      if (!k) return '—';
      return `${ci(k[which])}${mark(which === 'probe' ? k.probeDrop : k.taskDrop)}`;
    };
    return [s.method, ci(s.probeAfter), ...groups.map((g) => cell(g, 'probe')), ci(s.taskMean), ...groups.map((g) => cell(g, 'taskMean'))];
  });
  return [head, head.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}
