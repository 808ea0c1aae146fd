/**
 * A study kept in a folder (`experiment --study DIR`): an interrupted study resumes where it stopped
 * and ends with exactly the results of one never interrupted, a study refuses to pool runs trained
 * with other settings, and `--jobs 2` (two runner processes, one shard each) gives the same results
 * as one process. On the shipped demo backbone and a small slice of the demo data.
 */
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../cli/main';
import { directoryStudy } from '../cli/study';
import { nodeGpu } from '../engine/node-gpu';
import { DirectorySource } from '../io/node-files';
import { loadBackbone } from '../model/load';
import { writeDemoSlice } from '../test/demo-data';
import { type MethodResult, runExperiment, type StudyStore } from './experiment';

/** Runs the runner's `experiment` with these arguments; returns its log lines (stderr). */
async function experiment(args: string[]): Promise<string[]> {
  const lines: string[] = [];
  const err = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
  const out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    await main(['experiment', ...args]);
  } finally {
    err.mockRestore();
    out.mockRestore();
  }
  return lines;
}

/** A run's result without its wall-clock seconds (the only figure that may differ between two trainings). */
const figures = (r: MethodResult) => ({ ...r, seconds: 0 });
const resultsOf = async (json: string) => (JSON.parse(await readFile(json, 'utf8')) as { results: MethodResult[] }).results.map(figures);

describe('experiment --study', () => {
  let data: string;
  /** Two steps of two methods from one seed, scored after each, a checkpoint after each. */
  const shape = () => ['--data-dir', data, '--steps', '2', '--batch', '4', '--lr', '1e-2', '--eval-every', '1', '--seeds', '1', '--methods', 'lora,lbc-own', '--checkpoint-every', '1'];
  let whole: MethodResult[];
  let wholeDir: string;

  beforeAll(async () => {
    data = await mkdtemp(join(tmpdir(), 'loramoe-study-data-'));
    await writeDemoSlice(data, 8, 6, 4);
    wholeDir = await mkdtemp(join(tmpdir(), 'loramoe-study-whole-'));
    await experiment([...shape(), '--study', wholeDir, '--json', join(wholeDir, 'out.json')]);
    whole = await resultsOf(join(wholeDir, 'out.json'));
  });

  it('keeps one file per finished run and no checkpoint once a run is done', async () => {
    expect(whole.map((r) => r.key)).toEqual(['lora', 'lbc-own']);
    const files = (await readdir(wholeDir)).sort();
    expect(files).toEqual(['before.json', 'lbc-own_lr1e-2_seed42.json', 'lora_lr1e-2_seed42.json', 'out.json', 'study.json']);
  });

  it('resumes an interrupted study mid-run and ends bit-identical to one never interrupted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loramoe-study-cut-'));
    // The first start dies as the second run finishes (after its checkpoint at step 1): the first
    // run's result and the second's checkpoint are on disk, nothing else of the second run.
    const real = await directoryStudy(dir);
    const dying: StudyStore = {
      ...real,
      write: async (name, bytes) => {
        if (name === 'lbc-own_lr1e-2_seed42.json') throw new Error('power cut');
        return real.write(name, bytes);
      },
    };
    const ctx = await nodeGpu();
    const backbone = await loadBackbone(new DirectorySource('public/models/demo'));
    const readFileBytes = async (p: string) => new Uint8Array(await readFile(p));
    const files = { train: join(data, 'demo-train.jsonl'), probe: join(data, 'demo-probe.jsonl'), taskEval: join(data, 'demo-task-eval.jsonl'), readFile: readFileBytes };
    const options = { steps: 2, batchSize: 4, maxLength: 14, seed: 42, seeds: 1, lrAdapter: 1e-2, lrFull: 1e-3, evalEvery: 1, methods: ['lora', 'lbc-own'], checkpointEvery: 1, log: () => undefined };
    await expect(runExperiment(ctx, backbone, files, { ...options, study: dying })).rejects.toThrow('power cut');
    expect((await readdir(dir)).sort()).toEqual(['before.json', 'lbc-own_lr1e-2_seed42.checkpoint', 'lora_lr1e-2_seed42.json', 'study.json']);

    const log = await experiment([...shape(), '--study', dir, '--json', join(dir, 'out.json')]);
    expect(log).toContain('LoRA: finished earlier (' + dir + '/lora_lr1e-2_seed42.json)');
    expect(log).toContain('LoRAMoE + LBC (own-group): resumed at step 1/2');
    expect(await resultsOf(join(dir, 'out.json'))).toEqual(whole);
    expect(await readdir(dir)).not.toContain('lbc-own_lr1e-2_seed42.checkpoint');
  });

  it('refuses to pool runs trained with other settings, and names the setting', async () => {
    const args = shape();
    args[args.indexOf('--steps') + 1] = '3';
    await expect(experiment([...args, '--study', wholeDir])).rejects.toThrow(`${wholeDir} was started with steps 2, this command has 3`);
  });

  it('--jobs 2 trains the runs in two processes, one shard each, with the results of one process', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loramoe-study-jobs-'));
    const log = await experiment([...shape(), '--study', dir, '--jobs', '2', '--json', join(dir, 'out.json')]);
    // Each shard trained one of the two runs; this process read both.
    expect(log.filter((l) => /^\[0\/2\] LoRA: probe /.test(l))).toHaveLength(1);
    expect(log.filter((l) => /^\[1\/2\] LoRAMoE \+ LBC \(own-group\): probe /.test(l))).toHaveLength(1);
    expect(await resultsOf(join(dir, 'out.json'))).toEqual(whole);
  });
});
