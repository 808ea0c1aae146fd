/**
 * The headless runner: the same engine, shaders and model as the playground, in Node. The process
 * entry is ./bin.ts (`npm run runner -- ...`).
 *
 *   npm run runner -- train    --model DIR --data FILE --out DIR [--adapter DIR] [options]
 *   npm run runner -- train    --resume DIR|ZIP   (a run folder: this runner's, or the page's export)
 *   npm run runner -- eval     --model DIR [--adapter DIR] --data FILE [--batch N]
 *   npm run runner -- generate --model DIR [--adapter DIR] --prompt TEXT [options]
 *   (eval and generate take --mask-experts LIST: expert knockout)
 *
 * `npm run runner -- help` lists every option. Output: train writes the adapter (official LoRAMoE
 * layout), metrics.jsonl and routing.json into --out; eval prints JSON; generate prints the text.
 */
import { appendFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDataset, formatImportError, type ImportedRecord } from '../data/import';
import { DirectoryCaches } from '../io/node-cache';
import { DEFAULT_HUB_ROWS, HUB_DATA_PREFIX, type HubDataFlags, loadHubData } from './hub-data';
import { summarizeDataset } from '../data/summary';
import { encodeOfficial, encodePrompt, type EncodedSample } from '../data/template';
import type { TextTokenizer } from '../data/tokenizer';
import { unknownReport } from '../data/unknown';
import { isSoftwareAdapter } from '../engine/autotune';
import { describeAdapter, type GpuContext } from '../engine/gpu';
import { nodeGpu } from '../engine/node-gpu';
import { runnerKernels } from './kernel-cache';
import { DirectorySource } from '../io/node-files';
import { writeSafetensors } from '../io/safetensors';
import { writeAtomic } from './files';
import { directoryStudy, parseShard, runShards } from './study';
import { checkAdapterConfig, defaultAdapterConfig } from '../loramoe/config';
import { type AdapterConfig, type AdapterMode, hasAdapter, isRouted, LBC_DIRECTIONS, LBC_IMPORTANCES, type LbcDirection, type LbcImportance } from '../method/adapter';
import { PROJECTIONS, type Projection } from '../method/shapes';
import { rangeText, parseExpertMask } from '../method/expert-mask';
import { adapterFiles, loadAdapter } from '../loramoe/files';
import { continueAdapterConfig, describeLoaded } from './continue';
import { filesIn, isInteractive, type ProgressStep, TrainProgress, trainSummary, writeJsonTo } from './progress';
import { binaryGroups, parseTypeGroups } from '../loramoe/groups';
import { adapterTypeNames, typeNamesFor } from '../method/data-types';
import { initAdapter, type AdapterSet } from '../loramoe/init';
import { expectedTensorNames } from '../model/config';
import { DEMO_SEED } from '../demo/build';
import { differencesTable, EXPERIMENT_DEFAULTS, experimentTable, METHOD_KEYS, methodDifferences, NOISE_RULE, parseLrGrid, runExperiment, specialisationTable, summarizeSeeds } from '../demo/experiment';
import { curvesSvg, tradeoffSvg } from '../demo/plot';
import { DEMO_SIZE, pretrainDemo } from '../demo/pretrain';
import { Generator } from '../model/generate';
import { loadBackbone, type Backbone } from '../model/load';
import { GpuWeights } from '../model/weights';
import { resolvePrecision, usablePrecision, WEIGHT_SETTINGS, type WeightPrecision, type WeightSetting } from '../model/tensor-plan';
import { decodeTrainerState } from '../train/checkpoint-file';
import { evaluate } from '../train/evaluate';
import { officialRunZip } from '../train/official-export';
import { defaultTrainSettings, type TrainerCheckpoint, type TrainSettings } from '../train/trainer';
import { decodeCheckpoint, encodeCheckpoint, newRunMeta, type RunMeta } from '../run/checkpoint';
import { type CheckpointExtra, type CheckpointStore, heldOutTasks, makeTrainer, prepareNew, prepareResume, runPositions, samplesLeftOut, TrainingRun } from '../run/driver';
import { DEFAULT_FAULT_LIMIT } from '../run/faults';
import { CHECKPOINT_FILE, checkDataHash, DEMO_MODEL, type FolderSetup, METRICS_FILE, metricsText, parseFolderSetup, parseMetrics, SETUP_FILE as RUN_FILE, unzipFolder } from '../run/run-folder';
import { presetNamed, PRESETS } from '../train/presets';
import { parseRunDescription, type RunDescription } from '../train/run-description';
import { adapterSpecOf, runAdapterConfig, trainSettingsOf } from '../train/run-settings';
import { errorMessage } from '../util/errors';

