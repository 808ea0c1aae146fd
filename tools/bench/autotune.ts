/**
 * The matmul autotuner against the fixed kernel choice, side by side in one process on the
 * available adapter (Node's WebGPU: SwiftShader where there is no GPU).
 *
 *   npx vite-node tools/bench/autotune.ts [--models demo,smollm2] [--rows 256] [--reps 5]
 *                                         [--budget 2000] [--smol-lm-head] [--json FILE]
 *
 * Per model: the autotuner runs as the playground's worker runs it on each backbone load, with
 * `--budget` ms per load, load after load (each going on from the stored tuning) until every shape
 * class is measured; the table says how many loads that took. Then every distinct matmul of the
 * model at `--rows` tokens (src/engine/autotune.ts modelMatmulShapes: the backbone's forward, input
 * and weight gradients, the LM head, one decode step, LoRAMoE 8 x 4 on gate/up/down) is built twice,
 * with no choices (the fixed kernel) and with the tuned ones, and the two are timed alternately
 * (wall time to onSubmittedWorkDone of enough back-to-back runs for about 20 ms, best of --reps). Ratio = fixed / tuned: 1 or more means the
 * tuned choice is not slower. The step total weights each shape by how often a step runs it.
 * SmolLM2's LM head products (7 GFLOP each) are left out unless --smol-lm-head.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { autotuneMatmuls, modelMatmulShapes, type MatmulTuning, type TuneShape, type TuningStore } from '../../src/engine/autotune';
import { describeAdapter, type GpuContext } from '../../src/engine/gpu';
import { defaultKernelChoices, describeKernelChoices, matmulShapeClass, type KernelChoices } from '../../src/engine/kernel-choices';
import { matmulOp } from '../../src/engine/kernels/matmul';
import { nodeGpu } from '../../src/engine/node-gpu';
import { destroyOps, runOps, type Op } from '../../src/engine/op';
import { createTensor } from '../../src/engine/tensor';
import { benchConfig, DEMO_CONFIG_JSON, SMOLLM2_135M_CONFIG_JSON } from './shapes';

const { values } = parseArgs({
  args: process.argv.slice(2)[0] === '--' ? process.argv.slice(3) : process.argv.slice(2),
  options: {
    models: { type: 'string', default: 'demo,smollm2' },
    rows: { type: 'string', default: '256' },
    reps: { type: 'string', default: '5' },
    budget: { type: 'string', default: '2000' },
    'smol-lm-head': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const rows = Number(values.rows);
const reps = Number(values.reps);
const budgetMs = Number(values.budget);

interface Row {
  model: string;
  shape: string;
  cls: string;
  kernel: string;
  count: number;
  fixedMs: number;
  tunedMs: number;
  ratio: number;
}

/** Wall time of `n` back-to-back runs of `op` in one submission, per run. */
async function time(ctx: GpuContext, op: Op, n: number): Promise<number> {
  await ctx.device.queue.onSubmittedWorkDone();
  const t0 = performance.now();
  runOps(ctx, Array<Op>(n).fill(op));
  await ctx.device.queue.onSubmittedWorkDone();
  return (performance.now() - t0) / n;
}

function memoryStore(): TuningStore {
  const m = new Map<string, MatmulTuning>();
  return { load: (k) => Promise.resolve(m.get(k) ?? null), save: (k, t) => Promise.resolve(void m.set(k, structuredClone(t))) };
}

const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');

async function benchModel(ctx: GpuContext, model: string, shapes: TuneShape[]): Promise<{ rows: Row[]; tuning: MatmulTuning | null; loads: number; choices: KernelChoices }> {
  const store = memoryStore();
  let loads = 0;
  let tuning: MatmulTuning | null;
  for (;;) {
    ctx.kernels = undefined;
    const out = await autotuneMatmuls(ctx, shapes, store, { budgetMs, tuneSoftware: true });
    loads++;
    tuning = out.tuning;
    console.error(`${model}: load ${loads}: ${out.source}, ${Object.keys(tuning?.classes ?? {}).length} classes measured, ${tuning?.pending.length ?? 0} pending, ${((tuning?.ms ?? 0) / 1000).toFixed(1)} s tuning so far`);
    if (out.source === 'cached' || (tuning?.pending.length ?? 0) === 0 || loads >= 40) break;
  }
  const choices: KernelChoices = ctx.kernels ?? defaultKernelChoices();
  console.error(`${model}: choices: ${describeKernelChoices(choices)}`);
  // Distinct shapes, each with how often a step runs it.
  const distinct = new Map<string, TuneShape>();
  for (const s of shapes) {
    const key = `${s.M}x${s.N}x${s.K}:${s.transA ? 't' : 'n'}${s.transB ? 't' : 'n'}`;
    const e = distinct.get(key);
    if (e) e.count += s.count;
    else distinct.set(key, { ...s });
  }
  const out: Row[] = [];
  for (const [key, s] of distinct) {
    if (model === 'smollm2' && s.label.startsWith('lm head') && s.M > 1 && !values['smol-lm-head']) continue;
    const a = createTensor(ctx, 'A', [Math.max(4, s.M * s.K)]);
    const b = createTensor(ctx, 'B', [Math.max(4, s.K * s.N)]);
    const c = createTensor(ctx, 'C', [Math.max(4, s.M * s.N)]);
    ctx.kernels = undefined;
    const fixed = matmulOp(ctx, { a, b, c, M: s.M, N: s.N, K: s.K, transA: s.transA, transB: s.transB, label: 'fixed' });
    ctx.kernels = choices;
    const tuned = matmulOp(ctx, { a, b, c, M: s.M, N: s.N, K: s.K, transA: s.transA, transB: s.transB, label: 'tuned' });
    const cls = matmulShapeClass(s);
    if (fixed.pipeline === tuned.pipeline) {
      // The tuned choice is the fixed kernel: one pipeline, the same work, a ratio of 1 by construction.
      out.push({ model, shape: `${s.label} ${key}`, cls, kernel: 'fixed (same pipeline)', count: s.count, fixedMs: NaN, tunedMs: NaN, ratio: 1 });
      destroyOps([fixed, tuned]);
      for (const t of [a, b, c]) t.destroy();
      continue;
    }
    // Enough runs per measurement for about 20 ms of work, so submission overhead and the clock's
    // resolution drop out; the two sides alternate, and each keeps its best measurement (the
    // machine's other load only ever adds time).
    const n = Math.max(1, Math.min(64, Math.round(20 / Math.max(0.01, await time(ctx, fixed, 1)))));
    await time(ctx, tuned, n);
    const tf: number[] = [];
    const tt: number[] = [];
    for (let r = 0; r < reps; r++) {
      tf.push(await time(ctx, fixed, n));
      tt.push(await time(ctx, tuned, n));
    }
    const fixedMs = Math.min(...tf);
    const tunedMs = Math.min(...tt);
    const row: Row = { model, shape: `${s.label} ${key}`, cls, kernel: choices.matmul[cls] ?? 'fixed', count: s.count, fixedMs, tunedMs, ratio: fixedMs / tunedMs };
    out.push(row);
    console.error(`${row.shape}: ${row.kernel} ${row.fixedMs.toFixed(2)} / ${row.tunedMs.toFixed(2)} ms = ${row.ratio.toFixed(2)}x`);
    destroyOps([fixed, tuned]);
    for (const t of [a, b, c]) t.destroy();
  }
  return { rows: out, tuning, loads, choices };
}

