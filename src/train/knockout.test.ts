/**
 * The specialisation table's scores: knockoutScores switches each expert group off in turn and
 * scores the probe and the task examples; the gold answers' log-likelihood under each knockout is
 * the float64 reference model's with the same experts off.
 */
import { describe, expect, it } from 'vitest';
import { encodeOfficial, type InstructionRecord } from '../data/template';
import { loadTokenizer } from '../data/tokenizer';
import { defaultAdapterConfig } from '../loramoe/config';
import type { AdapterConfig } from '../method/adapter';
import { GpuWeights } from '../model/weights';
import { ReferenceLlama } from '../reference/llama';
import { tinyHfFiles, tinyTokenizerConfig, tinyTokenizerJson } from '../test/hf-dir';
import { testGpu } from '../test/gpu';
import { randomAdapter, toRefAdapter, toRefWeights } from '../test/tiny-llama';
import { knockoutScores } from './comparison';

const MOE: AdapterConfig = { ...defaultAdapterConfig('loramoe'), numExperts: 4, rank: 2, alpha: 4, dropout: 0, groups: [[2, 3], [0, 1]] };
const NAMES = ['downstream task', 'world knowledge'];

describe('knockoutScores', () => {
  it('one score per expert group, each with the reference\'s gold log-likelihood under that knockout', async () => {
    const ctx = await testGpu();
    const hf = tinyHfFiles({ seed: 9 });
    const tok = loadTokenizer(tinyTokenizerJson(), tinyTokenizerConfig());
    const adapter = randomAdapter(hf.config, MOE, 10);
    const weights = new GpuWeights(ctx, hf.config, hf.weights, MOE, adapter, 32);
    const probe: InstructionRecord[] = [
      { instruction: 'what color is the sky ?', input: '', output: 'blue .', type: 'world knowledge' },
      { instruction: 'what color is the mat ?', input: '', output: 'red .', type: 'world knowledge' },
    ];
    const tasks: InstructionRecord[] = [{ instruction: 'is the cat big ?', input: 'the cat is small .', output: 'no .', type: 'downstream task' }];
    const scores = await knockoutScores(ctx, weights, tok, probe, tasks, NAMES);
    expect(scores.map((s) => [s.group, s.experts])).toEqual([
      ['downstream task', [2, 3]],
      ['world knowledge', [0, 1]],
    ]);
    const ref = new ReferenceLlama(hf.config, toRefWeights(hf.weights), MOE, toRefAdapter(adapter), 32);
    const V = hf.config.vocabSize;
    // Mean over the probe of log p(answer + end of sequence | question), by the reference.
    const refLogLik = (mask: number[]) => {
      let sum = 0;
      for (const r of probe) {
        const s = encodeOfficial(tok, r, 32);
        const T = s.ids.length;
        const f = ref.forward({ B: 1, T, ids: s.ids, targets: new Int32Array(T), valid: new Uint32Array(T).fill(1), types: [-1] }, { dropout: 0, seed: 0, expertMask: mask });
        for (let t = s.promptLength - 1; t < T - 1; t++) {
          const row = f.logits.subarray(t * V, (t + 1) * V);
          let mx = -Infinity;
          for (const v of row) mx = Math.max(mx, v);
          let z = 0;
          for (const v of row) z += Math.exp(v - mx);
          sum += row[s.ids[t + 1]] - mx - Math.log(z);
        }
      }
      return sum / probe.length;
    };
    for (const s of scores) {
      const want = refLogLik(s.experts);
      console.log(`[check] knockout of ${s.group}: probe log-lik ${s.probeLogLikelihood} (reference ${want})`);
      expect(Math.abs(s.probeLogLikelihood - want)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want)));
      expect(Object.keys(s.tasks)).toEqual(['downstream task']);
    }
    expect(Math.abs(scores[0].probeLogLikelihood - scores[1].probeLogLikelihood)).toBeGreaterThan(1e-4);
    // An adapter without a router has nothing to knock out.
    const lora: AdapterConfig = { ...defaultAdapterConfig('lora'), rank: 2, alpha: 4, dropout: 0 };
    const plain = new GpuWeights(ctx, hf.config, hf.weights, lora, randomAdapter(hf.config, lora, 11), 32);
    expect(await knockoutScores(ctx, plain, tok, probe, tasks, NAMES)).toEqual([]);
    plain.destroy();
    weights.destroy();
  });
});
