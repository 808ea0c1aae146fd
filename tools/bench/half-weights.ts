/**
 * What f16 backbone matrices cost and save (WeightPrecision, docs/ARCHITECTURE.md "Half-precision
 * weights"): the same work with the backbone's matrices in f32 and in f16, side by side in one
 * process on one adapter.
 *
 *   npx vite-node tools/bench/half-weights.ts [--records all] [--steps 60] [--smol-layers 30] [--smol-T 64] [--reps 3] [--json FILE]
 *
 * Demo backbone (its trained weights, the shipped data):
 *   - the frozen backbone's mean cross-entropy over the training records (the first --records of
 *     them), and the knowledge probe;
 *   - a LoRAMoE 8x4 training run of --steps steps from one seed: every step's loss, both ways;
 *   - a training step's time, f16 over f32, alternating runs (a ratio, as the project's speed
 *     claims are).
 * SmolLM2-135M shapes (random N(0, 0.02) weights, --smol-layers layers, one sequence of --smol-T
 * random tokens): the forward's cross-entropy, both ways.
 * Both: GPU memory of the weights; SmolLM2: the time to upload them (the rounding included).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { makeBatch } from '../../src/data/batch';
import { parseDataset } from '../../src/data/import';
import { encodeOfficial } from '../../src/data/template';
import { describeAdapter, type GpuContext } from '../../src/engine/gpu';
import { nodeGpu } from '../../src/engine/node-gpu';
import { runOps } from '../../src/engine/op';
import { DirectorySource } from '../../src/io/node-files';
import { defaultAdapterConfig } from '../../src/loramoe/config';
import { binaryGroups } from '../../src/loramoe/groups';
import { initAdapter } from '../../src/loramoe/init';
import type { AdapterConfig } from '../../src/method/adapter';
import { typeNamesFor } from '../../src/method/data-types';
import type { ModelConfig } from '../../src/model/config';
import { initLlamaWeights } from '../../src/model/init';
import { LlamaGraph } from '../../src/model/llama';
import { loadBackbone } from '../../src/model/load';
import type { WeightPrecision } from '../../src/model/tensor-plan';
import { GpuWeights } from '../../src/model/weights';
import { exactMatchProbe } from '../../src/train/probe';
import { defaultTrainSettings, Trainer } from '../../src/train/trainer';
import { Rng } from '../../src/util/random';
import { benchConfig, SMOLLM2_135M_CONFIG_JSON } from './shapes';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: 'all' },
    steps: { type: 'string', default: '60' },
    'smol-layers': { type: 'string', default: '30' },
    'smol-T': { type: 'string', default: '64' },
    reps: { type: 'string', default: '3' },
    json: { type: 'string' },
  },
});
const STEPS = Number(values.steps);
const SMOL_LAYERS = Number(values['smol-layers']);
const SMOL_T = Number(values['smol-T']);
const REPS = Number(values.reps);
const PRECISIONS: WeightPrecision[] = ['f32', 'f16'];

/** Mean cross-entropy of the frozen model over `batches` (each [B, T]), weighted by target count. */
async function meanCe(ctx: GpuContext, weights: GpuWeights, batches: ReturnType<typeof makeBatch>[]): Promise<number> {
  let sum = 0;
  let count = 0;
  const graphs = new Map<string, LlamaGraph>();
  for (const batch of batches) {
    const key = `${batch.B}x${batch.T}`;
    let g = graphs.get(key);
    if (!g) {
      g = new LlamaGraph(ctx, weights, { B: batch.B, T: batch.T, training: false });
      g.setDropout(0, 0);
      graphs.set(key, g);
    }
    g.setBatch(batch);
    await runOps(ctx, g.forwardOps);
    const l = await g.readLosses();
    sum += l.ce * l.count;
    count += l.count;
  }
  for (const g of graphs.values()) g.destroy();
  return sum / count;
}

