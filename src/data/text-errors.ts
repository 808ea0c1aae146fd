/**
 * Where a text file goes wrong: the first byte that is not UTF-8, the first JSON syntax error (with
 * its line and column), and the line a character offset is on. The dataset importer's messages
 * point at these places.
 */
import type { Refuse } from './records';

// Character codes compared with charCodeAt.
const TAB = 9;
const LINE_FEED = 10;
const CARRIAGE_RETURN = 13;
const SPACE = 32;
const QUOTE = 34;
const BACKSLASH = 92;
/** Characters below the space are control characters, which a JSON string may not hold raw. */
const FIRST_NON_CONTROL = 0x20;
/** U+FEFF at the start of a text file is a byte order mark, not text. */
const BYTE_ORDER_MARK = 0xfeff;

/**
 * A JSON number is matched within this many characters from its start, so a long text is not copied
 * for every number; a number longer than that is reported where the window ends.
 */
const NUMBER_WINDOW = 400;

// UTF-8 bytes (Unicode's table of well-formed byte sequences): a byte below 0x80 is ASCII, a
// character by itself; a leading byte 0xc2-0xdf, 0xe0-0xef or 0xf0-0xf4 is followed by 1, 2 or 3
// continuation bytes 0x80-0xbf, the first of which is narrowed after 0xe0, 0xed, 0xf0 and 0xf4 as
// marked below.
const ASCII_END = 0x80;
const CONTINUATION_FIRST = 0x80;
const CONTINUATION_LAST = 0xbf;

/** Byte offset of the first byte that is not part of well-formed UTF-8, or -1 when all is well. */
export function findInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i];
    if (b < ASCII_END) {
      i++;
      continue;
    }
    let need: number;
    let lo = CONTINUATION_FIRST;
    let hi = CONTINUATION_LAST;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0; // no overlong forms
      if (b === 0xed) hi = 0x9f; // no surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90; // no overlong forms
      if (b === 0xf4) hi = 0x8f; // nothing above U+10FFFF
    } else return i;
    for (let k = 1; k <= need; k++) {
      if (i + k >= n) return i;
      const c = bytes[i + k];
      if (k === 1 ? c < lo || c > hi : c < CONTINUATION_FIRST || c > CONTINUATION_LAST) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** The text of a UTF-8 file without its byte order mark; refuses bytes that are not UTF-8. */
export function decodeUtf8(bytes: Uint8Array, refuse: Refuse): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = findInvalidUtf8(bytes);
    return refuse(`the file is not UTF-8 text: invalid byte 0x${(bytes[at] ?? 0).toString(16).padStart(2, '0')} at byte offset ${at}`);
  }
  return text.charCodeAt(0) === BYTE_ORDER_MARK ? text.slice(1) : text;
}

/** The offset of each line's first character (lines end at \n, \r\n or \r). */
export function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === LINE_FEED) starts.push(i + 1);
    else if (c === CARRIAGE_RETURN && text.charCodeAt(i + 1) !== LINE_FEED) starts.push(i + 1);
  }
  return starts;
}

/** 1-based line and column of a character offset. */
export function lineColumn(starts: readonly number[], offset: number): { line: number; column: number } {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, column: offset - starts[lo] + 1 };
}

/**
 * Finds the first JSON syntax error in `text` (which JSON.parse rejected). Engines word and place
 * their errors differently, and some give no position at all, so the position is found here.
 */
export function locateJsonError(text: string): { offset: number; message: string } {
  let i = 0;
  const n = text.length;
  const fail = (message: string, at = i): { offset: number; message: string } => ({ offset: at, message });
  const ws = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === SPACE || c === TAB || c === LINE_FEED || c === CARRIAGE_RETURN) i++;
      else break;
    }
  };
  const describe = (at: number): string => (at >= n ? 'unexpected end of input' : `unexpected character ${JSON.stringify(text[at])}`);
  const str = (): { offset: number; message: string } | null => {
    const start = i;
    i++; // opening quote
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === QUOTE) {
        i++;
        return null;
      }
      if (c < FIRST_NON_CONTROL) return fail('control character in a string (a line break must be written \\n)');
      if (c === BACKSLASH) {
        const e = text[i + 1];
        if (e === undefined) break;
        if ('"\\/bfnrt'.includes(e)) i += 2;
        else if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) return fail('bad \\u escape in a string');
          i += 6;
        } else return fail(`bad escape \\${e} in a string`);
      } else i++;
    }
    return fail('unterminated string', start);
  };
  const num = (): { offset: number; message: string } | null => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + NUMBER_WINDOW));
    if (!m || m[0] === '-' || m[0] === '') return fail(describe(i));
    i += m[0].length;
    return null;
  };
  // An object's property name and its colon, the white space before each skipped.
  const key = (): { offset: number; message: string } | null => {
    ws();
    if (text[i] !== '"') return fail(i >= n ? 'unexpected end of input' : `expected a property name in double quotes, found ${JSON.stringify(text[i])}`);
    const e = str();
    if (e) return e;
    ws();
    if (text[i] !== ':') return fail(i >= n ? 'unexpected end of input' : `expected ':' after a property name, found ${JSON.stringify(text[i])}`);
    i++;
    return null;
  };
  // Containers on an explicit stack: deep nesting must not overflow the call stack.
  const stack: ('[' | '{')[] = [];
  let err: { offset: number; message: string } | null;
  // state: expecting a value
  for (;;) {
    ws();
    // parse a value
    if (i >= n) return fail('unexpected end of input');
    const c = text[i];
    if (c === '{' || c === '[') {
      i++;
      ws();
      if (text[i] === (c === '{' ? '}' : ']')) {
        i++;
      } else {
        stack.push(c);
        if (c === '{' && (err = key())) return err;
        continue;
      }
    } else if (c === '"') {
      if ((err = str())) return err;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      if ((err = num())) return err;
    } else if (text.startsWith('true', i)) i += 'true'.length;
    else if (text.startsWith('false', i)) i += 'false'.length;
    else if (text.startsWith('null', i)) i += 'null'.length;
    else return fail(describe(i));
    // after a value: close containers or move to the next element
    for (;;) {
      ws();
      const top = stack[stack.length - 1];
      if (top === undefined) {
        if (i < n) return fail(`unexpected ${JSON.stringify(text[i])} after the end of the JSON value`);
        return fail('JSON.parse rejected the text, but no syntax error was found');
      }
      const close = top === '{' ? '}' : ']';
      if (text[i] === close) {
        stack.pop();
        i++;
        continue;
      }
      if (text[i] === ',') {
        i++;
        if (top === '{' && (err = key())) return err;
        break;
      }
      return fail(i >= n ? 'unexpected end of input' : `expected ',' or '${close}', found ${JSON.stringify(text[i])}`);
    }
  }
}

/** The first JSON syntax error of `text` (which JSON.parse rejected), with its 1-based line and column. */
export function jsonErrorText(text: string): { line: number; column: number; message: string } {
  const { offset, message } = locateJsonError(text);
  return { ...lineColumn(lineStarts(text), offset), message };
}
