/**
 * Shared pieces of the fuzz suite (src/fuzz/*.fuzz.test.ts): run counts and seeds, the outcome
 * checks every case ends with, and arbitraries that mutate valid inputs (bytes, text, JSON values).
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
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, relative as relativePath, resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { errorMessage } from '../util/errors';

// ---------------------------------------------------------------------------------------------
// Run counts, seeds, time limits.
// ---------------------------------------------------------------------------------------------

function envNumber(name: string, fallback: number): number {
  const raw = typeof process !== 'undefined' ? process.env[name] : undefined;
  if (raw === undefined || raw.trim() === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number, found ${JSON.stringify(raw)}`);
  return v;
}

/** Multiplier of every property's default number of cases (env FUZZ_RUNS, default 1). */
export const FUZZ_SCALE = envNumber('FUZZ_RUNS', 1);
/** Added to every property's seed (env FUZZ_SEED, an integer, default 0: the CI seeds). */
export const FUZZ_SEED_OFFSET = ((): number => {
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
export const FUZZ_SHRINK = (typeof process !== 'undefined' ? process.env.FUZZ_SHRINK : undefined) !== '0';

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
export class FuzzViolation extends Error {
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

// ---------------------------------------------------------------------------------------------
// Byte mutations.
// ---------------------------------------------------------------------------------------------

/** Bytes that often matter to parsers: 0, all ones, sign bits, ASCII structure, UTF-8 lead bytes. */
export const INTERESTING_BYTES = [0x00, 0xff, 0x7f, 0x80, 0x01, 0x20, 0x22, 0x2c, 0x3a, 0x5b, 0x5d, 0x7b, 0x7d, 0x0a, 0x0d, 0x5c, 0xc0, 0xe0, 0xf0, 0xef, 0xbb, 0xbf] as const;

/**
 * One edit of a byte string. Positions are large naturals taken modulo the length, so an edit
 * shrinks independently of the input it lands on.
 */
export type ByteMutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: number[] }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'duplicate'; at: number; len: number }
  | { kind: 'swap'; at: number; other: number };

const pos = fc.nat({ max: 1 << 30 });

export const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: pos, bit: fc.nat({ max: 7 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      at: pos,
      value: fc.oneof(fc.constantFrom(...INTERESTING_BYTES), fc.nat({ max: 255 })),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: pos }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      at: pos,
      bytes: fc.array(fc.oneof(fc.constantFrom(...INTERESTING_BYTES), fc.nat({ max: 255 })), { minLength: 1, maxLength: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: pos, len: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), at: pos, len: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('swap' as const), at: pos, other: pos }) },
);

/** One to `max` byte edits. */
export const byteMutations = (max = 4): fc.Arbitrary<ByteMutation[]> => fc.array(byteMutation, { minLength: 1, maxLength: max });

/** Applies edits in order to a copy of `input`. */
export function mutateBytes(input: Uint8Array, muts: readonly ByteMutation[]): Uint8Array<ArrayBuffer> {
  let b = input.slice();
  for (const m of muts) {
    const n = b.length;
    const at = n === 0 ? 0 : m.at % n;
    switch (m.kind) {
      case 'flip':
        if (n > 0) b[at] ^= 1 << m.bit;
        break;
      case 'set':
        if (n > 0) b[at] = m.value;
        break;
      case 'truncate':
        b = b.slice(0, at);
        break;
      case 'insert': {
        const k = m.at % (n + 1);
        const out = new Uint8Array(n + m.bytes.length);
        out.set(b.subarray(0, k), 0);
        out.set(m.bytes, k);
        out.set(b.subarray(k), k + m.bytes.length);
        b = out;
        break;
      }
      case 'delete': {
        const out = new Uint8Array(n - Math.min(m.len, n - at));
        out.set(b.subarray(0, at), 0);
        out.set(b.subarray(at + m.len), at);
        b = out;
        break;
      }
      case 'duplicate': {
        const piece = b.slice(at, at + m.len);
        const out = new Uint8Array(n + piece.length);
        out.set(b.subarray(0, at + piece.length), 0);
        out.set(piece, at + piece.length);
        out.set(b.subarray(at + piece.length), at + 2 * piece.length);
        b = out;
        break;
      }
      case 'swap':
        if (n > 0) {
          const o = m.other % n;
          const t = b[at];
          b[at] = b[o];
          b[o] = t;
        }
        break;
    }
  }
  return b;
}

/** Byte sequences that are not UTF-8 (lone continuation, overlong, surrogate, truncated, past U+10FFFF). */
export const INVALID_UTF8: readonly number[][] = [
  [0x80],
  [0xbf],
  [0xc0, 0xaf],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80, 0x80, 0x80],
  [0xff],
  [0xfe],
];

// ---------------------------------------------------------------------------------------------
// Text mutations (for JSON, JSON Lines, CSV, TSV).
// ---------------------------------------------------------------------------------------------

