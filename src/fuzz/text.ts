/** Fuzz generators for text formats (JSON, JSON Lines, CSV, TSV): text edits and encoding edits. */
import fc from 'fast-check';
import { anyOffset, INVALID_UTF8, mutateBytes } from './bytes';

/** Snippets that break or bend text formats: quotes, line breaks, brackets, odd numbers, odd characters. */
const TEXT_SNIPPETS: readonly string[] = [
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

const textMutation: fc.Arbitrary<TextMutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: anyOffset, text: snippet }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: anyOffset, len: fc.integer({ min: 1, max: 16 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('replace' as const), at: anyOffset, text: snippet }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), at: anyOffset, len: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: anyOffset }) },
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
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('invalid' as const), at: anyOffset, seq: fc.nat({ max: INVALID_UTF8.length - 1 }) }) },
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
