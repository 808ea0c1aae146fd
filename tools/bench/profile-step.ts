/**
 * Profiles one full-fine-tuning training step of a small Llama: each op of the step runs alone
 * (best of `reps` runs) and times are summed by kernel (shader:entry point), then the whole step
 * runs as one submission.
 *
 *   npx vite-node tools/bench/profile-step.ts C L F V B T [--compare] [--cpu] [--reps N] [--ops N]
 *                                             [--mode full|lora|loramoe] [--heads H] [--kv-heads KVH]
 *
 * --compare builds the same step twice in one process: once with the kernels' old variants forced
 * (matmul scalar, attention / rmsnorm / ce_forward workgroup, through the *Defaults objects of the
 * dispatchers) and once with the automatic choice, then times the two op by op, alternating, so
 * the ratios are measured under the same machine load. --ops N also lists the N slowest ops.
 * --mode picks what is trained (default full; loramoe: the official 8 experts x rank 4 on the FFN
 * projections with the LBC, dropout 0); --heads / --kv-heads default to 4 / 2.
 * --cpu measures this process's CPU time (user + system, all threads) instead of wall time: on a
 * software adapter (SwiftShader) the GPU work runs on this process's threads, so CPU time barely
 * moves when other jobs load a shared machine (meaningless on a real GPU, where the CPU waits).
 * The machine is shared and noisy: trust ratios from one run more than absolute times across runs.
 */
import { parseModelConfig } from '../../src/model/config';
import { nodeGpu } from '../../src/engine/node-gpu';
import { GpuWeights } from '../../src/model/weights';
import { LlamaGraph } from '../../src/model/llama';
import { defaultAdapterConfig } from '../../src/loramoe/config';
import { type AdapterMode } from '../../src/method/adapter';
import { initAdapter } from '../../src/loramoe/init';
import { randomWeights } from '../../src/test/tiny-llama';
import { runOps, type Op } from '../../src/engine/op';
import { makeBatch } from '../../src/data/batch';
import { Rng } from '../../src/util/random';
import { matmulDefaults } from '../../src/engine/kernels/matmul';
import { attentionDefaults } from '../../src/engine/kernels/attention';
import { rmsnormDefaults } from '../../src/engine/kernels/rmsnorm';
import { ceDefaults } from '../../src/engine/kernels/crossentropy';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const compare = argv.includes('--compare');
const cpuTime = argv.includes('--cpu');
const reps = flag('--reps', 3);
const listOps = flag('--ops', 0);
const modeAt = argv.indexOf('--mode');
const mode = (modeAt >= 0 ? argv[modeAt + 1] : 'full') as AdapterMode;
if (!['full', 'lora', 'loramoe'].includes(mode)) {
  console.error(`--mode must be full, lora or loramoe, got ${mode}`);
  process.exit(2);
}
const dims: number[] = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--compare' || argv[i] === '--cpu') continue;
  if (argv[i].startsWith('--')) i++; // a flag with a value
  else dims.push(Number(argv[i]));
}
const [C, L, F, V, B, T] = dims;
if (dims.length !== 6 || dims.some((d) => !Number.isInteger(d) || d < 1)) {
  console.error('usage: profile-step.ts C L F V B T [--compare] [--cpu] [--reps N] [--ops N]');
  process.exit(2);
}

const cfg = parseModelConfig({ model_type: 'llama', hidden_size: C, intermediate_size: F, num_hidden_layers: L, num_attention_heads: flag('--heads', 4), num_key_value_heads: flag('--kv-heads', 2), vocab_size: V, tie_word_embeddings: true, hidden_act: 'silu', max_position_embeddings: Math.max(64, T), rms_norm_eps: 1e-5 });
const ctx = await nodeGpu();
const adapterCfg = { ...defaultAdapterConfig(mode), dropout: 0 };
const w = new GpuWeights(ctx, cfg, randomWeights(cfg, 1), adapterCfg, mode === 'full' ? null : initAdapter(cfg, adapterCfg, 2), T);
const rng = new Rng(1);
const samples = Array.from({ length: B }, () => ({ ids: Array.from({ length: T }, () => rng.int(V)), promptLength: 2, truncated: false, type: 'x' }));
const batch = makeBatch(samples, B, T, 0, () => 0);

