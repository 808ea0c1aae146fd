/**
 * The run driver on its own (no worker, no runner): what it tells its sink and writes to its store.
 * A LoRAMoE run on the tiny test backbone holds its routing set out, tells each step's metrics
 * before the routing it measured at that step, checkpoints every `checkpointEvery` steps and where
 * it rests; paused and resumed from its stored checkpoint in a new driver, it ends with the same
 * parameters as a run never paused.
 */
import { describe, expect, it } from 'vitest';
import { parseDataset } from '../data/import';
import { MemorySource } from '../io/files';
import { initAdapter } from '../loramoe/init';
import { defaultAdapterConfig } from '../loramoe/config';
import { loadBackbone } from '../model/load';
import { GpuWeights } from '../model/weights';
import { tinyHfFiles } from '../test/hf-dir';
import { testGpu } from '../test/gpu';
import { defaultTrainSettings, type TrainerCheckpoint } from '../train/trainer';
import { decodeCheckpoint, encodeCheckpoint, newRunMeta, type RunMeta } from './checkpoint';
import { type CheckpointExtra, type DriverEvent, makeTrainer, type PreparedData, prepareNew, prepareResume, runPositions, TrainingRun, type TrainingRunOptions } from './driver';

const WORDS = ['cat', 'dog', 'mat', 'sky', 'red', 'blue', 'big', 'small'];
const RECORDS = Array.from({ length: 16 }, (_, i) => [
  { instruction: `what color is the ${WORDS[i % 8]} ?`, input: '', output: WORDS[(i * 3 + 1) % 8], type: 'world knowledge' },
  { instruction: `is the ${WORDS[i % 8]} big ?`, input: '', output: i % 2 ? 'yes' : 'no', type: 'sizes' },
]).flat();

async function setUp() {
  const ctx = await testGpu();
  const hf = tinyHfFiles({ seed: 8 });
  const backbone = await loadBackbone(new MemorySource('tiny', hf.files));
  const { records } = await parseDataset(new TextEncoder().encode(RECORDS.map((r) => JSON.stringify(r)).join('\n')), 'data.jsonl');
  const typeNames = ['world knowledge', 'sizes'];
  const adapter = { ...defaultAdapterConfig('loramoe'), numExperts: 4, rank: 2, alpha: 4, dropout: 0.1, groups: [[0, 1], [2, 3]] };
  const train = { ...defaultTrainSettings(), lr: 1e-2, batchSize: 4, maxLength: 16, steps: 4, seed: 3 };
  const positions = runPositions(backbone.config);
  const meta = (data: PreparedData): RunMeta =>
    newRunMeta({
      runId: 'run-test',
      backbone: { kind: 'local', name: 'tiny' },
      dataset: { name: 'data.jsonl', bytes: 0, records: records.length },
      adapter,
      train: data.train,
      typeNames,
      checkpointEvery: 2,
      routingEvery: 2,
      faultLimit: 3,
      selection: data.selection,
      weights: 'f32',
    });
  /** A driver over fresh weights: its events and the checkpoints its store was handed. */
  const driver = async (
    data: PreparedData,
    m: RunMeta,
    from?: { cp: TrainerCheckpoint; extra: CheckpointExtra },
    onEvent?: (ev: DriverEvent, run: TrainingRun) => void,
    over: Partial<Pick<TrainingRunOptions, 'probe' | 'evalTasks' | 'originScored'>> = {},
  ) => {
    const weights = new GpuWeights(ctx, backbone.config, backbone.weights, adapter, initAdapter(backbone.config, adapter, train.seed), positions, 'f32');
    const trainer = makeTrainer(ctx, weights, data.samples, typeNames, data.train, backbone.tokenizer.padId);
    if (from) trainer.importCheckpoint(from.cp);
    const events: DriverEvent[] = [];
    const saved: { bytes: Uint8Array; extra: CheckpointExtra }[] = [];
    const run = new TrainingRun({
      trainer,
      meta: m,
      tokenizer: backbone.tokenizer,
      routingSet: data.routingSet,
      positions,
      sink: (ev) => {
        events.push(ev);
        onEvent?.(ev, run);
      },
      // Checkpoints by steps only, so what the store is handed does not depend on the machine's speed.
      checkpointSeconds: Infinity,
      store: {
        persistent: true,
        save: async (mm, cp, extra) => {
          saved.push({ bytes: encodeCheckpoint(mm, cp), extra });
          return true;
        },
      },
      good: from ? { cp: from.cp, metrics: from.extra.metrics, origin: 'checkpoint' } : { cp: await trainer.exportCheckpoint(), metrics: [], origin: 'start' },
      saved: from?.extra,
      resumed: from !== undefined,
      ...over,
    });
    return { run, events, saved, weights };
  };
  return { backbone, records, typeNames, adapter, train, positions, meta, driver };
}

