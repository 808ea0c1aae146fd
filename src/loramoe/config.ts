/**
 * The adapter configuration's defaults and its consistency check (the configuration itself, shared
 * by every floor: src/method/adapter.ts).
 */
import { type AdapterConfig, type AdapterMode, hasAdapter, LBC_DIRECTIONS, LBC_IMPORTANCES } from '../method/adapter';
import { PROJECTIONS } from '../method/shapes';
import { officialGroups } from '../reference/lbc';

/** Official defaults (LoRAMoE training script), binary grouping; delta and beta: see docs/method.md. */
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
