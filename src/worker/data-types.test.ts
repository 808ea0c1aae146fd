/**
 * One order of data types for the page and the runner (src/method/data-types.ts): an adapter
 * trained on one path and loaded on the other steers every data type to the same experts. Each
 * path is taken through the functions it calls: the page orders a dataset with typeIndexMapping,
 * resolves the group form with resolveGroups and names an imported adapter's groups with
 * adapterTypeNames (worker/adapter-files.ts); the runner orders with typeNamesFor, resolves --groups with
 * binaryGroups / parseTypeGroups and names a loaded adapter's groups with adapterTypeNames, falling
 * back to the data's order (src/cli/main.ts). Both write and read adapter_config.json with
 * adapterConfigJson / parseAdapterConfig.
 */
import { describe, expect, it } from 'vitest';
import { typeIndexMapping } from '../data/import';
import { defaultAdapterConfig } from '../loramoe/config';
import { type AdapterConfig } from '../method/adapter';
import { adapterConfigJson, parseAdapterConfig } from '../loramoe/files';
import { binaryGroups, parseTypeGroups } from '../loramoe/groups';
import { adapterTypeNames, DOWNSTREAM_TASK, typeNamesFor, WORLD_KNOWLEDGE } from '../method/data-types';
import { resolveGroups } from '../train/run-settings';

const N = 8;
const DATASETS: string[][] = [
  ['qa', WORLD_KNOWLEDGE, 'qa'],
  [WORLD_KNOWLEDGE, 'sentiment', 'arithmetic', 'word reversal', WORLD_KNOWLEDGE],
  [DOWNSTREAM_TASK, WORLD_KNOWLEDGE],
  [WORLD_KNOWLEDGE, DOWNSTREAM_TASK, 'code'],
  ['qa'],
  [WORLD_KNOWLEDGE],
];
/** Group specs for each dataset: the official binary grouping, and one naming every type. */
function specs(types: readonly string[]): string[] {
  const names = [...new Set(types)];
  return ['', names.map((n, i) => `${n}=${i % N}`).join('; ')];
}

const records = (types: readonly string[]) => types.map((type) => ({ type }));
const moe = (groups: number[][]): AdapterConfig => ({ ...defaultAdapterConfig('loramoe'), numExperts: N, groups });
/** adapter_config.json written and read back, as a file travels between the paths. */
const roundTrip = (cfg: AdapterConfig, names: readonly string[]) => parseAdapterConfig(JSON.parse(JSON.stringify(adapterConfigJson(cfg, 'tiny/llama', names))));
const experts = (names: readonly string[], groups: number[][], type: string) => groups[names.indexOf(type)];

function pageTrains(types: readonly string[], spec: string): { names: string[]; groups: number[][] } {
  const names = typeIndexMapping(records(types)).names;
  const r = resolveGroups(names, N, spec);
  if (r.error !== null) throw new Error(r.error);
  return { names, groups: r.groups };
}
function runnerTrains(types: readonly string[], spec: string): { names: string[]; groups: number[][] } {
  const names = typeNamesFor(types);
  return { names, groups: spec ? parseTypeGroups(spec, names, N) : binaryGroups(names, N) };
}
const pageNames = (loaded: ReturnType<typeof parseAdapterConfig>) => adapterTypeNames(loaded.dataTypes, loaded.cfg.groups.length) ?? [];
const runnerNames = (loaded: ReturnType<typeof parseAdapterConfig>, types: readonly string[]) => adapterTypeNames(loaded.dataTypes, loaded.cfg.groups.length) ?? typeNamesFor(types);

describe('data types: one order for the page and the runner', () => {
  it('orders every dataset the same on both paths: the types present, the official two first', () => {
    for (const types of DATASETS) expect(typeIndexMapping(records(types)).names).toEqual(typeNamesFor(types));
    expect(typeNamesFor(['qa', WORLD_KNOWLEDGE])).toEqual([WORLD_KNOWLEDGE, 'qa']);
    expect(typeNamesFor(['code', WORLD_KNOWLEDGE, DOWNSTREAM_TASK])).toEqual([DOWNSTREAM_TASK, WORLD_KNOWLEDGE, 'code']);
  });

  it('an adapter trained on the page and loaded by the runner steers every type to the same experts', () => {
    for (const types of DATASETS) {
      for (const spec of specs(types)) {
        const trained = pageTrains(types, spec);
        const loaded = roundTrip(moe(trained.groups), trained.names);
        const names = runnerNames(loaded, types);
        for (const t of types) expect(experts(names, loaded.cfg.groups, t), `${t} in [${types.join(', ')}] with "${spec}"`).toEqual(experts(trained.names, trained.groups, t));
        // And the runner training on the same data and groups makes the same adapter.
        expect(runnerTrains(types, spec)).toEqual(trained);
      }
    }
  });

  it('an adapter trained by the runner and imported on the page steers every type to the same experts', () => {
    for (const types of DATASETS) {
      for (const spec of specs(types)) {
        const trained = runnerTrains(types, spec);
        const loaded = roundTrip(moe(trained.groups), trained.names);
        const names = pageNames(loaded);
        for (const t of types) expect(experts(names, loaded.cfg.groups, t), `${t} in [${types.join(', ')}] with "${spec}"`).toEqual(experts(trained.names, trained.groups, t));
        expect(pageTrains(types, spec)).toEqual(trained);
      }
    }
  });

  it("names the official code's two groups by task type on both paths, whatever the current data", () => {
    const json = adapterConfigJson(moe(binaryGroups([DOWNSTREAM_TASK, WORLD_KNOWLEDGE], N)), 'official');
    delete json.loramoe_playground;
    const loaded = parseAdapterConfig(json);
    expect(loaded.dataTypes).toBeUndefined();
    for (const types of [['qa', WORLD_KNOWLEDGE], [WORLD_KNOWLEDGE], [DOWNSTREAM_TASK, WORLD_KNOWLEDGE]]) {
      for (const names of [pageNames(loaded), runnerNames(loaded, types)]) {
        expect(names).toEqual([DOWNSTREAM_TASK, WORLD_KNOWLEDGE]);
        // task_type 1 (world knowledge) -> experts 0..N/2-1, as the official code's groups say.
        expect(experts(names, loaded.cfg.groups, WORLD_KNOWLEDGE)).toEqual([0, 1, 2, 3]);
      }
    }
  });
});
