/**
 * A run folder: a run as files, the same in the terminal and in the browser, so a run moves between
 * them and continues bit-identically.
 *
 *   run.json                  how the run was set up (FolderSetup): the backbone, the data file and
 *                             its SHA-256, the adapter and trainer settings
 *   checkpoint.safetensors    the trainer's state with the run's record (./checkpoint.ts RunMeta)
 *   metrics.jsonl             one line per step up to the checkpoint
 *   data/NAME                 the training data itself (folders the page exports; the runner's own
 *                             folders name a file elsewhere by its path)
 *
 * The runner writes one (`train --out DIR`) and continues one (`train --resume DIR`, or the page's
 * zip); the page exports a run of its library as a zip of one (exportFolder) and imports one
 * (readRunFolder). Data whose SHA-256 is not the one run.json records is refused (checkDataHash).
 */
import { unzipSync, zipSync } from 'fflate';
import { loadCheckpoint, loadDataset, saveCheckpoint } from '../io/persist';
import { decodeCheckpoint, readAdapterConfig, readTrainSettings, type RunMeta } from './checkpoint';
import type { CheckpointExtra } from './driver';
import type { AdapterConfig } from '../method/adapter';
import type { WeightPrecision } from '../model/tensor-plan';
import type { StepMetrics, TrainSettings } from '../train/trainer';
import { errorMessage, parseJson } from '../util/errors';
import { sha256Hex } from '../util/sha256';

export const SETUP_FILE = 'run.json';
export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const METRICS_FILE = 'metrics.jsonl';
/** run.json's `model` for the backbone that ships with the playground (public/models/demo). */
export const DEMO_MODEL = 'demo';

/** run.json: what `train --resume` needs to rebuild a run exactly. */
export interface FolderSetup {
  version: 1;
  /**
   * The backbone: a folder's path (absolute, so a run continues from any working directory),
   * "demo" for the shipped demo backbone, or, in a folder the page exported, the name of a
   * backbone from the Hub or the user's files (`train --resume DIR --model PATH` says where it is).
   */
  model: string;
  /** The data: an absolute path or `hf:` name, or a path inside the folder (data/NAME). */
  data: string;
  /** SHA-256 (hex) of the data file's bytes; absent in folders from before it was recorded. */
  dataSha256?: string;
  cfg: AdapterConfig;
  settings: TrainSettings;
  typeNames: string[];
  checkpointEvery: number;
  /** How the backbone's matrices were stored (absent in run files from before the choice: f32). */
  weights?: WeightPrecision;
  /** A dataset from the Hub (`data` is its hf: name): the rows, type and columns it was read with. */
  hub?: { rows?: number; dataType?: string; typeColumn?: string; columns?: string };
  /** A probe file (absolute) and the steps between held-out scores. */
  probe?: string;
  evalEvery?: number;
}

/** run.json's text read, every field checked; `source` names the file in errors. */
export function parseFolderSetup(text: string, source: string): FolderSetup {
  const raw = parseJson(text, (m) => `${source}: not valid JSON (${m}); is it a run folder's ${SETUP_FILE}?`);
  const fail = (what: string) => new Error(`${source}: ${what}`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail('not a JSON object');
  const r = raw as Record<string, unknown>;
  if (typeof r.version === 'number' && r.version > 1) throw fail(`written by a newer version of the runner (version ${r.version}; this one reads 1): update it to continue this run`);
  if (r.version !== 1) throw fail(`"version" must be 1, got ${JSON.stringify(r.version)}`);
  for (const k of ['model', 'data'] as const) if (typeof r[k] !== 'string' || r[k] === '') throw fail(`"${k}" must be a path, got ${JSON.stringify(r[k])}`);
  if (r.dataSha256 !== undefined && !(typeof r.dataSha256 === 'string' && /^[0-9a-f]{64}$/.test(r.dataSha256))) throw fail(`"dataSha256" must be 64 hex digits, got ${JSON.stringify(r.dataSha256)}`);
  readAdapterConfig(r.cfg, 'cfg', source);
  readTrainSettings(r.settings, 'settings', source);
  if (!Array.isArray(r.typeNames) || !r.typeNames.every((t) => typeof t === 'string')) throw fail('"typeNames" must be a list of data type names');
  if (!(Number.isInteger(r.checkpointEvery) && (r.checkpointEvery as number) >= 0)) throw fail(`"checkpointEvery" must be a whole number of at least 0, got ${JSON.stringify(r.checkpointEvery)}`);
  if (r.weights !== undefined && r.weights !== 'f32' && r.weights !== 'f16') throw fail(`"weights" must be "f32" or "f16", got ${JSON.stringify(r.weights)}`);
  if (r.hub !== undefined && (typeof r.hub !== 'object' || r.hub === null)) throw fail('"hub" must be the Hub dataset\'s flags');
  if (r.probe !== undefined && typeof r.probe !== 'string') throw fail(`"probe" must be a path, got ${JSON.stringify(r.probe)}`);
  if (r.evalEvery !== undefined && !(Number.isInteger(r.evalEvery) && (r.evalEvery as number) >= 1)) throw fail(`"evalEvery" must be a whole number of at least 1, got ${JSON.stringify(r.evalEvery)}`);
  return r as unknown as FolderSetup;
}

/** True when run.json's data path points inside the folder (the data travels with it). */
export function dataInFolder(setup: Pick<FolderSetup, 'data'>): boolean {
  return !setup.data.startsWith('/') && !setup.data.startsWith('hf:') && !/^[A-Za-z]:[\\/]/.test(setup.data) && !setup.data.split(/[\\/]/).includes('..');
}

/**
 * Refuses data whose SHA-256 is not the one the run recorded, naming the file and both hashes.
 * Returns the data's hash.
 */
export async function checkDataHash(file: string, bytes: Uint8Array<ArrayBuffer>, expected: string | undefined): Promise<string> {
  const got = await sha256Hex(bytes);
  if (expected === undefined) return got;
  if (got === '') throw new Error(`${file}: its SHA-256 cannot be computed here (crypto.subtle needs https or localhost), so it cannot be checked against the run's data (SHA-256 ${expected})`);
  if (got !== expected) {
    throw new Error(`${file}: SHA-256 ${got} is not that of the data the run was trained on (SHA-256 ${expected}, recorded in ${SETUP_FILE}): the run continues only on the same data, byte for byte`);
  }
  return got;
}

/** One line of metrics.jsonl: a step's metrics (a damaged line is named by file and line). */
export function metricsLine(line: string, file: string, n: number): StepMetrics {
  const v = parseJson(line, (m) => `${file}:${n}: not valid JSON (${m})`);
  if (typeof v !== 'object' || v === null || typeof (v as { step?: unknown }).step !== 'number') throw new Error(`${file}:${n}: expected a step's metrics (an object with "step")`);
  return v as StepMetrics;
}

/** metrics.jsonl's text: the metrics of steps 1 .. `steps` (the file must hold at least that many). */
export function parseMetrics(text: string, file: string, steps: number): StepMetrics[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length < steps) throw new Error(`${file} has ${lines.length} steps, the checkpoint ${steps}`);
  return lines.slice(0, steps).map((l, i) => metricsLine(l, file, i + 1));
}

