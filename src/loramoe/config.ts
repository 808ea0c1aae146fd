/**
 * What is trained and how: the adapter configuration shared by the GPU model, the CPU reference,
 * the trainer and the adapter files.
 *
 * Modes (one code path for the forgetting comparison):
 *   loramoe  N LoRA experts per adapted projection, dense softmax router, LBC (the method)
 *   lora     one LoRA expert, no router, no LBC (plain LoRA baseline)
 *   full     every backbone weight trains, no adapter (full fine-tuning baseline; small backbones)
 *   none     the frozen backbone alone (inference and the "before" knowledge probe)
 */
import { PROJECTIONS, type Projection } from '../method/shapes';
import { LBC_DIRECTIONS, LBC_IMPORTANCES, type LbcDirection, type LbcImportance, officialGroups } from '../reference/lbc';

export type AdapterMode = 'loramoe' | 'lora' | 'full' | 'none';


export interface AdapterConfig {
  mode: AdapterMode;
  /** N: experts per adapted projection (official `lora_nums`); 1 in lora mode. */
  numExperts: number;
  /** R: rank of each expert (official `r`). */
  rank: number;
  /** Scale of the expert sum is alpha / rank (official `lora_alpha`). */
  alpha: number;
  /** Dropout on each expert's input (official `lora_dropout`); the router sees the undropped input. */
  dropout: number;
  /** Adapted projections, in PROJECTIONS order (official default: the feed-forward three). */
  targets: Projection[];
  /** LBC delta (official `blc_alpha`): boost 1+delta inside a sample's group, 1-delta outside. */
  lbcDelta: number;
  /** LBC beta (official `blc_weight`): weight of each adapted layer's constraint in the loss. */
  lbcBeta: number;
  /**
   * Which way the LBC pushes. "official" (the released code): boost 1+delta on the sample's own
   * group, whose optimum puts (1-delta)/2 of the weight there (away from it, for two groups);
   * "own-group": the sign flipped, optimum (1+delta)/2 (toward it). See src/reference/lbc.ts.
   */
  lbcDirection: LbcDirection;
  /**
   * How a sample's tokens make its LBC importance: "mean" over its real tokens (every sample counts
   * alike, the official optimum at any batch, the official loss at batch 1) or "sum" (longer samples
   * weigh more, and the spread of lengths moves the optimum).
   */
  lbcImportance: LbcImportance;
  /** groups[t] = experts that data type t is steered to. Official: type 1 -> 0..N/2-1, type 0 -> N/2..N-1. */
  groups: number[][];
}

/** Official defaults (LoRAMoE training script), binary grouping; delta and beta: see README. */
export function defaultAdapterConfig(mode: AdapterMode = 'loramoe'): AdapterConfig {
  const N = mode === 'loramoe' ? 8 : 1;
  return {
    mode,
    numExperts: N,
    rank: 4,
    alpha: 32,
    dropout: 0.05,
    targets: ['gate_proj', 'up_proj', 'down_proj'],
    lbcDelta: 0.1,
    lbcBeta: 0.1,
    lbcDirection: 'official',
    lbcImportance: 'mean',
    groups: mode === 'loramoe' ? officialGroups(N) : [[0]],
  };
}

export function hasAdapter(cfg: AdapterConfig): boolean {
  return cfg.mode === 'loramoe' || cfg.mode === 'lora';
}

export function isRouted(cfg: AdapterConfig): boolean {
  return cfg.mode === 'loramoe';
}

/** Throws a specific error for an inconsistent configuration. */
export function checkAdapterConfig(cfg: AdapterConfig): void {
  const fail = (msg: string) => {
    throw new Error(`adapter config: ${msg}`);
  };
  if (!Number.isInteger(cfg.rank) || cfg.rank < 1) fail(`rank must be a positive integer, got ${cfg.rank}`);
  if (!Number.isInteger(cfg.numExperts) || cfg.numExperts < 1) fail(`numExperts must be a positive integer, got ${cfg.numExperts}`);
  if (cfg.mode === 'lora' && cfg.numExperts !== 1) fail(`plain LoRA has one expert, got numExperts = ${cfg.numExperts}`);
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) fail(`dropout must be in [0, 1), got ${cfg.dropout}`);
  if (!Number.isFinite(cfg.alpha) || cfg.alpha <= 0) fail(`alpha must be positive, got ${cfg.alpha}`);
  if (!(cfg.lbcDelta >= 0 && cfg.lbcDelta < 1)) fail(`lbcDelta must be in [0, 1), got ${cfg.lbcDelta}`);
  if (!(cfg.lbcBeta >= 0)) fail(`lbcBeta must be >= 0, got ${cfg.lbcBeta}`);
  if (!LBC_DIRECTIONS.includes(cfg.lbcDirection)) fail(`lbcDirection must be ${LBC_DIRECTIONS.join(' or ')}, got "${String(cfg.lbcDirection)}"`);
  if (!LBC_IMPORTANCES.includes(cfg.lbcImportance)) fail(`lbcImportance must be ${LBC_IMPORTANCES.join(' or ')}, got "${String(cfg.lbcImportance)}"`);
  for (const t of cfg.targets) if (!PROJECTIONS.includes(t)) fail(`unknown target module "${t}"; known: ${PROJECTIONS.join(', ')}`);
  if (hasAdapter(cfg) && cfg.targets.length === 0) fail('no target modules');
  if (cfg.mode === 'loramoe') {
    if (cfg.groups.length < 1) fail('at least one expert group is needed');
    cfg.groups.forEach((g, t) => {
      if (g.length === 0) fail(`the group of data type ${t} is empty`);
      for (const n of g) if (!Number.isInteger(n) || n < 0 || n >= cfg.numExperts) fail(`the group of data type ${t} names expert ${n}, outside 0..${cfg.numExperts - 1}`);
    });
  }
}

export function orderedTargets(cfg: AdapterConfig): Projection[] {
  return PROJECTIONS.filter((p) => cfg.targets.includes(p));
}
