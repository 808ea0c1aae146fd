/**
 * Routing statistics: the mean router weight of each expert, per layer and adapted projection, for
 * each data type, over real (non-padding) tokens. This is the paper's per-expert routing figure,
 * and what the playground's heatmaps show. Accumulated over a window of steps or an evaluation set.
 */
import type { Batch } from '../data/batch';
import { readTensors, type Tensor } from '../engine/tensor';
import { orderedTargets, type LbcDirection, type LbcImportance } from '../method/adapter';
import { type Projection } from '../method/shapes';
import { lbcOptimum } from '../reference/lbc';
import type { RoutingSetType } from './routing-set';
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
  /**
   * Per type: the share of router weight on its own expert group (groupMean[t][t]) and where the
   * balancing constraint alone would put it for the samples seen (lbcOptimum, src/reference/lbc.ts;
   * null when the constraint is off). NaN where a type had no tokens.
   */
  ownGroup: OwnGroupShare[];
  /** The constraint's settings behind `ownGroup`'s targets. */
  constraint: { direction: LbcDirection; importance: LbcImportance; delta: number; beta: number };
  /** What the summary was measured on (absent in summaries of older versions: a training window). */
  source?: RoutingSource;
}

/**
 * routingSet: the run's fixed routing set (src/train/routing-set.ts), dropout off, after `step`
 * steps. window: the training batches of steps fromStep..toStep, dropout on (a type without tokens
 * in the window keeps its values from an earlier one).
 */
export type RoutingSource = { kind: 'routingSet'; step: number; types: RoutingSetType[] } | { kind: 'window'; fromStep: number; toStep: number };

export interface OwnGroupShare {
  type: string;
  /** Samples of this type seen. */
  samples: number;
  /** Measured: router weight on the type's own group, token mean over layers and projections. */
  share: number;
  /** The constraint's optimum for these samples, or null when beta is 0. */
  target: number | null;
}

export class RoutingStats {
  private readonly projections: Projection[];
  private readonly N: number;
  private sums: Float64Array;
  private tokens: Float64Array;
  /** Samples seen, counted by "type:length" (the constraint's optimum depends on nothing else). */
  private samples = new Map<string, { type: number; length: number; count: number }>();

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
    for (let b = 0; b < batch.B; b++) {
      const type = batch.types[b];
      if (type < 0 || type >= this.typeNames.length) continue;
      let length = 0;
      for (let t = 0; t < batch.T; t++) length += batch.valid[b * batch.T + t] ? 1 : 0;
      if (length === 0) continue;
      const key = `${type}:${length}`;
      const e = this.samples.get(key);
      if (e) e.count++;
      else this.samples.set(key, { type, length, count: 1 });
    }
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
    this.samples.clear();
  }

  /**
   * Each type's own-group share at the constraint's optimum for the samples seen, taken as one
   * batch (exact under "mean", where only the mix of types matters; under "sum" the lengths enter).
   */
  private targets(): (number | null)[] {
    const cfg = this.weights.adapterCfg;
    const seen = [...this.samples.values()].filter((s) => s.type < cfg.groups.length);
    if (cfg.lbcBeta === 0 || seen.length === 0) return this.typeNames.map(() => null);
    const opt = lbcOptimum(
      seen.map((s) => ({ type: s.type, total: cfg.lbcImportance === 'mean' ? 1 : s.length, count: s.count })),
      cfg.groups,
      cfg.numExperts,
      cfg.lbcDelta,
      cfg.lbcDirection,
    );
    return this.typeNames.map((_, t) => {
      let sum = 0;
      let n = 0;
      seen.forEach((s, i) => {
        if (s.type !== t) return;
        sum += opt.ownShare[i] * s.count;
        n += s.count;
      });
      return n > 0 ? sum / n : null;
    });
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
    const cfg = this.weights.adapterCfg;
    const targets = this.targets();
    const counts = this.typeNames.map((_, t) => [...this.samples.values()].reduce((a, s) => a + (s.type === t ? s.count : 0), 0));
    const ownGroup = this.typeNames.map((type, t) => ({
      type,
      samples: counts[t],
      share: t < groups.length ? (groupMean[t][t] ?? NaN) : NaN,
      target: targets[t],
    }));
    return {
      types: [...this.typeNames],
      layers: L,
      projections: [...this.projections],
      experts: this.N,
      tokens: Array.from(this.tokens),
      mean,
      groupMean,
      ownGroup,
      constraint: { direction: cfg.lbcDirection, importance: cfg.lbcImportance, delta: cfg.lbcDelta, beta: cfg.lbcBeta },
    };
  }
}
