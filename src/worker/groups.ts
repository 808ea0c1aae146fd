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
import type { DisplayGroup } from './protocol';

export function displayGroups(cfg: Pick<AdapterConfig, 'mode' | 'groups' | 'numExperts'>, typeNames: readonly string[]): DisplayGroup[] {
  if (cfg.mode !== 'loramoe') return [];
  const out: DisplayGroup[] = [];
  const byKey = new Map<string, DisplayGroup>();
  cfg.groups.forEach((experts, t) => {
    const sorted = [...new Set(experts)].sort((a, b) => a - b);
    const key = sorted.join(',');
    let g = byKey.get(key);
    if (!g) {
      g = { name: '', experts: sorted, types: [] };
      byKey.set(key, g);
      out.push(g);
    }
    g.types.push(typeNames[t] ?? `type ${t}`);
  });
  const others = typeNames.filter((n) => n !== WORLD_KNOWLEDGE);
  for (const g of out) {
    if (typeNames.length === 0) g.name = `experts ${rangeText(g.experts)}`;
    else if (g.types.length === 1) g.name = g.types[0];
    else if (!g.types.includes(WORLD_KNOWLEDGE) && others.every((n) => g.types.includes(n))) g.name = 'downstream tasks';
    else g.name = g.types.join(' + ');
  }
  return out;
}

/** "0-3", "0, 2, 5-7" */
export function rangeText(experts: readonly number[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < experts.length) {
    let j = i;
    while (j + 1 < experts.length && experts[j + 1] === experts[j] + 1) j++;
    parts.push(j > i ? `${experts[i]}-${experts[j]}` : String(experts[i]));
    i = j + 1;
  }
  return parts.join(', ');
}

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

