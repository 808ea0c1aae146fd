/** Fuzz generators for binary formats: byte edits of a valid file, and sequences that are not UTF-8. */
import fc from 'fast-check';

/** Bytes that often matter to parsers: 0, all ones, sign bits, ASCII structure, UTF-8 lead bytes. */
const INTERESTING_BYTES = [0x00, 0xff, 0x7f, 0x80, 0x01, 0x20, 0x22, 0x2c, 0x3a, 0x5b, 0x5d, 0x7b, 0x7d, 0x0a, 0x0d, 0x5c, 0xc0, 0xe0, 0xf0, 0xef, 0xbb, 0xbf] as const;

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

/** An offset into an input, taken modulo its length by the edit that uses it. */
export const anyOffset = fc.nat({ max: 1 << 30 });

const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: anyOffset, bit: fc.nat({ max: 7 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      at: anyOffset,
      value: fc.oneof(fc.constantFrom(...INTERESTING_BYTES), fc.nat({ max: 255 })),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: anyOffset }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      at: anyOffset,
      bytes: fc.array(fc.oneof(fc.constantFrom(...INTERESTING_BYTES), fc.nat({ max: 255 })), { minLength: 1, maxLength: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: anyOffset, len: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), at: anyOffset, len: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('swap' as const), at: anyOffset, other: anyOffset }) },
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
