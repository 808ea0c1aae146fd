/**
 * Expert knockout at inference: a set of experts switched off in every adapted projection. Their
 * router logits count as minus infinity before the softmax, so they get weight 0 and the weights of
 * the others renormalise (shaders/loramoe.wgsl router_forward, src/reference/loramoe.ts
 * routerForward). An empty mask is the model as trained.
 *
 * A mask is the sorted list of switched-off expert indices. It is written as a list (`0-3`, `1,5`)
 * or by the name of a data type, meaning the experts of that type's group (parseExpertMask).
 */

import { WORLD_KNOWLEDGE } from './data-types';
import { errorMessage } from '../util/errors';

/** Sorted, distinct indices of the experts switched off; [] switches none off. */
export type ExpertMask = readonly number[];

/** Most experts the shader's mask words cover (8 words of 32 bits; the adapter files' limit too). */
const MASK_MAX_EXPERTS = 256;

/**
 * `mask` checked against N experts, sorted and without repeats. Throws on a non-integer or
 * out-of-range index, and when every expert would be off (the softmax would have nothing left).
 */
export function checkExpertMask(mask: readonly number[], N: number): number[] {
  if (N > MASK_MAX_EXPERTS) throw new Error(`expert mask: ${N} experts; knockout covers at most ${MASK_MAX_EXPERTS}`);
  for (const e of mask) {
    if (!Number.isInteger(e) || e < 0 || e >= N) throw new Error(`expert mask: expert ${e} is outside 0..${N - 1}`);
  }
  const out = [...new Set(mask)].sort((a, b) => a - b);
  if (out.length === N) throw new Error(`expert mask: it switches off all ${N} experts; at least one must stay on`);
  return out;
}

/** The mask as the shader's eight u32 words: bit e % 32 of word floor(e / 32) set for expert e. */
export function maskWords(mask: ExpertMask): number[] {
  const words = new Array<number>(MASK_MAX_EXPERTS / 32).fill(0);
  for (const e of mask) words[e >>> 5] = (words[e >>> 5] | (1 << (e & 31))) >>> 0;
  return words;
}

/** Uniform field names of the mask words, in shader order (`off0` .. `off7`). */
export const MASK_FIELDS: readonly string[] = Array.from({ length: MASK_MAX_EXPERTS / 32 }, (_, i) => `off${i}`);

/** Sorted experts as ranges: "0-3", "0, 2, 5-7" ("" when empty). */
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

/**
 * Parses an expert list "0-3", "1,5", "0-1,6" into indices (not yet checked against a count:
 * see checkExpertMask). `where` prefixes the error messages.
 */
function parseExpertList(text: string, where: string): number[] {
  const items = text.split(',').map((s) => s.trim());
  if (text.trim() === '') throw new Error(`${where}: the list of experts is empty`);
  const experts: number[] = [];
  for (const item of items) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(item);
    if (!m) throw new Error(`${where}: "${item}" is not an expert index or range (e.g. 0-3 or 1,5)`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new Error(`${where}: range ${item} runs backwards`);
    for (let e = a; e <= b; e++) experts.push(e);
  }
  return experts;
}

/** One distinct expert group of an adapter and the data types that are steered to it. */
export interface ExpertGroup {
  /** "world knowledge", "downstream tasks" (every type but world knowledge), "a + b", or "experts 0-3" without type names. */
  name: string;
  /** Sorted expert indices. */
  experts: number[];
  /** Data-type names whose group this is, in type order. */
  types: string[];
}

/**
 * The distinct expert groups of an adapter (`groups[t]` for type `typeNames[t]`): types steered to
 * the same experts share one entry (the official grouping has two: world knowledge, and every task).
 */
export function expertGroups(groups: readonly (readonly number[])[], typeNames: readonly string[]): ExpertGroup[] {
  const out: ExpertGroup[] = [];
  const byKey = new Map<string, ExpertGroup>();
  groups.forEach((experts, t) => {
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

/**
 * Parses a mask given as an expert list ("0-3", "1,5") or as a data type's name (its group's
 * experts), checked against N experts. `where` names the flag or field in errors.
 */
export function parseExpertMask(spec: string, N: number, groups: readonly (readonly number[])[], typeNames: readonly string[], where: string): number[] {
  const text = spec.trim();
  if (text === '') throw new Error(`${where}: the list of experts is empty`);
  const t = typeNames.indexOf(text);
  if (t >= 0 && groups[t]) return withWhere(where, () => checkExpertMask(groups[t], N));
  if (!/^[\d\s,-]+$/.test(text)) {
    const known = typeNames.filter((_, i) => groups[i]).map((n) => `"${n}"`).join(', ');
    throw new Error(`${where}: "${text}" is neither an expert list (e.g. 0-3 or 1,5) nor a group's data type (${known || 'this adapter names none'})`);
  }
  return withWhere(where, () => checkExpertMask(parseExpertList(text, where), N));
}

function withWhere<T>(where: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    const msg = errorMessage(e);
    throw new Error(`${where}: ${msg.replace(/^expert mask: /, '')}`, { cause: e });
  }
}
