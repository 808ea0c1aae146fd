/**
 * The fuzz suite's harness (src/fuzz/*.fuzz.test.ts): run counts and seeds, time limits, the tally
 * of outcomes, and the outcome checks every case ends with. The generators are one module per
 * format (bytes.ts, text.ts, json.ts); isolated.ts runs a parser in a worker thread, entries.ts
 * holds what that worker calls.
 *
 * Every property runs with a fixed seed, so CI is reproducible. For a long local run raise the
 * number of cases with FUZZ_RUNS, a multiplier of every property's default count, and change the
 * seeds with FUZZ_SEED (an integer added to every property's own seed):
 *
 *   FUZZ_RUNS=50 npx vitest run src/fuzz            # 50x the cases, same seeds
 *   FUZZ_RUNS=20 FUZZ_SEED=$RANDOM npx vitest run src/fuzz
 *   FUZZ_SHRINK=0 npx vitest run src/fuzz            # report failures as found, unshrunk
 *
 * A failure prints fast-check's seed, path and shrunk counterexample; rerun it with
 * `fc.assert(prop, { seed, path, numRuns: 1 })`.
 */

function envNumber(name: string, fallback: number): number {
  const raw = typeof process !== 'undefined' ? process.env[name] : undefined;
  if (raw === undefined || raw.trim() === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number, found ${JSON.stringify(raw)}`);
  return v;
}

/** Multiplier of every property's default number of cases (env FUZZ_RUNS, default 1). */
const FUZZ_SCALE = envNumber('FUZZ_RUNS', 1);
/** Added to every property's seed (env FUZZ_SEED, an integer, default 0: the CI seeds). */
const FUZZ_SEED_OFFSET = ((): number => {
  const raw = typeof process !== 'undefined' ? process.env.FUZZ_SEED : undefined;
  if (raw === undefined || raw.trim() === '') return 0;
  const v = Number(raw);
  if (!Number.isSafeInteger(v)) throw new Error(`FUZZ_SEED must be an integer, found ${JSON.stringify(raw)}`);
  return v;
})();

/** Longest a single case may take (ms): a case over it is a hang as far as the suite is concerned. */
export const CASE_LIMIT_MS = 2000;

/**
 * A worker case over its limit is run once more with this limit before it counts as a hang: on a
 * loaded machine (two cores, another job running) a case can stall for a second or more without
 * looping, and a flaky hang report would hide the real ones.
 */
export const HANG_CONFIRM_MS = 10_000;

/** Per-test timeout for the fuzz `it`s: generous, scaled with FUZZ_RUNS. */
export const FUZZ_TEST_TIMEOUT_MS = Math.round(60_000 * Math.max(1, FUZZ_SCALE));

/** FUZZ_SHRINK=0: report the first failing case as found, without shrinking it (faster triage). */
const FUZZ_SHRINK = (typeof process !== 'undefined' ? process.env.FUZZ_SHRINK : undefined) !== '0';

/** fc.assert parameters for a property: its fixed seed and its default number of cases, scaled. */
export function fuzzParams(seed: number, numRuns: number): { seed: number; numRuns: number; endOnFailure: boolean } {
  return { seed: seed + FUZZ_SEED_OFFSET, numRuns: Math.max(1, Math.round(numRuns * FUZZ_SCALE)), endOnFailure: !FUZZ_SHRINK };
}

/**
 * Counts cases and outcomes per parser, and the slowest case, for the log at the end of each file
 * (the report of how many cases ran).
 */
export class Tally {
  private readonly rows = new Map<string, { cases: number; errors: number; loads: number; maxMs: number; totalMs: number }>();
  private readonly started = performance.now();

  constructor(private readonly file: string) {}

  record(parser: string, outcome: 'error' | 'load', ms: number): void {
    let r = this.rows.get(parser);
    if (!r) this.rows.set(parser, (r = { cases: 0, errors: 0, loads: 0, maxMs: 0, totalMs: 0 }));
    r.cases++;
    if (outcome === 'error') r.errors++;
    else r.loads++;
    r.maxMs = Math.max(r.maxMs, ms);
    r.totalMs += ms;
  }

  cases(parser?: string): number {
    if (parser !== undefined) return this.rows.get(parser)?.cases ?? 0;
    let n = 0;
    for (const r of this.rows.values()) n += r.cases;
    return n;
  }

  summary(): string {
    const lines = [`[fuzz] ${this.file}: ${this.cases()} cases in ${((performance.now() - this.started) / 1000).toFixed(1)} s (FUZZ_RUNS=${FUZZ_SCALE})`];
    for (const [name, r] of this.rows) {
      lines.push(
        `[fuzz]   ${name}: ${r.cases} cases (${r.errors} clear errors, ${r.loads} loads), ` +
          `max ${r.maxMs.toFixed(1)} ms, mean ${(r.totalMs / Math.max(1, r.cases)).toFixed(2)} ms per case`,
      );
    }
    return lines.join('\n');
  }
}

// ---------------------------------------------------------------------------------------------
// Outcome checks.
// ---------------------------------------------------------------------------------------------

/** A fuzz-suite failure: the case ended in a way no input may cause. */
class FuzzViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FuzzViolation';
  }
}

export function violation(message: string): never {
  throw new FuzzViolation(message);
}

/** Built-in error classes that mean a crash of our code rather than a refusal (TypeError, stack overflow, ...). */
const CRASH_CLASSES: readonly (new (...args: never[]) => Error)[] = [TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError];

function describeThrown(e: unknown): string {
  if (e instanceof Error) return `${e.constructor.name}: ${e.message}\n${(e.stack ?? '').split('\n').slice(1, 6).join('\n')}`;
  return `a non-Error value ${String(e)}`;
}

export interface ClearErrorRules {
  /** Each must appear in the message (the file, and where relevant the tensor / field / line). */
  mustInclude?: readonly string[];
  /** At least one of these must appear in the message (e.g. any file of a model directory). */
  mustIncludeOneOf?: readonly string[];
  /** When given, the error must be an instance of one of these classes. */
  classes?: readonly (abstract new (...args: never[]) => Error)[];
}

/**
 * Checks that a thrown value is a clear refusal: an Error, not one of the built-in crash classes
 * (TypeError, RangeError, ...), with a non-empty message naming what it must name.
 */
export function checkClearError(e: unknown, rules: ClearErrorRules = {}): Error {
  if (e instanceof FuzzViolation) throw e;
  if (!(e instanceof Error)) return violation(`threw ${describeThrown(e)}, not an Error`);
  if (CRASH_CLASSES.some((C) => e.constructor === C)) return violation(`crashed: ${describeThrown(e)}`);
  if (typeof e.message !== 'string' || e.message.trim() === '') return violation(`an error with an empty message: ${describeThrown(e)}`);
  if (rules.classes && !rules.classes.some((C) => e instanceof C)) {
    return violation(`threw ${e.constructor.name}, expected ${rules.classes.map((C) => C.name).join(' or ')}: ${describeThrown(e)}`);
  }
  for (const s of rules.mustInclude ?? []) {
    if (!e.message.includes(s)) violation(`the message does not name ${JSON.stringify(s)}: ${JSON.stringify(e.message.slice(0, 400))}`);
  }
  const any = rules.mustIncludeOneOf;
  if (any && any.length > 0 && !any.some((s) => e.message.includes(s))) {
    violation(`the message names none of ${any.map((s) => JSON.stringify(s)).join(', ')}: ${JSON.stringify(e.message.slice(0, 400))}`);
  }
  return e;
}

export type Outcome<T> = { ok: true; value: T; ms: number } | { ok: false; error: unknown; ms: number };

function checkTime(ms: number, label: string): void {
  if (ms > CASE_LIMIT_MS) violation(`${label} took ${ms.toFixed(0)} ms, over the ${CASE_LIMIT_MS} ms limit for one case`);
}

/** Runs one synchronous case, timing it; a case over CASE_LIMIT_MS is a violation. */
export function runSync<T>(label: string, fn: () => T): Outcome<T> {
  const t0 = performance.now();
  let out: Outcome<T>;
  try {
    const value = fn();
    out = { ok: true, value, ms: performance.now() - t0 };
  } catch (error) {
    out = { ok: false, error, ms: performance.now() - t0 };
  }
  checkTime(out.ms, label);
  return out;
}

/** Runs one asynchronous case, timing it; a case over CASE_LIMIT_MS is a violation. */
export async function runAsync<T>(label: string, fn: () => Promise<T>): Promise<Outcome<T>> {
  const t0 = performance.now();
  let out: Outcome<T>;
  try {
    const value = await fn();
    out = { ok: true, value, ms: performance.now() - t0 };
  } catch (error) {
    out = { ok: false, error, ms: performance.now() - t0 };
  }
  checkTime(out.ms, label);
  return out;
}
