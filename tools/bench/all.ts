/**
 * `npm run bench`: the benchmarks of docs/performance.md in sequence, each in its
 * own process (each owns its GPU device, or its headless Chromium page, and exits with its own
 * status):
 *
 *   1. kernels        tools/bench/kernels.ts         kernels against TensorFlow.js, checked first
 *   2. training step  tools/bench/step.ts            one LoRAMoE + LBC step against TensorFlow.js
 *   3. memory         tools/bench/step-stats-cli.ts  dispatches, bytes and peak memory of a step
 *   4. autotune       tools/bench/autotune.ts        workgroup-memory matmuls against the fixed ones, tuned vs fixed
 *   5. f16 weights    tools/bench/half-weights.ts    the accuracy, memory and time of f16 backbone matrices
 *
 *   npm run bench [-- --quick] [-- --json DIR]
 *
 * --quick: each one's smoke-sized run (kernels --quick: demo shapes, 2 reps; step: the demo case
 * with 1 rep; memory: 64 tokens; autotune: the demo, 2 reps; f16 weights: 512 records, 10 steps,
 * 2 SmolLM2 layers) instead of the full runs docs/performance.md's tables come from (tens of minutes on a
 * software adapter). --json DIR: each writes its JSON report into DIR (kernels.json, step.json,
 * memory.json, autotune.json, half-weights.json). Exit status 1 when any of them failed; all run.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

// `npm run bench -- --quick` reaches the script as `-- --quick` (the runner's convention, src/cli/main.ts).
const argv = process.argv.slice(2);
const { values } = parseArgs({ args: argv[0] === '--' ? argv.slice(1) : argv, options: { quick: { type: 'boolean' }, json: { type: 'string' } } });
const quick = values.quick === true;
const json = values.json;
if (json) mkdirSync(json, { recursive: true });
const out = (name: string): string[] => (json ? ['--json', join(json, name)] : []);

const runs: { name: string; script: string; args: string[] }[] = [
  { name: 'kernels', script: 'tools/bench/kernels.ts', args: [...(quick ? ['--quick'] : []), ...out('kernels.json')] },
  { name: 'training step', script: 'tools/bench/step.ts', args: [...(quick ? ['--cases', 'demo:3:16:32', '--reps', '1'] : []), ...out('step.json')] },
  { name: 'memory', script: 'tools/bench/step-stats-cli.ts', args: [...(quick ? ['--seq', '64'] : []), ...out('memory.json')] },
  { name: 'autotune', script: 'tools/bench/autotune.ts', args: [...(quick ? ['--models', 'demo', '--reps', '2'] : []), ...out('autotune.json')] },
  { name: 'f16 weights', script: 'tools/bench/half-weights.ts', args: [...(quick ? ['--records', '512', '--steps', '10', '--smol-layers', '2', '--reps', '1'] : []), ...out('half-weights.json')] },
];

const results: { name: string; status: number | null; seconds: number }[] = [];
for (const r of runs) {
  console.log(`\n=== ${r.name}: npx vite-node ${r.script} ${r.args.join(' ')}`.trimEnd());
  const t0 = performance.now();
  const res = spawnSync('npx', ['vite-node', r.script, ...r.args], { stdio: 'inherit' });
  results.push({ name: r.name, status: res.status, seconds: (performance.now() - t0) / 1000 });
}
console.log('\n=== summary');
for (const r of results) console.log(`${r.name.padEnd(14)} ${r.status === 0 ? 'ok' : `FAILED (exit ${r.status ?? 'signal'})`}  ${r.seconds.toFixed(0)} s`);
process.exit(results.every((r) => r.status === 0) ? 0 : 1);