const HELP = `LoRAMoE Playground runner

  train     --model DIR --data FILE --out DIR [--adapter DIR]
            [--mode loramoe|lora|full] [--experts 8] [--rank 4] [--alpha 32] [--dropout 0.05]
            [--targets gate_proj,up_proj,down_proj] [--lbc-delta 0.1] [--lbc-beta 0.1]
            [--lbc-direction official|own-group] [--lbc-importance mean|sum]
            [--groups "world knowledge=0-3;*=4-7"] [--lr 2e-4] [--steps 100] [--batch 4]
            [--accum 1] [--max-length 256] [--warmup 0.03] [--schedule cosine|constant]
            [--weight-decay 0] [--clip 1] [--seed 42] [--log-every 1] [--json FILE|-]
            progress: a bar with ETA and tokens/s on a terminal, plain step lines otherwise;
            --json FILE: the run's summary as JSON ("-": on stdout, instead of step lines)
            [--checkpoint-every 50] [--stop-after N] [--probe FILE --eval-every N]
            writes run.json (the run's setup) and checkpoint.safetensors (every N steps and
            at the end) into --out; --stop-after N stops after N steps of this invocation;
            --probe FILE --eval-every N: scores the knowledge probe FILE and the routing set's
            held-out task examples before the first step and every N steps (eval.jsonl)
            --adapter DIR continues training an adapter (the playground's, the official LoRAMoE
            code's adapter_model.bin, or PEFT LoRA): its mode, experts, rank, alpha and targets
            are kept (a flag contradicting them is an error), other settings come from flags
  train     --preset NAME --out DIR [--checkpoint-every N] [--stop-after N] [--log-every N] [--json FILE]
            trains a run description: NAME is a shipped preset (${PRESETS.map((p) => p.name).join(', ')};
            docs/runner.md, "Presets") or the path of such a .json file; it names its backbone
            and data and every training setting, so no other shaping flag is taken
  train     --resume DIR|ZIP [--model PATH] [--stop-after N] [--log-every N]
            continues DIR's run from its checkpoint, bit-identical to a run never stopped
            (same batches, dropout masks and updates); ZIP: a run folder the playground's runs
            library exported (Folder), unpacked beside it into a folder of its name first;
            --model PATH: where the run's backbone is, when run.json names it rather than a folder
            here; data whose SHA-256 is not the one run.json records is refused
  eval      --model DIR [--adapter DIR] --data FILE [--batch N] [--max-length 256] [--json FILE]
            [--lbc-direction ...] [--lbc-importance ...] [--lbc-delta ...] [--lbc-beta ...]
            (the constraint as the adapter was trained, unless given); prints, per data type,
            the router weight on its own expert group beside the constraint's optimum
  generate  --model DIR [--adapter DIR] --prompt TEXT [--input TEXT] [--max-new-tokens 64]
            [--temperature 0] [--top-k 0] [--top-p 1] [--seed 0] [--no-adapter] [--routing]
  eval, generate also take [--mask-experts LIST]: expert knockout, a LoRAMoE adapter's experts
            switched off in every adapted layer (router logit minus infinity, the others
            renormalised); LIST is expert indices (0-3, 1,5) or a data type's name, meaning the
            experts of its group ("world knowledge"); eval's JSON names them (expertMask)
  train, eval, generate also take [--matmul cached|tune|KERNEL]: the matmul kernels (cached: the
            choice --matmul tune measured earlier on this GPU, kept in ~/.cache/loramoe-playground/
            kernel-tuning.json or $LORAMOE_KERNEL_CACHE; tune: time the candidates now, about 2 s;
            KERNEL forces one: fixed, tiled-64x64, tiled-128x64, tiled-64x64-8x8, tiled-32x32, vec4,
            ragged, scalar) and [--weights auto|f32|f16]: how the backbone's matrices are stored
            (auto: f16 on a hardware GPU, f32 on a software one; full fine-tuning always f32)
  export-official --data FILE --out FILE.zip [--model NAME] [train's adapter and optimizer options]
            the run for the official LoRAMoE trainer: data/train.json (official format),
            run_loramoe.sh (these settings on its flags), README.md (mapping, what does not map)
  demo-build [--out public/models/demo] [--data-out public/data] [--steps 500] [--batch 64]
            [--lr 4e-3] [--seed 1234] [--hidden 96] [--layers 3] [--ffn 256]
            rebuilds the demo backbone from scratch (data, tokenizer, pretraining, probe)
  experiment [--model public/models/demo] [--data-dir public/data] [--steps ${EXPERIMENT_DEFAULTS.steps}] [--batch ${EXPERIMENT_DEFAULTS.batchSize}]
            [--max-length ${EXPERIMENT_DEFAULTS.maxLength}] [--lr ${EXPERIMENT_DEFAULTS.lrAdapter}] [--lr-full ${EXPERIMENT_DEFAULTS.lrFull}] [--seed ${EXPERIMENT_DEFAULTS.seed}] [--seeds ${EXPERIMENT_DEFAULTS.seeds}] [--json FILE] [--svg FILE]
            [--lr-grid default|METHOD=LR,LR;...|LR,LR] [--tradeoff-svg FILE]
            [--study DIR [--checkpoint-every 50] [--jobs N]]
            [--eval-every ${EXPERIMENT_DEFAULTS.evalEvery}] [--methods ${METHOD_KEYS.join(',')}] [--targets gate_proj,up_proj,down_proj]
            full fine-tuning vs LoRA vs LoRAMoE without the LBC and with it (official and own-group
            direction): knowledge kept, tasks learnt; --eval-every N scores the probe and the tasks
            every N steps (the curves in the JSON; 0: only before and after); each LoRAMoE variant
            is also scored with each expert group switched off (knockout: the JSON's "knockout",
            the specialisation table); --seeds N trains every method from seeds seed .. seed+N-1:
            every figure is the mean ± its 95% confidence interval (Student t over the seeds), the
            curves carry bands, and differences between methods are marked * when a paired t-test
            across seeds puts them beyond noise (the interval of the per-seed differences excludes 0);
            --lr-grid trains each method once per learning rate (default: 4e-4, 1e-3, 2.5e-3 for
            full fine-tuning, 2e-3, 5e-3, 1.25e-2 for the adapters; a plain list: every adapter
            method), and the differences compare methods at the same rate; --tradeoff-svg FILE: knowledge kept against tasks learnt, a point per method
            and learning rate with its intervals. LoRA is parameter-matched: rank experts x rank
            and alpha experts x alpha (the experts' trainable parameters and scale alpha / rank).
            --study DIR keeps each finished run in DIR and a checkpoint of each run in progress
            (every --checkpoint-every steps): the same command run again resumes where it stopped,
            bit-identical, and a wider one (more seeds, methods or rates) keeps what DIR has;
            other steps, batch, length, scoring, targets, backbone or data are refused.
            --jobs N trains the runs in N processes at once on the one study (--shard I/N: one
            process's share; the tables come when all are in)

Balancing constraint: --lbc-direction official (the released code: its optimum moves a sample's
router weight away from its own group, to (1-delta)/2 for two groups) or own-group (the sign
flipped: toward it, (1+delta)/2); --lbc-importance mean (each sample's router weights averaged
over its tokens: length-fair, the official loss at batch 1) or sum (summed: longer samples weigh
more and the spread of lengths moves the optimum).

Data: JSON, JSON Lines, CSV or Parquet in the official LoRAMoE format (instruction, input, output,
task_type 0|1), Alpaca, or chat messages. Defaults are the official LoRAMoE training script's.

--data hf:OWNER/NAME[:CONFIG][@SPLIT] (train, eval, export-official): a dataset from the Hugging
Face Hub, read from its auto-converted Parquet files (only the columns and row groups needed, over
range requests), cached in ~/.cache/loramoe-playground/hub or $LORAMOE_HUB_CACHE. CONFIG: the only
one or "default" unless given; SPLIT: "train" unless given. [--rows ${DEFAULT_HUB_ROWS}] rows to read;
official, Alpaca, Dolly (instruction, context, response, category) and chat layouts are recognised,
[--columns instruction=COL,input=COL,output=COL|messages=COL] maps any other; the data type comes
from task_type (official), category (Dolly) or [--type-column COL], else [--data-type NAME]
(default "downstream task"). Gated or private datasets: the token in $HF_TOKEN.`;

type Flags = Record<string, string | boolean | undefined>;

let gpu: Promise<GpuContext> | undefined;

/**
 * One device for every command of this process: its pipeline cache then serves them all (a
 * process that runs several commands, as the tests do, compiles each kernel once).
 */
function runnerGpu(): Promise<GpuContext> {
  gpu ??= nodeGpu().catch((e: unknown) => {
    gpu = undefined;
    throw e;
  });
  return gpu;
}

