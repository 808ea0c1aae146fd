/**
 * The forgetting experiment: fine-tune the demo backbone on the demo data with full fine-tuning,
 * plain LoRA, LoRAMoE without the LBC and LoRAMoE with it in each direction (same steps, same data,
 * same order, same seed), then score the held-out knowledge probe, the downstream tasks, and where
 * the router sends each data type. With `evalEvery`, the probe and the tasks are also scored during
 * training: the forgetting and learning curves against instruction samples seen.
 */
import { parseDataset } from '../data/import';
import { DOWNSTREAM_TASK, WORLD_KNOWLEDGE, typeNamesFor } from '../method/data-types';
import { encodeOfficial, type InstructionRecord } from '../data/template';
import type { GpuContext } from '../engine/gpu';
import { defaultAdapterConfig } from '../loramoe/config';
import { type AdapterConfig, hasAdapter } from '../method/adapter';
import { type Projection } from '../method/shapes';
import { binaryGroups } from '../loramoe/groups';
import { initAdapter } from '../loramoe/init';
import type { Backbone } from '../model/load';
import { GpuWeights } from '../model/weights';
import { comparedAdapter, COMPARISON_DEFAULTS, type CurvePoint, heldOutScore, isMethodKey, knockoutScores, type KnockoutScore, METHOD_KEYS, METHOD_NAMES, type MethodKey } from '../train/comparison';
import { evaluate } from '../train/evaluate';
import { defaultTrainSettings, type TrainSettings, Trainer } from '../train/trainer';

export interface Method {
  /** Short key for --methods. */
  key: MethodKey;
  name: string;
  adapter: AdapterConfig;
  lr: number;
}

export interface MethodResult {
  method: string;
  lr: number;
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
  seed: number;
  /** Learning rate of the adapter methods and of full fine-tuning. */
  lrAdapter: number;
  lrFull: number;
  /** Projections LoRA and LoRAMoE adapt (default: the official feed-forward three). */
  targets?: Projection[];
  /** Keys of the methods to run (default: all, see experimentMethods). */
  methods?: string[];
  /** Score the probe and the tasks every this many steps (0: only before and after). */
  evalEvery?: number;
  log: (line: string) => void;
}

/** The experiment command's defaults: the README's table is this command at these settings. */
export const EXPERIMENT_DEFAULTS = COMPARISON_DEFAULTS;

export { METHOD_KEYS };

export function experimentMethods(o: ExperimentOptions, typeNames: readonly string[]): Method[] {
  const base = defaultAdapterConfig('loramoe');
  const moe: AdapterConfig = { ...base, ...(o.targets ? { targets: o.targets } : {}), groups: binaryGroups(typeNames, base.numExperts) };
  const all: Method[] = METHOD_KEYS.map((key) => ({ key, name: METHOD_NAMES[key], adapter: comparedAdapter(key, moe), lr: key === 'full' ? o.lrFull : o.lrAdapter }));
  if (!o.methods) return all;
  for (const k of o.methods) if (!isMethodKey(k)) throw new Error(`unknown method "${k}"; known: ${METHOD_KEYS.join(', ')}`);
  return all.filter((m) => o.methods!.includes(m.key));
}

