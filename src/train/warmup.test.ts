import { describe, expect, it } from 'vitest';
import type { EncodedSample } from '../data/template';
import { countBuffers } from '../engine/buffer-count';
import { PipelineCache } from '../engine/pipelines';
import { loadTokenizer } from '../data/tokenizer';
import { defaultAdapterConfig } from '../loramoe/config';
import { initAdapter } from '../loramoe/init';
import type { AdapterConfig } from '../method/adapter';
import type { Backbone } from '../model/load';
import { GpuWeights } from '../model/weights';
import { tinyTokenizerConfig, tinyTokenizerJson } from '../test/hf-dir';
import { testGpu } from '../test/gpu';
import { randomWeights, TINY_SHAPE } from '../test/tiny-llama';
import { defaultTrainSettings, type TrainSettings, Trainer } from './trainer';
import { warmTrainingPipelines } from './warmup';

const TYPES = ['downstream task', 'world knowledge'];
const SAMPLES: EncodedSample[] = [
  { ids: [1, 5, 9, 2, 14, 3], promptLength: 3, truncated: false, type: 'world knowledge' },
  { ids: [1, 7, 11, 2, 17, 3], promptLength: 3, truncated: false, type: 'downstream task' },
  { ids: [1, 8, 12, 13, 2, 18, 19, 3], promptLength: 4, truncated: false, type: 'downstream task' },
];

describe('pipeline warm-up', () => {
  it('compiles every pipeline the run then uses, and leaves nothing behind', async () => {
    const shared = await testGpu();
    // A cache of its own, so the count starts from nothing whatever ran before in this process.
    const ctx = { ...shared, pipelines: new PipelineCache(shared.device) };
    const backbone: Backbone = {
      config: TINY_SHAPE,
      weights: randomWeights(TINY_SHAPE, 3),
      tokenizer: loadTokenizer(tinyTokenizerJson(), tinyTokenizerConfig()),
      tokenizerConfig: tinyTokenizerConfig(),
      name: 'tiny',
      warnings: [],
    };
    const cfg: AdapterConfig = { ...defaultAdapterConfig('loramoe'), numExperts: 4, rank: 2, alpha: 4, groups: [[2, 3], [0, 1]] };
    const settings: TrainSettings = { ...defaultTrainSettings(), batchSize: 2, maxLength: 8, steps: 3 };
    const count = countBuffers(ctx.device);
    const warm = warmTrainingPipelines(ctx, backbone, cfg, settings, SAMPLES, TYPES, 8);
    expect(warm).not.toBeNull();
    expect(warm!.pipelines).toBeGreaterThan(10);
    expect(count.live).toBe(0);
    count.stop();
    // The real run on the same shapes compiles nothing more, and trains.
    const compiled = ctx.pipelines.compiles.length;
    const weights = new GpuWeights(ctx, TINY_SHAPE, backbone.weights, cfg, initAdapter(TINY_SHAPE, cfg, settings.seed), 8);
    const trainer = new Trainer(ctx, weights, SAMPLES, (t) => TYPES.indexOf(t), TYPES, settings, 0);
    const m = await trainer.step();
    expect(Number.isFinite(m.loss)).toBe(true);
    expect(ctx.pipelines.compiles.length).toBe(compiled);
    trainer.destroy();
    weights.destroy();
    expect(warmTrainingPipelines(ctx, backbone, cfg, settings, SAMPLES, TYPES, 8)!.pipelines).toBe(0);
  });
});
