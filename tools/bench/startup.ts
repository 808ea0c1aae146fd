/**
 * Startup profile: where the time goes from Train to the first training step, from a prompt to the
 * first chat token and from Probe to the first probe result, on the demo backbone in Node (the same
 * engine as the playground's worker; Dawn compiles a pipeline when it is created, so compile times
 * are measured where they are paid). Each phase is timed on a cold engine (a fresh device, so an
 * empty pipeline cache), then the same action again on the warm one.
 *
 *   npx vite-node tools/bench/startup.ts [--json FILE]
 *
 * Prints a table of phases and the slowest pipeline compiles per kernel family.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parseDataset } from '../../src/data/import';
import { encodeOfficial, encodePrompt } from '../../src/data/template';
import { describeAdapter, type GpuContext } from '../../src/engine/gpu';
import { nodeGpu } from '../../src/engine/node-gpu';
import { DirectorySource } from '../../src/io/node-files';
import { defaultAdapterConfig } from '../../src/loramoe/config';
import { binaryGroups } from '../../src/loramoe/groups';
import { initAdapter } from '../../src/loramoe/init';
import { typeNamesFor } from '../../src/method/data-types';
import { Generator } from '../../src/model/generate';
import { loadBackbone } from '../../src/model/load';
import { GpuWeights } from '../../src/model/weights';
import { exactMatchProbe } from '../../src/train/probe';
import { defaultTrainSettings, Trainer } from '../../src/train/trainer';

interface Phase {
  action: string;
  phase: string;
  ms: number;
  pipelines: number;
  compileMs: number;
}

const phases: Phase[] = [];

async function timed<T>(ctx: GpuContext, action: string, phase: string, fn: () => Promise<T> | T): Promise<T> {
  const before = ctx.pipelines.compiles.length;
  const t0 = performance.now();
  const out = await fn();
  await ctx.device.queue.onSubmittedWorkDone();
  const ms = performance.now() - t0;
  const compiled = ctx.pipelines.compiles.slice(before);
  phases.push({ action, phase, ms, pipelines: compiled.length, compileMs: compiled.reduce((a, c) => a + c.ms, 0) });
  return out;
}

async function main(): Promise<void> {
  const jsonOut = process.argv.includes('--json') ? process.argv[process.argv.indexOf('--json') + 1] : undefined;
  const ctx = await nodeGpu();
  console.error(`adapter: ${describeAdapter(ctx.adapter)}`);
  const backbone = await timed(ctx, 'setup', 'load the demo backbone files', () => loadBackbone(new DirectorySource('public/models/demo')));
  const parsed = await timed(ctx, 'setup', 'parse the demo data', async () => parseDataset(new Uint8Array(await readFile('public/data/demo-train.jsonl')), 'demo-train.jsonl'));
  const probeSet = await parseDataset(new Uint8Array(await readFile('public/data/demo-probe.jsonl')), 'demo-probe.jsonl');
  const records = parsed.records;
  const names = typeNamesFor(records.map((r) => r.type));
  const settings = { ...defaultTrainSettings(), batchSize: 4, maxLength: 64, steps: 10 };
  const loramoe = defaultAdapterConfig('loramoe');
  const cfg = { ...loramoe, groups: binaryGroups(names, loramoe.numExperts) };

  // Train -> first step, as the worker's startRun does it.
  for (const round of ['cold', 'warm']) {
    const action = `Train -> first step (${round})`;
    const samples = await timed(ctx, action, 'tokenise', () => records.map((r) => encodeOfficial(backbone.tokenizer, r, settings.maxLength)));
    const seqLen = Math.max(...samples.map((s) => s.ids.length));
    const adapter = await timed(ctx, action, 'initialise the adapter', () => initAdapter(backbone.config, cfg, settings.seed));
    const weights = await timed(ctx, action, 'upload weights', () => new GpuWeights(ctx, backbone.config, backbone.weights, cfg, adapter, 64));
    const trainer = await timed(ctx, action, 'build the graph (pipelines, buffers, bind groups)', () => new Trainer(ctx, weights, samples, (t) => names.indexOf(t), names, { ...settings, maxLength: seqLen }, backbone.tokenizer.padId));
    await timed(ctx, action, 'first step (first submission and readback)', () => trainer.step());
    await timed(ctx, action, 'second step', () => trainer.step());
    trainer.destroy();
    weights.destroy();
  }

  // Prompt -> first chat token, and the probe, on the frozen backbone.
  const weights = new GpuWeights(ctx, backbone.config, backbone.weights, defaultAdapterConfig('none'), null, 64);
  for (const round of ['cold', 'warm']) {
    const action = `prompt -> first chat token (${round})`;
    const prompt = encodePrompt(backbone.tokenizer, 'what is the capital of france ?', '');
    const gen = await timed(ctx, action, 'build the generator (pipelines, KV cache)', () => new Generator(ctx, weights, { maxLength: 64 }));
    await timed(ctx, action, 'prefill and first token', () =>
      gen.generate(prompt, { maxNewTokens: 1, temperature: 0, topK: 0, topP: 1, seed: 0, stopIds: [backbone.tokenizer.eosId], useAdapter: false, returnRouting: false }),
    );
    gen.destroy();
  }
  for (const round of ['cold', 'warm']) {
    await timed(ctx, `Probe -> result (${round})`, `${probeSet.records.length} questions`, () => exactMatchProbe(ctx, weights, backbone.tokenizer, probeSet.records, { maxLength: 64 }));
  }
  weights.destroy();

  const rows = phases.map((p) => `| ${p.action} | ${p.phase} | ${p.ms.toFixed(0)} | ${p.pipelines} | ${p.compileMs.toFixed(0)} |`);
  console.log('| action | phase | ms | pipelines created | of which compiling, ms |\n| --- | --- | ---: | ---: | ---: |\n' + rows.join('\n'));
  const totals = new Map<string, number>();
  for (const p of phases) totals.set(p.action, (totals.get(p.action) ?? 0) + p.ms);
  console.log('\n' + [...totals].map(([a, ms]) => `${a}: ${(ms / 1000).toFixed(2)} s`).join('\n'));
  const byFamily = new Map<string, { n: number; ms: number }>();
  for (const c of ctx.pipelines.compiles) {
    const family = c.key.split(':')[0];
    const f = byFamily.get(family) ?? { n: 0, ms: 0 };
    f.n++;
    f.ms += c.ms;
    byFamily.set(family, f);
  }
  console.log('\npipelines by kernel family: ' + [...byFamily].sort((a, b) => b[1].ms - a[1].ms).map(([k, v]) => `${k} ${v.n} (${v.ms.toFixed(0)} ms)`).join(', '));
  if (jsonOut) await writeFile(jsonOut, JSON.stringify({ adapter: describeAdapter(ctx.adapter), phases, compiles: ctx.pipelines.compiles }, null, 1));
}

await main();
