/**
 * The runner's training progress: on a terminal, one line redrawn in place on stderr (a bar, the
 * step count, elapsed time, ETA, tokens/s and the latest losses); otherwise (a pipe, a file, CI)
 * plain lines on stdout every `logEvery` steps and at the last, each with the ETA. With `quiet`
 * (train --json -) nothing goes to stdout: the bar still shows on a terminal's stderr.
 *
 * Rates and the ETA are wall-clock over the steps this process ran (setup excluded, and a resumed
 * run's earlier steps too): ETA = elapsed / ran * (total - done), tokens/s = tokens / elapsed.
 *
 * The run's summary (trainSummary) is what `train --json FILE` writes.
 */
import type { StepMetrics } from '../train/trainer';

/** The step metrics the progress reads: a trainer step's, without its epoch. */
export type ProgressStep = Omit<StepMetrics, 'epoch'>;

export interface ProgressOptions {
  total: number;
  /** Steps already done when this process started (a resumed run); rates count from here. */
  startStep?: number;
  /** Draw the bar (a terminal) or print plain lines. */
  tty: boolean;
  logEvery: number;
  /** No plain lines on stdout (the bar, on a terminal, still goes to stderr). */
  quiet?: boolean;
  /** Where the bar is drawn (stderr) and where plain lines go (stdout). */
  writeBar?: (s: string) => void;
  writeLine?: (s: string) => void;
  /** Milliseconds (performance.now by default; tests pass a clock). */
  now?: () => number;
  /** Bar cells. */
  width?: number;
  /** Least milliseconds between redraws of the bar (the last step always draws). */
  redrawMs?: number;
}

/** True when stderr is a terminal that can redraw a line (not CI, not TERM=dumb). */
export function isInteractive(stream: { isTTY?: boolean } = process.stderr, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.CI && env.TERM !== 'dumb';
}

/** "3.2 s", "4m 05s", "1h 02m". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

export class TrainProgress {
  private readonly t0: number;
  private tokens = 0;
  private done: number;
  private readonly start: number;
  private lastDraw = -Infinity;
  private drawn = false;
  private readonly now: () => number;
  private readonly writeBar: (s: string) => void;
  private readonly writeLine: (s: string) => void;

  constructor(private readonly o: ProgressOptions) {
    this.now = o.now ?? (() => performance.now());
    this.writeBar = o.writeBar ?? ((s) => void process.stderr.write(s));
    this.writeLine = o.writeLine ?? ((s) => console.log(s));
    this.t0 = this.now();
    this.start = o.startStep ?? 0;
    this.done = this.start;
  }

  /** Elapsed ms, the ETA in ms (NaN before the first step) and tokens per second so far. */
  stats(): { elapsedMs: number; etaMs: number; tokensPerSecond: number } {
    const elapsedMs = this.now() - this.t0;
    return {
      elapsedMs,
      etaMs: this.done <= this.start ? NaN : (elapsedMs / (this.done - this.start)) * (this.o.total - this.done),
      tokensPerSecond: elapsedMs > 0 ? (this.tokens / elapsedMs) * 1000 : 0,
    };
  }

  step(m: ProgressStep): void {
    this.done = m.step;
    this.tokens += m.tokens;
    const { elapsedMs, etaMs, tokensPerSecond } = this.stats();
    const last = m.step >= this.o.total;
    if (this.o.tty) {
      if (!last && this.now() - this.lastDraw < (this.o.redrawMs ?? 100)) return;
      this.lastDraw = this.now();
      const width = this.o.width ?? 24;
      const filled = Math.min(width, Math.round((m.step / this.o.total) * width));
      const pct = Math.floor((m.step / this.o.total) * 100);
      const line =
        `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${m.step}/${this.o.total} ${String(pct).padStart(3)}%  ` +
        `${formatDuration(elapsedMs)} elapsed, ETA ${last ? '0.0 s' : formatDuration(etaMs)}  ${tokensPerSecond.toFixed(0)} tok/s  ` +
        `ce ${m.ce.toFixed(4)}  lbc ${m.lbc.toFixed(4)}`;
      // \r to the line's start, the line, then clear what a longer previous line left (ESC[K).
      this.writeBar(`\r${line}\x1b[K`);
      this.drawn = true;
      return;
    }
    if (this.o.quiet) return;
    if (m.step % this.o.logEvery === 0 || last) {
      this.writeLine(
        `step ${m.step}/${this.o.total}  ce ${m.ce.toFixed(4)}  lbc ${m.lbc.toFixed(4)}  grad ${m.gradNorm.toFixed(3)}  lr ${m.lr.toExponential(2)}  ` +
          `${m.tokensPerSecond.toFixed(0)} tok/s  eta ${last ? '0.0 s' : formatDuration(etaMs)}`,
      );
    }
  }

  /** A note (skipped step, ...) that must not be drawn over: ends the bar's line first. */
  note(s: string, write: (s: string) => void = (x) => console.error(x)): void {
    if (this.drawn) this.writeBar('\n');
    this.drawn = false;
    write(s);
  }

  /** Ends the bar's line. */
  finish(): void {
    if (this.drawn) this.writeBar('\n');
    this.drawn = false;
  }
}

/** Writes `value` as JSON to `target`: a file, or stdout for "-". */
export async function writeJsonTo(target: string, value: unknown): Promise<void> {
  const text = JSON.stringify(value, null, 1);
  if (target === '-') console.log(text);
  else await (await import('node:fs/promises')).writeFile(target, text + '\n');
}

/** The files a run wrote into its folder (names, sorted). */
export async function filesIn(dir: string): Promise<string[]> {
  return (await (await import('node:fs/promises')).readdir(dir)).sort();
}

/** What `train --json FILE` writes. */
export interface TrainSummary {
  out: string;
  /** Steps this process ran, and the step the run reached (they differ for a resumed run). */
  steps: number;
  lastStep: number;
  skippedSteps: number[];
  seconds: number;
  tokens: number;
  tokensPerSecond: number;
  first: { ce: number; lbc: number; loss: number } | null;
  last: { ce: number; lbc: number; loss: number; gradNorm: number; lr: number } | null;
  /** Mean cross-entropy over the last 10% of steps (at least one). */
  lastTenthCe: number | null;
  files: string[];
}

export function trainSummary(out: string, metrics: readonly ProgressStep[], seconds: number, files: readonly string[]): TrainSummary {
  const first = metrics[0];
  const last = metrics[metrics.length - 1];
  const tail = metrics.slice(metrics.length - Math.max(1, Math.round(metrics.length / 10)));
  const tokens = metrics.reduce((a, m) => a + m.tokens, 0);
  return {
    out,
    steps: metrics.length,
    lastStep: last ? last.step : 0,
    skippedSteps: metrics.filter((m) => m.skipped).map((m) => m.step),
    seconds,
    tokens,
    tokensPerSecond: seconds > 0 ? tokens / seconds : 0,
    first: first ? { ce: first.ce, lbc: first.lbc, loss: first.loss } : null,
    last: last ? { ce: last.ce, lbc: last.lbc, loss: last.loss, gradNorm: last.gradNorm, lr: last.lr } : null,
    lastTenthCe: metrics.length > 0 ? tail.reduce((a, m) => a + m.ce, 0) / tail.length : null,
    files: [...files],
  };
}
