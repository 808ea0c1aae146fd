/**
 * The forgetting experiment end to end through the runner (`experiment` command), on the shipped
 * demo backbone and a small slice of the shipped demo data so that it fits the suite: every method
 * trains for a few steps, is scored on the probe and the tasks every step (the curves), and lands in
 * the JSON and the table.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../cli/main';
import type { MethodResult } from './experiment';
import { TASK_TYPES } from './tasks';

/** The first `n` records of each data type of a shipped JSON Lines file. */
async function slice(file: string, n: number): Promise<string> {
  const lines = (await readFile(join('public/data', file), 'utf8')).trim().split('\n');
  const taken = new Map<string, number>();
  const kept = lines.filter((l) => {
    const type = String((JSON.parse(l) as { type: unknown }).type);
    const k = taken.get(type) ?? 0;
    taken.set(type, k + 1);
    return k < n;
  });
  return kept.join('\n') + '\n';
}

describe('experiment command', () => {
  it('trains the five methods on the demo, records their curves and prints one table row each', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loramoe-experiment-'));
    await writeFile(join(dir, 'demo-train.jsonl'), await slice('demo-train.jsonl', 8));
    await writeFile(join(dir, 'demo-probe.jsonl'), await slice('demo-probe.jsonl', 10));
    await writeFile(join(dir, 'demo-task-eval.jsonl'), await slice('demo-task-eval.jsonl', 4));
    const json = join(dir, 'results.json');
    const out: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.map(String).join(' ')));
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      await main(['experiment', '--data-dir', dir, '--steps', '1', '--batch', '4', '--lr', '1e-2', '--lr-full', '1e-2', '--eval-every', '1', '--json', json, '--svg', join(dir, 'curves.svg')]);
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
    const { results, seconds } = JSON.parse(await readFile(json, 'utf8')) as { results: MethodResult[]; seconds: number };
    expect(seconds).toBeGreaterThan(0);
    expect(results.map((r) => r.method)).toEqual(['full fine-tuning', 'LoRA', 'LoRAMoE, no LBC', 'LoRAMoE + LBC (official)', 'LoRAMoE + LBC (own-group)']);
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
      } else {
        expect(r.knowledgeShare).toBeNull();
        expect(r.ownGroupShare).toBeNull();
      }
    }
    // The curves' chart: a line per method in each of its two panels (facts, tasks).
    const svg = await readFile(join(dir, 'curves.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(2 * results.length);
    for (const r of results) expect(svg).toContain(`>${r.method}</text>`);
    // The shipped backbone knows its facts before fine-tuning (the whole probe: 85% or more).
    expect(results[0].probeBefore).toBeGreaterThanOrEqual(0.7);
    // The table printed on stdout: a header, a rule, the backbone alone, and one row per method.
    const table = out.join('\n').split('\n').filter((l) => l.startsWith('|'));
    expect(table).toHaveLength(3 + results.length);
    expect(table[2]).toContain(`| backbone alone | ${(results[0].probeBefore * 100).toFixed(1)}% |`);
    results.forEach((r, i) => expect(table[3 + i]).toContain(`| ${r.method} (lr ${r.lr.toExponential()}) | ${(r.probeBefore * 100).toFixed(1)}% | ${(r.probeAfter * 100).toFixed(1)}% |`));
  });
});
