/**
 * The training loop on the GPU with a tiny random Llama: a few samples are memorised (the loss falls
 * close to zero), the frozen backbone stays bit-identical under LoRAMoE training, runs are
 * reproducible from the seed, and routing statistics are collected per data type.
 */
import { describe, expect, it } from 'vitest';
import { readTensor } from '../engine/tensor';
import { defaultAdapterConfig } from '../loramoe/config';
import { type AdapterConfig } from '../method/adapter';
import { initAdapter } from '../loramoe/init';
import { GpuWeights } from '../model/weights';
import { testGpu } from '../test/gpu';
import { randomWeights, TINY_SHAPE, TINY_SAMPLES, TINY_TYPES } from '../test/tiny-llama';
import { defaultTrainSettings, type TrainSettings, Trainer } from './trainer';

const TYPES = TINY_TYPES;
const SAMPLES = TINY_SAMPLES;

const moe = (over: Partial<AdapterConfig> = {}): AdapterConfig => ({
  ...defaultAdapterConfig('loramoe'),
  numExperts: 4,
  rank: 4,
  alpha: 8,
  groups: [[2, 3], [0, 1]],
  ...over,
});

const settings = (over: Partial<TrainSettings> = {}): TrainSettings => ({
  ...defaultTrainSettings(),
  lr: 2e-2,
  batchSize: 4,
  maxLength: 8,
  steps: 80,
  warmupRatio: 0,
  ...over,
});

async function makeTrainer(cfg: AdapterConfig, s: TrainSettings) {
  const ctx = await testGpu();
  const host = randomWeights(TINY_SHAPE, 5);
  // With the head and final norm frozen, the largest logit margin is about |norm weight|·|embedding
  // row|·sqrt(C), which puts a floor under the CE of a LoRA-only model (~0.07 here). A larger final
  // norm raises the margin so that memorising drives the CE close to zero.
  host.get('model.norm.weight')!.forEach((v, i, a) => (a[i] = 4 * v));
  const adapter = cfg.mode === 'full' ? null : initAdapter(TINY_SHAPE, cfg, s.seed);
  const weights = new GpuWeights(ctx, TINY_SHAPE, host, cfg, adapter, s.maxLength);
  const trainer = new Trainer(ctx, weights, SAMPLES, (t) => TYPES.indexOf(t), TYPES, s, 0);
  return { ctx, host, weights, trainer };
}

describe('trainer', () => {
  it('memorises a few samples with LoRAMoE (loss falls close to zero) and leaves the backbone bit-identical', async () => {
    const { host, weights, trainer } = await makeTrainer(moe({ dropout: 0, lbcBeta: 0.1 }), settings({ schedule: 'constant', lr: 1e-2, steps: 80 }));
    const first = await trainer.step();
    let last = first;
    for (let i = 1; i < 80; i++) last = await trainer.step();
    console.log(`[train] loramoe overfit: CE ${first.ce.toFixed(4)} -> ${last.ce.toFixed(4)}, LBC ${last.lbc.toExponential(3)}, grad norm ${last.gradNorm.toFixed(4)}`);
    expect(first.ce).toBeGreaterThan(2);
    expect(last.ce).toBeLessThan(0.01);
    expect(last.skipped).toBe(false);
    // The frozen backbone: every tensor bit-identical to what was uploaded.
    const after = await weights.readBackbone();
    for (const [name, before] of host) {
      const a = after.get(name)!;
      expect(Buffer.from(a.buffer).equals(Buffer.from(before.buffer, before.byteOffset, before.byteLength)), name).toBe(true);
    }
    const routing = trainer.routing!.summary();
    expect(routing.tokens[0]).toBeGreaterThan(0);
    expect(routing.tokens[1]).toBeGreaterThan(0);
    // Router weights are a softmax: each (type, layer, projection) row sums to 1.
    for (const perType of routing.mean) for (const perLayer of perType) for (const row of perLayer) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    trainer.destroy();
    weights.destroy();
  });

  it('reproduces a run from its seed (dropout on, gradient accumulation)', async () => {
    const run = async (seed: number) => {
      const { weights, trainer } = await makeTrainer(moe({ dropout: 0.1 }), settings({ seed, steps: 4, batchSize: 2, gradAccum: 2, lr: 1e-2 }));
      const m = [];
      for (let i = 0; i < 4; i++) m.push(await trainer.step());
      const adapter = await weights.readAdapter();
      trainer.destroy();
      weights.destroy();
      return { m, adapter };
    };
    const a = await run(7);
    const b = await run(7);
    const c = await run(8);
    expect(a.m.map((x) => x.loss)).toEqual(b.m.map((x) => x.loss));
    for (const [k, t] of a.adapter) expect(Array.from(t.a)).toEqual(Array.from(b.adapter.get(k)!.a));
    expect(a.m.map((x) => x.loss)).not.toEqual(c.m.map((x) => x.loss));
  });

  it('trains plain LoRA and full fine-tuning on the same code path', async () => {
    for (const cfg of [{ ...defaultAdapterConfig('lora'), rank: 4, alpha: 8, dropout: 0 }, defaultAdapterConfig('full')]) {
      const { weights, trainer } = await makeTrainer(cfg, settings({ steps: 30, lr: cfg.mode === 'full' ? 5e-3 : 2e-2 }));
      const first = await trainer.step();
      let last = first;
      for (let i = 1; i < 30; i++) last = await trainer.step();
      console.log(`[train] ${cfg.mode}: CE ${first.ce.toFixed(4)} -> ${last.ce.toFixed(4)}`);
      expect(last.ce).toBeLessThan(first.ce * 0.5);
      if (cfg.mode === 'full') {
        const w = await readTensor(weights.ctx, weights.get('model.norm.weight'));
        expect(Array.from(w)).not.toEqual(Array.from(randomWeights(TINY_SHAPE, 5).get('model.norm.weight')!.map((v) => 4 * v)));
      }
      trainer.destroy();
      weights.destroy();
    }
  });

  it('refuses settings that cannot work, naming the field', async () => {
    await expect(makeTrainer(moe(), settings({ batchSize: 0 }))).rejects.toThrow(/batchSize must be a positive integer/);
    await expect(makeTrainer(moe(), settings({ maxLength: 4 }))).rejects.toThrow(/sample 0 has 6 tokens, more than maxLength 4/);
  });
});
