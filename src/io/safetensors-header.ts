/**
 * The safetensors header's JSON, read strictly (checks 4 and 5 of safetensors.ts, which describes the
 * format and every check): a small JSON reader that validates the expected shape as it reads, in
 * document order as serde does, and the check that the tensors tile the data section (the
 * reference's `Metadata::validate`).
 *
 * JSON.parse is not used: it rounds integers beyond 2^53 - 1 and keeps the last of duplicate keys
 * silently, and both must be reported. The reader is linear in the header size, nests at most
 * MAX_JSON_DEPTH deep, and allocates nothing from a length read out of the file.
 */

import { q, SAFETENSORS_DTYPE_BYTES, SAFETENSORS_DTYPES, SafetensorsError, type SafetensorsDtype } from './safetensors-format';

/** serde_json's default nesting limit, applied to ignored values inside the header. */
const MAX_JSON_DEPTH = 128;

/**
 * The depth of a tensor's field value: the header object is depth 1, a tensor's object 2, the value
 * of one of its fields 3 (where a field the format does not define is skipped).
 */
const FIELD_VALUE_DEPTH = 3;

/** Number.MAX_SAFE_INTEGER (9007199254740991) has 16 digits: a longer run of digits is beyond it. */
const MAX_SAFE_INTEGER_DIGITS = 16;

/** An unsafe integer is shown in its message cut to this many characters (it may be megabytes long). */
const NUMBER_SHOWN_CHARS = 40;

// Character codes the reader compares with charCodeAt.
/** JSON's four whitespace characters: space, line feed, carriage return, tab. */
const SPACE = 0x20;
const LINE_FEED = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const TAB = 0x09;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** Characters below the space are control characters, which a JSON string may not hold raw. */
const FIRST_NON_CONTROL = 0x20;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
/** UTF-16 surrogates: a leading (high) one, then a trailing (low) one, stand for one code point. */
const LEADING_SURROGATE_FIRST = 0xd800;
const LEADING_SURROGATE_LAST = 0xdbff;
const TRAILING_SURROGATE_FIRST = 0xdc00;
const TRAILING_SURROGATE_LAST = 0xdfff;

// ---------------------------------------------------------------------------------------------
// Strict JSON reader for the header, validating the expected shape as it goes.
// ---------------------------------------------------------------------------------------------

export interface RawTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

const DTYPE_SET: ReadonlySet<string> = new Set(SAFETENSORS_DTYPES);

function kindAt(ch: string | undefined): string {
  switch (ch) {
    case '{':
      return 'an object';
    case '[':
      return 'an array';
    case '"':
      return 'a string';
    case 't':
    case 'f':
      return 'a boolean';
    case 'n':
      return 'null';
    case undefined:
      return 'the end of the header';
    default:
      return ch === '-' || (ch >= '0' && ch <= '9') ? 'a number' : `${q(ch)}`;
  }
}

/** Reads the header's JSON text: its tensors in document order and its `__metadata__` (empty when absent). */
export class HeaderReader {
  private i = 0;
  private readonly s: string;
  private readonly fileName: string;

  constructor(s: string, fileName: string) {
    this.s = s;
    this.fileName = fileName;
  }