type Variants = 'old' | 'new';
function buildStep(which: Variants): Op[] {
  const auto = which === 'new';
  matmulDefaults.variant = auto ? 'auto' : 'scalar';
  attentionDefaults.variant = auto ? 'auto' : 'workgroup';
  rmsnormDefaults.variant = auto ? 'auto' : 'workgroup';
  ceDefaults.forwardVariant = auto ? 'auto' : 'workgroup';
  const g = new LlamaGraph(ctx, w, { B, T, training: true });
  g.setBatch(batch);
  matmulDefaults.variant = 'auto';
  attentionDefaults.variant = 'auto';
  rmsnormDefaults.variant = 'auto';
  ceDefaults.forwardVariant = 'auto';
  return [...g.forwardOps, ...g.backwardOps];
}

const kindOf = (op: Op) => op.pipeline.label.split(':').slice(0, 2).join(':') + (op.pipeline.label.includes('TRANS_A=1') ? ' tA' : '');

/** Milliseconds of wall time, or of this process's CPU time with --cpu, to run `ops` once. */
async function timeOps(ops: readonly Op[]): Promise<number> {
  await ctx.device.queue.onSubmittedWorkDone();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  runOps(ctx, ops);
  await ctx.device.queue.onSubmittedWorkDone();
  if (!cpuTime) return performance.now() - t0;
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

const steps: Record<Variants, Op[]> = compare ? { old: buildStep('old'), new: buildStep('new') } : ({ new: buildStep('new') } as Record<Variants, Op[]>);
const names = Object.keys(steps) as Variants[];
for (const n of names) await timeOps(steps[n]); // compile and warm up

const n = steps.new.length;
const best: Record<Variants, number[]> = { old: [], new: [] };
for (let i = 0; i < n; i++) {
  for (const v of names) best[v][i] = Infinity;
  for (let r = 0; r < reps; r++) {
    for (const v of names) best[v][i] = Math.min(best[v][i], await timeOps([steps[v][i]]));
  }
}

const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
console.log(`C=${C} L=${L} F=${F} V=${V} B=${B} T=${T}: ${n} ops, best of ${reps} single-op runs each, ${cpuTime ? 'CPU' : 'wall'} time`);
for (const v of names) console.log(`  ${v}: sum of single-op times ${sum(best[v]).toFixed(0)} ms`);

// By kind: the new step's kernels; in compare mode the old step's time for the same ops beside it.
interface Row { kind: string; oldKinds: Set<string>; ms: Record<Variants, number>; count: number }
const rows = new Map<string, Row>();
for (let i = 0; i < n; i++) {
  const kind = kindOf(steps.new[i]);
  const row = rows.get(kind) ?? { kind, oldKinds: new Set<string>(), ms: { old: 0, new: 0 }, count: 0 };
  row.count++;
  for (const v of names) row.ms[v] += best[v][i];
  if (compare) row.oldKinds.add(kindOf(steps.old[i]));
  rows.set(kind, row);
}
const sorted = [...rows.values()].sort((a, b) => (compare ? b.ms.old - a.ms.old : b.ms.new - a.ms.new));
console.log(compare ? '\n     old ms     new ms   old/new  ops  kernel (old kernel)' : '\n     new ms  ops  kernel');
for (const r of sorted.slice(0, 20)) {
  if (compare) {
    const old = [...r.oldKinds].filter((k) => k !== r.kind).join(', ');
    console.log(`${r.ms.old.toFixed(1).padStart(11)} ${r.ms.new.toFixed(1).padStart(10)} ${(r.ms.old / r.ms.new).toFixed(1).padStart(8)}x ${String(r.count).padStart(4)}  ${r.kind}${old ? ` (${old})` : ''}`);
  } else {
    console.log(`${r.ms.new.toFixed(1).padStart(11)} ${String(r.count).padStart(4)}  ${r.kind}`);
  }
}

if (listOps > 0) {
  console.log(`\nslowest ${listOps} ops (new):`);
  const order = [...best.new.keys()].sort((a, b) => best.new[b] - best.new[a]).slice(0, listOps);
  for (const i of order) console.log(`${best.new[i].toFixed(1).padStart(9)} ms  ${steps.new[i].label}  [${kindOf(steps.new[i])}, ${steps.new[i].workgroups.join('x')} workgroups]`);
}

// Whole step as one submission, alternating the variants; best and median of 3.
console.log('');
const whole: Record<Variants, number[]> = { old: [], new: [] };
for (let r = 0; r < 3; r++) for (const v of names) whole[v].push(await timeOps(steps[v]));
for (const v of names) {
  const s = [...whole[v]].sort((a, b) => a - b);
  console.log(`whole step (${v}): best ${s[0].toFixed(0)} ms, median ${s[1].toFixed(0)} ms`);
}
if (compare) {
  const med = (v: Variants) => [...whole[v]].sort((a, b) => a - b)[1];
  console.log(`whole step old/new: ${(med('old') / med('new')).toFixed(1)}x`);
}
process.exit(0);
