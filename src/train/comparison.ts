/**
 * The method comparison, shared by the runner's `experiment` command and the playground's Compare
 * methods panel: the five methods (full fine-tuning, LoRA at the same parameter budget, LoRAMoE
 * without the balancing constraint, and LoRAMoE with it in each direction), built from one LoRAMoE
 * configuration so they differ only where the method does, and the held-out score every method is
 * measured by (exact match on the knowledge probe's facts and on held-out task examples).
 */
import type { InstructionRecord } from '../data/template';
import type { TextTokenizer } from '../data/tokenizer';
import type { GpuContext } from '../engine/gpu';
import { defaultAdapterConfig } from '../loramoe/config';
import { type AdapterConfig, isRouted } from '../method/adapter';
import { type ExpertMask, expertGroups } from '../method/expert-mask';
import { WORLD_KNOWLEDGE } from '../method/data-types';
import type { GpuWeights } from '../model/weights';
import { exactMatchProbe } from './probe';

export const METHOD_KEYS = ['full', 'lora', 'loramoe', 'lbc-official', 'lbc-own'] as const;
export type MethodKey = (typeof METHOD_KEYS)[number];

export const METHOD_NAMES: Record<MethodKey, string> = {
  full: 'full fine-tuning',
  lora: 'LoRA',
  loramoe: 'LoRAMoE, no LBC',
  'lbc-official': 'LoRAMoE + LBC (official)',
  'lbc-own': 'LoRAMoE + LBC (own-group)',
};

export function isMethodKey(k: string): k is MethodKey {
  return (METHOD_KEYS as readonly string[]).includes(k);
}

/**
 * The comparison's defaults: the README's experiment table is the runner's `experiment` at these
 * settings, and the Compare methods panel starts from them. Full fine-tuning moves every weight and
 * takes a fifth of the adapters' learning rate (at the adapters' rate it diverges on the demo).
 */
export const COMPARISON_DEFAULTS = { steps: 300, batchSize: 16, maxLength: 14, seed: 42, lrAdapter: 5e-3, lrFull: 1e-3, evalEvery: 30 };

/**
 * The adapter of method `key`, from the LoRAMoE configuration `moe` (its experts, rank, targets,
 * groups and constraint settings). LoRA gets rank N x R and alpha N x alpha: the same trainable
 * parameters in the experts and the same scale alpha / rank. The constraint's methods keep `moe`'s
 * delta, beta and importance (beta 0 there becomes the default's) and set the direction.
 */
export function comparedAdapter(key: MethodKey, moe: AdapterConfig): AdapterConfig {
  const lbcBeta = moe.lbcBeta > 0 ? moe.lbcBeta : defaultAdapterConfig('loramoe').lbcBeta;
  switch (key) {
    case 'full':
      return defaultAdapterConfig('full');
    case 'lora':
      return { ...defaultAdapterConfig('lora'), targets: [...moe.targets], rank: moe.rank * moe.numExperts, alpha: moe.alpha * moe.numExperts, dropout: moe.dropout };
    case 'loramoe':
      return { ...moe, lbcBeta: 0 };
    case 'lbc-official':
      return { ...moe, lbcBeta, lbcDirection: 'official' };
    case 'lbc-own':
      return { ...moe, lbcBeta, lbcDirection: 'own-group' };
  }
}

/** A method's held-out score at one point of training. */
export interface HeldOutScore {
  /** Exact match on the held-out facts (the knowledge probe). */
  probe: number;
  /** Mean log-likelihood of the probe's gold answers (natural log). */
  probeLogLikelihood: number;
  /** Exact match per downstream task on its held-out examples. */
  tasks: Record<string, number>;
  /** Mean over the tasks (0 without task examples). */
  taskMean: number;
}

/** A LoRAMoE variant's held-out score with one expert group switched off in every adapted layer. */
export interface KnockoutScore extends HeldOutScore {
  /** The group switched off (src/method/expert-mask.ts expertGroups' name) and its experts. */
  group: string;
  experts: number[];
}

/** One point of a method's curves: its held-out score after `samples` instruction samples (step x batch x accumulation). */
export interface CurvePoint extends HeldOutScore {
  step: number;
  samples: number;
  /** The specialisation table: the score with each expert group off (LoRAMoE runs, at their last step). */
  knockout?: KnockoutScore[];
}

const mean = (v: readonly number[]) => (v.length === 0 ? 0 : v.reduce((a, b) => a + b, 0) / v.length);

/**
 * Scores `weights` on the probe's facts and the held-out task examples in one teacher-forced pass
 * (src/train/probe.ts); world-knowledge records among the task examples are not tasks and are skipped.
 */
export async function heldOutScore(
  ctx: GpuContext,
  weights: GpuWeights,
  tok: TextTokenizer,
  probe: readonly InstructionRecord[],
  taskExamples: readonly InstructionRecord[],
  opts: { maxLength?: number; expertMask?: ExpertMask } = {},
): Promise<HeldOutScore> {
  const tasks = taskExamples.filter((r) => r.type !== WORLD_KNOWLEDGE);
  const r = await exactMatchProbe(ctx, weights, tok, [...probe, ...tasks], opts);
  const p = r.items.slice(0, probe.length);
  const perTask: Record<string, { n: number; right: number }> = {};
  for (const item of r.items.slice(probe.length)) {
    const t = (perTask[item.type] ??= { n: 0, right: 0 });
    t.n++;
    if (item.correct) t.right++;
  }
  const taskAcc = Object.fromEntries(Object.entries(perTask).map(([t, v]) => [t, v.right / v.n]));
  return {
    probe: p.length === 0 ? 0 : p.filter((i) => i.correct).length / p.length,
    probeLogLikelihood: mean(p.map((i) => i.logLikelihood)),
    tasks: taskAcc,
    taskMean: mean(Object.values(taskAcc)),
  };
}

/**
 * The specialisation table of a LoRAMoE adapter: heldOutScore with each of its expert groups
 * switched off in turn (expert knockout), one entry per distinct group of `typeNames`' groups. A
 * group holding every expert is left out (nothing would remain); [] for an adapter without a router.
 */
export async function knockoutScores(
  ctx: GpuContext,
  weights: GpuWeights,
  tok: TextTokenizer,
  probe: readonly InstructionRecord[],
  taskExamples: readonly InstructionRecord[],
  typeNames: readonly string[],
  opts: { maxLength?: number } = {},
): Promise<KnockoutScore[]> {
  const cfg = weights.adapterCfg;
  if (!isRouted(cfg)) return [];
  const out: KnockoutScore[] = [];
  for (const g of expertGroups(cfg.groups, typeNames)) {
    if (g.experts.length >= cfg.numExperts) continue;
    const score = await heldOutScore(ctx, weights, tok, probe, taskExamples, { ...opts, expertMask: g.experts });
    out.push({ group: g.name, experts: g.experts, ...score });
  }
  return out;
}
