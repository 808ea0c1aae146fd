/**
 * What is trained and how: the adapter configuration shared by the CPU reference, the GPU model, the
 * trainer and the adapter files (its defaults and checks: src/loramoe/config.ts).
 *
 * Modes (one code path for the forgetting comparison):
 *   loramoe  N LoRA experts per adapted projection, dense softmax router, LBC (the method)
 *   lora     one LoRA expert, no router, no LBC (plain LoRA baseline)
 *   full     every backbone weight trains, no adapter (full fine-tuning baseline; small backbones)
 *   none     the frozen backbone alone (inference and the "before" knowledge probe)
 */
import { PROJECTIONS, type Projection } from './shapes';

export type AdapterMode = 'loramoe' | 'lora' | 'full' | 'none';

/** Which way the boost points: the released code's, or flipped toward the sample's own group. */
export type LbcDirection = 'official' | 'own-group';
export const LBC_DIRECTIONS: readonly LbcDirection[] = ['official', 'own-group'];
/** How a sample's tokens make its importance: summed over real tokens, or their mean. */
export type LbcImportance = 'sum' | 'mean';
export const LBC_IMPORTANCES: readonly LbcImportance[] = ['sum', 'mean'];

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

export function hasAdapter(cfg: Pick<AdapterConfig, 'mode'>): boolean {
  return cfg.mode === 'loramoe' || cfg.mode === 'lora';
}

export function isRouted(cfg: Pick<AdapterConfig, 'mode'>): boolean {
  return cfg.mode === 'loramoe';
}

export function orderedTargets(cfg: Pick<AdapterConfig, 'targets'>): Projection[] {
  return PROJECTIONS.filter((p) => cfg.targets.includes(p));
}

/** Index of an adapted projection in the model (layer-major, PROJECTIONS order): its dropout stream. */
export function adaptedIndex(cfg: AdapterConfig, l: number, p: Projection): number {
  const targets = orderedTargets(cfg);
  return l * targets.length + targets.indexOf(p);
}

/** A method's name as the runs library and the comparison show it: "LoRAMoE 6×4 + LBC (official)". */
export function methodLabel(cfg: AdapterConfig): string {
  switch (cfg.mode) {
    case 'none':
      return 'frozen backbone';
    case 'full':
      return 'full fine-tuning';
    case 'lora':
      return `LoRA rank ${cfg.rank}`;
    case 'loramoe':
      return `LoRAMoE ${cfg.numExperts}×${cfg.rank}${cfg.lbcBeta > 0 ? ` + LBC (${cfg.lbcDirection})` : ', no LBC'}`;
  }
}
