/**
 * The training-step benchmark's page (tools/bench/step.html, driven by tools/bench/step.ts): one
 * LoRAMoE + LBC training step of the project (Trainer.step: one submission of the prepared forward,
 * backward, gradient clip and AdamW dispatches, then the loss, clip and routing readbacks) against
 * the same step written with TensorFlow.js ops and autodiff (tools/bench/tfjs-peer.ts), on one
 * GPUDevice (tools/bench/tfjs-device.ts), same weights, same batch, same adapter, same optimizer.
 *
 * Both sides use expert dropout 0 (the peer has none) and a constant learning rate. Every timed step
 * of one side is paired with a step of the other on the same batch from the same state, so both
 * follow one trajectory: each pair's CE, LBC and gradient norm must agree (float32 tolerances) or
 * the case fails. Timing: alternate project / TF.js steps, median of `reps`; each step is timed
 * from its call until its results are read back (both sides read their losses every step).
 *
 * Also measured per case: the best matmul GFLOP/s of the project on the case's own projection
 * shapes (forward, M = B*T) on this adapter, timed right before each timed step (median over the
 * steps, so both see the same machine load), the step's utilization (analytic step FLOPs / median
 * step time / that median best matmul rate), dispatches per step of both sides (counted on the compute pass
 * encoders), bytes bound per step, and the project's peak GPU memory against the analytic need.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import { makeBatch } from '../../src/data/batch';
import type { EncodedSample } from '../../src/data/template';
import { describeAdapter, type GpuContext, requestGpu } from '../../src/engine/gpu';
import { matmulOp } from '../../src/engine/kernels/matmul';
import { destroyOps, runOps } from '../../src/engine/op';
import { createTensor } from '../../src/engine/tensor';
import { defaultAdapterConfig } from '../../src/loramoe/config';
import { type AdapterConfig } from '../../src/method/adapter';
import type { ModelConfig } from '../../src/model/config';
import { GpuWeights } from '../../src/model/weights';
import { randomAdapter, randomWeights } from '../../src/test/tiny-llama';
import { defaultTrainSettings, type StepMetrics, Trainer } from '../../src/train/trainer';
import { Rng } from '../../src/util/random';
import { buildPeerStep, type PeerStepResult } from './tfjs-peer';
import { tfjsOnDevice } from './tfjs-device';
import { benchConfig, DEMO_CONFIG_JSON, SMOLLM2_135M_CONFIG_JSON } from './shapes';
import { memoryNeed, type MemoryNeed, peakBytes, stepCounts, stepFlops } from './step-stats';

export interface StepCase {
  name: string;
  layers: number;
  B: number;
  T: number;
}

export interface StepCaseResult extends StepCase {
  ok: boolean;
  note: string;
  projectMs: number;
  tfjsMs: number;
  /** TF.js ms / project ms: above 1 the project is faster. */
  ratio: number;
  tokensPerSecond: { project: number; tfjs: number };
  stepGflop: number;
  projectGflops: number;
  bestMatmulGflops: number;
  bestMatmulShape: string;
  /** projectGflops / bestMatmulGflops. */
  utilization: number;
  dispatches: { project: number; tfjs: number };
  boundBytes: number;
  peakBytes: number;
  need: MemoryNeed;
  /** Worst relative disagreement over the paired steps. */
  worst: { ce: number; lbc: number; gradNorm: number };
}

export interface StepBenchResult {
  adapter: string;
  userAgent: string;
  tfjsVersion: string;
  reps: number;
  cases: StepCaseResult[];
  gpuErrors: string[];
}

export type StepBenchOutcome = { ok: true; result: StepBenchResult } | { ok: false; error: string };

declare global {
  interface Window {
    __stepBench?: StepBenchOutcome;
  }
}

