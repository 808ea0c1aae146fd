/**
 * Exact-match scoring of question answering, the knowledge probe's and the downstream tasks'.
 *
 * A greedy answer equals the gold answer exactly when, fed the prompt and the gold answer so far,
 * the model's most likely next token is the gold one at every answer position and then the end of
 * sequence. So one teacher-forced forward over all questions decides exact match, with no
 * generation loop, and the same forward gives the gold answer's log-likelihood.
 */
import { makeBatch } from '../data/batch';
import { encodeOfficial, type InstructionRecord } from '../data/template';
import type { TextTokenizer } from '../data/tokenizer';
import type { GpuContext } from '../engine/gpu';
import type { ExpertMask } from '../method/expert-mask';
import { runOps } from '../engine/op';
import { forEachEvalBatch } from './evaluate';
import { type ProbeItem, type ProbeResult, probeResultOf } from './probe-result';
import type { GpuWeights } from '../model/weights';

export type { ProbeItem, ProbeResult };

export async function exactMatchProbe(
  ctx: GpuContext,
  weights: GpuWeights,
  tok: TextTokenizer,
  records: readonly InstructionRecord[],
  opts: { batchSize?: number; maxLength?: number; expertMask?: ExpertMask } = {},
): Promise<ProbeResult> {
  if (records.length === 0) throw new Error('probe: no questions');
  const maxLength = opts.maxLength ?? weights.maxPositions;
  const samples = records.map((r) => encodeOfficial(tok, r, maxLength));
  samples.forEach((s, i) => {
    if (s.truncated) throw new Error(`probe: question ${i} ("${records[i].instruction}") is longer than ${maxLength} tokens with its answer`);
  });
  const T = Math.max(...samples.map((s) => s.ids.length));
  const B = Math.min(opts.batchSize ?? 256, samples.length);
  const V = weights.shape.vocabSize;
  const items: ProbeItem[] = [];
  await forEachEvalBatch(ctx, weights, samples, B, T, opts.expertMask ?? [], async (graph, chunk, start) => {
    graph.setBatch(makeBatch(chunk, chunk.length, T, tok.padId, () => -1));
    runOps(ctx, graph.forwardOps);
    const { rowLoss, logits } = await graph.readRows();
    chunk.forEach((s, b) => {
      let ll = 0;
      let correct = true;
      const greedy: number[] = [];
      // Rows promptLength-1 .. L-2 predict the answer tokens and the closing end of sequence.
      for (let t = s.promptLength - 1; t < s.ids.length - 1; t++) {
        const m = b * T + t;
        ll -= rowLoss[m];
        let best = 0;
        for (let v = 1; v < V; v++) if (logits[m * V + v] > logits[m * V + best]) best = v;
        if (correct) greedy.push(best);
        if (best !== s.ids[t + 1]) correct = false;
      }
      const r = records[start + b];
      items.push({ question: r.input ? `${r.instruction}\n${r.input}` : r.instruction, gold: r.output, type: r.type, correct, logLikelihood: ll, greedyPrefix: tok.decode(greedy) });
    });
  });
  return probeResultOf(items, opts.expertMask ?? []);
}
