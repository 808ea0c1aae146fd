/**
 * The runner's progress output (a bar on a terminal, plain lines otherwise) on a test clock, the
 * summary `train --json` writes, and both end to end on a tiny run.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { tinyHfFiles, writeFiles } from '../test/hf-dir';
import { main } from './main';
import { formatDuration, isInteractive, type ProgressStep, TrainProgress, trainSummary } from './progress';

const step = (n: number, o: Partial<ProgressStep> = {}): ProgressStep => ({ step: n, ce: 2 + 1 / n, lbc: 0.01 * n, loss: 2, gradNorm: 0.5, lr: 1e-3, tokens: 100, tokensPerSecond: 50, skipped: false, ...o });

function run(o: { tty: boolean; total: number; logEvery?: number; quiet?: boolean; startStep?: number; stepMs: number; steps: number[] }) {
  let t = 1000;
  const bar: string[] = [];
  const lines: string[] = [];
  const p = new TrainProgress({ total: o.total, tty: o.tty, logEvery: o.logEvery ?? 1, quiet: o.quiet, startStep: o.startStep, now: () => t, writeBar: (s) => void bar.push(s), writeLine: (s) => void lines.push(s), width: 10, redrawMs: 0 });
  for (const n of o.steps) {
    t += o.stepMs;
    p.step(step(n));
  }
  p.finish();
  return { bar, lines, p };
}

describe('progress', () => {
  it('plain lines: every logEvery steps and the last, with the ETA from the steps so far', () => {
    const { lines, bar } = run({ tty: false, total: 5, logEvery: 2, stepMs: 2000, steps: [1, 2, 3, 4, 5] });
    expect(bar).toEqual([]);
    // After 2 steps of 2 s: 3 left -> 6 s; after 4: 1 left -> 2 s.
    expect(lines).toEqual([
      'step 2/5  ce 2.5000  lbc 0.0200  grad 0.500  lr 1.00e-3  50 tok/s  eta 6.0 s',
      'step 4/5  ce 2.2500  lbc 0.0400  grad 0.500  lr 1.00e-3  50 tok/s  eta 2.0 s',
      'step 5/5  ce 2.2000  lbc 0.0500  grad 0.500  lr 1.00e-3  50 tok/s  eta 0.0 s',
    ]);
  });

  it('a bar on a terminal: redrawn in place with elapsed, ETA, tokens/s from the run so far; ended by a newline', () => {
    const { bar, lines, p } = run({ tty: true, total: 4, stepMs: 500, steps: [1, 2, 3, 4] });
    expect(lines).toEqual([]);
    // Step 2 of 4 after 1 s: 2 left -> 1 s; 200 tokens in 1 s.
    expect(bar[1]).toBe('\r[#####.....] 2/4  50%  1.0 s elapsed, ETA 1.0 s  200 tok/s  ce 2.5000  lbc 0.0200\x1b[K');
    expect(bar[3]).toBe('\r[##########] 4/4 100%  2.0 s elapsed, ETA 0.0 s  200 tok/s  ce 2.2500  lbc 0.0400\x1b[K');
    expect(bar[4]).toBe('\n');
    expect(p.stats().tokensPerSecond).toBe(200);
  });

  it('a resumed run: the rates count from where this process started', () => {
    const { lines } = run({ tty: false, total: 10, startStep: 6, stepMs: 1000, steps: [7, 8] });
    // 2 steps in 2 s, 2 left -> 2 s (not 8 steps' worth).
    expect(lines[1]).toMatch(/^step 8\/10 .* eta 2\.0 s$/);
  });

  it('quiet: no plain lines; redraws are throttled but the last step always draws', () => {
    expect(run({ tty: false, quiet: true, total: 3, stepMs: 10, steps: [1, 2, 3] }).lines).toEqual([]);
    let t = 0;
    const bar: string[] = [];
    const p = new TrainProgress({ total: 3, tty: true, logEvery: 1, now: () => t, writeBar: (s) => void bar.push(s), redrawMs: 100 });
    for (const n of [1, 2, 3]) {
      t += 10;
      p.step(step(n));
    }
    expect(bar.map((s) => s.match(/\] (\d)\/3/)?.[1])).toEqual(['1', '3']);
  });

  it('notes end the bar line first', () => {
    const bar: string[] = [];
    const notes: string[] = [];
    const p = new TrainProgress({ total: 3, tty: true, logEvery: 1, now: () => 0, writeBar: (s) => void bar.push(s), redrawMs: 0 });
    p.step(step(1));
    p.note('step 2: skipped', (s) => void notes.push(s));
    expect(bar.at(-1)).toBe('\n');
    expect(notes).toEqual(['step 2: skipped']);
  });

  it('formatDuration, isInteractive', () => {
    expect([formatDuration(3210), formatDuration(245_000), formatDuration(3_725_000), formatDuration(NaN)]).toEqual(['3.2 s', '4m 05s', '1h 02m', '?']);
    expect(isInteractive({ isTTY: true }, {})).toBe(true);
    expect(isInteractive({ isTTY: true }, { CI: '1' })).toBe(false);
    expect(isInteractive({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
    expect(isInteractive({ isTTY: false }, {})).toBe(false);
  });

  it('trainSummary', () => {
    const s = trainSummary('out', [step(1), step(2, { skipped: true }), step(3)], 2, ['a', 'b']);
    expect(s).toEqual({
      out: 'out',
      steps: 3,
      lastStep: 3,
      skippedSteps: [2],
      seconds: 2,
      tokens: 300,
      tokensPerSecond: 150,
      first: { ce: 3, lbc: 0.01, loss: 2 },
      last: { ce: 2 + 1 / 3, lbc: 0.03, loss: 2, gradNorm: 0.5, lr: 1e-3 },
      lastTenthCe: 2 + 1 / 3,
      files: ['a', 'b'],
    });
  });
});

describe('runner: train --json and eval --json', () => {
  it('train --json - prints only the summary on stdout; --json FILE writes it; eval --json FILE writes what it prints', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loramoe-progress-'));
    const model = join(dir, 'model');
    await writeFiles(model, tinyHfFiles({ seed: 3 }).files);
    const data = join(dir, 'data.json');
    await writeFile(data, JSON.stringify([
      { instruction: 'what color is the sky ?', input: '', output: 'blue .', task_type: 1 },
      { instruction: 'the cat sat on', input: '', output: 'the mat .', task_type: 0 },
    ]));
    const out = join(dir, 'a');
    const stdout: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void stdout.push(a.map(String).join(' ')));
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      await main(['train', '--model', model, '--data', data, '--out', out, '--experts', '2', '--rank', '2', '--steps', '3', '--batch', '2', '--max-length', '16', '--json', '-']);
      const summary = JSON.parse(stdout.join('\n')) as { steps: number; lastStep: number; tokens: number; last: { ce: number }; files: string[] };
      const metrics = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { ce: number; tokens: number });
      expect(summary.steps).toBe(3);
      expect(summary.lastStep).toBe(3);
      expect(summary.tokens).toBe(metrics.reduce((a, m) => a + m.tokens, 0));
      expect(summary.last.ce).toBe(metrics[2].ce);
      expect(summary.files).toEqual(expect.arrayContaining(['adapter_config.json', 'adapter_model.safetensors', 'metrics.jsonl']));

      stdout.length = 0;
      const evalFile = join(dir, 'eval.json');
      await main(['eval', '--model', model, '--adapter', out, '--data', data, '--json', evalFile]);
      expect(JSON.parse(await readFile(evalFile, 'utf8'))).toEqual(JSON.parse(stdout.join('\n')));
    } finally {
      vi.restoreAllMocks();
    }
  });
});