async function readJsonl(readFile: (path: string) => Promise<Uint8Array>, path: string): Promise<InstructionRecord[]> {
  const res = await parseDataset(await readFile(path), path.split('/').pop() ?? path);
  if (res.errors.length > 0) throw new Error(`${path}: ${res.errors.length} bad records`);
  return res.records;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export async function runExperiment(
  ctx: GpuContext,
  backbone: Backbone,
  files: { train: string; probe: string; taskEval: string; readFile: (path: string) => Promise<Uint8Array> },
  o: ExperimentOptions,
): Promise<MethodResult[]> {
  const train = await readJsonl(files.readFile, files.train);
  const probe = await readJsonl(files.readFile, files.probe);
  const taskEval = await readJsonl(files.readFile, files.taskEval);
  const tok = backbone.tokenizer;
  const names = typeNamesFor(train.map((r) => r.type));
  const samples = train.map((r) => encodeOfficial(tok, r, o.maxLength));
  const cut = samples.filter((s) => s.truncated).length;
  if (cut > 0) o.log(`note: ${cut} training samples cut to ${o.maxLength} tokens`);
  const typeIndex = (t: string) => names.indexOf(t);
  const results: MethodResult[] = [];
  /** Probe and task accuracy of `weights` (one teacher-forced pass over both sets). */
  const score = (weights: GpuWeights) => heldOutScore(ctx, weights, tok, probe, taskEval);
  const baseline = new GpuWeights(ctx, backbone.config, backbone.weights, defaultAdapterConfig('none'), null, o.maxLength);
  const before = await score(baseline);
  baseline.destroy();
  const probeBefore = before.probe;
  o.log(`knowledge probe before fine-tuning: ${pct(probeBefore)} (${probe.length} held-out questions); tasks: ${Object.entries(before.tasks).map(([t, v]) => `${t} ${pct(v)}`).join(', ')}`);
  // Routing is read on a fixed mix: the probe questions (world knowledge) and the task evaluation set.
  const routingSet = [...probe, ...taskEval].map((r) => encodeOfficial(tok, r, o.maxLength));
  const evalEvery = o.evalEvery ?? 0;
  for (const m of experimentMethods(o, names)) {
    const t0 = performance.now();
    const adapter = hasAdapter(m.adapter) ? initAdapter(backbone.config, m.adapter, o.seed) : null;
    const weights = new GpuWeights(ctx, backbone.config, backbone.weights, m.adapter, adapter, o.maxLength);
    const settings: TrainSettings = { ...defaultTrainSettings(), lr: m.lr, steps: o.steps, batchSize: o.batchSize, maxLength: o.maxLength, seed: o.seed };
    const trainer = new Trainer(ctx, weights, samples, typeIndex, names, settings, tok.padId);
    const samplesPerStep = settings.batchSize * settings.gradAccum;
    const curve: CurvePoint[] = [];
    if (evalEvery > 0) curve.push({ step: 0, samples: 0, ...before });
    let finalCe = 0;
    let after: Awaited<ReturnType<typeof score>> | null = null;
    for (let i = 0; i < o.steps; i++) {
      const s = await trainer.step();
      finalCe = s.ce;
      if (s.step % 50 === 0 || s.step === o.steps) o.log(`${m.name}: step ${s.step}/${o.steps} ce ${s.ce.toFixed(4)} lbc ${s.lbc.toFixed(4)}`);
      if (evalEvery > 0 && (s.step % evalEvery === 0 || s.step === o.steps)) {
        const sc = await score(weights);
        curve.push({ step: s.step, samples: s.step * samplesPerStep, ...sc });
        o.log(`${m.name}: step ${s.step}: probe ${pct(sc.probe)}, tasks ${pct(sc.taskMean)} (${Object.entries(sc.tasks).map(([t, v]) => `${t} ${pct(v)}`).join(', ')})`);
        if (s.step === o.steps) after = sc;
      }
    }
    trainer.destroy();
    after ??= await score(weights);
    let knowledgeShare: Record<string, number> | null = null;
    let ownGroupShare: Record<string, number> | null = null;
    let knockout: KnockoutScore[] | null = null;
    if (m.adapter.mode === 'loramoe') {
      knockout = await knockoutScores(ctx, weights, tok, probe, taskEval, names);
      for (const k of knockout) o.log(`${m.name}, ${k.group} experts off: probe ${pct(k.probe)}, tasks ${pct(k.taskMean)}`);
      const ev = await evaluate(ctx, weights, routingSet, typeIndex, names, { padId: tok.padId, batchSize: 256 });
      const routing = ev.routing!;
      const kGroup = m.adapter.groups[names.indexOf(WORLD_KNOWLEDGE)];
      knowledgeShare = {};
      ownGroupShare = {};
      routing.types.forEach((t, ti) => {
        if (routing.tokens[ti] === 0) return;
        let share = 0;
        for (const layer of routing.mean[ti]) for (const row of layer) for (const e of kGroup) share += row[e];
        knowledgeShare![t] = share / (routing.layers * routing.projections.length);
      });
      for (const g of routing.ownGroup) if (g.samples > 0) ownGroupShare[g.type] = g.share;
    }
    weights.destroy();
    const r: MethodResult = {
      method: m.name,
      lr: m.lr,
      probeBefore,
      probeAfter: after.probe,
      probeLogLikelihoodAfter: after.probeLogLikelihood,
      tasksBefore: before.tasks,
      tasks: after.tasks,
      taskMean: after.taskMean,
      finalCe,
      knowledgeShare,
      ownGroupShare,
      curve,
      knockout,
      seconds: (performance.now() - t0) / 1000,
    };
    o.log(`${m.name}: probe ${pct(r.probeAfter)}, tasks ${pct(r.taskMean)}, ${r.seconds.toFixed(0)} s`);
    results.push(r);
  }
  return results;
}

/** The results as a Markdown table (README). */
export function experimentTable(results: readonly MethodResult[]): string {
  const taskNames = Object.keys(results[0]?.tasks ?? {}).sort();
  const head = ['method', 'probe before', 'probe after', 'probe log-lik. after', ...taskNames, 'tasks mean', 'own-group share: world knowledge / tasks'];
  const rows = results.map((r) => {
    const share = r.ownGroupShare
      ? `${(r.ownGroupShare[WORLD_KNOWLEDGE] ?? NaN).toFixed(3)} / ${mean(Object.entries(r.ownGroupShare).filter(([t]) => t !== WORLD_KNOWLEDGE && t !== DOWNSTREAM_TASK).map(([, v]) => v)).toFixed(3)}`
      : '—';
    return [`${r.method} (lr ${r.lr.toExponential()})`, pct(r.probeBefore), pct(r.probeAfter), r.probeLogLikelihoodAfter.toFixed(2), ...taskNames.map((t) => pct(r.tasks[t])), pct(r.taskMean), share];
  });
  const base = results[0];
  const before = base ? [['backbone alone', pct(base.probeBefore), '', '', ...taskNames.map((t) => pct(base.tasksBefore[t] ?? NaN)), pct(mean(Object.values(base.tasksBefore))), '—']] : [];
  return [head, head.map(() => '---'), ...before, ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

/**
 * The specialisation table (Markdown): for each LoRAMoE variant, probe and task accuracy with every
 * group on and with each expert group switched off. Experts that hold world knowledge show as a
 * probe drop when their group is off; experts that hold task skill, as a task drop.
 */
export function specialisationTable(results: readonly MethodResult[]): string {
  const moe = results.filter((r) => r.knockout && r.knockout.length > 0);
  if (moe.length === 0) return '';
  const groups = moe[0].knockout!.map((k) => k.group);
  const head = ['method', 'probe, all on', ...groups.map((g) => `probe, ${g} off`), 'tasks, all on', ...groups.map((g) => `tasks, ${g} off`)];
  const rows = moe.map((r) => {
    const by = (g: string) => r.knockout!.find((k) => k.group === g);
    return [r.method, pct(r.probeAfter), ...groups.map((g) => pct(by(g)?.probe ?? NaN)), pct(r.taskMean), ...groups.map((g) => pct(by(g)?.taskMean ?? NaN))];
  });
  return [head, head.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}