/** Snippets that break or bend text formats: quotes, line breaks, brackets, odd numbers, odd characters. */
export const TEXT_SNIPPETS: readonly string[] = [
  '"',
  "'",
  '""',
  '"""',
  '\n',
  '\r',
  '\r\n',
  '\n\n',
  '\t',
  ',',
  ',,',
  ':',
  ';',
  '{',
  '}',
  '[',
  ']',
  '{}',
  '[]',
  '\\',
  '\\u',
  '\\ud800',
  '\\u0000',
  '\u0000',
  '\u0001',
  '\u007f',
  '\ufeff',
  '\u2028',
  '\u2029',
  '\u202e',
  '\u0301',
  '😀',
  '👩‍👩‍👧',
  'é',
  '日本語',
  '\ud800',
  '\udfff',
  'null',
  'true',
  'false',
  '-',
  '-0',
  '0.',
  '1e',
  '1e400',
  '-1e400',
  '123456789012345678901234567890',
  '9007199254740993',
  '0x10',
  'NaN',
  'Infinity',
  '"instruction"',
  '"output"',
  '"task_type"',
  '"messages"',
  '"role"',
  '"content"',
  'instruction',
  'output',
  'task_type',
  '__proto__',
  'constructor',
];

export type TextMutation =
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'replace'; at: number; text: string }
  | { kind: 'duplicate'; at: number; len: number }
  | { kind: 'truncate'; at: number };

const snippet = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...TEXT_SNIPPETS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 4 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) },
);

export const textMutation: fc.Arbitrary<TextMutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: pos, text: snippet }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: pos, len: fc.integer({ min: 1, max: 16 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('replace' as const), at: pos, text: snippet }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), at: pos, len: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: pos }) },
);

export const textMutations = (max = 4): fc.Arbitrary<TextMutation[]> => fc.array(textMutation, { minLength: 1, maxLength: max });

export function mutateText(input: string, muts: readonly TextMutation[]): string {
  let s = input;
  for (const m of muts) {
    const n = s.length;
    const at = m.at % (n + 1);
    switch (m.kind) {
      case 'insert':
        s = s.slice(0, at) + m.text + s.slice(at);
        break;
      case 'delete':
        s = s.slice(0, at) + s.slice(at + m.len);
        break;
      case 'replace':
        s = s.slice(0, at) + m.text + s.slice(at + m.text.length);
        break;
      case 'duplicate':
        s = s.slice(0, at + m.len) + s.slice(at, at + m.len) + s.slice(at + m.len);
        break;
      case 'truncate':
        s = s.slice(0, at);
        break;
    }
  }
  return s;
}

/** Encoding-level edits applied after the text is encoded: a BOM, invalid UTF-8 somewhere. */
export type EncodingMutation = { kind: 'none' } | { kind: 'bom' } | { kind: 'doubleBom' } | { kind: 'invalid'; at: number; seq: number };

export const encodingMutation: fc.Arbitrary<EncodingMutation> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'bom' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'doubleBom' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('invalid' as const), at: pos, seq: fc.nat({ max: INVALID_UTF8.length - 1 }) }) },
);

const BOM = [0xef, 0xbb, 0xbf];

export function encodeWith(text: string, m: EncodingMutation): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(text);
  switch (m.kind) {
    case 'none':
      return bytes;
    case 'bom':
      return Uint8Array.from([...BOM, ...bytes]);
    case 'doubleBom':
      return Uint8Array.from([...BOM, ...BOM, ...bytes]);
    case 'invalid':
      return mutateBytes(bytes, [{ kind: 'insert', at: m.at, bytes: INVALID_UTF8[m.seq] }]);
  }
}

// ---------------------------------------------------------------------------------------------
// JSON values.
// ---------------------------------------------------------------------------------------------

/** Nested arrays (or objects) `depth` deep: JSON.parse reads them, recursive code over them overflows. */
export function deepValue(depth: number, kind: 'array' | 'object' = 'array'): unknown {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = kind === 'array' ? [v] : { a: v };
  return v;
}

/**
 * A value built when a case runs (deeply nested or very long), shown by its label in fast-check's
 * reports (printing a 50,000-deep array would itself overflow). `materialize` builds it.
 */
export class Lazy {
  constructor(
    readonly label: string,
    readonly make: () => unknown,
  ) {}
  [fc.toStringMethod](): string {
    return this.label;
  }
}