export function metricsText(metrics: readonly StepMetrics[]): string {
  return metrics.map((x) => JSON.stringify(x)).join('\n') + '\n';
}

/** What run.json says `model` is for a run's backbone: "demo", or the backbone's name. */
export function modelOf(meta: Pick<RunMeta, 'backbone'>): string {
  const b = meta.backbone;
  return b.kind === 'demo' ? DEMO_MODEL : b.kind === 'hub' ? b.repo : b.name;
}

export interface FolderContents {
  meta: RunMeta;
  /** The checkpoint file's bytes (with the run's record). */
  checkpoint: Uint8Array<ArrayBuffer>;
  /** The metrics of steps 1 .. the checkpoint's step. */
  metrics: readonly StepMetrics[];
  /** The training data's file name and bytes. */
  data: { name: string; bytes: Uint8Array<ArrayBuffer> };
}

/** A data file's name made safe as one path part (data/NAME). */
function safeName(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  const clean = base.replace(/[^\w.-]+/g, '-').replace(/^\.+/, '');
  return clean === '' ? 'data.jsonl' : clean;
}

/**
 * A run as a zip of its folder (every entry under `<runId>/`, so unzipping gives the folder), the
 * data in it with its SHA-256 in run.json: what the page's Export gives and `train --resume` takes.
 */
export async function exportFolder(c: FolderContents): Promise<{ name: string; bytes: Uint8Array<ArrayBuffer> }> {
  const { meta } = c;
  const dataPath = `data/${safeName(c.data.name)}`;
  const dataSha256 = await sha256Hex(c.data.bytes);
  if (dataSha256 === '') throw new Error(`the data's SHA-256 cannot be computed here (crypto.subtle needs https or localhost): the run folder needs it`);
  const setup: FolderSetup = {
    version: 1,
    model: modelOf(meta),
    data: dataPath,
    dataSha256,
    cfg: meta.adapter,
    settings: { ...meta.train, steps: meta.totalSteps },
    typeNames: [...meta.typeNames],
    checkpointEvery: meta.checkpointEvery,
    weights: meta.weights,
  };
  const dir = safeName(meta.runId);
  const enc = new TextEncoder();
  const files: Record<string, Uint8Array> = {
    [`${dir}/${SETUP_FILE}`]: enc.encode(JSON.stringify(setup, null, 1)),
    [`${dir}/${CHECKPOINT_FILE}`]: c.checkpoint,
    [`${dir}/${METRICS_FILE}`]: enc.encode(metricsText(c.metrics)),
    [`${dir}/${dataPath}`]: c.data.bytes,
  };
  return { name: `${dir}.zip`, bytes: zipSync(files, { level: 6, mtime: new Date(2000, 0, 1) }) as Uint8Array<ArrayBuffer> };
}

/**
 * A zip's files by path, with the one folder every entry sits in (a run folder's zip) taken off:
 * "run-x/run.json" is "run.json". `source` names the zip in errors.
 */
