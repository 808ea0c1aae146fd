/**
 * What a run's start is doing, from Train to the first step, for the run bar: the worker posts a
 * `startup` event at each phase (./protocol.ts StartupProgress).
 *
 * Compiling is counted on the pipeline cache (engine/pipelines.ts onGet): every trainer build (the
 * warm-up's and the run's own) records the pipeline keys it asked for under the build's shape, so the
 * next build of that shape knows how many of them are still to compile (`total`); the first build of
 * a shape counts without a total. A build is synchronous and holds the worker, so a Train pressed
 * during the warm-up after a load is answered only after it: the warm-up's compiles are posted too,
 * and the page shows them while a start waits.
 */
import type { StartupPhase, StartupProgress } from './protocol';

/** The part of the pipeline cache the reporter uses. */
export interface ObservedCache {
  has(key: string): boolean;
  onGet: ((key: string, compiled: boolean) => void) | null;
}

/** Progress events while tokenising, at most, besides the first and the last. */
const TOKENISE_EVENTS = 20;

export class StartupReporter {
  /** Pipeline keys each build shape asked for. */
  private readonly buildKeys = new Map<string, Set<string>>();
  /** A start (startRun, restoreRun) is under way. */
  private active = false;

  constructor(private readonly post: (p: StartupProgress) => void) {}

  /** A start begins: its phases are posted until end(). */
  begin(): void {
    this.active = true;
  }

  /** The start is over (its first step is under way, or it failed). */
  end(): void {
    this.active = false;
  }

  get starting(): boolean {
    return this.active;
  }

  phase(phase: StartupPhase, done = 0, total = 0): void {
    if (this.active) this.post({ phase, done, total });
  }

  /** Calls `each(i)` for 0..n-1, posting the tokenising phase as it goes. */
  tokenise<T>(n: number, each: (i: number) => T): T[] {
    const every = Math.max(1, Math.ceil(n / TOKENISE_EVENTS));
    const out: T[] = [];
    this.phase('tokenising', 0, n);
    for (let i = 0; i < n; i++) {
      out.push(each(i));
      if ((i + 1) % every === 0 && i + 1 < n) this.phase('tokenising', i + 1, n);
    }
    this.phase('tokenising', n, n);
    return out;
  }

  /**
   * Runs a build (a trainer's construction) that asks `cache` for pipelines, counting the ones it
   * compiles against those a build of the same `shape` asked for before and the cache lacks.
   */
  build<T>(cache: ObservedCache, shape: string, fn: () => T): T {
    const known = this.buildKeys.get(shape);
    let total = 0;
    if (known) for (const k of known) if (!cache.has(k)) total++;
    const keys = new Set<string>();
    let done = 0;
    const prev = cache.onGet;
    cache.onGet = (key, compiled) => {
      keys.add(key);
      if (!compiled) return;
      done++;
      this.post({ phase: 'compiling', done, total: total > 0 ? Math.max(total, done) : 0 });
    };
    try {
      const out = fn();
      this.buildKeys.set(shape, keys);
      return out;
    } finally {
      cache.onGet = prev;
    }
  }
}