/** `v` with every Lazy in it built (walks only the small generated structure around them). */
export function materialize(v: unknown): unknown {
  if (v instanceof Lazy) return v.make();
  if (Array.isArray(v)) return v.map(materialize);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      Object.defineProperty(out, k, { value: materialize((v as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return v;
}

/** Lazily built large values: nested 10,000 deep (past JSON.stringify's recursion limit, ~5,000), a long string, a long array. */
export const LARGE_VALUES: readonly Lazy[] = [
  new Lazy('deepArray(10000)', () => deepValue(10_000, 'array')),
  new Lazy('deepObject(10000)', () => deepValue(10_000, 'object')),
  new Lazy('"x" * 100000', () => 'x'.repeat(100_000)),
  new Lazy('[0] * 20000', () => new Array<number>(20_000).fill(0)),
];

/** Numbers parsers trip on: zero and signs, fractions, the edges of safe and 32-bit integers, huge. */
export const EDGE_NUMBERS: readonly number[] = [
  0,
  -0,
  1,
  -1,
  2,
  3,
  0.5,
  1.5,
  -1.5,
  1e-300,
  255,
  256,
  65535,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  1e8,
  1e9,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  1e21,
  1e300,
  Number.MAX_VALUE,
  -1e300,
  Number.MIN_VALUE,
];

/** Same as EDGE_NUMBERS plus values only a JS caller (not a JSON file) can pass. */
export const EDGE_NUMBERS_JS: readonly number[] = [...EDGE_NUMBERS, NaN, Infinity, -Infinity];

/**
 * A value of any JSON type, biased to what breaks field readers: edge numbers, empty and odd
 * strings, empty containers, and (unless `large` is false) Lazy large values, deeply nested ones
 * included. Pass the result through `materialize` before use.
 */
export function weirdJsonValue(opts: { jsOnly?: boolean; large?: boolean } = {}): fc.Arbitrary<unknown> {
  const parts: fc.WeightedArbitrary<unknown>[] = [
    { weight: 4, arbitrary: fc.constantFrom(...(opts.jsOnly ? EDGE_NUMBERS_JS : EDGE_NUMBERS)) },
    { weight: 2, arbitrary: fc.oneof(fc.integer(), fc.double({ noNaN: !opts.jsOnly, noDefaultInfinity: !opts.jsOnly })) },
    {
      weight: 2,
      arbitrary: fc.constantFrom('', ' ', 'x', '0', '1', '-1', '1.5', 'null', 'true', '\u0000', '😀', 'LORA', 'llama', 'silu', '<s>', '</s>', '__proto__'),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
    { weight: 2, arbitrary: fc.constantFrom<unknown>(null, true, false, [], {}, [null], [0], [[]], { a: 1 }, [-1], [1.5], ['x']) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  ];
  if (opts.large !== false) parts.push({ weight: 1, arbitrary: fc.constantFrom(...LARGE_VALUES) });
  return fc.oneof(...parts);
}

type JsonPath = (string | number)[];

/** Paths to containers in `v` (the root included), depth-first: at most `limit`, at most `maxDepth` deep. */
function containerPaths(v: unknown, limit = 10_000, maxDepth = 32): JsonPath[] {
  const out: JsonPath[] = [];
  const stack: { v: unknown; path: JsonPath }[] = [{ v, path: [] }];
  while (stack.length > 0 && out.length < limit) {
    const { v: x, path } = stack.pop()!;
    if (path.length > maxDepth) continue;
    if (Array.isArray(x)) {
      out.push(path);
      x.forEach((c, i) => stack.push({ v: c, path: [...path, i] }));
    } else if (typeof x === 'object' && x !== null) {
      out.push(path);
      for (const k of Object.keys(x)) stack.push({ v: (x as Record<string, unknown>)[k], path: [...path, k] });
    }
  }
  return out;
}

function getAt(v: unknown, path: JsonPath): unknown {
  let x = v;
  for (const k of path) x = (x as Record<string | number, unknown>)[k];
  return x;
}

/**
 * One edit of a JSON document: in the `target`-th container (modulo their number), replace, delete
 * or add the `key`-th entry (modulo the entries; add uses `name`).
 */
export type JsonMutation =
  | { kind: 'replace'; target: number; key: number; value: unknown }
  | { kind: 'delete'; target: number; key: number }
  | { kind: 'add'; target: number; name: string; value: unknown }
  | { kind: 'replaceRoot'; value: unknown };

export function jsonMutation(fieldNames: readonly string[], value: fc.Arbitrary<unknown> = weirdJsonValue()): fc.Arbitrary<JsonMutation> {
  const name = fc.oneof(fc.constantFrom(...fieldNames, '__proto__', '', 'constructor'), fc.string({ maxLength: 8 }));
  return fc.oneof(
    { weight: 8, arbitrary: fc.record({ kind: fc.constant('replace' as const), target: pos, key: pos, value }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), target: pos, key: pos }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('add' as const), target: pos, name, value }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('replaceRoot' as const), value }) },
  );
}

export const jsonMutations = (fieldNames: readonly string[], max = 3, value?: fc.Arbitrary<unknown>): fc.Arbitrary<JsonMutation[]> =>
  fc.array(jsonMutation(fieldNames, value), { minLength: 1, maxLength: max });

/**
 * Applies edits to a deep copy of `doc` (inserted values are materialized; nothing here recurses
 * into them afterwards, so they may be deep).
 */
export function mutateJson(doc: unknown, muts: readonly JsonMutation[]): unknown {
  // A deep copy that survives any depth (structuredClone recurses): through the iterative writer.
  let root: unknown = doc === undefined ? undefined : decodeValue(encodeValue(doc));
  for (const m of muts) {
    if (m.kind === 'replaceRoot') {
      root = materialize(m.value);
      continue;
    }
    const paths = containerPaths(root);
    if (paths.length === 0) {
      if (m.kind !== 'delete') root = materialize(m.value);
      continue;
    }
    const target = getAt(root, paths[m.target % paths.length]) as Record<string, unknown> | unknown[];
    if (Array.isArray(target)) {
      if (m.kind === 'add') target.push(materialize(m.value));
      else if (target.length > 0) {
        const i = m.key % target.length;
        if (m.kind === 'replace') target[i] = materialize(m.value);
        else target.splice(i, 1);
      }
    } else {
      const keys = Object.keys(target);
      if (m.kind === 'add') Object.defineProperty(target, m.name, { value: materialize(m.value), enumerable: true, writable: true, configurable: true });
      else if (keys.length > 0) {
        const k = keys[m.key % keys.length];
        if (m.kind === 'replace') Object.defineProperty(target, k, { value: materialize(m.value), enumerable: true, writable: true, configurable: true });
        else delete target[k];
      }
    }
  }
  return root;
}

/**
 * JSON text of a value that may be nested past JSON.stringify's recursion limit: written with an
 * explicit stack (keys in insertion order, as JSON.stringify does; undefined and functions left out
 * of objects, non-finite numbers written as null, or with `special` NaN, infinities and -0 written
 * as the marker strings decodeValue reads).
 */
export function toJsonText(v: unknown, indent = false, special = false): string {
  const num = (x: number): string => {
    const m = special ? specialMarker(x) : null;
    return m !== null ? JSON.stringify(m) : Number.isFinite(x) ? JSON.stringify(x) : 'null';
  };
  try {
    // The native writer for everything it can do (fast); deep values and bigints come here below.
    const replacer = (_k: string, x: unknown): unknown => (special && typeof x === 'number' ? (specialMarker(x) ?? x) : x);
    const text = JSON.stringify(v, replacer, indent ? 1 : undefined);
    if (typeof text === 'string') return text;
  } catch {
    // nested past the native writer's recursion limit, or a bigint
  }
  const parts: string[] = [];
  const nl = indent ? '\n' : '';
  type Frame = { v: unknown } | { text: string };
  const stack: Frame[] = [{ v }];
  while (stack.length > 0) {
    const f = stack.pop()!;
    if ('text' in f) {
      parts.push(f.text);
      continue;
    }
    const x = f.v;
    if (x === null || typeof x === 'boolean' || typeof x === 'string') parts.push(JSON.stringify(x));
    else if (typeof x === 'number') parts.push(num(x));
    else if (typeof x === 'bigint') parts.push(x.toString());
    else if (Array.isArray(x)) {
      const frames: Frame[] = [{ text: '[' }];
      x.forEach((c, i) => {
        if (i > 0) frames.push({ text: ',' + nl });
        frames.push({ v: c === undefined || typeof c === 'function' ? null : c });
      });
      frames.push({ text: ']' });
      for (let i = frames.length - 1; i >= 0; i--) stack.push(frames[i]);
    } else if (typeof x === 'object') {
      const frames: Frame[] = [{ text: '{' }];
      let first = true;
      for (const k of Object.keys(x)) {
        const c = (x as Record<string, unknown>)[k];
        if (c === undefined || typeof c === 'function') continue;
        frames.push({ text: (first ? '' : ',' + nl) + JSON.stringify(k) + ':' });
        frames.push({ v: c });
        first = false;
      }
      frames.push({ text: '}' });
      for (let i = frames.length - 1; i >= 0; i--) stack.push(frames[i]);
    } else parts.push('null');
  }
  return parts.join('');
}

/** JSON text bytes of a value (any depth). */
export function jsonFileBytes(v: unknown): Uint8Array {
  return new TextEncoder().encode(toJsonText(v, true));
}

/**
 * How a JSON file is damaged: its parsed value edited, its text edited, its bytes edited, or a
 * combination (value edits, then the text, then the bytes).
 */
export interface JsonFileMutation {
  value: JsonMutation[];
  text: TextMutation[];
  bytes: ByteMutation[];
}

export function jsonFileMutation(fieldNames: readonly string[]): fc.Arbitrary<JsonFileMutation> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.record({ value: jsonMutations(fieldNames), text: fc.constant<never[]>([]), bytes: fc.constant<never[]>([]) }) },
    { weight: 2, arbitrary: fc.record({ value: fc.constant<never[]>([]), text: textMutations(3), bytes: fc.constant<never[]>([]) }) },
    { weight: 2, arbitrary: fc.record({ value: fc.constant<never[]>([]), text: fc.constant<never[]>([]), bytes: byteMutations(3) }) },
    { weight: 1, arbitrary: fc.record({ value: jsonMutations(fieldNames, 2), text: textMutations(2), bytes: byteMutations(2) }) },
  );
}

