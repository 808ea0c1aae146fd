/**
 * Evaluation with dropout off: cross-entropy over every target token, the LBC, and routing
 * statistics by data type. By default the whole set is one batch (so the LBC is the constraint on
 * the whole set, as one forward of the official code would compute it); with a batch size, CE is
 * averaged over target tokens across batches and the LBC over batches.
 */
import { makeBatch } from '../data/batch';
import type { EncodedSample } from '../data/template';
import type { GpuContext } from '../engine/gpu';
import { runOps } from '../engine/op';
import { isRouted } from '../method/adapter';
import type { ExpertMask } from '../method/expert-mask';
import { LlamaGraph } from '../model/llama';
import type { GpuWeights } from '../model/weights';
import { RoutingStats, type RoutingSummary } from './routing';

export interface EvalResult {
  ce: number;
  lbc: number;
  loss: number;
  /** Target tokens counted in the CE. */
  tokens: number;
  /** Real (non-padding) tokens. */
  realTokens: number;
  samples: number;
  batches: number;
  routing: RoutingSummary | null;
}

/**
 * Runs `each` on `samples` in batches of up to B rows of T tokens, each on an evaluation graph
 * (dropout off, the experts of `expertMask` switched off). A last, smaller batch gets a graph of its
 * own size: padding rows would change the LBC. The graphs are freed when done, or on a throw.
 */
export async function forEachEvalBatch(
  ctx: GpuContext,
  weights: GpuWeights,
  samples: readonly EncodedSample[],
  B: number,
  T: number,
  expertMask: ExpertMask,
  each: (graph: LlamaGraph, chunk: readonly EncodedSample[], start: number) => Promise<void>,
): Promise<void> {
  const graphs = new Map<number, LlamaGraph>();
  try {
    for (let start = 0; start < samples.length; start += B) {
      const chunk = samples.slice(start, start + B);
      let graph = graphs.get(chunk.length);
      if (!graph) {
        graph = new LlamaGraph(ctx, weights, { B: chunk.length, T, training: false });
        graph.setDropout(0, 0);
        graph.setExpertMask(expertMask);
        graphs.set(chunk.length, graph);
      }
      await each(graph, chunk, start);
    }
  } finally {
    for (const g of graphs.values()) g.destroy();
  }
}

export async function evaluate(
  ctx: GpuContext,
  weights: GpuWeights,
  samples: readonly EncodedSample[],
  typeIndex: (type: string) => number,
  typeNames: readonly string[],
  /** expertMask: experts knocked out in every adapted projection (default none). */
  opts: { batchSize?: number; padId: number; expertMask?: ExpertMask },
): Promise<EvalResult> {
  if (samples.length === 0) throw new Error('evaluate: no samples');
  const B = Math.min(opts.batchSize ?? samples.length, samples.length);
  const T = Math.max(...samples.map((s) => s.ids.length));
  const routing = isRouted(weights.adapterCfg) ? new RoutingStats(weights, typeNames) : null;
  let ceSum = 0;
  let count = 0;
  let lbcSum = 0;
  let realTokens = 0;
  let batches = 0;
  await forEachEvalBatch(ctx, weights, samples, B, T, opts.expertMask ?? [], async (graph, chunk) => {
    const batch = makeBatch(chunk, chunk.length, T, opts.padId, typeIndex);
    graph.setBatch(batch);
    runOps(ctx, graph.forwardOps);
    const losses = await graph.readLosses();
    if (losses.invalidLabels > 0) throw new Error(`evaluate: ${losses.invalidLabels} target ids are outside the vocabulary`);
    ceSum += losses.ce * losses.count;
    count += losses.count;
    lbcSum += losses.lbc;
    realTokens += batch.tokenCount;
    batches++;
    if (routing) await routing.add(graph, batch);
  });
  const ce = count > 0 ? ceSum / count : 0;
  const lbc = lbcSum / batches;
  return { ce, lbc, loss: ce + lbc, tokens: count, realTokens, samples: samples.length, batches, routing: routing?.summary() ?? null };
}
