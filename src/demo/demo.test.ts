/**
 * The shipped demo backbone (public/models/demo) loads through the same loader as any Hugging Face
 * directory and answers its held-out knowledge probe: exact match by the teacher-forced probe, and
 * the same answers by real greedy generation.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseDataset } from '../data/import';
import { encodePrompt } from '../data/template';
import { DirectorySource } from '../io/node-files';
import { defaultAdapterConfig } from '../loramoe/config';
import { Generator } from '../model/generate';
import { loadBackbone } from '../model/load';
import { GpuWeights } from '../model/weights';
import { testGpu } from '../test/gpu';
import { exactMatchProbe } from '../train/probe';

describe('shipped demo backbone', () => {
  it('loads and answers the held-out probe questions it was pretrained on (at least 85%)', async () => {
    const ctx = await testGpu();
    const b = await loadBackbone(new DirectorySource('public/models/demo'));
    const probe = (await parseDataset(new Uint8Array(await readFile('public/data/demo-probe.jsonl')), 'demo-probe.jsonl')).records;
    const weights = new GpuWeights(ctx, b.config, b.weights, defaultAdapterConfig('none'), null, 32);
    const result = await exactMatchProbe(ctx, weights, b.tokenizer, probe);
    console.log(`[demo] probe exact match on ${probe.length} questions: ${(result.accuracy * 100).toFixed(1)}%`);
    // The README's figure for the whole held-out probe (demo-build's log).
    expect(result.accuracy).toBeGreaterThanOrEqual(0.85);
    // Greedy generation gives the gold answer for the questions the probe scored correct.
    const gen = new Generator(ctx, weights, { maxLength: 32 });
    const correct = result.items.filter((i) => i.correct).slice(0, 3);
    for (const item of correct) {
      const res = await gen.generate(encodePrompt(b.tokenizer, item.question), { maxNewTokens: 8, temperature: 0, topK: 0, topP: 1, seed: 0, stopIds: [b.tokenizer.eosId], useAdapter: false, returnRouting: false });
      expect(b.tokenizer.decode(res.ids)).toBe(item.gold);
    }
    gen.destroy();
    weights.destroy();
  });
});