export function unzipFolder(bytes: Uint8Array, source: string): Map<string, Uint8Array<ArrayBuffer>> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw new Error(`${source}: not a readable zip archive (${errorMessage(e)})`, { cause: e });
  }
  return stripTopFolder(new Map(Object.entries(files).filter(([p]) => !p.endsWith('/')) as [string, Uint8Array<ArrayBuffer>][]));
}

/** Paths with the one top folder all of them share taken off (a picked folder, an unzipped one). */
export function stripTopFolder<T>(files: Map<string, T>): Map<string, T> {
  const paths = [...files.keys()].map((p) => p.replace(/\\/g, '/').replace(/^\/+/, ''));
  const top = paths[0]?.split('/')[0];
  const shared = top !== undefined && paths.every((p) => p.startsWith(`${top}/`)) && !paths.includes(SETUP_FILE);
  return new Map([...files.values()].map((v, i) => [shared ? paths[i].slice(top.length + 1) : paths[i], v]));
}

/** A run folder read from its files (the page's import: a picked folder or a zip), before its data is checked. */
export interface ReadFolder {
  setup: FolderSetup;
  meta: RunMeta;
  checkpoint: Uint8Array<ArrayBuffer>;
  /** The checkpoint's step. */
  step: number;
  metrics: StepMetrics[];
  /** The data file when the folder carries it (data/NAME), else null: the data is named by path and hash. */
  data: { name: string; bytes: Uint8Array<ArrayBuffer> } | null;
}

/** Reads a run folder's files (paths relative to the folder); `source` names the folder in errors. */
export function readRunFolder(files: Map<string, Uint8Array<ArrayBuffer>>, source: string): ReadFolder {
  const need = (name: string): Uint8Array<ArrayBuffer> => {
    const f = files.get(name);
    if (!f) throw new Error(`${source}: no ${name} in it; a run folder holds ${SETUP_FILE}, ${CHECKPOINT_FILE} and ${METRICS_FILE} (found: ${[...files.keys()].slice(0, 8).join(', ') || 'nothing'})`);
    return f;
  };
  const dec = new TextDecoder();
  const setup = parseFolderSetup(dec.decode(need(SETUP_FILE)), `${source}/${SETUP_FILE}`);
  const checkpoint = need(CHECKPOINT_FILE);
  const { meta, trainer } = decodeCheckpoint(checkpoint, `${source}/${CHECKPOINT_FILE}`);
  const metrics = parseMetrics(dec.decode(need(METRICS_FILE)), `${source}/${METRICS_FILE}`, trainer.stepsDone);
  const inside = dataInFolder(setup) ? files.get(setup.data.replace(/\\/g, '/').replace(/^\.\//, '')) : undefined;
  const data = inside ? { name: meta.dataset.name, bytes: inside } : null;
  return { setup, meta, checkpoint, step: trainer.stepsDone, metrics, data };
}

// ---- the page's side: the runs library in IndexedDB (../io/persist.ts) ---------------------------

/**
 * A run of this browser's library as a run folder's zip: its latest checkpoint and series, and the
 * training data kept in the browser (which must be the data the run trained on).
 */
export async function exportStoredRun(runId: string): Promise<{ name: string; bytes: Uint8Array<ArrayBuffer> }> {
  const stored = await loadCheckpoint<RunMeta>(runId);
  if (!stored) throw new Error(`run ${runId} has no checkpoint in this browser: there is nothing to continue elsewhere`);
  const checkpoint = new Uint8Array(stored.bytes);
  const { meta, trainer } = decodeCheckpoint(checkpoint, `the checkpoint of run ${runId}`);
  const data = await loadDataset('train');
  if (!data || data.name !== meta.dataset.name || data.bytes.byteLength !== meta.dataset.bytes) {
    throw new Error(`run ${runId} was trained on ${meta.dataset.name} (${meta.dataset.bytes} bytes), which is not the training data kept in this browser${data ? ` (${data.name}, ${data.bytes.byteLength} bytes)` : ''}: load it in the Data panel, then export again`);
  }
  const extra = (stored.extra ?? {}) as Partial<CheckpointExtra>;
  const metrics = (Array.isArray(extra.metrics) ? extra.metrics : []).filter((m) => m.step <= trainer.stepsDone);
  if (metrics.length < trainer.stepsDone) throw new Error(`run ${runId}: its checkpoint at step ${trainer.stepsDone} keeps the metrics of ${metrics.length} steps only`);
  return exportFolder({ meta, checkpoint, metrics, data: { name: data.name, bytes: new Uint8Array(data.bytes) } });
}

/**
 * Keeps a run folder's checkpoint in this browser's library (under the run's own id), with its
 * series, so the run continues here as if it had been trained here. The data must be checked first.
 */
export async function storeImportedRun(f: Pick<ReadFolder, 'meta' | 'checkpoint' | 'metrics' | 'step'>): Promise<void> {
  const extra: CheckpointExtra = { metrics: [...f.metrics], routing: null, routingSet: null };
  await saveCheckpoint(f.checkpoint.slice().buffer, { runId: f.meta.runId, step: f.step, totalSteps: f.meta.totalSteps, meta: f.meta }, extra);
}