  read(): { tensors: RawTensor[]; metadata: Record<string, string> } {
    const tensors: RawTensor[] = [];
    let metadata: Record<string, string> = {};
    this.ws();
    if (this.s[this.i] !== '{') this.wrongKind(`the header must be a JSON object, found ${kindAt(this.s[this.i])}`);
    this.i++;
    const seen = new Set<string>();
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
    } else {
      for (;;) {
        this.ws();
        if (this.s[this.i] !== '"') this.syntax('expected a tensor name (a string)');
        const key = this.str();
        this.checkKey(key, seen, 'the header', key === '__metadata__' ? undefined : key);
        this.ws();
        this.expect(':');
        this.ws();
        if (key === '__metadata__') metadata = this.metadata();
        else tensors.push(this.tensor(key));
        this.ws();
        const c = this.s[this.i++];
        if (c === ',') continue;
        if (c === '}') break;
        this.i--;
        this.syntax("expected ',' or '}' after a header entry");
      }
    }
    this.ws();
    if (this.i !== this.s.length) this.syntax('trailing characters after the header object');
    return { tensors, metadata };
  }

  // --- errors -------------------------------------------------------------------------------

  private syntax(what: string): never {
    throw new SafetensorsError(
      'InvalidHeaderDeserialization',
      this.fileName,
      `header is not valid JSON: ${what} at character ${this.i}`,
    );
  }

  private shape(what: string, tensor?: string): never {
    throw new SafetensorsError('InvalidHeaderDeserialization', this.fileName, what, tensor);
  }

  /** A value of the wrong kind at the current position: a shape error, or a syntax error if no value starts here. */
  private wrongKind(what: string, tensor?: string): never {
    const c = this.s[this.i];
    const startsValue = c !== undefined && (c === '{' || c === '[' || c === '"' || c === 't' || c === 'f' || c === 'n' || c === '-' || (c >= '0' && c <= '9'));
    if (!startsValue) this.syntax(`expected a value, found ${kindAt(c)}`);
    return this.shape(what, tensor);
  }

  private checkKey(key: string, seen: Set<string>, where: string, tensor?: string): void {
    if (key === '__proto__') {
      throw new SafetensorsError('ForbiddenKey', this.fileName, `key "__proto__" in ${where} is not allowed`, tensor);
    }
    if (seen.has(key)) {
      throw new SafetensorsError('DuplicateKey', this.fileName, `duplicate key ${q(key)} in ${where}`, tensor);
    }
    seen.add(key);
  }

  // --- lexing -------------------------------------------------------------------------------

  private ws(): void {
    const s = this.s;
    let i = this.i;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === SPACE || c === LINE_FEED || c === CARRIAGE_RETURN || c === TAB) i++;
      else break;
    }
    this.i = i;
  }

  private expect(ch: string): void {
    if (this.s[this.i] !== ch) this.syntax(`expected ${q(ch)}, found ${kindAt(this.s[this.i])}`);
    this.i++;
  }

  private literal(word: string): void {
    if (this.s.startsWith(word, this.i)) this.i += word.length;
    else this.syntax(`invalid literal (expected ${word})`);
  }

  /** A JSON string starting at the current '"'; returns its value. */
  private str(): string {
    const s = this.s;
    this.i++; // opening quote
    let out = '';
    let runStart = this.i;
    for (;;) {
      if (this.i >= s.length) this.syntax('unterminated string');
      const c = s.charCodeAt(this.i);
      if (c === QUOTE) {
        out += s.slice(runStart, this.i);
        this.i++;
        return out;
      }
      if (c < FIRST_NON_CONTROL) this.syntax('control character in a string');
      if (c === BACKSLASH) {
        out += s.slice(runStart, this.i);
        out += this.escape();
        runStart = this.i;
        continue;
      }
      if (c >= LEADING_SURROGATE_FIRST && c <= TRAILING_SURROGATE_LAST) {
        // Raw surrogates can only come as valid pairs here (the bytes passed a strict UTF-8 check).
        this.i += 2;
        continue;
      }
      this.i++;
    }
  }

  /** One escape sequence starting at the backslash; returns the characters it stands for. */
  private escape(): string {
    const e = this.s[this.i + 1];
    this.i += 2;
    switch (e) {
      case '"':
        return '"';
      case '\\':
        return '\\';
      case '/':
        return '/';
      case 'b':
        return '\b';
      case 'f':
        return '\f';
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case 't':
        return '\t';
      case 'u': {
        const hi = this.hex4();
        if (hi >= TRAILING_SURROGATE_FIRST && hi <= TRAILING_SURROGATE_LAST) this.syntax('lone trailing surrogate in a \\u escape');
        if (hi >= LEADING_SURROGATE_FIRST && hi <= LEADING_SURROGATE_LAST) {
          if (this.s[this.i] !== '\\' || this.s[this.i + 1] !== 'u') this.syntax('lone leading surrogate in a \\u escape');
          this.i += 2;
          const lo = this.hex4();
          if (lo < TRAILING_SURROGATE_FIRST || lo > TRAILING_SURROGATE_LAST) this.syntax('invalid surrogate pair in a \\u escape');
          return String.fromCharCode(hi, lo);
        }
        return String.fromCharCode(hi);
      }
      default:
        this.i -= 1;
        return this.syntax('invalid escape in a string');
    }
  }

  private hex4(): number {
    const h = this.s.slice(this.i, this.i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) this.syntax('invalid \\u escape');
    this.i += 4;
    return parseInt(h, 16);
  }

  /**
   * Scans a JSON number; returns its parts. Grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
   */
  private number(): { negative: boolean; digits: string; integer: boolean } {
    const s = this.s;
    const isDigit = (k: number) => {
      const c = s.charCodeAt(k);
      return c >= DIGIT_0 && c <= DIGIT_9;
    };
    let negative = false;
    if (s[this.i] === '-') {
      negative = true;
      this.i++;
    }
    const intStart = this.i;
    if (s[this.i] === '0') this.i++;
    else if (isDigit(this.i)) while (isDigit(this.i)) this.i++;
    else this.syntax('invalid number');
    const digits = s.slice(intStart, this.i);
    let integer = true;
    if (s[this.i] === '.') {
      integer = false;
      this.i++;
      if (!isDigit(this.i)) this.syntax('invalid number (no digits after the decimal point)');
      while (isDigit(this.i)) this.i++;
    }
    if (s[this.i] === 'e' || s[this.i] === 'E') {
      integer = false;
      this.i++;
      if (s[this.i] === '+' || s[this.i] === '-') this.i++;
      if (!isDigit(this.i)) this.syntax('invalid number (no digits in the exponent)');
      while (isDigit(this.i)) this.i++;
    }
    return { negative, digits, integer };
  }

  /** Skips any JSON value, checking its syntax (values of fields the format ignores). */
  private skipValue(depth: number): void {
    if (depth > MAX_JSON_DEPTH) this.syntax(`nesting deeper than ${MAX_JSON_DEPTH}`);
    this.ws();
    const c = this.s[this.i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      this.i++;
      this.ws();
      if (this.s[this.i] === close) {
        this.i++;
        return;
      }
      for (;;) {
        this.ws();
        if (c === '{') {
          if (this.s[this.i] !== '"') this.syntax('expected a key (a string)');
          this.str();
          this.ws();
          this.expect(':');
        }
        this.skipValue(depth + 1);
        this.ws();
        const d = this.s[this.i++];
        if (d === ',') continue;
        if (d === close) return;
        this.i--;
        this.syntax(`expected ',' or ${q(close)}`);
      }
    } else if (c === '"') this.str();
    else if (c === 't') this.literal('true');
    else if (c === 'f') this.literal('false');
    else if (c === 'n') this.literal('null');
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) this.number();
    else this.syntax(`expected a value, found ${kindAt(c)}`);
  }

  // --- the expected shape -------------------------------------------------------------------

  /** A non-negative integer no larger than 2^53 - 1. */
  private uint(field: string, tensor: string): number {
    const c = this.s[this.i];
    if (!(c === '-' || (c !== undefined && c >= '0' && c <= '9'))) {
      this.wrongKind(`tensor ${q(tensor)}: ${field} must be a non-negative integer, found ${kindAt(c)}`, tensor);
    }
    const start = this.i;
    const { negative, digits, integer } = this.number();
    const text = this.s.slice(start, this.i);
    if (negative) this.shape(`tensor ${q(tensor)}: ${field} must be a non-negative integer, found ${text}`, tensor);
    if (!integer) this.shape(`tensor ${q(tensor)}: ${field} must be an integer, found ${text}`, tensor);
    const value = digits.length > MAX_SAFE_INTEGER_DIGITS ? Infinity : Number(digits);
    if (!Number.isSafeInteger(value)) {
      throw new SafetensorsError(
        'UnsafeInteger',
        this.fileName,
        `tensor ${q(tensor)}: ${field} ${text.length > NUMBER_SHOWN_CHARS ? text.slice(0, NUMBER_SHOWN_CHARS) + '...' : text} is beyond 2^53 - 1, ` +
          'the largest integer JavaScript represents exactly',
        tensor,
      );
    }
    return value;
  }

  private uintArray(field: string, tensor: string): number[] {
    if (this.s[this.i] !== '[') {
      this.wrongKind(`tensor ${q(tensor)}: ${field} must be an array of non-negative integers, found ${kindAt(this.s[this.i])}`, tensor);
    }
    this.i++;
    const out: number[] = [];
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.uint(`${field}[${out.length}]`, tensor));
      this.ws();
      const c = this.s[this.i++];
      if (c === ',') continue;
      if (c === ']') return out;
      this.i--;
      this.syntax(`expected ',' or ']' in ${field} of tensor ${q(tensor)}`);
    }
  }

  private tensor(name: string): RawTensor {
    if (this.s[this.i] !== '{') {
      this.wrongKind(
        `tensor ${q(name)}: expected an object {"dtype", "shape", "data_offsets"}, found ${kindAt(this.s[this.i])}`,
        name,
      );
    }
    this.i++;
    const seen = new Set<string>();
    let dtype: SafetensorsDtype | undefined;
    let shape: number[] | undefined;
    let offsets: number[] | undefined;
    this.ws();
    if (this.s[this.i] === '}') this.i++;
    else {
      for (;;) {
        this.ws();
        if (this.s[this.i] !== '"') this.syntax(`expected a key (a string) in tensor ${q(name)}`);
        const key = this.str();
        this.checkKey(key, seen, `tensor ${q(name)}`, name);
        this.ws();
        this.expect(':');
        this.ws();
        if (key === 'dtype') {
          if (this.s[this.i] !== '"') this.wrongKind(`tensor ${q(name)}: dtype must be a string, found ${kindAt(this.s[this.i])}`, name);
          const d = this.str();
          if (!DTYPE_SET.has(d)) {
            this.shape(`tensor ${q(name)}: unknown dtype ${q(d)} (expected one of ${SAFETENSORS_DTYPES.join(', ')})`, name);
          }
          dtype = d as SafetensorsDtype;
        } else if (key === 'shape') {
          shape = this.uintArray('shape', name);
        } else if (key === 'data_offsets') {
          offsets = this.uintArray('data_offsets', name);
          if (offsets.length !== 2) {
            this.shape(`tensor ${q(name)}: data_offsets must be two integers [begin, end], found ${offsets.length}`, name);
          }
          if (offsets[0] > offsets[1]) {
            throw new SafetensorsError(
              'InvalidOffset',
              this.fileName,
              `tensor ${q(name)}: data_offsets begin ${offsets[0]} is after end ${offsets[1]}`,
              name,
            );
          }
        } else {
          this.skipValue(FIELD_VALUE_DEPTH); // fields the format does not define are ignored, as by the reference
        }
        this.ws();
        const c = this.s[this.i++];
        if (c === ',') continue;
        if (c === '}') break;
        this.i--;
        this.syntax(`expected ',' or '}' in tensor ${q(name)}`);
      }
    }
    for (const [field, v] of [
      ['dtype', dtype],
      ['shape', shape],
      ['data_offsets', offsets],
    ] as const) {
      if (v === undefined) this.shape(`tensor ${q(name)}: missing field ${field}`, name);
    }
    return { name, dtype: dtype!, shape: shape!, begin: offsets![0], end: offsets![1] };
  }

  private metadata(): Record<string, string> {
    const out: Record<string, string> = {};
    if (this.s[this.i] === 'n') {
      this.literal('null'); // Option<HashMap> in the reference: null means absent
      return out;
    }
    if (this.s[this.i] !== '{') {
      this.wrongKind(`__metadata__ must be an object of string to string, found ${kindAt(this.s[this.i])}`);
    }
    this.i++;
    const seen = new Set<string>();
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.syntax('expected a key (a string) in __metadata__');
      const key = this.str();
      this.checkKey(key, seen, '__metadata__');
      this.ws();
      this.expect(':');
      this.ws();
      if (this.s[this.i] !== '"') {
        this.wrongKind(`__metadata__ value of ${q(key)} must be a string, found ${kindAt(this.s[this.i])}`);
      }
      out[key] = this.str();
      this.ws();
      const c = this.s[this.i++];
      if (c === ',') continue;
      if (c === '}') return out;
      this.i--;
      this.syntax("expected ',' or '}' in __metadata__");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Validation of the tensor layout (reference: Metadata::validate).
// ---------------------------------------------------------------------------------------------

const U64_MAX = (1n << 64n) - 1n;

/** Checks that the tensors tile the data section; returns them sorted and the section's size. */
export function validateLayout(raw: RawTensor[], fileName: string): { sorted: RawTensor[]; dataLength: number } {
  const sorted = raw.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let start = 0;
  let prev: RawTensor | undefined;
  for (const t of sorted) {
    if (t.begin !== start) {
      const where = `tensor ${q(t.name)} (data_offsets [${t.begin}, ${t.end}])`;
      let msg: string;
      if (prev === undefined) {
        msg = `${where} is the first tensor but begins at ${t.begin}, not 0: a hole of ${t.begin} bytes at the start of the data section`;
      } else if (t.begin > start) {
        msg = `hole of ${t.begin - start} bytes between tensor ${q(prev.name)} (ends at ${start}) and ${where}`;
      } else {
        msg = `${where} overlaps tensor ${q(prev.name)} (data_offsets [${prev.begin}, ${prev.end}]) by ${start - t.begin} bytes`;
      }
      throw new SafetensorsError('InvalidOffset', fileName, msg, t.name);
    }
    start = t.end;
    // Element count and byte size with 64-bit overflow checks, as the reference's checked_mul.
    let count = 1n;
    for (const d of t.shape) {
      count *= BigInt(d);
      if (count > U64_MAX) {
        throw new SafetensorsError(
          'ValidationOverflow',
          fileName,
          `tensor ${q(t.name)}: element count of shape [${t.shape.join(', ')}] overflows 64 bits`,
          t.name,
        );
      }
    }
    const bytes = count * BigInt(SAFETENSORS_DTYPE_BYTES[t.dtype]);
    if (bytes > U64_MAX) {
      throw new SafetensorsError(
        'ValidationOverflow',
        fileName,
        `tensor ${q(t.name)}: byte size of shape [${t.shape.join(', ')}] in ${t.dtype} overflows 64 bits`,
        t.name,
      );
    }
    if (bytes !== BigInt(t.end - t.begin)) {
      throw new SafetensorsError(
        'TensorInvalidInfo',
        fileName,
        `tensor ${q(t.name)}: shape [${t.shape.join(', ')}] in ${t.dtype} needs ${bytes} bytes but data_offsets ` +
          `[${t.begin}, ${t.end}] span ${t.end - t.begin}`,
        t.name,
      );
    }
    prev = t;
  }
  return { sorted, dataLength: start };
}
