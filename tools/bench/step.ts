/**
 * Training-step benchmark: one LoRAMoE + LBC training step of the project against the same step in
 * TensorFlow.js (tools/bench/tfjs-peer.ts) on one GPUDevice in headless Chromium, with utilization,
 * dispatches, bytes bound and peak memory (see tools/bench/step-page.ts for the method).
 *
 *   npx vite-node tools/bench/step.ts [--cases demo:3:16:32,smollm2:2:1:256] [--reps 3] [--json FILE]
 *
 * A case is name:layers:B:T (name demo or smollm2; SmolLM2-135M's per-layer shapes with fewer
 * layers: a step's cost per layer is the same, and 30 layers of TF.js on a software adapter take
 * minutes per step). Exits 1 when the two sides' steps disagree or WebGPU reports an error.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runBenchPage } from './browser';
import type { StepBenchOutcome, StepCaseResult } from './step-page';

const { values } = parseArgs({ options: { cases: { type: 'string' }, reps: { type: 'string' }, json: { type: 'string' } } });
const query = new URLSearchParams({ cases: values.cases ?? 'demo:3:16:32,smollm2:2:1:256', reps: values.reps ?? '3' }).toString();

const MiB = 2 ** 20;
const f = (x: number, d: number) => x.toFixed(d);

function table(cases: StepCaseResult[]): string {
  const lines = [
    '| shape | layers | B x T | project ms | TF.js ms | ratio | tokens/s project / TF.js | step GFLOP | best matmul GFLOP/s | utilization | dispatches project / TF.js | MiB bound | peak MiB / need MiB | check |',
    '|---|---:|---|---:|---:|---:|---|---:|---:|---:|---|---:|---|---|',
  ];
  for (const c of cases) {
    lines.push(
      `| ${c.name} | ${c.layers} | ${c.B} x ${c.T} | ${f(c.projectMs, 0)} | ${f(c.tfjsMs, 0)} | ${f(c.ratio, 2)}x | ${f(c.tokensPerSecond.project, 0)} / ${f(c.tokensPerSecond.tfjs, 0)} | ` +
        `${f(c.stepGflop, 2)} | ${f(c.bestMatmulGflops, 2)} | ${f(c.utilization * 100, 0)}% | ${c.dispatches.project} / ${c.dispatches.tfjs} | ${f(c.boundBytes / MiB, 1)} | ` +
        `${f(c.peakBytes / MiB, 1)} / ${f(c.need.total / MiB, 1)} = ${f(c.peakBytes / c.need.total, 2)}x | ${c.ok ? 'ok' : `FAILED: ${c.note}`} |`,
    );
  }
  return lines.join('\n');
}

const outcome = await runBenchPage<StepBenchOutcome>({
  html: 'tools/bench/step.html',
  query,
  global: '__stepBench',
  prefix: 'step',
  deps: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-webgpu', '@tensorflow/tfjs-core/dist/register_all_gradients'],
});
if (!outcome.ok) {
  console.error(`benchmark failed in the page: ${outcome.error}`);
  process.exit(1);
}
const r = outcome.result;
console.log(`adapter: ${r.adapter}\nbrowser: ${r.userAgent}\nTF.js ${r.tfjsVersion} on the same GPUDevice; LoRAMoE 8 experts x rank 4 on gate/up/down, LBC on, dropout 0; median of ${r.reps} paired steps; ratio = TF.js ms / project ms\n`);
console.log(table(r.cases));
for (const c of r.cases) console.log(`${c.name}: best matmul ${c.bestMatmulShape}; paired steps agree to CE ${c.worst.ce.toExponential(1)}, LBC ${c.worst.lbc.toExponential(1)}, grad norm ${c.worst.gradNorm.toExponential(1)} (relative)`);
if (r.gpuErrors.length > 0) console.log(`WebGPU errors: ${r.gpuErrors.join('; ')}`);
if (values.json) writeFileSync(values.json, `${JSON.stringify(r, null, 2)}\n`);
process.exit(r.cases.every((c) => c.ok) && r.gpuErrors.length === 0 ? 0 : 1);
