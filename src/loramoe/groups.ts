/**
 * Expert groups for the localized balancing constraint: which experts each data type is steered to.
 * Data types are indexed by src/method/data-types.ts typeNamesFor (one order for the page and the
 * runner). The official grouping is binary: world knowledge -> experts 0..N/2-1, every other type
 * (all downstream tasks) -> N/2..N-1. A general mapping sends each named type to its own set of
 * experts.
 */
import { WORLD_KNOWLEDGE } from '../method/data-types';

/** The official binary grouping over `names`: world knowledge to the first half, every other type to the second. */
export function binaryGroups(names: readonly string[], N: number): number[][] {
  if (!Number.isInteger(N) || N < 2 || N % 2 !== 0) throw new Error(`the official grouping needs an even number of experts, got ${N}`);
  const half = N / 2;
  const first = Array.from({ length: half }, (_, i) => i);
  const second = Array.from({ length: half }, (_, i) => half + i);
  return names.map((n) => (n === WORLD_KNOWLEDGE ? first : second));
}

/**
 * Parses a mapping such as "world knowledge=0-3; arithmetic=4,5; strings=6-7". Types not named get
 * the experts of the type named "*" when given ("*=4-7"), else an error names them.
 */
export function parseTypeGroups(spec: string, names: readonly string[], N: number): number[][] {
  const byName = new Map<string, number[]>();
  for (const part of spec.split(';').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const eq = part.lastIndexOf('=');
    if (eq <= 0) throw new Error(`expert groups: "${part}" is not "type=experts"`);
    const name = part.slice(0, eq).trim();
    const experts: number[] = [];
    for (const item of part.slice(eq + 1).split(',').map((s) => s.trim())) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(item);
      if (!m) throw new Error(`expert groups: "${item}" in "${part}" is not an expert index or range`);
      const a = Number(m[1]);
      const b = m[2] === undefined ? a : Number(m[2]);
      if (b < a) throw new Error(`expert groups: range ${item} runs backwards`);
      for (let e = a; e <= b; e++) {
        if (e >= N) throw new Error(`expert groups: expert ${e} in "${part}" is outside 0..${N - 1}`);
        experts.push(e);
      }
    }
    if (byName.has(name)) throw new Error(`expert groups: type "${name}" is named twice`);
    byName.set(name, experts);
  }
  for (const n of byName.keys()) {
    if (n !== '*' && !names.includes(n)) throw new Error(`expert groups: no data type "${n}"; the types are ${names.map((x) => `"${x}"`).join(', ')}`);
  }
  return names.map((n) => {
    const g = byName.get(n) ?? byName.get('*');
    if (!g) throw new Error(`expert groups: data type "${n}" has no experts (name it, or give "*=...")`);
    return g;
  });
}