export function mutateJsonFile(doc: unknown, m: JsonFileMutation): Uint8Array<ArrayBuffer> {
  const v = m.value.length > 0 ? mutateJson(doc, m.value) : doc;
  let text = toJsonText(v, true);
  if (m.text.length > 0) text = mutateText(text, m.text);
  const bytes = new TextEncoder().encode(text);
  return m.bytes.length > 0 ? mutateBytes(bytes, m.bytes) : bytes;
}

// ---------------------------------------------------------------------------------------------
// Running parsers in a worker thread, so a case that never returns (a synchronous endless loop,
// e.g. in a dependency) or allocates without bound is cut off and reported, instead of hanging or
// killing the test run. The worker loads this module, transpiled, and calls the `fuzz*` entry
// points at the end of it; arguments and results are plain data (JSON values travel as text:
// structured cloning overflows on deeply nested values).
// ---------------------------------------------------------------------------------------------

const PROJECT_ROOT = resolvePath(dirname(fileURLToPath(import.meta.url)), '../..');
const CACHE_DIR = resolvePath(PROJECT_ROOT, 'node_modules/.cache/loramoe-fuzz');

/**
 * Transpiles a TypeScript module of this project, and every project module it imports (statically
 * or dynamically), to JavaScript under node_modules/.cache/loramoe-fuzz (mirroring the tree, so
 * package imports resolve), and returns the entry's file URL.
 */