function num(flags: Flags, name: string, fallback: number): number {
  const v = flags[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) throw new Error(`--${name} must be a number, got "${String(v)}"`);
  return n;
}

/** --weights (WeightSetting) resolved on this adapter for this adapter configuration; logged. */
function runnerPrecision(flags: Flags, ctx: GpuContext, cfg: Pick<AdapterConfig, 'mode'>): WeightPrecision {
  const raw = str(flags, 'weights') ?? 'auto';
  if (!(WEIGHT_SETTINGS as readonly string[]).includes(raw)) throw new Error(`--weights must be one of ${WEIGHT_SETTINGS.join(', ')}; got "${raw}"`);
  const precision = usablePrecision(cfg, resolvePrecision(raw as WeightSetting, isSoftwareAdapter(ctx.adapter)));
  console.error(`backbone matrices: ${precision}${raw === 'auto' ? ' (auto)' : ''}${precision !== raw && raw !== 'auto' ? ' (full fine-tuning trains them in f32)' : ''}`);
  return precision;
}

function str(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

function need(flags: Flags, name: string): string {
  const v = str(flags, name);
  if (!v) throw new Error(`--${name} is required (see: npm run runner -- help)`);
  return v;
}

async function loadModel(dir: string): Promise<Backbone> {
  const b = await loadBackbone(new DirectorySource(dir));
  for (const w of b.warnings) console.error(`note: ${w}`);
  return b;
}

/** The --rows, --data-type, --type-column and --columns flags of a `hf:` dataset. */
function hubDataFlags(flags: Flags): HubDataFlags {
  const given = (['rows', 'data-type', 'type-column', 'columns'] as const).filter((f) => flags[f] !== undefined);
  const rows = flags.rows !== undefined ? num(flags, 'rows', DEFAULT_HUB_ROWS) : undefined;
  if (rows !== undefined && (!Number.isSafeInteger(rows) || rows < 1)) throw new Error(`--rows must be a whole number of at least 1, got "${String(flags.rows)}"`);
  const data = str(flags, 'data');
  if (given.length > 0 && data !== undefined && !data.startsWith(HUB_DATA_PREFIX)) {
    throw new Error(`${given.map((f) => `--${f}`).join(', ')} apply to a dataset from the Hub (--data ${HUB_DATA_PREFIX}OWNER/NAME), not to a file`);
  }
  return { rows, dataType: str(flags, 'data-type'), typeColumn: str(flags, 'type-column'), columns: str(flags, 'columns') };
}

/** A data file, or a dataset from the Hub (`hf:OWNER/NAME[:CONFIG][@SPLIT]`, cached on disk), read and checked by the importer: its records, name and size. */
async function loadData(file: string, hub: HubDataFlags = {}): Promise<{ records: ImportedRecord[]; name: string; bytes: number; raw: Uint8Array<ArrayBuffer> }> {
  let name = basename(file);
  let bytes: Uint8Array<ArrayBuffer>;
  if (file.startsWith(HUB_DATA_PREFIX)) {
    const got = await loadHubData(file, hub, { cacheStorage: new DirectoryCaches() as unknown as CacheStorage, token: process.env.HF_TOKEN, log: (l) => console.error(l) });
    name = got.name;
    bytes = new Uint8Array(got.bytes);
  } else {
    bytes = new Uint8Array(await readFile(file));
  }
  const res = await parseDataset(bytes, name);
  for (const e of res.errors.slice(0, 20)) console.error(`skipped: ${formatImportError(e)}`);
  if (res.errors.length > 20) console.error(`skipped: ... and ${res.errors.length - 20} more problems`);
  console.error(`${name}: ${res.counts.good} records (${Object.entries(res.counts.byType).map(([t, n]) => `${n} ${t}`).join(', ')}), ${res.counts.bad} skipped`);
  return { records: res.records, name, bytes: bytes.byteLength, raw: bytes };
}

async function loadRecords(file: string, hub: HubDataFlags = {}): Promise<ImportedRecord[]> {
  return (await loadData(file, hub)).records;
}

function encodeAll(tok: TextTokenizer, records: readonly ImportedRecord[], maxLength: number): EncodedSample[] {
  const samples = records.map((r) => encodeOfficial(tok, r, maxLength));
  const cut = samples.filter((s) => s.truncated).length;
  if (cut > 0) console.error(`note: ${cut} of ${samples.length} samples are longer than --max-length ${maxLength} and were cut`);
  return samples;
}

function lbcDirectionFlag(flags: Flags): LbcDirection | undefined {
  const v = str(flags, 'lbc-direction');
  if (v !== undefined && !LBC_DIRECTIONS.includes(v as LbcDirection)) throw new Error(`--lbc-direction must be ${LBC_DIRECTIONS.join(' or ')}, got "${v}"`);
  return v as LbcDirection | undefined;
}

function lbcImportanceFlag(flags: Flags): LbcImportance | undefined {
  const v = str(flags, 'lbc-importance');
  if (v !== undefined && !LBC_IMPORTANCES.includes(v as LbcImportance)) throw new Error(`--lbc-importance must be ${LBC_IMPORTANCES.join(' or ')}, got "${v}"`);
  return v as LbcImportance | undefined;
}

function adapterConfigFrom(flags: Flags, names: readonly string[]): AdapterConfig {
  const mode = (str(flags, 'mode') ?? 'loramoe') as AdapterMode;
  if (!['loramoe', 'lora', 'full'].includes(mode)) throw new Error(`--mode must be loramoe, lora or full, got "${mode}"`);
  const d = defaultAdapterConfig(mode);
  const N = mode === 'loramoe' ? num(flags, 'experts', d.numExperts) : 1;
  const targets = targetsFlag(flags) ?? d.targets;
  const groupsSpec = str(flags, 'groups');
  const cfg: AdapterConfig = {
    mode,
    numExperts: N,
    rank: num(flags, 'rank', d.rank),
    alpha: num(flags, 'alpha', d.alpha),
    dropout: num(flags, 'dropout', d.dropout),
    targets,
    lbcDelta: num(flags, 'lbc-delta', d.lbcDelta),
    lbcBeta: num(flags, 'lbc-beta', d.lbcBeta),
    lbcDirection: lbcDirectionFlag(flags) ?? d.lbcDirection,
    lbcImportance: lbcImportanceFlag(flags) ?? d.lbcImportance,
    groups: mode === 'loramoe' ? (groupsSpec ? parseTypeGroups(groupsSpec, names, N) : binaryGroups(names, N)) : [[0]],
  };
  checkAdapterConfig(cfg);
  return cfg;
}

function trainSettingsFrom(flags: Flags): TrainSettings {
  const d = defaultTrainSettings();
  const schedule = str(flags, 'schedule') ?? d.schedule;
  if (schedule !== 'cosine' && schedule !== 'constant') throw new Error(`--schedule must be cosine or constant, got "${schedule}"`);
  return {
    ...d,
    lr: num(flags, 'lr', d.lr),
    steps: num(flags, 'steps', d.steps),
    batchSize: num(flags, 'batch', d.batchSize),
    gradAccum: num(flags, 'accum', d.gradAccum),
    maxLength: num(flags, 'max-length', d.maxLength),
    warmupRatio: num(flags, 'warmup', d.warmupRatio),
    weightDecay: num(flags, 'weight-decay', d.weightDecay),
    maxGradNorm: num(flags, 'clip', d.maxGradNorm),
    seed: num(flags, 'seed', d.seed),
    schedule,
  };
}

/** Flags that shape a run: `--resume` takes them from the run's own run.json instead. */
const RUN_SHAPING_FLAGS = [
  'probe', 'eval-every',
  'model', 'data', 'adapter', 'mode', 'experts', 'rank', 'alpha', 'dropout', 'targets', 'lbc-delta', 'lbc-beta', 'lbc-direction', 'lbc-importance', 'groups',
  'lr', 'steps', 'batch', 'accum', 'max-length', 'warmup', 'schedule', 'weight-decay', 'clip', 'seed', 'out', 'weights', 'rows', 'data-type', 'type-column', 'columns',
];

/** DIR's run.json, every field checked (a damaged file names its first wrong field). */
async function readRunFile(dir: string): Promise<FolderSetup> {
  const path = join(dir, RUN_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`--resume ${dir}: cannot read ${RUN_FILE} (${errorMessage(e)}); is it a run folder written by train?`, { cause: e });
  }
  return parseFolderSetup(text, `--resume ${dir}: ${RUN_FILE}`);
}

