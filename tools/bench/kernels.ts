/**
 * Kernel benchmark: the project's WGSL kernels vs TensorFlow.js's WebGPU backend, on the shapes the
 * model uses, in one headless Chromium page on the available WebGPU adapter.
 *
 *   npx vite-node tools/bench/kernels.ts [--quick] [--reps N] [--models demo,smollm2]
 *                                        [--filter REGEX] [--smol-lm-head] [--json FILE]
 *
 * Starts a Vite dev server (root = the repository) for tools/bench/kernels.html, opens it in
 * /usr/bin/chromium through playwright-core (WebGPU flags as in playwright.config.ts), waits for
 * the page's JSON result and prints a Markdown table: per row the median wall time of one run on
 * each side (submit to GPU done, readback excluded; see kernels-page.ts for the method), GFLOP/s
 * and the ratio (TF.js time / project time: above 1 the project is faster).
 *
 * Rows (M = batch * sequence = 256): for the demo backbone and SmolLM2-135M, the projections'
 * matmuls forward (x·Wᵀ), input gradient (dY·W) and weight gradient (dYᵀ·x) with the project's
 * transposed variants as src/model/llama.ts calls them; the LoRAMoE experts of one projection at
 * rank 4, 8, 16 (8 experts); the router (matmul + softmax); causal attention forward. Both sides'
 * outputs are checked against a float64 CPU reference first: a mismatch marks the row FAILED and
 * the command exits 1.
 *
 * --quick: demo shapes only, 2 reps (a smoke check, about a minute on SwiftShader). The default is
 * both models, 5 reps; on SwiftShader (2 CPU cores) that takes several minutes. --smol-lm-head adds
 * SmolLM2's LM head (576 x 49152, 7 GFLOP per product: very slow on a software adapter).
 * --json FILE writes the whole result, including the best matmul GFLOP/s measured.
 *
 * Environment: CHROMIUM_PATH overrides /usr/bin/chromium.
 */
import { writeFileSync } from 'node:fs';
import { runBenchPage } from './browser';
import { optionsToQuery, type BenchModel, type BenchOptions, type BenchOutcome, type BenchResult, type BenchRow } from './kernels-shared';

const argv = process.argv.slice(2);
const value = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) usage(`${name} needs a value`);
  return v;
};
function usage(msg: string): never {
  console.error(`${msg}\nusage: npx vite-node tools/bench/kernels.ts [--quick] [--reps N] [--models demo,smollm2] [--filter REGEX] [--smol-lm-head] [--json FILE]`);
  process.exit(2);
}
const known = new Set(['--quick', '--reps', '--models', '--filter', '--smol-lm-head', '--json']);
for (const a of argv) if (a.startsWith('--') && !known.has(a)) usage(`unknown option ${a}`);

const quick = argv.includes('--quick');
const reps = Number(value('--reps') ?? (quick ? 2 : 5));
if (!Number.isInteger(reps) || reps < 1) usage('--reps must be a positive integer');
const models = (value('--models') ?? (quick ? 'demo' : 'demo,smollm2')).split(',');
for (const m of models) if (m !== 'demo' && m !== 'smollm2') usage(`unknown model ${m} (demo, smollm2)`);
const options: BenchOptions = {
  models: models as BenchModel[],
  reps,
  smolLmHead: argv.includes('--smol-lm-head'),
  filter: value('--filter') ?? '',
};
const jsonFile = value('--json');

const fmt = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : '–');
const ms = (x: number) => fmt(x, x < 10 ? 2 : x < 100 ? 1 : 0);

function table(rows: BenchRow[]): string {
  const lines = [
    '| model | op | shape | project kernel | project ms | TF.js ms | project GFLOP/s | TF.js GFLOP/s | ratio | check |',
    '|---|---|---|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.model} | ${r.op} | ${r.shape} | ${r.kernel} | ${ms(r.projectMs)} | ${ms(r.tfjsMs)} | ${fmt(r.projectGflops, 3)} | ${fmt(r.tfjsGflops, 3)} | ` +
        `${fmt(r.ratio, 2)}x | ${r.ok ? 'ok' : `FAILED: ${r.note}`} |`,
    );
  }
  return lines.join('\n');
}

/** Geometric mean of the ratios per group (ok rows only). */
function summary(rows: BenchRow[]): string {
  const groups = new Map<string, number[]>();
  for (const r of rows) {
    if (!r.ok || !(r.ratio > 0)) continue;
    const key = `${r.model} ${r.group}`;
    groups.set(key, [...(groups.get(key) ?? []), r.ratio]);
  }
  return [...groups]
    .map(([k, v]) => `${k}: ${fmt(Math.exp(v.reduce((s, x) => s + Math.log(x), 0) / v.length), 2)}x (geometric mean of ${v.length}, min ${fmt(Math.min(...v), 2)}x)`)
    .join('\n');
}

async function main(): Promise<number> {
  const outcome = await runBenchPage<BenchOutcome>({
    html: 'tools/bench/kernels.html',
    query: optionsToQuery(options),
    global: '__kernelBench',
    prefix: 'kernels',
    deps: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-webgpu'],
  });
  if (!outcome.ok) {
    console.error(`benchmark failed in the page: ${outcome.error}`);
    return 1;
  }
  const r: BenchResult = outcome.result;
  console.log(`adapter: ${r.adapter}`);
  console.log(`browser: ${r.userAgent}`);
  console.log(`TF.js ${r.tfjsVersion} (tfjs-backend-webgpu) on ${r.sharedDevice ? 'the same GPUDevice as the project' : 'its own GPUDevice'}; M = 256; ${r.options.reps} timed runs per side, median; ratio = TF.js ms / project ms\n`);
  console.log(table(r.rows));
  const split = r.rows.filter((x) => x.projectOpMs.length > 1);
  if (split.length > 0) {
    console.log('\nproject dispatches timed alone (median ms, in kernel order):');
    for (const x of split) console.log(`  ${x.model} ${x.op}: ${x.kernel.split(' + ').map((k, i) => `${k} ${ms(x.projectOpMs[i])}`).join(', ')}`);
  }
  console.log(`\n${summary(r.rows)}`);
  console.log(
    `best matmul GFLOP/s: project ${fmt(r.bestMatmulGflops.project, 3)} (${r.bestMatmulGflops.projectRow}), TF.js ${fmt(r.bestMatmulGflops.tfjs, 3)} (${r.bestMatmulGflops.tfjsRow})`,
  );
  if (r.gpuErrors.length > 0) console.log(`WebGPU errors: ${r.gpuErrors.join('; ')}`);
  console.log(`total ${r.totalSeconds.toFixed(0)} s in the page`);
  if (jsonFile) {
    writeFileSync(jsonFile, `${JSON.stringify(r, null, 2)}\n`);
    console.log(`wrote ${jsonFile}`);
  }
  const failed = r.rows.filter((x) => !x.ok);
  if (failed.length > 0 || r.gpuErrors.length > 0) {
    console.error(`${failed.length} row(s) FAILED: ${failed.map((x) => `${x.model} ${x.op}`).join(', ')}`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