describe('the run driver', () => {
  it('tells metrics before the routing measured at their step, checkpoints to its store, and resumes from it bit-identically', async () => {
    const t = await setUp();
    const data = prepareNew({ tokenizer: t.backbone.tokenizer, records: t.records, typeNames: t.typeNames, adapter: t.adapter, train: t.train, positions: t.positions, scores: false });
    // 16 of each type: the routing set holds 2 of each out (at most an eighth).
    expect(data.selection?.heldOut).toHaveLength(4);
    expect(data.samples).toHaveLength(28);
    const meta = t.meta(data);

    const whole = await t.driver(data, meta);
    await whole.run.loop();
    expect(whole.run.status).toBe('done');
    const kinds = whole.events.map((e) => (e.type === 'metrics' ? `m${e.point.step}` : e.type === 'routing' ? `r${e.step}:${e.summary.source?.kind}` : e.type));
    expect(kinds).toEqual(['m1', 'm2', 'r2:window', 'r2:routingSet', 'm3', 'm4', 'r4:window', 'r4:routingSet', 'status']);
    // Every checkpointEvery steps (the last step is one): the series up to it goes with each.
    expect(whole.saved.map((s) => s.extra.metrics.map((m) => m.step))).toEqual([[1, 2], [1, 2, 3, 4]]);

    // Paused as step 1 is told: it rests, checkpointed there; a new driver continues from the stored bytes.
    const part = await t.driver(data, meta, undefined, (ev, run) => {
      if (ev.type === 'metrics' && ev.point.step === 1) run.pause();
    });
    await part.run.loop();
    expect(part.run.status).toBe('paused');
    expect(part.saved.map((s) => s.extra.metrics.length)).toEqual([1]);
    const last = part.saved[0];
    const { meta: storedMeta, trainer: cp } = decodeCheckpoint(last.bytes, 'stored');
    expect(storedMeta).toEqual({ ...meta, savedAt: storedMeta.savedAt });
    const again = prepareResume({ tokenizer: t.backbone.tokenizer, records: t.records, meta: storedMeta, samplerSize: cp.sampler.n });
    expect(again.samples.map((s) => s.ids)).toEqual(data.samples.map((s) => s.ids));
    const rest = await t.driver(again, storedMeta, { cp, extra: last.extra });
    await rest.run.loop();
    expect(rest.run.status).toBe('done');
    expect(rest.run.history.map((m) => m.step)).toEqual([1, 2, 3, 4]);
    const a = await whole.weights.readAdapter();
    const b = await rest.weights.readAdapter();
    for (const [k, x] of a) {
      const y = b.get(k)!;
      expect(Buffer.from(y.a.buffer).equals(Buffer.from(x.a.buffer)), `${k} A`).toBe(true);
      expect(Buffer.from(y.b.buffer).equals(Buffer.from(x.b.buffer)), `${k} B`).toBe(true);
      expect(Buffer.from(y.wr!.buffer).equals(Buffer.from(x.wr!.buffer)), `${k} router`).toBe(true);
    }
    for (const d of [whole, part, rest]) {
      d.run.dispose();
      d.weights.destroy();
    }
  });

  it('scores held-out examples every evalEvery steps, from step 0 unless the host has scored the origin, and knocks expert groups out at the last step', async () => {
    const t = await setUp();
    const data = prepareNew({ tokenizer: t.backbone.tokenizer, records: t.records, typeNames: t.typeNames, adapter: t.adapter, train: t.train, positions: t.positions, scores: true });
    const meta: RunMeta = { ...t.meta(data), evalEvery: 2 };
    const probe = t.records.filter((r) => r.type === 'world knowledge').slice(0, 2);
    const evalTasks = t.records.filter((r) => r.type === 'sizes').slice(0, 2);
    const scored = async (originScored: boolean) => {
      const d = await t.driver(data, meta, undefined, undefined, { probe: () => probe, evalTasks, originScored });
      await d.run.loop();
      expect(d.run.status).toBe('done');
      d.run.dispose();
      d.weights.destroy();
      return d.events.flatMap((e) => (e.type === 'evalPoint' ? [{ step: e.point.step, samples: e.point.samples, knockout: e.point.knockout?.map((k) => k.group) ?? null }] : []));
    };
    // Steps 2 and 4 of batches of 4; the two display groups switched off in turn at the last step.
    const later = [
      { step: 2, samples: 8, knockout: null },
      { step: 4, samples: 16, knockout: ['world knowledge', 'sizes'] },
    ];
    expect(await scored(true)).toEqual(later);
    expect(await scored(false)).toEqual([{ step: 0, samples: 0, knockout: null }, ...later]);
  });
});
