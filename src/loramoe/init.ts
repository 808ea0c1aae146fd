/**
 * Adapter initialisation as the official code (PyTorch's default Linear init): A_i and the router
 * kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)); every B_i zero, so the adapted
 * model starts exactly equal to the backbone.
 */
import { Rng } from '../util/random';
import { type AdapterConfig, hasAdapter, isRouted, orderedTargets } from '../method/adapter';
import { type Projection, type LlamaShape, projectionShape } from '../method/shapes';

/** Float32 adapter tensors of one adapted projection (GPU layouts, see src/reference/llama.ts). */
export interface AdapterArrays {
  /** Router [N, K]; null in plain LoRA. */
  wr: Float32Array | null;
  /** Stacked A [N*R, K]. */
  a: Float32Array;
  /** Concatenated B [Nout, N*R]. */
  b: Float32Array;
}

/** Keyed by `${layer}.${projection}`. */
export type AdapterSet = Map<string, AdapterArrays>;

export function adapterKey(layer: number, p: Projection): string {
  return `${layer}.${p}`;
}

/** U(-1/sqrt(fanIn), 1/sqrt(fanIn)): kaiming_uniform_(a=sqrt(5)) on a [out, fanIn] weight. */
function kaimingUniform(rng: Rng, n: number, fanIn: number): Float32Array {
  const bound = 1 / Math.sqrt(fanIn);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform(-bound, bound);
  return out;
}

export function initAdapter(shape: LlamaShape, cfg: AdapterConfig, seed: number): AdapterSet {
  const out: AdapterSet = new Map();
  if (!hasAdapter(cfg)) return out;
  const rng = new Rng(seed);
  const N = cfg.numExperts;
  const R = cfg.rank;
  for (let l = 0; l < shape.numLayers; l++) {
    for (const p of orderedTargets(cfg)) {
      const [K, Nout] = projectionShape(shape, p);
      // A_i is its own nn.Linear(K, R): each has fan-in K, so the stacked init is one call.
      const a = kaimingUniform(rng, N * R * K, K);
      const wr = isRouted(cfg) ? kaimingUniform(rng, N * K, K) : null;
      out.set(adapterKey(l, p), { wr, a, b: new Float32Array(Nout * N * R) });
    }
  }
  return out;
}