async function main(): Promise<void> {
  const ctx = await nodeGpu();
  const adapterName = describeAdapter(ctx.adapter);
  console.error(`adapter: ${adapterName}`);
  const out: Record<string, unknown> = { adapter: adapterName };

  // ---- demo backbone -------------------------------------------------------------------------
  const backbone = await loadBackbone(new DirectorySource('public/models/demo'));
  const train = await parseDataset(new Uint8Array(await readFile('public/data/demo-train.jsonl')), 'demo-train.jsonl');
  const probe = await parseDataset(new Uint8Array(await readFile('public/data/demo-probe.jsonl')), 'demo-probe.jsonl');
  const names = typeNamesFor(train.records.map((r) => r.type));
  const typeIndex = (t: string) => names.indexOf(t);
  const maxLength = 64;
  const samples = train.records.map((r) => encodeOfficial(backbone.tokenizer, r, maxLength));
  const scored = values.records === 'all' ? samples : samples.slice(0, Number(values.records));
  const T = Math.max(...samples.map((s) => s.ids.length));
  const B = 32;
  const batches = [];
  for (let i = 0; i < scored.length; i += B) {
    const chunk = scored.slice(i, i + B);
    batches.push(makeBatch(chunk, chunk.length, T, backbone.tokenizer.padId, typeIndex));
  }
  const none = defaultAdapterConfig('none');
  const frozen: Record<string, { ce: number; probe: number; probeLogLik: number; weightBytes: number }> = {};
  for (const precision of PRECISIONS) {
    const w = new GpuWeights(ctx, backbone.config, backbone.weights, none, null, maxLength, precision);
    const ce = await meanCe(ctx, w, batches);
    const p = await exactMatchProbe(ctx, w, backbone.tokenizer, probe.records, { maxLength });
    frozen[precision] = { ce, probe: p.accuracy, probeLogLik: p.meanLogLikelihood, weightBytes: w.bytes };
    w.destroy();
  }
  console.log(`demo, frozen backbone over ${scored.length} training records and ${probe.records.length} probe questions:`);
  console.log('| weights | mean CE | probe accuracy | probe mean log-likelihood | weight bytes |\n| --- | ---: | ---: | ---: | ---: |');
  for (const p of PRECISIONS) {
    const f = frozen[p];
    console.log(`| ${p} | ${f.ce.toFixed(6)} | ${f.probe.toFixed(4)} | ${f.probeLogLik.toFixed(5)} | ${f.weightBytes} |`);
  }
  out.demoFrozen = frozen;

  // LoRAMoE 8x4 training from one seed, both ways.
  const loramoe = defaultAdapterConfig('loramoe');
  const cfg: AdapterConfig = { ...loramoe, groups: binaryGroups(names, loramoe.numExperts) };
  const settings = { ...defaultTrainSettings(), batchSize: 4, maxLength: T, steps: STEPS };
  const curves: Record<string, number[]> = {};
  const trainers: Partial<Record<WeightPrecision, { trainer: Trainer; weights: GpuWeights }>> = {};
  for (const precision of PRECISIONS) {
    const weights = new GpuWeights(ctx, backbone.config, backbone.weights, cfg, initAdapter(backbone.config, cfg, settings.seed), maxLength, precision);
    const trainer = new Trainer(ctx, weights, samples, typeIndex, names, settings, backbone.tokenizer.padId);
    trainers[precision] = { trainer, weights };
    curves[precision] = [];
  }
  // Alternate the two runs step by step, so machine noise hits both alike; time each step.
  const ms: Record<string, number[]> = { f32: [], f16: [] };
  for (let s = 0; s < STEPS; s++) {
    for (const precision of s % 2 === 0 ? PRECISIONS : [...PRECISIONS].reverse()) {
      const { trainer } = trainers[precision]!;
      const t0 = performance.now();
      const m = await trainer.step();
      ms[precision].push(performance.now() - t0);
      curves[precision].push(m.loss);
    }
  }
  for (const { trainer, weights } of Object.values(trainers)) {
    trainer.destroy();
    weights.destroy();
  }
  let worst = 0;
  for (let s = 0; s < STEPS; s++) worst = Math.max(worst, Math.abs(curves.f16[s] - curves.f32[s]));
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  // The first steps compile and warm up: leave out the first 5 of each.
  const ratio = median(ms.f16.slice(5)) / median(ms.f32.slice(5));
  console.log(
    `\ndemo, LoRAMoE 8x4, batch 4, ${STEPS} steps from one seed: loss at step 1 f32 ${curves.f32[0].toFixed(6)} f16 ${curves.f16[0].toFixed(6)}; ` +
      `final f32 ${curves.f32[STEPS - 1].toFixed(6)} f16 ${curves.f16[STEPS - 1].toFixed(6)}; largest per-step |difference| ${worst.toExponential(2)}`,
  );
  console.log(`step time (median after 5 steps): f32 ${median(ms.f32.slice(5)).toFixed(1)} ms, f16 ${median(ms.f16.slice(5)).toFixed(1)} ms, f16/f32 ${ratio.toFixed(2)}`);
  out.demoTraining = { steps: STEPS, curves, worstStepDifference: worst, stepMs: ms, f16OverF32: ratio };

  // ---- SmolLM2-135M shapes, random weights ---------------------------------------------------
  const smol: ModelConfig = benchConfig(SMOLLM2_135M_CONFIG_JSON, SMOL_LAYERS);
  const host = initLlamaWeights(smol, 1);
  const rng = new Rng(2);
  const ids = Array.from({ length: SMOL_T }, () => rng.int(smol.vocabSize));
  const batch = makeBatch([{ ids, promptLength: 1, truncated: false, type: 'task' }], 1, SMOL_T, 0, () => 0);
  const smolOut: Record<string, { ce: number[]; weightBytes: number; uploadMs: number }> = {};
  for (const precision of PRECISIONS) {
    // The upload (and for f16 the rounding) a run's start would pay without the shared backbone.
    const t0 = performance.now();
    const w = new GpuWeights(ctx, smol, host, none, null, SMOL_T, precision);
    await ctx.device.queue.onSubmittedWorkDone();
    const uploadMs = performance.now() - t0;
    const ce: number[] = [];
    for (let r = 0; r < REPS; r++) ce.push(await meanCe(ctx, w, [batch]));
    smolOut[precision] = { ce, weightBytes: w.bytes, uploadMs };
    w.destroy();
  }
  const d = Math.abs(smolOut.f16.ce[0] - smolOut.f32.ce[0]);
  console.log(
    `\nSmolLM2-135M shapes (${SMOL_LAYERS} layers, random N(0, 0.02) weights, ${SMOL_T} random tokens): CE f32 ${smolOut.f32.ce[0].toFixed(6)} f16 ${smolOut.f16.ce[0].toFixed(6)} ` +
      `(|difference| ${d.toExponential(2)}); weight bytes f32 ${smolOut.f32.weightBytes} f16 ${smolOut.f16.weightBytes}; ` +
      `upload f32 ${smolOut.f32.uploadMs.toFixed(0)} ms, f16 ${smolOut.f16.uploadMs.toFixed(0)} ms`,
  );
  out.smollm2 = { layers: SMOL_LAYERS, T: SMOL_T, ...smolOut };
  if (values.json) await writeFile(values.json, JSON.stringify(out, null, 1));
}

await main();