export async function transpiledModule(srcPath: string): Promise<string> {
  const ts = (await import('typescript')).default;
  const done = new Set<string>();
  const todo = [resolvePath(PROJECT_ROOT, srcPath)];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (done.has(file)) continue;
    done.add(file);
    const js = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false, isolatedModules: true },
      fileName: file,
    }).outputText;
    // Relative specifiers (extensionless, as the bundler resolves them) become explicit .mjs files.
    const out = js.replace(/(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+)\2/g, (_m, pre: string, q: string, spec: string) => {
      const base = resolvePath(dirname(file), spec);
      const target = [base, `${base}.ts`, `${base}/index.ts`].find((c) => c.endsWith('.ts') && existsSync(c));
      if (!target) throw new Error(`fuzz worker: cannot resolve ${spec} from ${file}`);
      todo.push(target);
      const rel = spec.replace(/\.ts$/, '') + (target.endsWith('/index.ts') && !spec.endsWith('index') ? '/index' : '');
      return `${pre}${q}${rel}.mjs${q}`;
    });
    const dest = resolvePath(CACHE_DIR, relativePath(PROJECT_ROOT, file)).replace(/\.ts$/, '.mjs');
    if (existsSync(dest) && readFileSync(dest, 'utf8') === out) continue;
    // Written aside then renamed (atomic): test files running in parallel transpile the same modules.
    mkdirSync(dirname(dest), { recursive: true });
    const tmp = `${dest}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(tmp, out);
    renameSync(tmp, dest);
  }
  return pathToFileURL(resolvePath(CACHE_DIR, srcPath).replace(/\.ts$/, '.mjs')).href;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.url).then((mod) => {
  parentPort.on('message', async ({ id, name, args }) => {
    try {
      const value = await mod[name](...args);
      parentPort.postMessage({ id, ok: true, value });
    } catch (e) {
      const extra = {};
      if (e && typeof e === 'object') for (const [k, v] of Object.entries(e)) if (typeof v === 'string' || typeof v === 'number') extra[k] = v;
      const error = e instanceof Error
        ? { ctor: e.constructor.name, name: e.name, message: e.message, stack: e.stack, extra }
        : { ctor: typeof e, name: typeof e, message: String(e), stack: '', extra };
      parentPort.postMessage({ id, ok: false, error });
    }
  });
  parentPort.postMessage({ ready: true });
}, (e) => parentPort.postMessage({ ready: false, message: String(e && e.stack || e) }));
`;

const BUILTIN_ERRORS: Record<string, new (message?: string) => Error> = { Error, TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError };

export type IsolatedOutcome<T> =
  | { kind: 'ok'; value: T; ms: number }
  | { kind: 'error'; error: Error; ms: number }
  | { kind: 'hang'; ms: number }
  /** The worker died (e.g. past its heap limit: an allocation far beyond the input). */
  | { kind: 'died'; message: string; ms: number };

