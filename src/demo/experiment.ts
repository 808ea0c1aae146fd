/**
 * The forgetting experiment: fine-tune the demo backbone on the demo data with full fine-tuning,
 * plain LoRA, LoRAMoE without the LBC and LoRAMoE with it (same steps, same data, same order, same
 * seed), then score the held-out knowledge probe, the downstream tasks, and where the router sends
 * each data type.
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
import { evaluate } from '../train/evaluate';
import { exactMatchProbe } from '../train/probe';
import { defaultTrainSettings, type TrainSettings, Trainer } from '../train/trainer';

export interface Method {
  name: string;
  adapter: AdapterConfig;
  lr: number;
}

export interface MethodResult {
  method: string;
  probeBefore: number;
  probeAfter: number;
  probeLogLikelihoodAfter: number;
  /** Exact match per downstream task after training. */
  tasks: Record<string, number>;
  taskMean: number;
  finalCe: number;
  /** Share of router weight held by the world-knowledge group, per data type (LoRAMoE only). */
  knowledgeShare: Record<string, number> | null;
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
  log: (line: string) => void;
}

export function experimentMethods(o: ExperimentOptions, typeNames: readonly string[]): Method[] {
  const moe = { ...defaultAdapterConfig('loramoe'), ...(o.targets ? { targets: o.targets } : {}) };
  const groups = binaryGroups(typeNames, moe.numExperts);
  return [
    { name: 'full fine-tuning', adapter: defaultAdapterConfig('full'), lr: o.lrFull },
    { name: 'LoRA', adapter: { ...defaultAdapterConfig('lora'), targets: moe.targets, rank: moe.rank * moe.numExperts, alpha: moe.alpha * moe.numExperts }, lr: o.lrAdapter },
    { name: 'LoRAMoE, no LBC', adapter: { ...moe, groups, lbcBeta: 0 }, lr: o.lrAdapter },
    { name: 'LoRAMoE + LBC', adapter: { ...moe, groups }, lr: o.lrAdapter },
  ];
}

async function readJsonl(readFile: (path: string) => Promise<Uint8Array>, path: string): Promise<InstructionRecord[]> {
  const res = await parseDataset(await readFile(path), path.split('/').pop() ?? path);
  if (res.errors.length > 0) throw new Error(`${path}: ${res.errors.length} bad records`);
  return res.records;
}

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
  const baseline = new GpuWeights(ctx, backbone.config, backbone.weights, defaultAdapterConfig('none'), null, o.maxLength);
  const probeBefore = (await exactMatchProbe(ctx, baseline, tok, probe)).accuracy;
  baseline.destroy();
  o.log(`knowledge probe before fine-tuning: ${(probeBefore * 100).toFixed(1)}% (${probe.length} held-out questions)`);
  // Routing is read on a fixed mix: the probe questions (world knowledge) and the task evaluation set.
  const routingSet = [...probe, ...taskEval].map((r) => encodeOfficial(tok, r, o.maxLength));
  for (const m of experimentMethods(o, names)) {
    const t0 = performance.now();
    const adapter = hasAdapter(m.adapter) ? initAdapter(backbone.config, m.adapter, o.seed) : null;
    const weights = new GpuWeights(ctx, backbone.config, backbone.weights, m.adapter, adapter, o.maxLength);
    const settings: TrainSettings = { ...defaultTrainSettings(), lr: m.lr, steps: o.steps, batchSize: o.batchSize, maxLength: o.maxLength, seed: o.seed };
    const trainer = new Trainer(ctx, weights, samples, typeIndex, names, settings, tok.padId);
    let finalCe = 0;
    for (let i = 0; i < o.steps; i++) {
      const s = await trainer.step();
      finalCe = s.ce;
      if (s.step % 50 === 0 || s.step === o.steps) o.log(`${m.name}: step ${s.step}/${o.steps} ce ${s.ce.toFixed(4)} lbc ${s.lbc.toFixed(4)}`);
    }
    trainer.destroy();
    const p = await exactMatchProbe(ctx, weights, tok, probe);
    const te = await exactMatchProbe(ctx, weights, tok, taskEval);
    const tasks: Record<string, number> = {};
    for (const [t, v] of Object.entries(te.byType)) tasks[t] = v.accuracy;
    let knowledgeShare: Record<string, number> | null = null;
    if (m.adapter.mode === 'loramoe') {
      const ev = await evaluate(ctx, weights, routingSet, typeIndex, names, { padId: tok.padId, batchSize: 256 });
      const kGroup = m.adapter.groups[names.indexOf(WORLD_KNOWLEDGE)];
      knowledgeShare = {};
      ev.routing!.types.forEach((t, ti) => {
        if (ev.routing!.tokens[ti] === 0) return;
        let share = 0;
        for (const layer of ev.routing!.mean[ti]) for (const row of layer) for (const e of kGroup) share += row[e];
        knowledgeShare![t] = share / (ev.routing!.layers * ev.routing!.projections.length);
      });
    }
    weights.destroy();
    const taskValues = Object.values(tasks);
    const r: MethodResult = {
      method: m.name,
      probeBefore,
      probeAfter: p.accuracy,
      probeLogLikelihoodAfter: p.meanLogLikelihood,
      tasks,
      taskMean: taskValues.reduce((a, b) => a + b, 0) / Math.max(1, taskValues.length),
      finalCe,
      knowledgeShare,
      seconds: (performance.now() - t0) / 1000,
    };
    o.log(`${m.name}: probe ${(r.probeAfter * 100).toFixed(1)}%, tasks ${(r.taskMean * 100).toFixed(1)}%, ${r.seconds.toFixed(0)} s`);
    results.push(r);
  }
  return results;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** The results as a Markdown table (README). */
export function experimentTable(results: readonly MethodResult[]): string {
  const taskNames = Object.keys(results[0]?.tasks ?? {}).sort();
  const head = ['method', 'probe before', 'probe after', 'probe log-lik. after', ...taskNames, 'tasks mean', 'knowledge-group share: world knowledge / tasks'];
  const rows = results.map((r) => {
    const share = r.knowledgeShare
      ? `${(r.knowledgeShare[WORLD_KNOWLEDGE] ?? NaN).toFixed(3)} / ${mean(Object.entries(r.knowledgeShare).filter(([t]) => t !== WORLD_KNOWLEDGE && t !== DOWNSTREAM_TASK).map(([, v]) => v)).toFixed(3)}`
      : '—';
    return [r.method, pct(r.probeBefore), pct(r.probeAfter), r.probeLogLikelihoodAfter.toFixed(2), ...taskNames.map((t) => pct(r.tasks[t])), pct(r.taskMean), share];
  });
  return [head, head.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}
