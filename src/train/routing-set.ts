/**
 * The routing set: a small fixed set of samples of each data type on which a run measures its
 * routing (evaluate(): dropout off, every routing window and at the end), instead of the last
 * training window's few tokens.
 *
 * Chosen once per run by a seeded draw from the training data, per data type: up to
 * ROUTING_SET_PER_TYPE samples, held out (excluded from training) as long as that takes at most
 * ROUTING_SET_MAX_SHARE of the type's samples. A type too small to spare even one sample (fewer
 * than 1 / ROUTING_SET_MAX_SHARE) is measured on a seeded sample of its training samples instead,
 * and the set says so for that type. The same records, seed and type names always give the same set.
 * Records that training leaves out (a sample whose answer the maximum length cuts away) are never
 * drawn, and count toward no type's share.
 */
import { Rng } from '../util/random';

/** Samples of each data type in the routing set, at most. */
export const ROUTING_SET_PER_TYPE = 32;
/** The largest share of a data type's samples that is held out of training for the routing set. */
export const ROUTING_SET_MAX_SHARE = 1 / 8;
/** Token rows (batch x padded length) of one evaluation batch over the routing set, at most (at least one training micro-batch). */
export const ROUTING_SET_BATCH_ROWS = 2048;

export interface RoutingSetSelection {
  /** Record indices in the routing set and excluded from training, ascending. */
  heldOut: number[];
  /** Record indices in the routing set that stay in training (types too small to spare a sample), ascending. */
  sampled: number[];
}

/** Per data type: how many samples of the set, and whether they were held out of training. */
export interface RoutingSetType {
  type: string;
  samples: number;
  heldOut: boolean;
}

/**
 * The routing set of a dataset whose record i has data type types[i] (null: a record training leaves
 * out, never drawn). `holdOut: false` draws every type from the training data (nothing is
 * excluded): the rule for runs from before routing sets.
 */
export function selectRoutingSet(
  types: readonly (string | null)[],
  typeNames: readonly string[],
  seed: number,
  opts: { holdOut?: boolean; perType?: number; maxShare?: number } = {},
): RoutingSetSelection {
  const perType = opts.perType ?? ROUTING_SET_PER_TYPE;
  const maxShare = opts.maxShare ?? ROUTING_SET_MAX_SHARE;
  const holdOut = opts.holdOut ?? true;
  // Its own stream: the training order and dropout (seeded from the same seed) are not touched.
  const rng = new Rng((seed ^ 0x7a3d91c5) >>> 0);
  const heldOut: number[] = [];
  const sampled: number[] = [];
  for (const name of typeNames) {
    const idx: number[] = [];
    types.forEach((t, i) => {
      if (t === name) idx.push(i);
    });
    // A partial Fisher-Yates shuffle: the first `want` entries are a uniform draw.
    const spare = Math.floor(idx.length * maxShare);
    const keepOut = holdOut && spare >= 1;
    const want = Math.min(perType, keepOut ? spare : idx.length);
    for (let i = 0; i < want; i++) {
      const j = i + rng.int(idx.length - i);
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    (keepOut ? heldOut : sampled).push(...idx.slice(0, want));
  }
  heldOut.sort((a, b) => a - b);
  sampled.sort((a, b) => a - b);
  return { heldOut, sampled };
}

/** The set's record indices (held out and sampled), ascending. */
export function routingSetIndices(sel: RoutingSetSelection): number[] {
  return [...sel.heldOut, ...sel.sampled].sort((a, b) => a - b);
}

/** Per data type of `typeNames`: the set's samples and whether they are held out. */
export function routingSetTypes(sel: RoutingSetSelection, types: readonly (string | null)[], typeNames: readonly string[]): RoutingSetType[] {
  return typeNames.map((type) => {
    const held = sel.heldOut.filter((i) => types[i] === type).length;
    const samp = sel.sampled.filter((i) => types[i] === type).length;
    return { type, samples: held + samp, heldOut: held > 0 };
  });
}

/** Every index of 0..n-1 not held out and kept by `trains` (all by default): the training samples. */
export function trainingIndices(n: number, sel: RoutingSetSelection, trains: (i: number) => boolean = () => true): number[] {
  const out = new Set(sel.heldOut);
  const keep: number[] = [];
  for (let i = 0; i < n; i++) if (!out.has(i) && trains(i)) keep.push(i);
  return keep;
}

/** Samples per evaluation batch over the routing set: at most ROUTING_SET_BATCH_ROWS rows, never fewer than one training micro-batch. */
export function routingSetBatch(setSize: number, seqLen: number, trainBatch: number): number {
  const b = Math.max(trainBatch, Math.floor(ROUTING_SET_BATCH_ROWS / Math.max(1, seqLen)));
  return Math.max(1, Math.min(setSize, b));
}