type ThrownData = { ctor: string; name: string; message: string; stack: string; extra?: Record<string, string | number> };
type Reply = { ok: boolean; value?: unknown; error?: ThrownData } | { died: string } | null;

/** Heap limit of the worker (MB): a case allocating past it kills the worker and is reported. */
export const WORKER_HEAP_MB = 384;

/**
 * Calls exported functions of a transpiled module in a worker thread. A call that does not answer
 * within its limit is reported as a hang and the worker is replaced; a worker that dies (past its
 * heap limit) is reported too. Errors come back as instances of the matching class (the built-in
 * ones, or those in `errorClasses` by name), with their message and stack.
 */
export class IsolatedRunner {
  /** The worker cases run in, and (after a first restart) a loaded spare that replaces it at once. */
  private current: { worker: Worker; ready: Promise<void> } | null = null;
  private spare: { worker: Worker; ready: Promise<void> } | null = null;
  private restarts = 0;
  private nextId = 0;
  private readonly pending = new Map<number, (m: Reply) => void>();

  constructor(
    private readonly url: string,
    private readonly errorClasses: Record<string, abstract new (...args: never[]) => Error> = {},
  ) {}

  /** A runner over this module's fuzz* entry points. */
  static async forEntries(errorClasses: Record<string, abstract new (...args: never[]) => Error> = {}): Promise<IsolatedRunner> {
    return new IsolatedRunner(await transpiledModule('src/fuzz/arbitraries.ts'), errorClasses);
  }

  private spawn(): { worker: Worker; ready: Promise<void> } {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { url: this.url },
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
    });
    const slot = { worker, ready: Promise.resolve() };
    const dieAll = (why: string) => {
      if (this.current === slot) {
        for (const cb of this.pending.values()) cb({ died: why });
        this.pending.clear();
        this.current = null;
      } else if (this.spare === slot) this.spare = null;
    };
    slot.ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: { ready?: boolean; message?: string; id?: number }) => {
        if (m.ready === true) resolve();
        else if (m.ready === false) reject(new Error(`the fuzz worker could not load ${this.url}: ${m.message}`));
        else if (m.id !== undefined) {
          const cb = this.pending.get(m.id);
          this.pending.delete(m.id);
          cb?.(m as Reply);
        }
      });
      worker.on('error', (e) => {
        reject(e);
        dieAll(`${e.name}: ${e.message}`);
      });
      worker.on('exit', (code) => dieAll(`the worker exited with code ${code}`));
    });
    slot.ready.catch(() => undefined); // a spare that fails to load is reported when it is used
    return slot;
  }

  private async start(): Promise<Worker> {
    if (!this.current) {
      this.current = this.spare ?? this.spawn();
      this.spare = null;
      if (this.restarts > 0) this.spare = this.spawn();
    }
    const slot = this.current;
    await slot.ready;
    return slot.worker;
  }

  private async restart(): Promise<void> {
    const slot = this.current;
    this.current = null;
    this.pending.clear();
    this.restarts++;
    if (slot) await slot.worker.terminate();
  }

  private toError(e: ThrownData): Error {
    const C = (BUILTIN_ERRORS[e.ctor] ?? this.errorClasses[e.ctor]) as (new (message?: string) => Error) | undefined;
    const err: Error = C ? Object.create(C.prototype) : new Error();
    Object.defineProperty(err, 'message', { value: e.message, writable: true, configurable: true });
    Object.defineProperty(err, 'name', { value: e.name, writable: true, configurable: true });
    Object.defineProperty(err, 'stack', { value: e.stack, writable: true, configurable: true });
    for (const [k, v] of Object.entries(e.extra ?? {})) Object.defineProperty(err, k, { value: v, enumerable: true, writable: true, configurable: true });
    if (!C && e.ctor !== 'Error') Object.defineProperty(err, 'constructor', { value: { name: e.ctor } });
    return err;
  }

  /** Calls export `name` with `args` (structured-cloned) in the worker, within `limitMs`. */
  async run<T>(name: string, args: unknown[], limitMs = CASE_LIMIT_MS): Promise<IsolatedOutcome<T>> {
    const worker = await this.start();
    const id = this.nextId++;
    const t0 = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const reply = await new Promise<Reply>((resolve) => {
      this.pending.set(id, resolve);
      timer = setTimeout(() => resolve(null), limitMs);
      worker.postMessage({ id, name, args });
    });
    clearTimeout(timer);
    const ms = performance.now() - t0;
    if (reply === null) {
      this.pending.delete(id);
      await this.restart();
      return { kind: 'hang', ms };
    }
    if ('died' in reply) return { kind: 'died', message: reply.died, ms };
    return reply.ok ? { kind: 'ok', value: reply.value as T, ms } : { kind: 'error', error: this.toError(reply.error!), ms };
  }

  async close(): Promise<void> {
    const slots = [this.current, this.spare];
    this.current = null;
    this.spare = null;
    this.pending.clear();
    await Promise.all(slots.map((slot) => slot?.worker.terminate()));
  }
}

