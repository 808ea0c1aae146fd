/** Data type names to the indices batches and the balancing constraint's groups use. */
import type { InstructionRecord } from './template';
import { typeNamesFor } from '../method/data-types';

export interface TypeIndexMapping {
  /** Type names in index order. */
  names: string[];
  /** Index of a type name; throws for a name not in `names`. */
  index(name: string): number;
}

/**
 * The data types present in `records` in index order (src/method/data-types.ts typeNamesFor, the
 * order the runner uses too). Used for the LBC's type-to-expert-group mapping and for batches' type
 * indices.
 */
export function typeIndexMapping(records: readonly Pick<InstructionRecord, 'type'>[]): TypeIndexMapping {
  const names = typeNamesFor(records.map((r) => r.type));
  const map = new Map(names.map((n, i) => [n, i] as const));
  return {
    names,
    index(name: string): number {
      const i = map.get(name);
      if (i === undefined) throw new Error(`unknown data type "${name}"; the dataset's types are ${names.map((n) => `"${n}"`).join(', ')}`);
      return i;
    },
  };
}
