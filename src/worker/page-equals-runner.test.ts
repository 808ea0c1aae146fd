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
import type { AdapterSet } from '../loramoe/init';
import { asFileEntries, tinyHfFiles, writeFiles } from '../test/hf-dir';
import { testGpu } from '../test/gpu';
import { tinyRunSettings } from '../test/run-settings';
import { main } from '../cli/main';
import { type RunSettings, runSpecOf } from '../train/run-settings';
import type { RunStatus } from './protocol';
import { Session } from './session';

const WORDS = ['cat', 'dog', 'mat', 'sky', 'red', 'blue', 'big', 'small'];

/** 16 records of each of two types (so the routing set holds 2 of each out), one too long to keep its answer. */
function dataset(): string {
  const out: string[] = [];
  for (let i = 0; i < 16; i++) {
    const w = WORDS[i % WORDS.length];
    out.push(JSON.stringify({ instruction: `what color is the ${w} ?`, input: '', output: WORDS[(i * 3 + 1) % WORDS.length], type: 'world knowledge' }));
    out.push(JSON.stringify({ instruction: i === 5 ? `is the ${w} big ? ${WORDS.join(' ')} ${WORDS.join(' ')}` : `is the ${w} big ?`, input: '', output: i % 2 ? 'yes' : 'no', type: 'sizes' }));
  }
  return out.join('\n');
}

/** The runner's flags for these settings (the form's names on the runner's flags). */
function flagsOf(s: RunSettings): string[] {
  return [
    '--mode', s.mode, '--experts', String(s.experts), '--rank', String(s.rank), '--alpha', String(s.alpha), '--dropout', String(s.dropout),
    '--targets', s.targets.join(','), '--lbc-delta', String(s.lbcDelta), '--lbc-beta', String(s.lbcBeta), '--lbc-direction', s.lbcDirection,
    '--lbc-importance', s.lbcImportance, '--lr', String(s.lr), '--schedule', s.schedule, '--warmup', String(s.warmup), '--weight-decay', String(s.weightDecay),
    '--batch', String(s.batch), '--accum', String(s.accum), '--max-length', String(s.maxLength), '--steps', String(s.steps), '--clip', String(s.clip),
    '--seed', String(s.seed), '--checkpoint-every', String(s.checkpointEvery), '--weights', 'f32',
  ];
}

/** Every tensor of an adapter as named bit patterns. */
function adapterBits(set: AdapterSet): Map<string, Uint32Array> {
  const out = new Map<string, Uint32Array>();
  for (const [key, t] of set) {
    out.set(`${key}.a`, new Uint32Array(t.a.slice().buffer));
    out.set(`${key}.b`, new Uint32Array(t.b.slice().buffer));
    if (t.wr) out.set(`${key}.wr`, new Uint32Array(t.wr.slice().buffer));
  }
  return out;
}

function expectSameBits(page: Map<string, Uint32Array>, runner: Map<string, Uint32Array>, what: string): void {
  expect([...runner.keys()].sort(), what).toEqual([...page.keys()].sort());
  for (const [name, bits] of page) {
    const other = runner.get(name)!;
    let differ = 0;
    for (let i = 0; i < bits.length; i++) if (bits[i] !== other[i]) differ++;
    expect(differ, `${what}: ${name} differs in ${differ} of ${bits.length} values`).toBe(0);
  }
}

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