/**
 * Cases that ran past the time limit (or killed the worker), collected instead of failing at once:
 * each costs the whole limit, so shrinking them would take minutes. After `max` of them, further
 * cases get a short limit (`after` ms), so the rest of the run still checks for crashes quickly.
 * The test asserts the list is empty at the end.
 */
export class SlowCases {
  readonly cases: { label: string; input: string; outcome: string }[] = [];
  more = 0;
  constructor(
    readonly max = 1,
    readonly after = 150,
  ) {}
  get limit(): number {
    return this.cases.length < this.max ? CASE_LIMIT_MS : this.after;
  }
  add(label: string, input: string, outcome: string): void {
    if (this.cases.length < this.max) this.cases.push({ label, input: input.length > 4000 ? `${input.slice(0, 4000)}...` : input, outcome });
    else this.more++;
  }
  report(): string {
    return this.cases.map((c) => `${c.label}: ${c.outcome}; input ${c.input}`).join('\n') + (this.more > 0 ? `\n... and ${this.more} more` : '');
  }
}

/**
 * Runs a case in the worker within `slow.limit`; a case that does not answer is run again with
 * HANG_CONFIRM_MS while no hang has been recorded yet (after the first, the run fails anyway and
 * the short limit keeps it quick).
 */
export async function runConfirmed<T>(runner: IsolatedRunner, entry: string, args: unknown[], slow: SlowCases): Promise<IsolatedOutcome<T>> {
  const r = await runner.run<T>(entry, args, slow.limit);
  if (r.kind !== 'hang' || slow.cases.length > 0) return r;
  return runner.run<T>(entry, args, HANG_CONFIRM_MS);
}

/**
 * One case through the worker: a hang or a dead worker goes to `slow` (and returns null), anything
 * else comes back as an Outcome for the usual checks, and is counted in `tally`.
 */
export async function isolatedCase<T>(
  runner: IsolatedRunner,
  entry: string,
  args: unknown[],
  label: string,
  input: () => string,
  slow: SlowCases,
  tally: Tally,
): Promise<Outcome<T> | null> {
  const r = await runConfirmed<T>(runner, entry, args, slow);
  if (r.kind === 'hang' || r.kind === 'died') {
    tally.record(label, 'error', r.ms);
    slow.add(label, input(), r.kind === 'hang' ? `no answer after ${r.ms.toFixed(0)} ms` : `the worker died: ${r.message}`);
    return null;
  }
  tally.record(label, r.kind === 'ok' ? 'load' : 'error', r.ms);
  return r.kind === 'ok' ? { ok: true, value: r.value, ms: r.ms } : { ok: false, error: r.error, ms: r.ms };
}

// ---------------------------------------------------------------------------------------------
// JSON values through the worker: text with markers for what JSON cannot hold.
// ---------------------------------------------------------------------------------------------

const SPECIALS: [string, number][] = [
  ['\u0000NaN', NaN],
  ['\u0000Infinity', Infinity],
  ['\u0000-Infinity', -Infinity],
  ['\u0000-0', -0],
];

function specialMarker(v: number): string | null {
  if (Number.isNaN(v)) return '\u0000NaN';
  if (v === Infinity) return '\u0000Infinity';
  if (v === -Infinity) return '\u0000-Infinity';
  if (Object.is(v, -0)) return '\u0000-0';
  return null;
}

/** A value as JSON text, NaN, infinities and -0 written as marker strings (any depth). */
export function encodeValue(v: unknown): string {
  return toJsonText(v, false, true);
}

/** The value `encodeValue` wrote (iterative: any depth). */
export function decodeValue(text: string): unknown {
  const root = { v: JSON.parse(text) as unknown };
  const markers = new Map(SPECIALS);
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const x = stack.pop() as Record<string, unknown> | unknown[];
    for (const k of Object.keys(x)) {
      const c = (x as Record<string, unknown>)[k];
      if (typeof c === 'string' && c.startsWith('\u0000') && markers.has(c)) (x as Record<string, unknown>)[k] = markers.get(c);
      else if (typeof c === 'object' && c !== null) stack.push(c);
    }
  }
  return root.v;
}

// ---------------------------------------------------------------------------------------------
// Worker entry points (called by name through IsolatedRunner; plain data in, plain data out).
// ---------------------------------------------------------------------------------------------

/** parseModelConfig on an encoded value. */
export async function fuzzParseModelConfig(encoded: string, fileName: string): Promise<unknown> {
  const { parseModelConfig } = await import('../model/config');
  return parseModelConfig(decodeValue(encoded), fileName);
}

/** parseAdapterConfig on an encoded value. */
export async function fuzzParseAdapterConfig(encoded: string, fileName: string): Promise<unknown> {
  const { parseAdapterConfig } = await import('../loramoe/files');
  return parseAdapterConfig(decodeValue(encoded), fileName);
}

