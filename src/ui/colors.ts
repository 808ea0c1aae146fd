/** Colours of expert groups, the same in every view: world knowledge blue, downstream tasks orange. */
import { WORLD_KNOWLEDGE } from '../method/data-types';
import type { DisplayGroup } from '../worker/protocol';
import type { ExpertGroup } from './views/types';

const WORLD = '#2f6fb0';
const PALETTE = ['#d9822b', '#3a9a5b', '#9c4fb0', '#c0392b', '#4b8f9e', '#8a6d3b', '#5d6d7e'];

export function withColors(groups: readonly DisplayGroup[]): ExpertGroup[] {
  let next = 0;
  return groups.map((g) => ({
    name: g.name,
    experts: g.experts,
    types: [...g.types],
    color: g.types.length === 1 && g.types[0] === WORLD_KNOWLEDGE ? WORLD : PALETTE[next++ % PALETTE.length],
  }));
}
