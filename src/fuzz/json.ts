/**
 * Fuzz generators for JSON documents (configs, tokenizers, headers): odd values, edits of a valid
 * document, its text (NaN, infinities and -0 included), and the text that carries a value to the
 * fuzz worker and back (encodeValue, decodeValue).
 */
import fc from 'fast-check';
import { anyOffset, type ByteMutation, byteMutations, mutateBytes } from './bytes';
import { mutateText, type TextMutation, textMutations } from './text';

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
class Lazy {
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
const LARGE_VALUES: readonly Lazy[] = [
  new Lazy('deepArray(10000)', () => deepValue(10_000, 'array')),
  new Lazy('deepObject(10000)', () => deepValue(10_000, 'object')),
  new Lazy('"x" * 100000', () => 'x'.repeat(100_000)),
  new Lazy('[0] * 20000', () => new Array<number>(20_000).fill(0)),
];

/** Numbers parsers trip on: zero and signs, fractions, the edges of safe and 32-bit integers, huge. */
const EDGE_NUMBERS: readonly number[] = [
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
const EDGE_NUMBERS_JS: readonly number[] = [...EDGE_NUMBERS, NaN, Infinity, -Infinity];

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

function jsonMutation(fieldNames: readonly string[], value: fc.Arbitrary<unknown> = weirdJsonValue()): fc.Arbitrary<JsonMutation> {
  const name = fc.oneof(fc.constantFrom(...fieldNames, '__proto__', '', 'constructor'), fc.string({ maxLength: 8 }));
  return fc.oneof(
    { weight: 8, arbitrary: fc.record({ kind: fc.constant('replace' as const), target: anyOffset, key: anyOffset, value }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), target: anyOffset, key: anyOffset }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('add' as const), target: anyOffset, name, value }) },
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