/** What a loaded tokenizer did with a few texts (or how using it failed). */
export interface TokenizerSummary {
  eosId: number;
  bosId: number | null;
  padId: number;
  size: number;
  encoded: number[][];
  decoded: string[];
  /** Set when the tokenizer loaded but encoding or decoding then threw. */
  useError?: { ctor: string; message: string };
}

export const TOKENIZER_PROBES = ['the cat sat on the mat .', '', 'what color is the sky ?', 'Ünïcödé 😀 <s> </s> <pad>', 'a'.repeat(300)];

/** loadTokenizer on encoded tokenizer.json / tokenizer_config.json values, then encode and decode a few texts. */
export async function fuzzLoadTokenizer(tokenizerJson: string, tokenizerConfig: string, fileName: string): Promise<TokenizerSummary> {
  const { loadTokenizer } = await import('../data/tokenizer');
  const tok = loadTokenizer(decodeValue(tokenizerJson), decodeValue(tokenizerConfig), fileName);
  const summary: TokenizerSummary = { eosId: tok.eosId, bosId: tok.bosId, padId: tok.padId, size: tok.size, encoded: [], decoded: [] };
  try {
    for (const text of TOKENIZER_PROBES) {
      const ids = tok.encode(text, text.length % 2 === 0);
      summary.encoded.push(ids);
      // Decoded only when every id is an integer (the check reports other ids); decode([]) throws in
      // @huggingface/tokenizers ("token_ids must be a non-empty array"), so it is not probed.
      if (ids.length > 0 && ids.every((id) => Number.isSafeInteger(id))) summary.decoded.push(tok.decode(ids));
    }
    summary.decoded.push(tok.decode([tok.eosId, tok.padId, ...(tok.bosId === null ? [] : [tok.bosId])]));
  } catch (e) {
    summary.useError = { ctor: e instanceof Error ? e.constructor.name : typeof e, message: errorMessage(e) };
  }
  return summary;
}

/** What loadAdapter built: the config and, per adapter key, the sizes of the arrays. */
export interface AdapterSummary {
  cfg: unknown;
  baseModel: string;
  dataTypes?: string[];
  arrays: { key: string; wr: number | null; a: number; b: number }[];
  /** Sum over the arrays of A, B and router floats. */
  floats: number;
  /** True when every value is a finite or non-finite float (no holes): always true for typed arrays. */
  allFloat32: boolean;
}

/** loadAdapter from in-memory files onto the backbone shape `shape`. */
export async function fuzzLoadAdapter(label: string, files: [string, Uint8Array][], shape: unknown): Promise<AdapterSummary> {
  const { MemorySource } = await import('../io/files');
  const { loadAdapter } = await import('../loramoe/files');
  const loaded = await loadAdapter(new MemorySource(label, new Map(files)), shape as Parameters<typeof loadAdapter>[1]);
  const arrays: AdapterSummary['arrays'] = [];
  let floats = 0;
  let allFloat32 = true;
  for (const [key, t] of loaded.set) {
    arrays.push({ key, wr: t.wr ? t.wr.length : null, a: t.a.length, b: t.b.length });
    floats += t.a.length + t.b.length + (t.wr ? t.wr.length : 0);
    allFloat32 &&= t.a instanceof Float32Array && t.b instanceof Float32Array && (t.wr === null || t.wr instanceof Float32Array);
  }
  return { cfg: loaded.cfg, baseModel: loaded.baseModel, ...(loaded.dataTypes ? { dataTypes: loaded.dataTypes } : {}), arrays, floats, allFloat32 };
}

/** What loadBackbone built. */
export interface BackboneSummary {
  config: unknown;
  weights: { name: string; length: number }[];
  floats: number;
  tokenizerSize: number;
  eosId: number;
  warnings: string[];
  encoded: number[];
}

/** loadBackbone from in-memory files. */
export async function fuzzLoadBackbone(label: string, files: [string, Uint8Array][]): Promise<BackboneSummary> {
  const { MemorySource } = await import('../io/files');
  const { loadBackbone } = await import('../model/load');
  const b = await loadBackbone(new MemorySource(label, new Map(files)));
  const weights = [...b.weights].map(([name, w]) => ({ name, length: w.length }));
  return {
    config: b.config,
    weights,
    floats: weights.reduce((a, w) => a + w.length, 0),
    tokenizerSize: b.tokenizer.size,
    eosId: b.tokenizer.eosId,
    warnings: b.warnings,
    encoded: b.tokenizer.encode('the cat sat on the mat .'),
  };
}

/** parseDataset (the worker gets the bytes and the file name). */
export async function fuzzParseDataset(bytes: Uint8Array, fileName: string): Promise<unknown> {
  const { parseDataset } = await import('../data/import');
  return parseDataset(bytes, fileName);
}
