/**
 * Expert groups as the page shows them. An AdapterConfig has one expert set per data type
 * (groups[t]); several types often share one set (the official binary grouping sends every
 * downstream task to the same half). The views want each distinct set once, named by the types
 * steered to it, and routing summaries and chat tokens measured against those sets. A run's adapter
 * configuration gets its groups here too (runAdapterConfig: the form's group text against the data's types).
 */
import { WORLD_KNOWLEDGE } from '../method/data-types';
import { checkAdapterConfig, defaultAdapterConfig } from '../loramoe/config';
import { binaryGroups, parseTypeGroups } from '../loramoe/groups';
import type { AdapterConfig } from '../method/adapter';
import type { RoutingSummary } from '../train/routing';
import type { RunSpec } from '../train/run-settings';
import type { DisplayGroup } from './protocol';
import { expertGroups, rangeText } from '../method/expert-mask';

export function displayGroups(cfg: Pick<AdapterConfig, 'mode' | 'groups' | 'numExperts'>, typeNames: readonly string[]): DisplayGroup[] {
  return cfg.mode === 'loramoe' ? expertGroups(cfg.groups, typeNames) : [];
}

export { rangeText };

/** The summary with groupMean[type][group] recomputed over the display groups. */
export function withDisplayGroups(summary: RoutingSummary, groups: readonly DisplayGroup[]): RoutingSummary {
  const L = summary.layers;
  const P = summary.projections.length;
  const groupMean = summary.mean.map((perType) =>
    groups.map((g) => {
      let s = 0;
      for (let l = 0; l < L; l++) for (let p = 0; p < P; p++) for (const e of g.experts) s += perType[l][p][e];
      return L * P > 0 ? s / (L * P) : NaN;
    }),
  );
  return { ...summary, groupMean };
}

/** A token's share of router weight per display group, averaged over the adapted projections. */
export function tokenGroupShares(routing: ReadonlyMap<string, Float32Array>, groups: readonly DisplayGroup[]): number[] {
  const n = routing.size;
  return groups.map((g) => {
    let s = 0;
    for (const w of routing.values()) for (const e of g.experts) s += w[e];
    return n > 0 ? s / n : NaN;
  });
}

/** The official binary mapping written in parseTypeGroups syntax (the default shown in the form). */
export function binarySpec(N: number): string {
  if (N < 2 || N % 2 !== 0) return '';
  const half = N / 2;
  return `${WORLD_KNOWLEDGE}=0-${half - 1}; *=${half}-${N - 1}`;
}

/**
 * The experts each data type is steered to under the form's settings: the official binary grouping
 * when the spec is empty, else the parsed spec. Returns the problem instead when there is one.
 */
export function resolveGroups(names: readonly string[], experts: number, spec: string): { groups: number[][]; error: null } | { groups: null; error: string } {
  try {
    if (spec.trim() === '') {
      if (experts % 2 !== 0) return { groups: null, error: `the official binary grouping needs an even number of experts, got ${experts}: change the expert count or write the groups` };
      return { groups: binaryGroups(names, experts), error: null };
    }
    return { groups: parseTypeGroups(spec, names, experts), error: null };
  } catch (e) {
    return { groups: null, error: e instanceof Error ? e.message : String(e) };
  }
}

/** A run's adapter: the specification's, with the expert groups resolved against the data's types. */
export function runAdapterConfig(a: RunSpec['adapter'], groupsText: string, names: readonly string[]): AdapterConfig {
  if (a.mode === 'full') return defaultAdapterConfig('full');
  const N = a.mode === 'loramoe' ? a.numExperts : 1;
  let groups: number[][] = [[0]];
  if (a.mode === 'loramoe') {
    const r = resolveGroups(names, N, groupsText);
    if (r.error !== null) throw new Error(r.error);
    groups = r.groups;
  }
  const cfg: AdapterConfig = { ...a, numExperts: N, targets: [...a.targets], groups };
  checkAdapterConfig(cfg);
  return cfg;
}
