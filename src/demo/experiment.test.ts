/**
 * The forgetting experiment end to end through the runner (`experiment` command), on the shipped
 * demo backbone and a small slice of the shipped demo data so that it fits the suite: full
 * fine-tuning, LoRA and LoRAMoE with the own-group constraint train for one step from each of two seeds, is scored on the probe and the tasks every step (the
 * curves) and, for LoRAMoE, with each expert group off (the specialisation table), and lands in the
 * JSON (runs, and each method's mean and 95% interval over the seeds) and the tables.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../cli/main';
import { DEFAULT_LR_GRID, experimentMethods, type MethodDifference, methodDifferences, type MethodResult, type MethodSummary, parseLrGrid, summarizeSeeds } from './experiment';
import { curvesSvg, tradeoffSvg } from './plot';
import { TASK_TYPES } from './tasks';
import { writeDemoSlice } from '../test/demo-data';

describe('experiment command', () => {
  it('trains three methods from two seeds on the demo, records their curves and knockouts, and prints the tables with intervals', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loramoe-experiment-'));
    await writeDemoSlice(dir, 8, 10, 4);
    const json = join(dir, 'results.json');
    const out: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.map(String).join(' ')));
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      await main(['experiment', '--data-dir', dir, '--steps', '1', '--batch', '4', '--lr', '1e-2', '--lr-full', '1e-2', '--eval-every', '1', '--seeds', '2', '--methods', 'full,lora,lbc-own', '--json', json, '--svg', join(dir, 'curves.svg')]);
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
    const parsed = JSON.parse(await readFile(json, 'utf8')) as { results: MethodResult[]; summary: MethodSummary[]; differences: MethodDifference[]; seconds: number; seeds: number[] };
    const { results, summary, seconds } = parsed;
    expect(seconds).toBeGreaterThan(0);
    const names = ['full fine-tuning', 'LoRA', 'LoRAMoE + LBC (own-group)'];
    // Method by method, seed by seed: the default first seed 42, then 43.
    expect(parsed.seeds).toEqual([42, 43]);
    expect(results.map((r) => [r.method, r.seed])).toEqual(names.flatMap((n) => [[n, 42], [n, 43]]));
    // The two seeds train differently (initialisation, data order, dropout).
    for (let i = 0; i < results.length; i += 2) expect(results[i].finalCe).not.toBe(results[i + 1].finalCe);
    // Each method's summary: mean of its two runs, and the 95% half-width t(0.975, 1) * sd / sqrt(2) = 12.7062 * |a - b| / 2.
    expect(summary.map((m) => m.method)).toEqual(names);
    summary.forEach((m, i) => {
      const [a, b] = [results[2 * i], results[2 * i + 1]];
      expect(m.seeds).toEqual([42, 43]);
      expect(m.probeAfter.mean).toBeCloseTo((a.probeAfter + b.probeAfter) / 2, 12);
      expect(m.probeAfter.half).toBeCloseTo((12.7062 * Math.abs(a.probeAfter - b.probeAfter)) / 2, 3);
      expect(m.taskMean.mean).toBeCloseTo((a.taskMean + b.taskMean) / 2, 12);
      expect(m.curve.map((p) => p.step)).toEqual([0, 1]);
      expect(m.curve[1].probe.mean).toBeCloseTo((a.curve[1].probe + b.curve[1].probe) / 2, 12);
    });
    // Every pair of methods, paired by seed.
    expect(parsed.differences).toHaveLength(3);
    expect(parsed.differences[0].a).toBe('full fine-tuning');
    expect(parsed.differences[0].probe.mean).toBeCloseTo((results[0].probeAfter - results[2].probeAfter + results[1].probeAfter - results[3].probeAfter) / 2, 12);
    const types = [...TASK_TYPES].sort();
    for (const r of results) {
      // One baseline for every method: the probe and the tasks before training are scored once.
      expect(r.probeBefore).toBe(results[0].probeBefore);
      expect(r.tasksBefore).toEqual(results[0].tasksBefore);
      // 10 probe questions and 4 questions per task: accuracies are multiples of 1/10 and 1/4.
      expect(Math.round(r.probeAfter * 10)).toBeCloseTo(r.probeAfter * 10, 9);
      expect(Object.keys(r.tasks).sort()).toEqual(types);
      for (const t of types) expect(Math.round(r.tasks[t] * 4)).toBeCloseTo(r.tasks[t] * 4, 9);
      expect(Number.isFinite(r.finalCe) && r.finalCe > 0).toBe(true);
      expect(r.probeLogLikelihoodAfter).toBeLessThan(0);
      // The curves: before training, then after every step; x is instruction samples seen (steps x batch).
      expect(r.curve.map((p) => [p.step, p.samples])).toEqual([[0, 0], [1, 4]]);
      expect(r.curve[0].probe).toBe(r.probeBefore);
      expect(r.curve[0].tasks).toEqual(r.tasksBefore);
      expect(r.curve[1].probe).toBe(r.probeAfter);
      expect(r.curve[1].tasks).toEqual(r.tasks);
      expect(r.curve[1].taskMean).toBeCloseTo(r.taskMean, 12);
      if (r.method.startsWith('LoRAMoE')) {
        expect(Object.keys(r.knowledgeShare ?? {}).sort()).toEqual([...types, 'world knowledge'].sort());
        expect(Object.keys(r.ownGroupShare ?? {}).sort()).toEqual([...types, 'world knowledge'].sort());
        for (const v of [...Object.values(r.knowledgeShare ?? {}), ...Object.values(r.ownGroupShare ?? {})]) {
          expect(v).toBeGreaterThan(0);
          expect(v).toBeLessThan(1);
        }
        // Binary groups: world knowledge's own group is the knowledge group; every task's is the other.
        expect(r.ownGroupShare!['world knowledge']).toBeCloseTo(r.knowledgeShare!['world knowledge'], 6);
        for (const t of types) expect(r.ownGroupShare![t]).toBeCloseTo(1 - r.knowledgeShare![t], 6);
        // The specialisation scores: the world-knowledge group off, then the task group off.
        expect(r.knockout!.map((k) => [k.group, k.experts])).toEqual([
          ['world knowledge', [0, 1, 2, 3]],
          ['downstream tasks', [4, 5, 6, 7]],
        ]);
        for (const k of r.knockout!) expect(Math.round(k.probe * 10)).toBeCloseTo(k.probe * 10, 9);
      } else {
        expect(r.knowledgeShare).toBeNull();
        expect(r.ownGroupShare).toBeNull();
        expect(r.knockout).toBeNull();
      }
    }
    // The curves' chart: a line per method in each of its two panels (facts, tasks).
    const svg = await readFile(join(dir, 'curves.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(2 * summary.length);
    // Each line in its band (two seeds: every point has an interval).
    expect(svg.match(/<polygon class="band" /g)).toHaveLength(2 * summary.length);
    for (const m of summary) expect(svg).toContain(`>${m.method}</text>`);
    // The shipped backbone knows its facts before fine-tuning (the whole probe: 85% or more).
    expect(results[0].probeBefore).toBeGreaterThanOrEqual(0.7);
    // The tables printed on stdout: methods (a header, a rule, the backbone alone, one row per method),
    // the differences between every pair, and the specialisation of the LoRAMoE variant.
    const text = out.join('\n');
    expect(text).toContain('Mean ± 95% confidence interval (Student t) over seeds 42, 43');
    expect(text).toContain('paired t-test across seeds at the 5% level');
    const table = text.split('\n').filter((l) => l.startsWith('|'));
    expect(table).toHaveLength(3 + summary.length + 2 + 3 + 2 + 1);
    expect(table[2]).toContain(`| backbone alone | ${(results[0].probeBefore * 100).toFixed(1)}% |`);
    summary.forEach((m, i) =>
      expect(table[3 + i]).toContain(`| ${m.method} (lr ${m.lr.toExponential()}) | ${(m.probeBefore * 100).toFixed(1)}% | ${(m.probeAfter.mean * 100).toFixed(1)}% ± ${(m.probeAfter.half! * 100).toFixed(1)} |`),
    );
    expect(table[3 + summary.length + 2]).toMatch(/^\| full fine-tuning − LoRA \| [+−]\d+\.\d ± \d+\.\d pp( \*)? \|/);
    expect(table.at(-1)).toContain('| LoRAMoE + LBC (own-group) |');
  });

  it('rolls a diverging run back to its start, and stops with the reason when the fault comes back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loramoe-experiment-'));
    await writeDemoSlice(dir, 4, 2, 1);
    const lines: string[] = [];
    const err = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
    try {
      // A learning rate that blows the adapter up: the steps after the first are not finite.
      const run = main(['experiment', '--data-dir', dir, '--steps', '8', '--batch', '2', '--lr', '1e30', '--eval-every', '1', '--seeds', '1', '--methods', 'lora']);
      await expect(run).rejects.toThrow(/^LoRA: training stopped at step 0 of 8: 3 faulty steps in a row .*rolled back to the checkpoint at step 0 \(the start of the run\).*The same fault came back/);
    } finally {
      err.mockRestore();
    }
    // The first rollback is told, and training goes on from the start before the fault comes back.
    expect(lines.filter((l) => l.startsWith('LoRA: 3 faulty steps in a row') && l.endsWith('Training goes on from there.'))).toHaveLength(1);
  });
});

describe('learning-rate grid', () => {
  const result = (key: MethodResult['key'], lr: number, seed: number, probe: number, tasks: number): MethodResult => ({
    key,
    method: `${key}, lr ${lr.toExponential()}`,
    lr,
    seed,
    probeBefore: 0.9,
    probeAfter: probe,
    probeLogLikelihoodAfter: -1,
    tasksBefore: { a: 0.5 },
    tasks: { a: tasks },
    taskMean: tasks,
    finalCe: 0.5,
    knowledgeShare: null,
    ownGroupShare: null,
    curve: [],
    knockout: null,
    seconds: 1,
  });

  it('reads the default grid, a grid per method and a plain list, and refuses a bad one by name', () => {
    expect(parseLrGrid('default')).toEqual(DEFAULT_LR_GRID);
    expect(parseLrGrid('lora=1e-3, 2e-3; full=3e-4')).toEqual({ lora: [1e-3, 2e-3], full: [3e-4] });
    expect(parseLrGrid('1e-3,5e-3')).toEqual({ lora: [1e-3, 5e-3], loramoe: [1e-3, 5e-3], 'lbc-official': [1e-3, 5e-3], 'lbc-own': [1e-3, 5e-3] });
    expect(() => parseLrGrid('lora=0.001;dora=0.01')).toThrow('--lr-grid: "dora=0.01" should be METHOD=LR,LR with METHOD one of full, lora, loramoe, lbc-official, lbc-own');
    expect(() => parseLrGrid('lora=-1')).toThrow('--lr-grid: lora needs a list of positive learning rates, got "-1"');
  });

  it('trains a method once per rate of the grid, named by its rate, and keeps the others at theirs', () => {
    const o = { steps: 1, batchSize: 1, maxLength: 8, seed: 1, lrAdapter: 5e-3, lrFull: 1e-3, lrGrid: { lora: [1e-3, 2e-3] }, methods: ['full', 'lora'], log: () => undefined };
    const methods = experimentMethods(o, ['world knowledge', 'downstream task']);
    expect(methods.map((m) => [m.key, m.lr, m.name])).toEqual([
      ['full', 1e-3, 'full fine-tuning'],
      ['lora', 1e-3, 'LoRA, lr 1e-3'],
      ['lora', 2e-3, 'LoRA, lr 2e-3'],
    ]);
    // LoRA is parameter-matched with LoRAMoE: rank experts x rank.
    expect(methods[1].adapter.rank).toBe(8 * 4);
  });

  it('with a learning-rate grid, compares different methods at the same rate only', () => {
    const results = [1, 2].flatMap((seed) => [
      result('full', 4e-4, seed, 0.8, 1),
      result('lora', 1e-3, seed, 0.7, 0.9),
      result('lora', 2e-3, seed, 0.5, 0.95),
      result('loramoe', 1e-3, seed, 0.9, 0.9 - seed / 100),
      result('loramoe', 2e-3, seed, 0.85, 0.95),
    ]);
    const pairs = methodDifferences(results).map((d) => `${d.a} − ${d.b}`);
    expect(pairs).toEqual(['lora, lr 1e-3 − loramoe, lr 1e-3', 'lora, lr 2e-3 − loramoe, lr 2e-3']);
    // One rate per method: every pair.
    expect(methodDifferences(results.filter((r) => r.lr !== 2e-3))).toHaveLength(3);
  });

  it('summarises each method and rate over its seeds, and plots knowledge against tasks per method and rate', () => {
    const results = [result('lora', 1e-3, 1, 0.8, 0.5), result('lora', 1e-3, 2, 0.6, 0.7), result('lora', 2e-3, 1, 0.4, 0.9), result('lora', 2e-3, 2, 0.2, 0.9)];
    const summary = summarizeSeeds(results);
    expect(summary.map((s) => [s.lr, s.seeds])).toEqual([
      [1e-3, [1, 2]],
      [2e-3, [1, 2]],
    ]);
    // Mean of 0.8 and 0.6; half-width t(0.975, 1) * sd / sqrt(2) = 12.706 * 0.1414 / 1.414.
    expect(summary[0].probeAfter.mean).toBeCloseTo(0.7, 12);
    expect(summary[0].probeAfter.half).toBeCloseTo(12.706 * 0.1, 3);
    const svg = tradeoffSvg(summary, 'knowledge kept against tasks learnt');
    // Two points and one legend entry (one method); the points joined in order of rate and labelled.
    expect(svg.match(/<circle /g)).toHaveLength(2 + 1);
    expect(svg).toContain('<title>lora, lr 1e-3</title>');
    expect(svg).toContain('<title>lora, lr 2e-3</title>');
    // Plot area 400 px square at (70, 50): lr 1e-3 at tasks 0.6, probe 0.7; lr 2e-3 at tasks 0.9, probe 0.3.
    const line = (svg.match(/<polyline points="([^"]*)"/)?.[1] ?? '').split(/[ ,]/).map(Number);
    [70 + 0.6 * 400, 50 + 0.3 * 400, 70 + 0.9 * 400, 50 + 0.7 * 400].forEach((v, i) => expect(line[i]).toBeCloseTo(v, 6));
    expect(svg).toContain('>1e-3</text>');
    expect(svg).toContain('>2e-3</text>');
    expect(svg).toContain('backbone alone');
  });

  it('draws the curves of a learning-rate grid in a colour per method and a dash per rate, a legend row per method', () => {
    const point = (step: number, probe: number) => ({ step, samples: step * 16, probe, probeLogLikelihood: -1, tasks: { a: 0.5 }, taskMean: 0.5 });
    const withCurve = (r: MethodResult): MethodResult => ({ ...r, curve: [point(0, 0.9), point(10, r.probeAfter)] });
    const runs = [result('lora', 1e-3, 1, 0.8, 0.5), result('lora', 2e-3, 1, 0.4, 0.9), result('loramoe', 1e-3, 1, 0.9, 0.9), result('loramoe', 2e-3, 1, 0.85, 0.9)].map(withCurve);
    const svg = curvesSvg(summarizeSeeds(runs));
    // Two panels x four series, then the legend's four samples.
    const lines = [...svg.matchAll(/<polyline points="[^"]*" fill="none" stroke="([^"]+)" stroke-width="2"(?: stroke-dasharray="([^"]+)")?\/>/g)].map((m) => [m[1], m[2] ?? 'solid']);
    expect(lines).toHaveLength(8);
    const [lora1, lora2, moe1, moe2] = lines.slice(0, 4);
    expect(lora1[0]).toBe(lora2[0]);
    expect(moe1[0]).toBe(moe2[0]);
    expect(lora1[0]).not.toBe(moe1[0]);
    expect([lora1[1], lora2[1], moe1[1], moe2[1]]).toEqual(['solid', '7 4', 'solid', '7 4']);
    expect(lines.slice(4)).toEqual(lines.slice(0, 4));
    // Two legend rows (one per method) below the panels: the second method's entries 18 px lower.
    const legend = [...svg.matchAll(/<line x1="(\d+)" x2="\d+" y1="(\d+)"[^>]*stroke-width="3"/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(legend).toEqual([
      [70, legend[0][1]],
      [370, legend[0][1]],
      [70, legend[0][1] + 18],
      [370, legend[0][1] + 18],
    ]);
    expect(Number(svg.match(/height="(\d+)"/)?.[1])).toBeGreaterThan(legend[3][1]);
  });
});