async function main(): Promise<void> {
  const ctx = await nodeGpu();
  console.error(`adapter: ${describeAdapter(ctx.adapter)}; timer: ${ctx.device.features.has('timestamp-query') ? 'GPU timestamps' : 'wall time'}`);
  const adapterCfg = { experts: 8, rank: 4, targets: ['gate_proj', 'up_proj', 'down_proj'] as const };
  const report: Array<{ model: string; loads: number; tuning: MatmulTuning | null; rows: Row[]; fixedStepMs: number; tunedStepMs: number }> = [];
  for (const model of (values.models ?? '').split(',')) {
    const cfg = benchConfig(model === 'demo' ? DEMO_CONFIG_JSON : SMOLLM2_135M_CONFIG_JSON, model === 'demo' ? undefined : 1);
    const shapes = modelMatmulShapes(cfg, rows, adapterCfg);
    const r = await benchModel(ctx, model, shapes);
    // Over the shapes whose kernels differ (the others are the same pipeline on both sides).
    const timed = r.rows.filter((x) => Number.isFinite(x.fixedMs));
    const fixedStepMs = timed.reduce((s, x) => s + x.count * x.fixedMs, 0);
    const tunedStepMs = timed.reduce((s, x) => s + x.count * x.tunedMs, 0);
    report.push({ model, loads: r.loads, tuning: r.tuning, rows: r.rows, fixedStepMs, tunedStepMs });
  }
  console.log('| model | shape (label MxNxK:layout) | class | tuned kernel | fixed ms | tuned ms | fixed / tuned |');
  console.log('|---|---|---|---|---:|---:|---:|');
  for (const m of report) for (const r of m.rows) console.log(`| ${r.model} | ${r.shape} | ${r.cls} | ${r.kernel} | ${ms(r.fixedMs)} | ${ms(r.tunedMs)} | ${r.ratio.toFixed(2)}x |`);
  console.log('\n| model | loads to tune (budget ms each) | tuning s in all | choices | shapes on the same pipeline | matmul ms per step where they differ, fixed | tuned | fixed / tuned | worst shape |');
  console.log('|---|---:|---:|---|---:|---:|---:|---:|---:|');
  for (const m of report) {
    const worst = Math.min(...m.rows.map((r) => r.ratio));
    const choices = m.tuning ? describeKernelChoices({ matmul: Object.fromEntries(Object.entries(m.tuning.classes).map(([k, v]) => [k, v.choice])), force: null }) : 'fixed';
    const same = m.rows.filter((r) => !Number.isFinite(r.fixedMs)).length;
    const step = m.fixedStepMs > 0 ? `${m.fixedStepMs.toFixed(1)} | ${m.tunedStepMs.toFixed(1)} | ${(m.fixedStepMs / m.tunedStepMs).toFixed(2)}x` : '– | – | 1.00x';
    console.log(`| ${m.model} | ${m.loads} (${budgetMs}) | ${((m.tuning?.ms ?? 0) / 1000).toFixed(1)} | ${choices} | ${same} of ${m.rows.length} | ${step} | ${worst.toFixed(2)}x |`);
  }
  for (const m of report) {
    console.log(`\n${m.model}: per class, ms per candidate (the class's shape):`);
    for (const [cls, t] of Object.entries(m.tuning?.classes ?? {})) console.log(`  ${cls} ${t.shape}: ${Object.entries(t.ms).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')} -> ${t.choice}`);
    if (m.tuning?.dropped.length) console.log(`  dropped after losing by 2x: ${m.tuning.dropped.join(', ')}`);
  }
  if (values.json) writeFileSync(values.json, JSON.stringify({ adapter: ctx.adapter, rows, reps, budgetMs, report }, null, 1));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
