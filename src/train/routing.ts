/**
 * Routing statistics: the mean router weight of each expert, per layer and adapted projection, for
 * each data type, over real (non-padding) tokens. This is the paper's per-expert routing figure,
 * and what the playground's heatmaps show. Accumulated over a window of steps or an evaluation set.
 */
import type { Batch } from '../data/batch';
import { readTensors, type Tensor } from '../engine/tensor';
import { orderedTargets, type Projection } from '../loramoe/config';
import { adapterKey } from '../loramoe/init';
import type { LlamaGraph } from '../model/llama';
import type { GpuWeights } from '../model/weights';

export interface RoutingSummary {
  types: string[];
  layers: number;
  projections: Projection[];
  experts: number;
  /** Real tokens seen per type. */
  tokens: number[];
  /** mean[type][layer][projection index][expert]; NaN where a type had no tokens. */
  mean: number[][][][];
  /** Share of router weight held by each expert group (sum over its experts), averaged over layers and projections: [type][group]. */
  groupMean: number[][];
}

export class RoutingStats {
  private readonly projections: Projection[];
  private readonly N: number;
  private sums: Float64Array;
  private tokens: Float64Array;

  constructor(
    private readonly weights: GpuWeights,
    private readonly typeNames: readonly string[],
  ) {
    this.projections = orderedTargets(weights.adapterCfg);
    this.N = weights.adapterCfg.numExperts;
    this.sums = new Float64Array(typeNames.length * weights.shape.numLayers * this.projections.length * this.N);
    this.tokens = new Float64Array(typeNames.length);
  }

  private index(type: number, layer: number, p: number): number {
    return ((type * this.weights.shape.numLayers + layer) * this.projections.length + p) * this.N;
  }

  /** Adds the router weights the graph's last forward saved, for the batch it ran on. */
  async add(graph: LlamaGraph, batch: Batch): Promise<void> {
    const tensors = graph.routingTensors();
    const N = this.N;
    const rowsByType: Array<{ m: number; type: number }> = [];
    for (let m = 0; m < batch.B * batch.T; m++) {
      const type = batch.types[Math.floor(m / batch.T)];
      if (batch.valid[m] && type >= 0 && type < this.typeNames.length) rowsByType.push({ m, type });
    }
    for (const { type } of rowsByType) this.tokens[type]++;
    const wanted: Array<{ l: number; pi: number; t: Tensor }> = [];
    for (let l = 0; l < this.weights.shape.numLayers; l++) {
      for (const [pi, p] of this.projections.entries()) {
        const t = tensors.get(adapterKey(l, p));
        if (t) wanted.push({ l, pi, t });
      }
    }
    const read = await readTensors(graph.ctx, wanted.map((x) => x.t));
    wanted.forEach(({ l, pi }, i) => {
      const w = read[i];
      for (const { m, type } of rowsByType) {
        const base = this.index(type, l, pi);
        for (let n = 0; n < N; n++) this.sums[base + n] += w[m * N + n];
      }
    });
  }

  reset(): void {
    this.sums.fill(0);
    this.tokens.fill(0);
  }

  summary(): RoutingSummary {
    const L = this.weights.shape.numLayers;
    const P = this.projections.length;
    const groups = this.weights.adapterCfg.groups;
    const mean: number[][][][] = [];
    const groupMean: number[][] = [];
    for (let t = 0; t < this.typeNames.length; t++) {
      const perType: number[][][] = [];
      const gsum = new Array<number>(groups.length).fill(0);
      for (let l = 0; l < L; l++) {
        const perLayer: number[][] = [];
        for (let p = 0; p < P; p++) {
          const base = this.index(t, l, p);
          const row = Array.from({ length: this.N }, (_, n) => (this.tokens[t] > 0 ? this.sums[base + n] / this.tokens[t] : NaN));
          perLayer.push(row);
          groups.forEach((g, gi) => {
            // A group's share: the summed mean weight of its experts (0.5 per group of 2 when uniform).
            for (const n of g) gsum[gi] += row[n];
          });
        }
        perType.push(perLayer);
      }
      mean.push(perType);
      groupMean.push(gsum.map((s) => s / (L * P)));
    }
    return { types: [...this.typeNames], layers: L, projections: [...this.projections], experts: this.N, tokens: Array.from(this.tokens), mean, groupMean };
  }
}
