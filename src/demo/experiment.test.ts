/**
 * The forgetting experiment end to end through the runner (`experiment` command), on the shipped
 * demo backbone and a small slice of the shipped demo data so that it fits the suite: every method
 * trains for a few steps, is scored on the probe and the tasks, and lands in the JSON and the table.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../cli/main';
import type { MethodResult } from './experiment';

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
  it('trains the four methods on the demo and prints one table row each', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loramoe-experiment-'));
    await writeFile(join(dir, 'demo-train.jsonl'), await slice('demo-train.jsonl', 8));
    await writeFile(join(dir, 'demo-probe.jsonl'), await slice('demo-probe.jsonl', 10));
    await writeFile(join(dir, 'demo-task-eval.jsonl'), await slice('demo-task-eval.jsonl', 4));
    const json = join(dir, 'results.json');
    const out: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.map(String).join(' ')));
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      await main(['experiment', '--data-dir', dir, '--steps', '2', '--batch', '4', '--max-length', '20', '--lr', '1e-2', '--lr-full', '1e-2', '--json', json]);
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
    const results = JSON.parse(await readFile(json, 'utf8')) as MethodResult[];
    expect(results.map((r) => r.method)).toEqual(['full fine-tuning', 'LoRA', 'LoRAMoE, no LBC', 'LoRAMoE + LBC']);
    const types = ['arithmetic', 'sentiment', 'word reversal'];
    for (const r of results) {
      // One baseline for every method: the probe before training is scored once.
      expect(r.probeBefore).toBe(results[0].probeBefore);
      // 10 probe questions and 4 questions per task: accuracies are multiples of 1/10 and 1/4.
      expect(Math.round(r.probeAfter * 10)).toBeCloseTo(r.probeAfter * 10, 9);
      expect(Object.keys(r.tasks).sort()).toEqual(types);
      for (const t of types) expect(Math.round(r.tasks[t] * 4)).toBeCloseTo(r.tasks[t] * 4, 9);
      expect(Number.isFinite(r.finalCe) && r.finalCe > 0).toBe(true);
      expect(r.probeLogLikelihoodAfter).toBeLessThan(0);
      if (r.method.startsWith('LoRAMoE')) {
        expect(Object.keys(r.knowledgeShare ?? {}).sort()).toEqual([...types, 'world knowledge'].sort());
        for (const v of Object.values(r.knowledgeShare ?? {})) {
          expect(v).toBeGreaterThan(0);
          expect(v).toBeLessThan(1);
        }
      } else {
        expect(r.knowledgeShare).toBeNull();
      }
    }
    // The shipped backbone knows most of its facts before fine-tuning (90.8% on the whole probe).
    expect(results[0].probeBefore).toBeGreaterThanOrEqual(0.6);
    // The table printed on stdout has a header, a rule and one row per method, with its figures.
    const table = out.join('\n').split('\n').filter((l) => l.startsWith('|'));
    expect(table).toHaveLength(2 + results.length);
    results.forEach((r, i) => expect(table[2 + i]).toContain(`| ${r.method} | ${(r.probeBefore * 100).toFixed(1)}% | ${(r.probeAfter * 100).toFixed(1)}% |`));
  });
});
