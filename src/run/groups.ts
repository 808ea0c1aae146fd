/**
 * Expert groups as the page shows them. An AdapterConfig has one expert set per data type
 * (groups[t]); several types often share one set (the official binary grouping sends every
 * downstream task to the same half). The views want each distinct set once, named by the types
 * steered to it, and routing summaries and chat tokens measured against those sets. A run's adapter
 * configuration gets its groups here too (runAdapterConfig: the form's group text against the data's types).
 */
import { WORLD_KNOWLEDGE } from '../method/data-types';
import type { AdapterConfig } from '../method/adapter';
import type { RoutingSummary } from '../train/routing';
import type { DisplayGroup } from './events';
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

