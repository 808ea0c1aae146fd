/**
 * The headless runner: the same engine, shaders and model as the playground, in Node. The process
 * entry is ./bin.ts (`npm run runner -- ...`).
 *
 *   npm run runner -- train    --model DIR --data FILE --out DIR [--adapter DIR] [options]
 *   npm run runner -- eval     --model DIR [--adapter DIR] --data FILE [--batch N]
 *   npm run runner -- generate --model DIR [--adapter DIR] --prompt TEXT [options]
 *
 * `npm run runner -- help` lists every option. Output: train writes the adapter (official LoRAMoE
 * layout), metrics.jsonl and routing.json into --out; eval prints JSON; generate prints the text.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDataset, formatImportError, type ImportedRecord } from '../data/import';
import { encodeOfficial, encodePrompt, type EncodedSample } from '../data/template';
import type { TextTokenizer } from '../data/tokenizer';
import { describeAdapter } from '../engine/gpu';
import { nodeGpu } from '../engine/node-gpu';
import { DirectorySource } from '../io/node-files';
import { writeSafetensors } from '../io/safetensors';
import { checkAdapterConfig, defaultAdapterConfig } from '../loramoe/config';
import { type AdapterConfig, type AdapterMode, hasAdapter, isRouted } from '../method/adapter';
import { PROJECTIONS, type Projection } from '../method/shapes';
import { adapterFiles, loadAdapter } from '../loramoe/files';
import { continueAdapterConfig, describeLoaded } from './continue';
import { filesIn, isInteractive, type ProgressStep, TrainProgress, trainSummary, writeJsonTo } from './progress';
import { binaryGroups, parseTypeGroups } from '../loramoe/groups';
import { adapterTypeNames, typeNamesFor } from '../method/data-types';
import { initAdapter, type AdapterSet } from '../loramoe/init';
import { expectedTensorNames } from '../model/config';
import { DEMO_SEED } from '../demo/build';
import { EXPERIMENT_DEFAULTS, experimentTable, METHOD_KEYS, runExperiment } from '../demo/experiment';
import { curvesSvg } from '../demo/plot';
import { DEMO_SIZE, pretrainDemo } from '../demo/pretrain';
import { Generator } from '../model/generate';
import { loadBackbone, type Backbone } from '../model/load';
import { GpuWeights } from '../model/weights';
import { evaluate } from '../train/evaluate';
import { defaultTrainSettings, type TrainSettings, Trainer } from '../train/trainer';

const HELP = `LoRAMoE Playground runner

  train     --model DIR --data FILE --out DIR [--adapter DIR]
            [--mode loramoe|lora|full] [--experts 8] [--rank 4] [--alpha 32] [--dropout 0.05]
            [--targets gate_proj,up_proj,down_proj] [--lbc-delta 0.1] [--lbc-beta 0.1]
            [--groups "world knowledge=0-3;*=4-7"] [--lr 2e-4] [--steps 100] [--batch 4]
            [--accum 1] [--max-length 256] [--warmup 0.03] [--schedule cosine|constant]
            [--weight-decay 0] [--clip 1] [--seed 42] [--log-every 1] [--json FILE|-]
            progress: a bar with ETA and tokens/s on a terminal, plain step lines otherwise;
            --json FILE: the run's summary as JSON ("-": on stdout, instead of step lines)
            --adapter DIR continues training an adapter (the playground's, the official LoRAMoE
            code's adapter_model.bin, or PEFT LoRA): its mode, experts, rank, alpha and targets
            are kept (a flag contradicting them is an error), other settings come from flags
  eval      --model DIR [--adapter DIR] --data FILE [--batch N] [--max-length 256] [--json FILE]
  generate  --model DIR [--adapter DIR] --prompt TEXT [--input TEXT] [--max-new-tokens 64]
            [--temperature 0] [--top-k 0] [--top-p 1] [--seed 0] [--no-adapter] [--routing]
  demo-build [--out public/models/demo] [--data-out public/data] [--steps 500] [--batch 64]
            [--lr 4e-3] [--seed 1234] [--hidden 96] [--layers 3] [--ffn 256]
            rebuilds the demo backbone from scratch (data, tokenizer, pretraining, probe)
  experiment [--model public/models/demo] [--data-dir public/data] [--steps ${EXPERIMENT_DEFAULTS.steps}] [--batch ${EXPERIMENT_DEFAULTS.batchSize}]
            [--max-length ${EXPERIMENT_DEFAULTS.maxLength}] [--lr ${EXPERIMENT_DEFAULTS.lrAdapter}] [--lr-full ${EXPERIMENT_DEFAULTS.lrFull}] [--seed ${EXPERIMENT_DEFAULTS.seed}] [--json FILE] [--svg FILE]
            [--eval-every ${EXPERIMENT_DEFAULTS.evalEvery}] [--methods ${METHOD_KEYS.join(',')}] [--targets gate_proj,up_proj,down_proj]
            full fine-tuning vs LoRA vs LoRAMoE without the LBC and with it (official and own-group
            direction): knowledge kept, tasks learnt; --eval-every N scores the probe and the tasks
            every N steps (the curves in the JSON; 0: only before and after)

Data: JSON, JSON Lines, CSV or Parquet in the official LoRAMoE format (instruction, input, output,
task_type 0|1), Alpaca, or chat messages. Defaults are the official LoRAMoE training script's.`;

type Flags = Record<string, string | boolean | undefined>;

function num(flags: Flags, name: string, fallback: number): number {
  const v = flags[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) throw new Error(`--${name} must be a number, got "${String(v)}"`);
  return n;
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

async function loadRecords(file: string): Promise<ImportedRecord[]> {
  const bytes = new Uint8Array(await readFile(file));
  const res = await parseDataset(bytes, basename(file));
  for (const e of res.errors.slice(0, 20)) console.error(`skipped: ${formatImportError(e)}`);
  if (res.errors.length > 20) console.error(`skipped: ... and ${res.errors.length - 20} more problems`);
  console.error(`${basename(file)}: ${res.counts.good} records (${Object.entries(res.counts.byType).map(([t, n]) => `${n} ${t}`).join(', ')}), ${res.counts.bad} skipped`);
  return res.records;
}

function encodeAll(tok: TextTokenizer, records: readonly ImportedRecord[], maxLength: number): EncodedSample[] {
  const samples = records.map((r) => encodeOfficial(tok, r, maxLength));
  const cut = samples.filter((s) => s.truncated).length;
  if (cut > 0) console.error(`note: ${cut} of ${samples.length} samples are longer than --max-length ${maxLength} and were cut`);
  return samples;
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

async function train(flags: Flags): Promise<void> {
  const out = need(flags, 'out');
  const modelDir = need(flags, 'model');
  const backbone = await loadModel(modelDir);
  const records = await loadRecords(need(flags, 'data'));
  const names = typeNamesFor(records.map((r) => r.type));
  // --adapter: continue from an adapter folder (own, official LoRAMoE or PEFT) instead of a fresh init.
  const from = str(flags, 'adapter');
  const loaded = from ? await loadAdapter(new DirectorySource(from), backbone.config) : null;
  const cfg = loaded ? continueAdapterConfig(from!, loaded, flags, names, (f) => adapterConfigFrom(f, names)) : adapterConfigFrom(flags, names);
  if (loaded) console.error(`continuing from ${describeLoaded(from!, loaded)}`);
  const settings = trainSettingsFrom(flags);
  const samples = encodeAll(backbone.tokenizer, records, settings.maxLength);
  const ctx = await nodeGpu();
  console.error(`adapter: ${describeAdapter(ctx.adapter)}`);
  const adapter: AdapterSet | null = loaded ? loaded.set : hasAdapter(cfg) ? initAdapter(backbone.config, cfg, settings.seed) : null;
  const weights = new GpuWeights(ctx, backbone.config, backbone.weights, cfg, adapter, settings.maxLength);
  const typeIndex = (t: string) => names.indexOf(t);
  const trainer = new Trainer(ctx, weights, samples, typeIndex, names, settings, backbone.tokenizer.padId);
  await mkdir(out, { recursive: true });
  const logEvery = num(flags, 'log-every', 1);
  // A bar on a terminal, plain step lines otherwise; --json FILE: the run's summary ("-": stdout, no step lines).
  const json = str(flags, 'json');
  const progress = new TrainProgress({ total: settings.steps, startStep: trainer.stepsDone, tty: isInteractive(), logEvery, quiet: json === '-' });
  const ranSteps: ProgressStep[] = [];
  const metrics: string[] = [];
  for (let i = 0; i < settings.steps; i++) {
    const m = await trainer.step();
    metrics.push(JSON.stringify(m));
    ranSteps.push(m);
    if (m.skipped) progress.note(`step ${m.step}: gradients were not finite; the update was skipped`);
    progress.step(m);
  }
  await writeFile(join(out, 'metrics.jsonl'), metrics.join('\n') + '\n');
  if (hasAdapter(cfg)) {
    const files = adapterFiles(cfg, backbone.config, await weights.readAdapter(), backbone.name, names);
    for (const [name, bytes] of files) await writeFile(join(out, name), bytes);
  } else {
    // Full fine-tuning: the whole model, in the backbone's layout, next to a copy of its config.
    const w = await weights.readBackbone();
    await writeFile(join(out, 'model.safetensors'), writeSafetensors([...w].map(([name, data]) => ({ name, dtype: 'F32' as const, shape: shapeOf(backbone, name), data }))));
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) await writeFile(join(out, f), await readFile(join(modelDir, f)));
  }
  if (trainer.routing) await writeFile(join(out, 'routing.json'), JSON.stringify(trainer.routing.summary(), null, 1));
  progress.finish();
  console.error(`wrote ${out}`);
  if (json) await writeJsonTo(json, trainSummary(out, ranSteps, progress.stats().elapsedMs / 1000, await filesIn(out)));
  trainer.destroy();
  weights.destroy();
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

async function evalCommand(flags: Flags): Promise<void> {
  const backbone = await loadModel(need(flags, 'model'));
  const { cfg, set, names: adapterNames } = await withAdapter(flags, backbone);
  const records = await loadRecords(need(flags, 'data'));
  const names = adapterNames ?? typeNamesFor(records.map((r) => r.type));
  for (const r of records) {
    if (isRouted(cfg) && !names.includes(r.type)) throw new Error(`data type "${r.type}" is not one the adapter was trained with (${names.join(', ')})`);
  }
  const maxLength = num(flags, 'max-length', 256);
  const samples = encodeAll(backbone.tokenizer, records, maxLength);
  const ctx = await nodeGpu();
  const weights = new GpuWeights(ctx, backbone.config, backbone.weights, cfg, set, Math.max(...samples.map((s) => s.ids.length)));
  const batch = str(flags, 'batch');
  const res = await evaluate(ctx, weights, samples, (t) => names.indexOf(t), names, { padId: backbone.tokenizer.padId, batchSize: batch ? num(flags, 'batch', 0) : undefined });
  const result = { adapter: str(flags, 'adapter') ?? null, mode: cfg.mode, ...res };
  // stdout gets the JSON; --json FILE also writes it to FILE.
  const json = str(flags, 'json');
  if (json && json !== '-') await writeJsonTo(json, result);
  console.log(JSON.stringify(result, null, 1));
  weights.destroy();
}

async function generateCommand(flags: Flags): Promise<void> {
  const backbone = await loadModel(need(flags, 'model'));
  const { cfg, set } = await withAdapter(flags, backbone);
  const tok = backbone.tokenizer;
  const prompt = encodePrompt(tok, need(flags, 'prompt'), str(flags, 'input') ?? '');
  const maxNew = num(flags, 'max-new-tokens', 64);
  const ctx = await nodeGpu();
  const capacity = Math.min(prompt.length + maxNew, 2048);
  const weights = new GpuWeights(ctx, backbone.config, backbone.weights, cfg, set, capacity);
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
  'model', 'data', 'out', 'adapter', 'mode', 'experts', 'rank', 'alpha', 'dropout', 'targets', 'lbc-delta', 'lbc-beta', 'groups',
  'lr', 'steps', 'batch', 'accum', 'max-length', 'warmup', 'schedule', 'weight-decay', 'clip', 'seed', 'log-every',
  'prompt', 'input', 'max-new-tokens', 'temperature', 'top-k', 'top-p', 'data-out', 'hidden', 'layers', 'ffn', 'data-dir', 'lr-full', 'json', 'eval-every', 'methods', 'svg',
];

async function demoBuild(flags: Flags): Promise<void> {
  const ctx = await nodeGpu();
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
  const ctx = await nodeGpu();
  const t0 = performance.now();
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
      lrAdapter: num(flags, 'lr', EXPERIMENT_DEFAULTS.lrAdapter),
      lrFull: num(flags, 'lr-full', EXPERIMENT_DEFAULTS.lrFull),
      evalEvery: num(flags, 'eval-every', EXPERIMENT_DEFAULTS.evalEvery),
      methods: str(flags, 'methods')?.split(',').map((m) => m.trim()),
      targets: targetsFlag(flags),
      log: (l) => console.error(l),
    },
  );
  const seconds = (performance.now() - t0) / 1000;
  console.error(`experiment: ${seconds.toFixed(0)} s in all`);
  const json = str(flags, 'json');
  if (json) await writeFile(json, JSON.stringify({ flags, seconds, results }, null, 1));
  const svg = str(flags, 'svg');
  if (svg) await writeFile(svg, curvesSvg(results, `forgetting and learning curves (${results[0]?.curve.at(-1)?.step ?? 0} steps of ${num(flags, 'batch', EXPERIMENT_DEFAULTS.batchSize)})`));
  console.log(experimentTable(results));
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv[0] === '--' ? argv.slice(1) : argv;
  const options: Record<string, { type: 'string' | 'boolean' }> = { 'no-adapter': { type: 'boolean' }, routing: { type: 'boolean' } };
  for (const k of STRING_OPTIONS) options[k] = { type: 'string' };
  const { values } = parseArgs({ args: rest, strict: true, options });
  const flags = values as Flags;
  switch (command) {
    case 'train':
      return train(flags);
    case 'eval':
      return evalCommand(flags);
    case 'generate':
      return generateCommand(flags);
    case 'demo-build':
      return demoBuild(flags);
    case 'experiment':
      return experimentCommand(flags);
    case undefined:
    case 'help':
    case '--help':
      console.log(HELP);
      return;
    default:
      throw new Error(`unknown command "${command}"\n\n${HELP}`);
  }
}