/**
 * --resume FILE.zip (a run folder the page exported): unpacked beside it, into FILE/, which then
 * is the run folder; an existing FILE/ is never overwritten (it may hold the run's later steps).
 */
async function unpackRunZip(zip: string): Promise<string> {
  const dir = zip.replace(/\.zip$/i, '');
  if (await exists(dir)) throw new Error(`--resume ${zip}: ${dir} exists already; continue the run there (--resume ${dir}) or move it away to start again from the zip`);
  const files = unzipFolder(new Uint8Array(await readFile(zip)), zip);
  if (!files.has(RUN_FILE)) throw new Error(`--resume ${zip}: holds no ${RUN_FILE}; is it a run folder the playground exported?`);
  for (const [path, bytes] of files) {
    const to = resolve(dir, path);
    if (!to.startsWith(resolve(dir) + sep)) throw new Error(`--resume ${zip}: entry ${path} points outside the folder`);
    await mkdir(dirname(to), { recursive: true });
    await writeFile(to, bytes);
  }
  console.error(`unpacked ${zip} into ${dir}`);
  return dir;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The shipped demo backbone and training data, as the runner finds them from the repository's root. */
const DEMO_MODEL_DIR = 'public/models/demo';
const DEMO_TRAIN_FILE = 'public/data/demo-train.jsonl';
/** --preset NAME (a shipped preset, src/presets/) or PATH (a run description file anywhere). */
async function readPreset(arg: string): Promise<RunDescription> {
  const shipped = presetNamed(arg);
  if (shipped) return shipped;
  if (/^[a-z0-9][a-z0-9-]*$/.test(arg)) throw new Error(`--preset ${arg}: no such preset (the presets are ${PRESETS.map((p) => p.name).join(', ')}; or give a path to a .json file)`);
  let text: string;
  try {
    text = await readFile(arg, 'utf8');
  } catch (e) {
    throw new Error(`--preset ${arg}: cannot read it (${errorMessage(e)})`, { cause: e });
  }
  return parseRunDescription(text, arg);
}

async function train(flags: Flags): Promise<void> {
  const resumeDir = str(flags, 'resume');
  const presetArg = str(flags, 'preset');
  if (resumeDir && presetArg) throw new Error('--resume continues a run as it was set up; drop --preset');
  if (resumeDir || presetArg) {
    const given = RUN_SHAPING_FLAGS.filter((f) => flags[f] !== undefined && !(presetArg && (f === 'out' || f === 'weights')) && !(resumeDir && f === 'model'));
    if (given.length > 0 && resumeDir) throw new Error(`--resume continues a run as it was set up; drop ${given.map((f) => `--${f}`).join(', ')} (see ${join(resumeDir, RUN_FILE)})`);
    if (given.length > 0) throw new Error(`--preset ${presetArg} sets every training setting; drop ${given.map((f) => `--${f}`).join(', ')} (or copy the preset's file, edit it and pass its path)`);
  }
  // A zip the page exported is unpacked into a folder beside it, which the run then continues in.
  const runDir = resumeDir && /\.zip$/i.test(resumeDir) ? await unpackRunZip(resumeDir) : resumeDir;
  const run = runDir ? await readRunFile(runDir) : null;
  const preset = presetArg ? await readPreset(presetArg) : null;
  if (preset) console.error(`preset ${preset.name}: ${preset.summary}`);
  const out = runDir ?? need(flags, 'out');
  // A moved run names its backbone ("demo", or a name from the page: --model PATH says where it is)
  // and carries its data inside the folder (a relative path).
  const modelDir = run ? (str(flags, 'model') ?? (run.model === DEMO_MODEL ? DEMO_MODEL_DIR : run.model)) : preset ? DEMO_MODEL_DIR : need(flags, 'model');
  const dataFile = run ? (run.data.startsWith(HUB_DATA_PREFIX) || isAbsolute(run.data) ? run.data : join(out, run.data)) : preset ? DEMO_TRAIN_FILE : need(flags, 'data');
  if (run && !(await exists(modelDir)) && !str(flags, 'model')) {
    throw new Error(`--resume ${out}: the run's backbone ${run.model} is not a folder here; give its folder with --model PATH`);
  }
  const hub = run ? (run.hub ?? {}) : hubDataFlags(flags);
  const backbone = await loadModel(modelDir);
  const data = await loadData(dataFile, hub);
  // Data that is not byte for byte what the run trained on is refused, naming both hashes.
  const dataSha256 = await checkDataHash(dataFile, data.raw, run?.dataSha256);
  const records = data.records;
  const names = typeNamesFor(records.map((r) => r.type));
  if (run && names.join('\n') !== run.typeNames.join('\n')) throw new Error(`--resume: ${dataFile} now has data types ${names.join(', ')}, the run had ${run.typeNames.join(', ')}`);
  // --adapter: continue from an adapter folder (own, official LoRAMoE or PEFT) instead of a fresh init.
  const from = str(flags, 'adapter');
  const loaded = from ? await loadAdapter(new DirectorySource(from), backbone.config) : null;
  const cfg = run
    ? run.cfg
    : preset
      ? runAdapterConfig(adapterSpecOf(preset.settings), preset.settings.groups, names)
      : loaded
        ? continueAdapterConfig(from!, loaded, flags, names, (f) => adapterConfigFrom(f, names))
        : adapterConfigFrom(flags, names);
  if (run) checkAdapterConfig(cfg);
  if (loaded) console.error(`continuing from ${describeLoaded(from!, loaded)}`);
  const settings = run ? run.settings : preset ? trainSettingsOf(preset.settings) : trainSettingsFrom(flags);
  const checkpointEvery = run ? run.checkpointEvery : num(flags, 'checkpoint-every', 50);
  // --probe FILE --eval-every N: the knowledge probe and the routing set's held-out task examples
  // scored before the first step and every N steps (eval.jsonl), as the page's comparison runs do.
  const probeFile = run ? run.probe : str(flags, 'probe');
  const evalEvery = run ? (run.evalEvery ?? 0) : flags['eval-every'] !== undefined ? num(flags, 'eval-every', 0) : 0;
  if (!run && (probeFile === undefined) !== (evalEvery === 0)) throw new Error('--probe FILE and --eval-every N go together: the probe is scored every N steps');
  if (evalEvery < 0 || !Number.isInteger(evalEvery)) throw new Error(`--eval-every must be a whole number of at least 1, got "${String(flags['eval-every'])}"`);
  const probe = probeFile !== undefined ? (await loadData(probeFile)).records : undefined;
  // How much of the data the tokenizer knows, before any time goes into training on it.
  const summary = summarizeDataset(records, backbone.tokenizer, settings.maxLength);
  for (const line of unknownReport(summary.unknown, summary.byType, backbone.name)) console.error(line);
  // The page's sizes: RoPE tables and the longest sample by the backbone's context (run/driver.ts).
  const positions = runPositions(backbone.config);
  const resumed = run ? await readRunCheckpoint(out, run) : null;
  // The run driver encodes the data, holds the routing set out and leaves answerless samples out,
  // as the page does (a run folder from before routing sets held nothing out, and continues so).
  const prepared = resumed
    ? prepareResume({ tokenizer: backbone.tokenizer, records, meta: resumed.meta, samplerSize: resumed.cp.sampler.n })
    : prepareNew({ tokenizer: backbone.tokenizer, records, typeNames: names, adapter: cfg, train: settings, positions, scores: evalEvery > 0 });
  const leftOut = samplesLeftOut(prepared, resumed?.cp.stepsDone ?? 0);
  if (leftOut) console.error(`warning: ${leftOut.message}`);
  const ctx = await runnerGpu();
  console.error(`adapter: ${describeAdapter(ctx.adapter)}`);
  console.error(await runnerKernels(ctx, backbone.config, str(flags, 'matmul')));
  const adapter: AdapterSet | null = loaded ? loaded.set : hasAdapter(cfg) ? initAdapter(backbone.config, cfg, settings.seed) : null;
  // A resumed run keeps its precision, so it continues bit-identically.
  const precision = run ? (run.weights ?? 'f32') : runnerPrecision(flags, ctx, cfg);
  const weights = new GpuWeights(ctx, backbone.config, backbone.weights, cfg, adapter, positions, precision);
  const trainer = makeTrainer(ctx, weights, prepared.samples, names, prepared.train, backbone.tokenizer.padId);
  await mkdir(out, { recursive: true });
  const meta: RunMeta =
    resumed?.meta ??
    newRunMeta({
      runId: `run-${basename(resolve(out))}`,
      // The shipped demo backbone is the page's demo, another is named as the page names a picked
      // folder (its last part), so the run folder imports into the page.
      backbone: resolve(modelDir) === resolve(DEMO_MODEL_DIR) ? { kind: 'demo' } : { kind: 'local', name: basename(resolve(modelDir)) },
      dataset: { name: data.name, bytes: data.bytes, records: records.length },
      adapter: cfg,
      train: prepared.train,
      typeNames: names,
      checkpointEvery,
      // The routing set is measured where the run rests and at its last step.
      routingEvery: settings.steps,
      faultLimit: DEFAULT_FAULT_LIMIT,
      selection: prepared.selection,
      evalEvery,
      weights: precision,
    });
  let saved: CheckpointExtra | undefined;
  if (resumed) {
    const cp = resumed.cp;
    trainer.importCheckpoint(cp);
    const file = join(out, METRICS_FILE);
    saved = { metrics: parseMetrics(await readFile(file, 'utf8'), `--resume: ${file}`, cp.stepsDone), routing: null, routingSet: null };
    console.error(`resuming ${out} at step ${cp.stepsDone} of ${settings.steps}`);
  } else {
    const isHub = dataFile.startsWith(HUB_DATA_PREFIX);
    const runFile: FolderSetup = {
      version: 1,
      model: resolve(modelDir),
      data: isHub ? dataFile : resolve(dataFile),
      dataSha256,
      cfg,
      settings,
      typeNames: names,
      checkpointEvery,
      weights: precision,
      ...(isHub ? { hub } : {}),
      ...(probeFile !== undefined ? { probe: resolve(probeFile), evalEvery } : {}),
    };
    await writeAtomic(join(out, RUN_FILE), JSON.stringify(runFile, null, 1));
  }
  const logEvery = num(flags, 'log-every', 1);
  // A bar on a terminal, plain step lines otherwise; --json FILE: the run's summary ("-": stdout, no step lines).
  const json = str(flags, 'json');
  const progress = new TrainProgress({ total: settings.steps, startStep: trainer.stepsDone, tty: isInteractive(), logEvery, quiet: json === '-' });
  const ranSteps: ProgressStep[] = [];
  const stopAfter = flags['stop-after'] !== undefined ? num(flags, 'stop-after', 0) : Infinity;
  let failure: string | null = null;
  /** --stop-after asked the run to pause (any other pause is the driver's, after a fault came back). */
  let stopping = false;
  // The run folder is the store: the checkpoint (with the run's description) and the series up to it.
  const store: CheckpointStore = {
    persistent: true,
    async save(m, cp, extra) {
      await writeAtomic(join(out, CHECKPOINT_FILE), encodeCheckpoint(m, cp));
      await writeAtomic(join(out, METRICS_FILE), metricsText(extra.metrics));
      return true;
    },
  };
  const evalLines: string[] = [];
  const driver: TrainingRun = new TrainingRun({
    trainer,
    meta,
    tokenizer: backbone.tokenizer,
    routingSet: prepared.routingSet,
    positions,
    store,
    probe: () => probe,
    // Checkpoints every --checkpoint-every steps and where the run rests, as documented (never by time).
    checkpointSeconds: Infinity,
    evalTasks: evalEvery > 0 ? heldOutTasks(backbone.tokenizer, records, meta, positions) : [],
    good: { cp: resumed?.cp ?? (await trainer.exportCheckpoint()), metrics: saved?.metrics ?? [], origin: resumed ? 'checkpoint' : 'start' },
    saved,
    resumed: resumed !== null,
    sink: (ev) => {
      switch (ev.type) {
        case 'metrics':
          ranSteps.push(ev.point);
          if (ev.point.skipped) progress.note(`step ${ev.point.step}: gradients were not finite; the update was skipped`);
          progress.step(ev.point);
          // --stop-after: the run pauses after this step, checkpointed where it rests.
          if (ranSteps.length >= stopAfter && ev.point.step < settings.steps && !stopping) {
            stopping = true;
            driver.pause();
          }
          return;
        case 'notice':
          if (ev.event.kind !== 'nonFinite') progress.note(ev.event.message);
          if (ev.event.kind === 'rollback' && ev.event.severity === 'error') failure = ev.event.message;
          return;
        case 'status':
          if (ev.message) failure = ev.message;
          return;
        case 'evalPoint': {
          const p = ev.point;
          evalLines.push(JSON.stringify(p));
          progress.note(`step ${p.step}: probe ${(100 * p.probe).toFixed(1)}%${Object.entries(p.tasks).map(([t, v]) => `, ${t} ${(100 * v).toFixed(1)}%`).join('')}`);
          return;
        }
        case 'routing':
        case 'rewound':
          return;
      }
    },
  });
  try {
    await driver.loop();
    if (evalLines.length > 0) await appendFile(join(out, 'eval.jsonl'), evalLines.join('\n') + '\n');
    if (driver.status === 'error') throw new Error(`training failed at step ${driver.trainer.stepsDone}: ${failure ?? 'unknown error'}`);
    if (!driver.saved) await driver.saveCheckpoint();
    if (driver.status === 'paused' && !stopping) {
      progress.finish();
      throw new Error(`training paused at step ${driver.trainer.stepsDone}: ${failure ?? 'a fault came back after a rollback'} (its checkpoint is in ${out})`);
    }
    if (driver.status === 'paused') {
      progress.finish();
      console.error(`stopped at step ${driver.trainer.stepsDone} of ${settings.steps}; continue with: npm run runner -- train --resume ${out}`);
      return;
    }
    if (hasAdapter(cfg)) {
      const files = adapterFiles(cfg, backbone.config, await weights.readAdapter(), backbone.name, names);
      for (const [name, bytes] of files) await writeFile(join(out, name), bytes);
    } else {
      // Full fine-tuning: the whole model, in the backbone's layout, next to a copy of its config.
      const w = await weights.readBackbone();
      await writeFile(join(out, 'model.safetensors'), writeSafetensors([...w].map(([name, d]) => ({ name, dtype: 'F32' as const, shape: shapeOf(backbone, name), data: d }))));
      for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) await writeFile(join(out, f), await readFile(join(modelDir, f)));
    }
    // The routing the page shows first: measured on the routing set, else the last training window's.
    const routing = driver.lastRoutingSet ?? driver.lastRouting;
    if (routing) await writeFile(join(out, 'routing.json'), JSON.stringify(routing, null, 1));
    progress.finish();
    console.error(`wrote ${out}`);
    if (json) await writeJsonTo(json, trainSummary(out, ranSteps, progress.stats().elapsedMs / 1000, await filesIn(out)));
  } finally {
    driver.dispose();
    weights.destroy();
  }
}