const log = (line: string) => console.log(`[step] ${line}`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rel = (a: number, b: number, floor: number) => Math.abs(a - b) / Math.max(Math.abs(b), floor);

/** Counts dispatchWorkgroups calls while `fn` runs (both sides encode through the same prototype). */
async function countDispatches<T>(fn: () => Promise<T>): Promise<{ value: T; dispatches: number }> {
  const proto = GPUComputePassEncoder.prototype;
  const original = proto.dispatchWorkgroups;
  let n = 0;
  proto.dispatchWorkgroups = function (this: GPUComputePassEncoder, x: number, y?: number, z?: number) {
    n++;
    return original.call(this, x, y, z);
  };
  try {
    return { value: await fn(), dispatches: n };
  } finally {
    proto.dispatchWorkgroups = original;
  }
}

/**
 * The project's matmul on the case's projection shapes (x·Wᵀ, M = B*T), prepared once; `time()`
 * runs each shape once and returns the best GFLOP/s of that round. The step benchmark calls it
 * next to every timed step, so the best rate and the step are measured under the same load.
 */
function matmulProbe(ctx: GpuContext, cfg: ModelConfig, M: number): { time: () => Promise<{ gflops: number; shape: string }>; destroy: () => void } {
  const C = cfg.hiddenSize;
  const F = cfg.intermediateSize;
  const qd = cfg.numHeads * cfg.headDim;
  const cases = [[C, qd], [C, F], [F, C], [C, cfg.vocabSize]].map(([K, N]) => {
    const rng = new Rng(K * 31 + N);
    const a = createTensor(ctx, 'a', [M, K], 'f32', rng.f32Array(M * K, -1, 1));
    const b = createTensor(ctx, 'w', [N, K], 'f32', rng.f32Array(N * K, -1, 1));
    const c = createTensor(ctx, 'c', [M, N]);
    return { K, N, tensors: [a, b, c], ops: [matmulOp(ctx, { a, b, c, M, N, K, transB: true, label: 'best matmul' })] };
  });
  return {
    async time() {
      let best = { gflops: 0, shape: '' };
      for (const m of cases) {
        await ctx.device.queue.onSubmittedWorkDone();
        const t0 = performance.now();
        runOps(ctx, m.ops);
        await ctx.device.queue.onSubmittedWorkDone();
        const gflops = (2 * M * m.N * m.K) / ((performance.now() - t0) / 1000) / 1e9;
        if (gflops > best.gflops) best = { gflops, shape: `[${M}, ${m.K}] x [${m.K}, ${m.N}]` };
      }
      return best;
    },
    destroy() {
      for (const m of cases) {
        destroyOps(m.ops);
        for (const t of m.tensors) t.destroy();
      }
    },
  };
}

async function runCase(ctx: GpuContext, flush: () => void, c: StepCase, cfg: ModelConfig, reps: number): Promise<StepCaseResult> {
  const { B, T } = c;
  const typeNames = ['world knowledge', 'task'];
  const adapterCfg: AdapterConfig = { ...defaultAdapterConfig('loramoe'), dropout: 0, groups: [[0, 1, 2, 3], [4, 5, 6, 7]] };
  const host = randomWeights(cfg, 1);
  const adapter = randomAdapter(cfg, adapterCfg, 2);
  const rng = new Rng(3);
  // B samples: every step's batch holds all of them (in the sampler's order), so both sides see the same batch.
  const samples: EncodedSample[] = Array.from({ length: B }, (_, i) => ({
    ids: Array.from({ length: T - (i % 3) }, () => rng.int(cfg.vocabSize)),
    promptLength: Math.floor(T / 4),
    truncated: false,
    type: typeNames[i % 2],
  }));
  const typeIndex = (t: string) => typeNames.indexOf(t);
  const lr = 1e-4;
  const settings = { ...defaultTrainSettings(), batchSize: B, maxLength: T, steps: 2 * reps + 4, lr, schedule: 'constant' as const };
  const batch = makeBatch(samples, B, T, 0, typeIndex);

  // Project: weights, graph, optimizer; peak memory counted over setup and the first step.
  const pairs: { p: StepMetrics; t: PeerStepResult }[] = [];
  let firstProject: StepMetrics | null = null;
  const { peak, value: trainer } = await peakBytes(
    ctx,
    () => new Trainer(ctx, new GpuWeights(ctx, cfg, host, adapterCfg, adapter, T), samples, typeIndex, typeNames, settings, 0),
    async (t) => {
      firstProject = await t.step();
    },
  );
  const counts = stepCounts(trainer);
  const peer = buildPeerStep(tf, cfg, host, adapter, adapterCfg, { train: { lr } });
  pairs.push({ p: firstProject!, t: await peer.step(batch, lr) });

  const probe = matmulProbe(ctx, cfg, B * T);
  await probe.time(); // compiles the pipelines
  const projectMs: number[] = [];
  const tfjsMs: number[] = [];
  const matmulRates: { gflops: number; shape: string }[] = [];
  let projectDispatches = 0;
  let tfjsDispatches = 0;
  // One untimed warm-up pair, then `reps` timed pairs.
  for (let i = 0; i <= reps; i++) {
    const rate = await probe.time();
    await ctx.device.queue.onSubmittedWorkDone();
    let t0 = performance.now();
    const p = await countDispatches(() => trainer.step());
    const pm = performance.now() - t0;
    flush();
    await ctx.device.queue.onSubmittedWorkDone();
    t0 = performance.now();
    const t = await countDispatches(() => peer.step(batch, lr));
    const tm = performance.now() - t0;
    pairs.push({ p: p.value, t: t.value });
    projectDispatches = p.dispatches;
    tfjsDispatches = t.dispatches;
    if (i > 0) {
      projectMs.push(pm);
      tfjsMs.push(tm);
      matmulRates.push(rate);
    }
    log(`${c.name}: pair ${i}: project ${pm.toFixed(0)} ms, TF.js ${tm.toFixed(0)} ms`);
  }
  trainer.destroy();
  trainer.weights.destroy();
  peer.dispose();
  probe.destroy();

  // The paired steps followed one trajectory: CE and LBC to float32 accumulated error, the gradient
  // norm (a sum of squares over every trainable value) a little looser.
  const worst = { ce: 0, lbc: 0, gradNorm: 0 };
  for (const { p, t } of pairs) {
    worst.ce = Math.max(worst.ce, rel(p.ce, t.ce, 1e-3));
    worst.lbc = Math.max(worst.lbc, rel(p.lbc, t.lbc, 1e-3));
    worst.gradNorm = Math.max(worst.gradNorm, rel(p.gradNorm, t.gradNorm, 1e-6));
  }
  const ok = worst.ce < 1e-3 && worst.lbc < 1e-3 && worst.gradNorm < 1e-2;
  const best = [...matmulRates].sort((a, b) => a.gflops - b.gflops)[Math.floor(matmulRates.length / 2)];
  const flops = stepFlops(cfg, adapterCfg, B, T).total;
  const pMs = median(projectMs);
  const tMs = median(tfjsMs);
  const projectGflops = flops / (pMs / 1000) / 1e9;
  const tokens = B * T;
  return {
    ...c,
    ok,
    note: ok ? '' : `steps disagree: CE ${worst.ce.toExponential(1)}, LBC ${worst.lbc.toExponential(1)}, grad norm ${worst.gradNorm.toExponential(1)} relative`,
    projectMs: pMs,
    tfjsMs: tMs,
    ratio: tMs / pMs,
    tokensPerSecond: { project: tokens / (pMs / 1000), tfjs: tokens / (tMs / 1000) },
    stepGflop: flops / 1e9,
    projectGflops,
    bestMatmulGflops: best.gflops,
    bestMatmulShape: best.shape,
    utilization: projectGflops / best.gflops,
    dispatches: { project: projectDispatches, tfjs: tfjsDispatches },
    boundBytes: counts.boundBytes,
    peakBytes: peak,
    need: memoryNeed(cfg, adapterCfg, B, T),
    worst,
  };
}

/** Query: cases=demo:3:16:32,smollm2:2:1:256 (name:layers:B:T), reps=N. */
function casesFromQuery(search: string): { cases: StepCase[]; reps: number } {
  const q = new URLSearchParams(search);
  const reps = Number(q.get('reps') ?? 3);
  const cases = (q.get('cases') ?? 'demo:3:16:32').split(',').map((s) => {
    const [name, layers, B, T] = s.split(':');
    const c = { name, layers: Number(layers), B: Number(B), T: Number(T) };
    if (!['demo', 'smollm2'].includes(name) || ![c.layers, c.B, c.T].every((n) => Number.isInteger(n) && n > 0)) throw new Error(`bad case "${s}" (want name:layers:B:T)`);
    return c;
  });
  return { cases, reps };
}

async function run(): Promise<StepBenchResult> {
  const { cases, reps } = casesFromQuery(location.search);
  const ctx = await requestGpu(navigator.gpu);
  const gpuErrors: string[] = [];
  ctx.device.addEventListener('uncapturederror', (e) => gpuErrors.push((e as GPUUncapturedErrorEvent).error.message));
  const { flush } = await tfjsOnDevice(ctx);
  const results: StepCaseResult[] = [];
  for (const c of cases) {
    const json = c.name === 'demo' ? DEMO_CONFIG_JSON : SMOLLM2_135M_CONFIG_JSON;
    const cfg = benchConfig({ ...json, max_position_embeddings: Math.max(c.T, 64) }, c.layers);
    log(`${c.name}: ${c.layers} layers, B=${c.B}, T=${c.T}`);
    results.push(await runCase(ctx, flush, c, cfg, reps));
  }
  return { adapter: describeAdapter(ctx.adapter), userAgent: navigator.userAgent, tfjsVersion: tf.version_core, reps, cases: results, gpuErrors };
}

run().then(
  (result) => (window.__stepBench = { ok: true, result }),
  (e: unknown) => {
    console.error(e);
    window.__stepBench = { ok: false, error: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) };
  },
);
