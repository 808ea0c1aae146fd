/**
 * Checkpoints: a run stopped after k steps, encoded, decoded and imported into a fresh trainer
 * continues exactly as the uninterrupted run (same losses, same parameters, bit for bit), because
 * the checkpoint carries the trainable tensors, AdamW's moments, the step, the sampler and the
 * dropout RNG state. A checkpoint for another run shape is refused.
 */
import { describe, expect, it } from 'vitest';
import type { EncodedSample } from '../data/template';
import { readTensor } from '../engine/tensor';
import { defaultAdapterConfig } from '../loramoe/config';
import { type AdapterConfig } from '../method/adapter';
import { initAdapter } from '../loramoe/init';
import { GpuWeights } from '../model/weights';
import { testGpu } from '../test/gpu';
import { randomWeights, TINY_SHAPE, TINY_SAMPLES, TINY_TYPES } from '../test/tiny-llama';
import { defaultTrainSettings, type TrainSettings, Trainer } from '../train/trainer';
import { decodeCheckpoint, encodeCheckpoint, parseRunMeta, RUN_META_VERSION, type RunMeta } from './checkpoint';

const TYPES = TINY_TYPES;
const SAMPLES: EncodedSample[] = [
  ...TINY_SAMPLES,
  { ids: [1, 9, 12, 2, 20, 3], promptLength: 3, truncated: false, type: 'downstream task' },
];

const moe: AdapterConfig = { ...defaultAdapterConfig('loramoe'), numExperts: 4, rank: 2, alpha: 8, dropout: 0.1, groups: [[2, 3], [0, 1]] };
// Batch 2 over 5 samples: the sampler wraps epochs mid-run; dropout on: the RNG state matters.
const settings: TrainSettings = { ...defaultTrainSettings(), lr: 1e-2, batchSize: 2, gradAccum: 2, maxLength: 8, steps: 6, warmupRatio: 0.2 };

async function make(cfg: AdapterConfig) {
  const ctx = await testGpu();
  const adapter = cfg.mode === 'full' ? null : initAdapter(TINY_SHAPE, cfg, settings.seed);
  const weights = new GpuWeights(ctx, TINY_SHAPE, randomWeights(TINY_SHAPE, 3), cfg, adapter, 8);
  const trainer = new Trainer(ctx, weights, SAMPLES, (t) => TYPES.indexOf(t), TYPES, settings, 0);
  return { ctx, weights, trainer };
}

const meta = (cfg: AdapterConfig): RunMeta => ({
  version: RUN_META_VERSION,
  runId: 'test',
  backbone: { kind: 'demo' },
  dataset: { name: 'x.jsonl', bytes: 1, records: SAMPLES.length },
  adapter: cfg,
  train: settings,
  typeNames: TYPES,
  totalSteps: 6,
  checkpointEvery: 3,
  routingEvery: 1,
  faultLimit: 3,
  weights: 'f32',
  savedAt: 0,
});

describe('checkpoints', () => {
  for (const cfg of [moe, defaultAdapterConfig('full')]) {
    it(`continue a ${cfg.mode} run exactly`, async () => {
      const a = await make(cfg);
      const b = await make(cfg);
      const c = await make(cfg);
      try {
        const straight = [];
        for (let i = 0; i < 6; i++) straight.push(await a.trainer.step());
        for (let i = 0; i < 3; i++) await b.trainer.step();
        const bytes = encodeCheckpoint(meta(cfg), await b.trainer.exportCheckpoint());
        const decoded = decodeCheckpoint(new Uint8Array(bytes.buffer.slice(0)));
        expect(decoded.meta).toEqual(meta(cfg));
        expect(decoded.trainer.stepsDone).toBe(3);
        c.trainer.importCheckpoint(decoded.trainer);
        const resumed = [];
        for (let i = 0; i < 3; i++) resumed.push(await c.trainer.step());
        expect(resumed.map((m) => [m.step, m.ce, m.lbc, m.gradNorm, m.lr, m.epoch])).toEqual(straight.slice(3).map((m) => [m.step, m.ce, m.lbc, m.gradNorm, m.lr, m.epoch]));
        for (const [i, p] of a.trainer.graph.params.entries()) {
          const want = await readTensor(a.ctx, p.param);
          const got = await readTensor(c.ctx, c.trainer.graph.params[i].param);
          expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `${p.name} is bit-identical`).toBe(true);
        }
      } finally {
        for (const x of [a, b, c]) {
          x.trainer.destroy();
          x.weights.destroy();
        }
      }
    });
  }

  it('refuses a checkpoint of another run shape, before writing anything', async () => {
    const a = await make(moe);
    const other = await make({ ...moe, rank: 3 });
    try {
      await a.trainer.step();
      const cp = await a.trainer.exportCheckpoint();
      expect(() => other.trainer.importCheckpoint(cp)).toThrow(/shape/);
      expect(other.trainer.stepsDone).toBe(0);
      expect(() => a.trainer.importCheckpoint({ ...cp, sampler: { ...cp.sampler, n: 4 } })).toThrow(/sampler/);
      expect(() => decodeCheckpoint(new Uint8Array(16))).toThrow();
    } finally {
      a.trainer.destroy();
      a.weights.destroy();
      other.trainer.destroy();
      other.weights.destroy();
    }
  });
});

describe('the run record', () => {
  const record = meta(moe);
  const text = (over: Record<string, unknown>, drop: string[] = []) => {
    const o: Record<string, unknown> = { ...record, ...over };
    for (const k of drop) delete o[k];
    return JSON.stringify(o);
  };

  it('reads a record of this version as written', () => {
    expect(parseRunMeta(JSON.stringify(record), 'cp')).toEqual(record);
  });

  it('brings a version-1 record (no version, no fault limit, no precision) up to this version', () => {
    const old = parseRunMeta(text({}, ['version', 'faultLimit', 'weights']), 'cp');
    expect(old).toEqual({ ...record, version: 2, faultLimit: 3, weights: 'f32' });
  });

  it('refuses a newer version and names the first wrong field of a damaged record', () => {
    expect(() => parseRunMeta(text({ version: 3 }), 'run-a checkpoint')).toThrow(/^run-a checkpoint: written by a newer version of the playground \(run record version 3; this one reads up to 2\)/);
    expect(() => parseRunMeta(text({ totalSteps: -1 }), 'cp')).toThrow('cp: run.totalSteps must be a whole number of at least 1, got -1');
    expect(() => parseRunMeta(text({ weights: 'f8' }), 'cp')).toThrow('cp: run.weights must be "f32" or "f16", got "f8"');
    expect(() => parseRunMeta(text({ train: { ...settings, lr: -1 } }), 'cp')).toThrow('cp: run.train: training settings: lr must be positive, got -1');
    expect(() => parseRunMeta(text({ routingSet: { heldOut: [1.5], sampled: [] } }), 'cp')).toThrow(/^cp: run.routingSet must be record indices/);
    expect(() => parseRunMeta(text({}, ['typeNames']), 'cp')).toThrow('cp: run.typeNames must be a list of data type names, got nothing');
    expect(() => parseRunMeta('{"runId":', 'cp')).toThrow(/^cp: the run record is not valid JSON/);
  });
});
