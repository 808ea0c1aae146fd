/**
 * Soak test: a long unattended training run on the demo backbone, through the engine worker's
 * Session (the code the browser runs, here on Node's WebGPU), with a knowledge probe and a chat
 * every interval. At each interval the run is paused and the live GPU buffers (every createBuffer
 * not yet destroyed), their bytes, and the JS heap after a full garbage collection are printed.
 * It fails (exit 1) when live buffers or their bytes differ from the first interval (the warm-up),
 * or the heap grew by more than the kept metric series explains.
 *
 *   npx vite-node tools/soak.ts                      # 1000 steps, figures every 100
 *   npx vite-node tools/soak.ts -- --steps 200 --every 50 --batch 4
 *
 * With no GPU it runs on Chromium's SwiftShader (set VK_ICD_FILENAMES, see docs/runner.md); there a
 * demo step takes about 0.7 s at batch 4, so 1000 steps take about 12 minutes.
 */
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describeAdapter } from '../src/engine/gpu';
import { nodeGpu } from '../src/engine/node-gpu';
import { defaultSettings } from '../src/store/settings-table';
import { runSpecOf } from '../src/train/run-settings';
import { countBuffers } from '../src/engine/buffer-count';
import type { RunStatus, WorkerEvent } from '../src/worker/protocol';
import { DEMO_FILES, Session } from '../src/worker/session';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} needs a positive integer, got ${process.argv[i + 1]}`);
  return v;
}

const STEPS = arg('steps', 1000);
const EVERY = arg('every', 100);
const BATCH = arg('batch', 4);

function gcFunction(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

const bytes = (path: string): ArrayBuffer => {
  const b = readFileSync(path);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
};
const mib = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;

const ctx = await nodeGpu();
console.log(`[soak] adapter: ${describeAdapter(ctx.adapter)}`);
const count = countBuffers(ctx.device);
const gc = gcFunction();

let status = 'idle' as RunStatus;
let step = 0;
let probes = 0;
let chats = 0;
let storageNotes = 0;
const problems: string[] = [];
const session = new Session(ctx, (ev: WorkerEvent) => {
  if (ev.type === 'runStatus') {
    status = ev.status;
    if (ev.message) problems.push(`status ${ev.status}: ${ev.message}`);
  } else if (ev.type === 'metrics') step = ev.points[ev.points.length - 1].step;
  else if (ev.type === 'probe') probes++;
  else if (ev.type === 'chatDone') chats++;
  else if (ev.type === 'storageError') storageNotes++;
  else if (ev.type === 'runEvent' && ev.event.severity !== 'info') problems.push(ev.event.message);
  else if (ev.type === 'error') problems.push(ev.message);
});

const wait = async (what: string, pred: () => boolean) => {
  while (!pred()) {
    if (status === 'error') throw new Error(`the run failed while waiting for ${what}: ${problems.join('; ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

await session.loadBackbone({ kind: 'files', ref: { kind: 'demo' }, files: DEMO_FILES.map((p) => ({ path: p, file: new Blob([readFileSync(`public/models/demo/${p}`)]) })) });
await session.loadDataset('train', 'demo-train.jsonl', bytes('public/data/demo-train.jsonl'));
await session.loadDataset('probe', 'demo-probe.jsonl', bytes('public/data/demo-probe.jsonl'));

interface Figure {
  step: number;
  live: number;
  liveBytes: number;
  heap: number;
  rss: number;
  secondsPerStep: number;
}
const figures: Figure[] = [];
let t0 = performance.now();
let lastStep = 0;

/** Paused (nothing on the GPU queue): a probe and a chat, then the figures. */
async function measure(): Promise<void> {
  await session.probe('after');
  await session.generate(step, 'what is the capital of france ?', true, { temperature: 0.7, topK: 20, topP: 0.95, maxNewTokens: 8, seed: step });
  gc();
  gc();
  const now = performance.now();
  const f: Figure = {
    step,
    live: count.live,
    liveBytes: count.liveBytes,
    heap: process.memoryUsage().heapUsed,
    rss: process.memoryUsage().rss,
    secondsPerStep: step > lastStep ? (now - t0) / 1000 / (step - lastStep) : 0,
  };
  figures.push(f);
  console.log(
    `[soak] step ${String(f.step).padStart(5)}: live GPU buffers ${f.live} (${mib(f.liveBytes)}), ${count.created} created so far; ` +
      `JS heap ${mib(f.heap)}, RSS ${mib(f.rss)}; ${f.secondsPerStep.toFixed(2)} s/step`,
  );
  lastStep = step;
  t0 = performance.now();
}

const settings = { ...defaultSettings(), steps: STEPS, batch: BATCH, maxLength: 64, checkpointEvery: 50, routingEvery: 10, lr: 1e-3 };
console.log(`[soak] ${STEPS} steps on the demo backbone, batch ${BATCH}, a probe and a chat every ${EVERY} steps`);
await session.startRun(runSpecOf(settings), false);
for (let at = EVERY; ; at += EVERY) {
  const target = Math.min(at, STEPS);
  await wait(`step ${target}`, () => step >= target - 1 || status === 'done');
  if (status !== 'done') {
    session.pause();
    await wait('the pause', () => status === 'paused' || status === 'done');
  }
  await measure();
  if (status === 'done') break;
  session.resume();
}

const warm = figures[0];
const end = figures[figures.length - 1];
const heapGrowth = end.heap - warm.heap;
// The run keeps every step's metrics (about 250 bytes each) on purpose.
const heapAllowance = 1 * 2 ** 20 + (end.step - warm.step) * 1024;
console.log(
  `[soak] done: ${end.step} steps, ${probes} probes, ${chats} chats. Live GPU buffers ${warm.live} -> ${end.live} ` +
    `(${mib(warm.liveBytes)} -> ${mib(end.liveBytes)}); JS heap ${mib(warm.heap)} -> ${mib(end.heap)} (${heapGrowth >= 0 ? '+' : ''}${mib(heapGrowth)}, allowance ${mib(heapAllowance)}).`,
);
if (storageNotes > 0) console.log('[soak] (no IndexedDB in Node: checkpoints were kept in memory only, as the session says)');
const failures: string[] = [...problems];
if (end.step !== STEPS) failures.push(`the run ended at step ${end.step}, not ${STEPS}`);
if (end.live !== warm.live || end.liveBytes !== warm.liveBytes) failures.push(`live GPU buffers grew: ${warm.live} -> ${end.live} (${count.byLabel().slice(0, 10).map(([l, n]) => `${l} x${n}`).join(', ')})`);
if (heapGrowth > heapAllowance) failures.push(`the JS heap grew by ${mib(heapGrowth)}`);
if (failures.length > 0) {
  console.error(`[soak] FAILED:\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.log('[soak] OK: no growth after warm-up');
process.exit(0);