/**
 * A run folder's checkpoint and the run's description: the one the checkpoint carries, or, for a
 * folder from before checkpoints carried it, the one its run.json gives (that run held no routing
 * set out and padded every batch to its maximum length, and so continues).
 */
async function readRunCheckpoint(dir: string, run: FolderSetup): Promise<{ meta: RunMeta; cp: TrainerCheckpoint }> {
  const path = join(dir, CHECKPOINT_FILE);
  const bytes = new Uint8Array(await readFile(path));
  const { trainer: cp, metadata } = decodeTrainerState(bytes, path);
  if (metadata.run !== undefined) return { meta: decodeCheckpoint(bytes, path).meta, cp };
  const meta = newRunMeta({
    runId: `run-${basename(resolve(dir))}`,
    backbone: { kind: 'local', name: run.model },
    dataset: { name: basename(run.data), bytes: 0, records: 0 },
    adapter: run.cfg,
    train: run.settings,
    typeNames: run.typeNames,
    checkpointEvery: run.checkpointEvery,
    routingEvery: run.settings.steps,
    faultLimit: DEFAULT_FAULT_LIMIT,
    selection: null,
    weights: run.weights ?? 'f32',
  });
  return { meta, cp };
}

function shapeOf(b: Backbone, name: string): number[] {
  const t = expectedTensorNames(b.config).find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name} in ${b.name}`);
  return t.shape;
}

async function withAdapter(flags: Flags, backbone: Backbone): Promise<{ cfg: AdapterConfig; set: AdapterSet | null; names?: string[] }> {
  const dir = str(flags, 'adapter');
  if (!dir) return { cfg: defaultAdapterConfig('none'), set: null };
  const a = await loadAdapter(new DirectorySource(dir), backbone.config);
  if (a.baseModel && basename(a.baseModel) !== basename(backbone.name)) console.error(`note: the adapter was trained on ${a.baseModel}, this backbone is ${backbone.name}`);
  console.error(`adapter: ${describeLoaded(dir, a)}`);
  return { cfg: a.cfg, set: a.set, names: adapterTypeNames(a.dataTypes, a.cfg.groups.length) };
}

/**
 * --mask-experts as the sorted experts to switch off ([] when not given): an expert list or the
 * name of a data type of the adapter (its group's experts). Only for a LoRAMoE adapter.
 */
function maskFlag(flags: Flags, cfg: AdapterConfig, typeNames: readonly string[]): number[] {
  const spec = flags['mask-experts'];
  if (spec === undefined) return [];
  if (typeof spec !== 'string') throw new Error('--mask-experts needs a list of experts (e.g. 0-3 or 1,5) or a data type\'s name');
  if (flags['no-adapter'] === true) throw new Error('--mask-experts switches experts of the adapter off; it cannot go with --no-adapter');
  if (!isRouted(cfg)) throw new Error(`--mask-experts needs a LoRAMoE adapter (--adapter DIR); this run's adapter is ${cfg.mode === 'none' ? 'none' : cfg.mode}`);
  return parseExpertMask(spec, cfg.numExperts, cfg.groups, typeNames, '--mask-experts');
}

