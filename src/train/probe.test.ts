/**
 * The teacher-forced exact match agrees with real greedy generation: the model's own greedy answers
 * score as correct, altered answers as wrong, and the log-likelihood is the sum of the answer
 * tokens' log-probabilities.
 */
import { describe, expect, it } from 'vitest';
import { encodePrompt } from '../data/template';
import { loadTokenizer } from '../data/tokenizer';
import { defaultAdapterConfig } from '../loramoe/config';
import { Generator, logSoftmaxAt } from '../model/generate';
import { GpuWeights } from '../model/weights';
import { tinyHfFiles, tinyTokenizerConfig, tinyTokenizerJson } from '../test/hf-dir';
import { testGpu } from '../test/gpu';
import { exactMatchProbe } from './probe';

describe('exact-match probe', () => {
  it('agrees with greedy generation', async () => {
    const ctx = await testGpu();
    const hf = tinyHfFiles({ seed: 21 });
    const tok = loadTokenizer(tinyTokenizerJson(), tinyTokenizerConfig());
    const weights = new GpuWeights(ctx, hf.config, hf.weights, defaultAdapterConfig('none'), null, 32);
    const gen = new Generator(ctx, weights, { maxLength: 32 });
    const questions = ['what color is the sky ?', 'is the cat big ?', 'the dog sat on', 'what is red ?'];
    const records: Array<{ q: string; answer: string; correct: boolean; greedy: string; ll: number }> = [];
    for (const q of questions) {
      const res = await gen.generate(encodePrompt(tok, q), { maxNewTokens: 3, temperature: 0, topK: 0, topP: 1, seed: 0, stopIds: [], useAdapter: false, returnRouting: false, returnLogits: true });
      const [g1, g2, g3] = res.ids;
      // Gold = the first two greedy tokens: exact match iff greedy would then end the sequence.
      const ll = res.tokens[0].logprob + res.tokens[1].logprob + logSoftmaxAt(res.tokens[2].logits!, tok.eosId);
      records.push({ q, answer: tok.decode([g1, g2]), correct: g3 === tok.eosId, greedy: tok.decode([g1, g2, g3]), ll });
      // Gold with a different first token: wrong at the first answer position.
      const other = g1 === 4 ? 5 : 4;
      records.push({ q, answer: tok.decode([other, g2]), correct: false, greedy: tok.decode([g1]), ll: NaN });
    }
    const probe = await exactMatchProbe(ctx, weights, tok, records.map((r) => ({ instruction: r.q, input: '', output: r.answer, type: 'world knowledge' })));
    probe.items.forEach((item, i) => {
      const r = records[i];
      expect(item.correct, `${item.question} -> ${item.gold}`).toBe(r.correct);
      expect(item.greedyPrefix).toBe(r.greedy);
      if (!Number.isNaN(r.ll)) expect(item.logLikelihood).toBeCloseTo(r.ll, 4);
    });
    console.log(`[check] probe vs greedy generation: ${records.length} answers agree (decisions, greedy tokens, log-likelihoods)`);
    gen.destroy();
    weights.destroy();
  });
});
