/**
 * The page and the runner train through the same driver (src/run/driver.ts): the same settings and
 * seed give the same weights, bit for bit, whether the engine worker's Session trains them (the
 * page's code path, driven in Node) or the runner's `train` command does. For LoRAMoE with the
 * balancing constraint (a routing set held out of training), LoRA and full fine-tuning, on the tiny
 * test backbone, with samples of several lengths and one whose answer the maximum length cuts away.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DirectorySource } from '../io/node-files';
import { getTensorF32, parseSafetensors } from '../io/safetensors';
import { loadAdapter } from '../loramoe/files';
import { asFileEntries, tinyHfFiles, writeFiles } from '../test/hf-dir';
import { testGpu } from '../test/gpu';
import { tinyRunSettings } from '../test/run-settings';
import { adapterBits, expectSameBits, runnerFlagsOf as flagsOf, twoTypeDataset as dataset } from '../test/same-run';
import { main } from '../cli/main';
import { type RunSettings, runSpecOf } from '../train/run-settings';
import type { RunStatus } from './protocol';
import { Session } from './session';

const RUNS: [string, RunSettings][] = [
  ['LoRAMoE with the LBC', tinyRunSettings({ mode: 'loramoe', lbcBeta: 0.5, steps: 3, seed: 11, checkpointEvery: 0, routingEvery: 3, maxLength: 14 })],
  ['LoRA', tinyRunSettings({ mode: 'lora', steps: 3, seed: 12, checkpointEvery: 0, routingEvery: 3, maxLength: 14 })],
  ['full fine-tuning', tinyRunSettings({ mode: 'full', lr: 1e-3, steps: 3, seed: 13, checkpointEvery: 0, routingEvery: 3, maxLength: 14 })],
];

describe('the page and the runner train the same weights from the same settings and seed', () => {
  const hf = tinyHfFiles({ seed: 6 });
  let dir = '';
  let session: Session;
  /** What the page would show: the run's status and the steps it was told of. */
  const seen = { status: 'idle' as RunStatus, steps: 0 };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loramoe-same-'));
    await writeFiles(join(dir, 'model'), hf.files);
    await writeFile(join(dir, 'data.jsonl'), dataset());
    session = new Session(await testGpu(), (ev) => {
      if (ev.type === 'runStatus') seen.status = ev.status;
      if (ev.type === 'metrics') seen.steps += ev.points.length;
    });
    await session.loadBackbone({ kind: 'files', ref: { kind: 'local', name: 'tiny' }, files: asFileEntries(hf.files) });
    await session.loadDataset('train', 'data.jsonl', new TextEncoder().encode(dataset()).buffer as ArrayBuffer);
    await session.setWeightSetting('f32');
  });

  beforeEach(() => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => vi.restoreAllMocks());

  it.each(RUNS)('%s', async (what, settings) => {
    seen.status = 'idle';
    seen.steps = 0;
    await session.startRun(runSpecOf(settings), false);
    const ended = (): boolean => seen.status === 'done' || seen.status === 'error';
    while (!ended()) await new Promise((r) => setTimeout(r, 10));
    expect(seen.status as RunStatus, what).toBe('done');
    expect(seen.steps, what).toBe(3);
    const weights = session.model.weights!;

    const out = join(dir, settings.mode);
    await main(['train', '--model', join(dir, 'model'), '--data', join(dir, 'data.jsonl'), '--out', out, ...flagsOf(settings)]);

    if (settings.mode === 'full') {
      const bytes = new Uint8Array(await readFile(join(out, 'model.safetensors')));
      const file = parseSafetensors(bytes, 'model.safetensors');
      const page = new Map([...(await weights.readBackbone())].map(([n, d]) => [n, new Uint32Array(d.slice().buffer)]));
      const runner = new Map([...file.tensors.keys()].map((n) => [n, new Uint32Array(getTensorF32(file, bytes, n).slice().buffer)]));
      expectSameBits(page, runner, what);
    } else {
      const runner = await loadAdapter(new DirectorySource(out), hf.config);
      expectSameBits(adapterBits(await weights.readAdapter()), adapterBits(runner.set!), what);
    }
  });
});