async function evalCommand(flags: Flags): Promise<void> {
  const backbone = await loadModel(need(flags, 'model'));
  const loaded = await withAdapter(flags, backbone);
  const { set, names: adapterNames } = loaded;
  // The constraint is measured as the adapter was trained unless a flag says otherwise.
  const cfg: AdapterConfig = {
    ...loaded.cfg,
    lbcDelta: num(flags, 'lbc-delta', loaded.cfg.lbcDelta),
    lbcBeta: num(flags, 'lbc-beta', loaded.cfg.lbcBeta),
    lbcDirection: lbcDirectionFlag(flags) ?? loaded.cfg.lbcDirection,
    lbcImportance: lbcImportanceFlag(flags) ?? loaded.cfg.lbcImportance,
  };
  checkAdapterConfig(cfg);
  const records = await loadRecords(need(flags, 'data'), hubDataFlags(flags));
  const names = adapterNames ?? typeNamesFor(records.map((r) => r.type));
  for (const r of records) {
    if (isRouted(cfg) && !names.includes(r.type)) throw new Error(`data type "${r.type}" is not one the adapter was trained with (${names.join(', ')})`);
  }
  const expertMask = maskFlag(flags, cfg, names);
  const maxLength = num(flags, 'max-length', defaultTrainSettings().maxLength);
  const samples = encodeAll(backbone.tokenizer, records, maxLength);
  const ctx = await runnerGpu();
  await runnerKernels(ctx, backbone.config, str(flags, 'matmul'));
  const weights = new GpuWeights(ctx, backbone.config, backbone.weights, cfg, set, Math.max(...samples.map((s) => s.ids.length)), runnerPrecision(flags, ctx, cfg));
  const batch = str(flags, 'batch');
  const res = await evaluate(ctx, weights, samples, (t) => names.indexOf(t), names, { padId: backbone.tokenizer.padId, batchSize: batch ? num(flags, 'batch', 0) : undefined, expertMask });
  if (res.routing) {
    const c = res.routing.constraint;
    console.error(`own-group share by data type (balancing constraint: ${c.direction} direction, ${c.importance} importance, delta ${c.delta}, beta ${c.beta}):`);
    for (const o of res.routing.ownGroup) {
      if (o.samples === 0) continue;
      console.error(`  ${o.type.padEnd(20)} measured ${o.share.toFixed(3)}   constraint's optimum ${o.target === null ? '(off)' : o.target.toFixed(3)}   (${o.samples} samples)`);
    }
  }
  if (expertMask.length > 0) console.error(`experts switched off: ${rangeText(expertMask)} of ${cfg.numExperts}`);
  const result = { adapter: str(flags, 'adapter') ?? null, mode: cfg.mode, expertMask, ...res };
  // stdout gets the JSON; --json FILE also writes it to FILE.
  const json = str(flags, 'json');
  if (json && json !== '-') await writeJsonTo(json, result);
  console.log(JSON.stringify(result, null, 1));
  weights.destroy();
}

