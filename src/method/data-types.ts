/**
 * Data types: the names samples carry, and the one order that turns names into indices.
 *
 * An index t is what a batch carries per sample and what an adapter's groups[t] is keyed by, so
 * every path that trains or loads an adapter must agree on it: the page (data/import.ts
 * typeIndexMapping, for the dataset summary, the group form and the engine worker's runs) and the
 * headless runner (src/cli/main.ts, src/demo/experiment.ts) both call typeNamesFor below.
 *
 * The rule: the data types present in the data, "downstream task" first and "world knowledge"
 * second when present (the official task_type 0 and 1, so official data keeps its indices), then
 * every other name in code-unit order. Only names present get an index: a dataset of
 * {qa, world knowledge} gives [world knowledge, qa].
 *
 * An adapter file names its types (loramoe_playground.dataTypes, written from this order when it
 * was trained), and a loaded adapter is read by those names, never by the current dataset's order.
 * The official code's files name none: their two groups are task_type 0 and 1 (adapterTypeNames).
 */

/** The official name of task_type 0. */
export const DOWNSTREAM_TASK = 'downstream task';
/** The official name of task_type 1. */
export const WORLD_KNOWLEDGE = 'world knowledge';
/** The official code's two data types, by task_type. */
const OFFICIAL_DATA_TYPES: readonly string[] = [DOWNSTREAM_TASK, WORLD_KNOWLEDGE];

/** The data types present in `types`, in index order (the rule above). */
export function typeNamesFor(types: Iterable<string>): string[] {
  const rest = new Set(types);
  const names: string[] = [];
  for (const official of OFFICIAL_DATA_TYPES) if (rest.delete(official)) names.push(official);
  names.push(...[...rest].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  return names;
}

/**
 * The data type of each of an adapter's expert groups (index t names groups[t]): the names the file
 * saved when there is one per group; for the official code's files (no names, the binary grouping's
 * two groups) the official task types; otherwise unknown (undefined).
 */
export function adapterTypeNames(saved: readonly string[] | undefined, groups: number): string[] | undefined {
  if (saved !== undefined) return saved.length === groups ? [...saved] : undefined;
  return groups === OFFICIAL_DATA_TYPES.length ? [...OFFICIAL_DATA_TYPES] : undefined;
}