async function generateCommand(flags: Flags): Promise<void> {
  const backbone = await loadModel(need(flags, 'model'));
  const { cfg, set, names } = await withAdapter(flags, backbone);
  const expertMask = maskFlag(flags, cfg, names ?? []);
  const tok = backbone.tokenizer;
  const prompt = encodePrompt(tok, need(flags, 'prompt'), str(flags, 'input') ?? '');
  const maxNew = num(flags, 'max-new-tokens', 64);
  const ctx = await runnerGpu();
  await runnerKernels(ctx, backbone.config, str(flags, 'matmul'));
  const capacity = Math.min(prompt.length + maxNew, 2048);
  const weights = new GpuWeights(ctx, backbone.config, backbone.weights, cfg, set, capacity, runnerPrecision(flags, ctx, cfg));
  const gen = new Generator(ctx, weights, { maxLength: capacity });
  const routing = flags.routing === true && isRouted(cfg);
  const res = await gen.generate(prompt, {
    maxNewTokens: maxNew,
    temperature: num(flags, 'temperature', 0),
    topK: num(flags, 'top-k', 0),
    topP: num(flags, 'top-p', 1),
    seed: num(flags, 'seed', 0),
    stopIds: [tok.eosId],
    useAdapter: flags['no-adapter'] !== true,
    returnRouting: routing,
    expertMask,
  });
  console.log(tok.decode(res.ids));
  if (routing) {
    // Per token: the share of router weight each expert group got, averaged over adapted projections.
    for (const t of res.tokens) {
      const shares = cfg.groups.map((g) => {
        let s = 0;
        for (const w of t.routing?.values() ?? []) for (const e of g) s += w[e];
        return s / Math.max(1, t.routing?.size ?? 1);
      });
      console.log(`${JSON.stringify(tok.decode([t.id], false))}\t${shares.map((s) => s.toFixed(3)).join('\t')}`);
    }
  }
  gen.destroy();
  weights.destroy();
}

const STRING_OPTIONS = [
  'model', 'data', 'out', 'adapter', 'mode', 'experts', 'rank', 'alpha', 'dropout', 'targets', 'lbc-delta', 'lbc-beta', 'lbc-direction', 'lbc-importance', 'groups',
  'lr', 'steps', 'batch', 'accum', 'max-length', 'warmup', 'schedule', 'weight-decay', 'clip', 'seed', 'log-every',
  'resume', 'stop-after', 'checkpoint-every', 'prompt', 'input', 'max-new-tokens', 'temperature', 'top-k', 'top-p', 'data-out', 'hidden', 'layers', 'ffn', 'data-dir', 'lr-full', 'json', 'eval-every', 'methods', 'svg', 'matmul', 'weights', 'preset',
  'rows', 'data-type', 'type-column', 'columns', 'mask-experts', 'seeds', 'lr-grid', 'tradeoff-svg', 'probe',
  'study', 'jobs', 'shard',
];

/** A zip for the official LoRAMoE trainer: the data in its format, a launch script, a note. */
async function exportOfficial(flags: Flags): Promise<void> {
  const out = need(flags, 'out');
  const records = await loadRecords(need(flags, 'data'), hubDataFlags(flags));
  const names = typeNamesFor(records.map((r) => r.type));
  const cfg = adapterConfigFrom(flags, names);
  const settings = trainSettingsFrom(flags);
  await writeFile(out, officialRunZip(records, names, cfg, settings, str(flags, 'model') ?? ''));
  console.error(`wrote ${out}: data/train.json (${records.length} records), run_loramoe.sh, README.md (what does not map)`);
}

async function demoBuild(flags: Flags): Promise<void> {
  const ctx = await runnerGpu();
  await pretrainDemo(ctx, {
    out: str(flags, 'out') ?? 'public/models/demo',
    dataOut: str(flags, 'data-out') ?? 'public/data',
    steps: num(flags, 'steps', 500),
    batchSize: num(flags, 'batch', 64),
    lr: num(flags, 'lr', 4e-3),
    seed: num(flags, 'seed', DEMO_SEED),
    size: { ...DEMO_SIZE, hidden: num(flags, 'hidden', DEMO_SIZE.hidden), layers: num(flags, 'layers', DEMO_SIZE.layers), ffn: num(flags, 'ffn', DEMO_SIZE.ffn) },
    log: (l) => console.log(l),
  });
}

/** --targets as a list of projections, or undefined when not given. */
function targetsFlag(flags: Flags): Projection[] | undefined {
  const v = str(flags, 'targets');
  if (v === undefined) return undefined;
  const targets = v.split(',').map((t) => t.trim()) as Projection[];
  for (const t of targets) if (!PROJECTIONS.includes(t)) throw new Error(`--targets: unknown module "${t}"; known: ${PROJECTIONS.join(', ')}`);
  return targets;
}

async function experimentCommand(flags: Flags): Promise<void> {
  const backbone = await loadModel(str(flags, 'model') ?? 'public/models/demo');
  const dataDir = str(flags, 'data-dir') ?? 'public/data';
  const studyDir = str(flags, 'study');
  const jobs = num(flags, 'jobs', 1);
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--jobs must be a positive integer, got ${str(flags, 'jobs')}`);
  const shard = str(flags, 'shard') !== undefined ? parseShard(str(flags, 'shard')!) : undefined;
  const t0 = performance.now();
  if (jobs > 1) {
    if (!studyDir) throw new Error('--jobs needs --study DIR: the processes share their runs through the study folder');
    if (shard) throw new Error('--jobs and --shard go separately: --jobs starts the shards');
    // The shards train; this process then reads their runs from the study and writes the tables.
    const childFlags = Object.entries(flags).filter(([k, v]) => typeof v === 'string' && !['jobs', 'json', 'svg', 'tradeoff-svg'].includes(k));
    await runShards(childFlags.flatMap(([k, v]) => [`--${k}`, v as string]), jobs, (l) => console.error(l));
  }
  const ctx = await runnerGpu();
  const results = await runExperiment(
    ctx,
    backbone,
    {
      train: join(dataDir, 'demo-train.jsonl'),
      probe: join(dataDir, 'demo-probe.jsonl'),
      taskEval: join(dataDir, 'demo-task-eval.jsonl'),
      readFile: async (p) => new Uint8Array(await readFile(p)),
    },
    {
      steps: num(flags, 'steps', EXPERIMENT_DEFAULTS.steps),
      batchSize: num(flags, 'batch', EXPERIMENT_DEFAULTS.batchSize),
      maxLength: num(flags, 'max-length', EXPERIMENT_DEFAULTS.maxLength),
      seed: num(flags, 'seed', EXPERIMENT_DEFAULTS.seed),
      seeds: num(flags, 'seeds', EXPERIMENT_DEFAULTS.seeds),
      lrAdapter: num(flags, 'lr', EXPERIMENT_DEFAULTS.lrAdapter),
      lrFull: num(flags, 'lr-full', EXPERIMENT_DEFAULTS.lrFull),
      lrGrid: str(flags, 'lr-grid') !== undefined ? parseLrGrid(str(flags, 'lr-grid')!) : undefined,
      evalEvery: num(flags, 'eval-every', EXPERIMENT_DEFAULTS.evalEvery),
      methods: str(flags, 'methods')?.split(',').map((m) => m.trim()),
      targets: targetsFlag(flags),
      study: studyDir ? await directoryStudy(studyDir) : undefined,
      checkpointEvery: num(flags, 'checkpoint-every', 50),
      shard,
      log: (l) => console.error(l),
    },
  );
  const seconds = (performance.now() - t0) / 1000;
  if (shard) {
    console.error(`experiment shard ${shard.index}/${shard.count}: ${seconds.toFixed(0)} s; its runs are in ${studyDir ?? 'no study folder (give --study DIR to keep them)'}`);
    return;
  }
  console.error(`experiment: ${seconds.toFixed(0)} s in all`);
  const summary = summarizeSeeds(results);
  const seeds = summary[0]?.seeds ?? [];
  const json = str(flags, 'json');
  // results: one entry per method and seed; summary: each method's figures as mean and 95% interval
  // over the seeds; differences: pairs of methods (at the same rate with a grid), paired by seed.
  if (json) await writeFile(json, JSON.stringify({ flags, seconds, seeds, noiseRule: NOISE_RULE, results, summary, differences: methodDifferences(results) }, null, 1));
  const svg = str(flags, 'svg');
  const band = seeds.length > 1 ? `, mean and 95% interval over ${seeds.length} seeds` : '';
  if (svg) await writeFile(svg, curvesSvg(summary, `forgetting and learning curves (${summary[0]?.curve.at(-1)?.step ?? 0} steps of ${num(flags, 'batch', EXPERIMENT_DEFAULTS.batchSize)}${band})`));
  const tradeoff = str(flags, 'tradeoff-svg');
  if (tradeoff) await writeFile(tradeoff, tradeoffSvg(summary, `knowledge kept against tasks learnt${band}`));
  console.log(seeds.length > 1 ? `Mean ± 95% confidence interval (Student t) over seeds ${seeds.join(', ')}:\n` : `One seed (${seeds.join('')}): no intervals.\n`);
  console.log(experimentTable(results));
  const differences = differencesTable(results);
  if (differences) console.log(`\nDifferences between methods (${NOISE_RULE}):\n${differences}`);
  const specialisation = specialisationTable(results);
  if (specialisation) console.log(`\nSpecialisation (expert knockout after training${seeds.length > 1 ? '; * the paired difference from all groups on is beyond noise' : ''}):\n${specialisation}`);
}

/** The commands by their name on the command line. */
const COMMANDS = new Map<string, (flags: Flags) => Promise<void>>([
  ['train', train],
  ['eval', evalCommand],
  ['generate', generateCommand],
  ['demo-build', demoBuild],
  ['export-official', exportOfficial],
  ['experiment', experimentCommand],
]);

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv[0] === '--' ? argv.slice(1) : argv;
  const options: Record<string, { type: 'string' | 'boolean' }> = { 'no-adapter': { type: 'boolean' }, routing: { type: 'boolean' } };
  for (const k of STRING_OPTIONS) options[k] = { type: 'string' };
  const { values } = parseArgs({ args: rest, strict: true, options });
  if (command === undefined || command === 'help' || command === '--help') {
    console.log(HELP);
    return;
  }
  const run = COMMANDS.get(command);
  if (!run) throw new Error(`unknown command "${command}"\n\n${HELP}`);
  return run(values as Flags);
}
