/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors; the format below and in
 * docs/ARCHITECTURE.md, "Backbones").
 *
 * Layout: an 8-byte little-endian unsigned header length `n`, then `n` bytes of UTF-8 JSON
 *   { "__metadata__"?: {string: string}, name: {"dtype", "shape": [..], "data_offsets": [begin, end]}, ... }
 * then the data section: little-endian row-major tensor bytes; `data_offsets` are relative to the
 * start of the data section (byte 8 + n of the file).
 *
 * Validation follows the reference implementation (the Rust crate's `read_metadata` and
 * `Metadata::validate`) in its order, each failure with its own code and a message naming the file
 * and, where there is one, the tensor:
 *   1. HeaderTooSmall            file shorter than 8 bytes
 *   2. HeaderTooLarge            header length over 100,000,000 bytes
 *      InvalidHeaderLength       header runs past the end of the file
 *   3. InvalidHeader             header is not UTF-8
 *   4. InvalidHeaderDeserialization  header is not JSON of the expected shape (known dtype, shape an
 *                                array of non-negative integers, data_offsets two non-negative
 *                                integers with begin <= end, `__metadata__` string to string),
 *                                checked in document order as the header is read, as serde does
 *   5. for each tensor in order of (begin, end):
 *      InvalidOffset             it does not begin where the previous one ended (hole / overlap)
 *      ValidationOverflow        element count * dtype size overflows 64 bits
 *      TensorInvalidInfo         that byte count differs from end - begin
 *   6. MetadataIncompleteBuffer  the data section does not end exactly at the end of the file
 * JavaScript extras, reported during step 4 where they occur: UnsafeInteger (an integer beyond
 * 2^53 - 1, found in the raw text since JSON.parse would round it), DuplicateKey (JSON.parse keeps
 * the last silently), ForbiddenKey (`__proto__`). The header is read by a small strict JSON reader
 * rather than JSON.parse, so these are seen; it is linear in the header size, nests at most 128
 * deep (serde_json's limit), and nothing is allocated from a length read out of the file.
 */

import { decodeToF32, encodeFromF32, FLOAT_DTYPE_BYTES, type FloatDtype } from './dtypes';

/** Every dtype the safetensors format defines (the set the reference implementation accepts). */
export const SAFETENSORS_DTYPES = [
  'BOOL',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'F64',
  'I64',
  'U64',
] as const;
export type SafetensorsDtype = (typeof SAFETENSORS_DTYPES)[number];

/** Bytes per element of each dtype. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** The largest header the reference implementation accepts. */
export const MAX_HEADER_BYTES = 100_000_000;

/** serde_json's default nesting limit, applied to ignored values inside the header. */
const MAX_JSON_DEPTH = 128;

export interface SafetensorsTensorInfo {
  dtype: SafetensorsDtype;
  /** Dimensions, outermost first (row-major). */
  shape: number[];
  /** Byte range [begin, end) relative to the start of the data section (as stored in the file). */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  fileName: string;
  /** Tensors in file order (sorted by data offset). */
  tensors: Map<string, SafetensorsTensorInfo>;
  /** `__metadata__`, empty when absent. */
  metadata: Record<string, string>;
  /** Header length `n` as stored in the first 8 bytes (padding included). */
  headerLength: number;
  /** Start of the data section in the file: 8 + headerLength. */
  dataOffset: number;
  /** Size of the data section (end of its last tensor). */
  dataLength: number;
  /** Size the whole file must have: dataOffset + dataLength. */
  byteLength: number;
}

export type SafetensorsErrorCode =
  | 'HeaderTooSmall'
  | 'HeaderTooLarge'
  | 'InvalidHeaderLength'
  | 'IncompleteHeader'
  | 'InvalidHeader'
  | 'InvalidHeaderDeserialization'
  | 'UnsafeInteger'
  | 'DuplicateKey'
  | 'ForbiddenKey'
  | 'InvalidOffset'
  | 'ValidationOverflow'
  | 'TensorInvalidInfo'
  | 'MetadataIncompleteBuffer'
  | 'TensorNotFound'
  | 'NotFloatDtype'
  | 'InvalidTensor';

export class SafetensorsError extends Error {
  readonly code: SafetensorsErrorCode;
  readonly fileName: string;
  /** The tensor concerned, when there is one. */
  readonly tensor: string | undefined;
  constructor(code: SafetensorsErrorCode, fileName: string, message: string, tensor?: string) {
    super(`${fileName}: ${message}`);
    this.name = 'SafetensorsError';
    this.code = code;
    this.fileName = fileName;
    this.tensor = tensor;
  }
}

/** A name as it appears in messages: JSON-quoted, so odd characters stay visible. */
const q = (name: string): string => JSON.stringify(name);

// ---------------------------------------------------------------------------------------------
// Header length.
// ---------------------------------------------------------------------------------------------

/**
 * The header length `n` stored in the first 8 bytes (checks 1 and 2). With `fileSize` it also
 * checks that the header fits in the file. Read the first 8 + n bytes next.
 */
export function readSafetensorsHeaderLength(first8: Uint8Array, fileName = 'safetensors file', fileSize?: number): number {
  const available = fileSize ?? first8.byteLength;
  if (available < 8) {
    throw new SafetensorsError('HeaderTooSmall', fileName, `file is ${available} bytes, shorter than the 8-byte header length`);
  }
  if (first8.byteLength < 8) {
    throw new SafetensorsError('IncompleteHeader', fileName, `the header length needs the first 8 bytes, only ${first8.byteLength} were given`);
  }
  const view = new DataView(first8.buffer, first8.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError('HeaderTooLarge', fileName, `header length ${n} is over the limit of ${MAX_HEADER_BYTES} bytes`);
  }
  const len = Number(n);
  if (fileSize !== undefined && 8 + len > fileSize) {
    throw new SafetensorsError(
      'InvalidHeaderLength',
      fileName,
      `header length ${len} runs past the end of the file (8 + ${len} = ${8 + len} > ${fileSize} bytes)`,
    );
  }
  return len;
}

// ---------------------------------------------------------------------------------------------
// Strict JSON reader for the header, validating the expected shape as it goes.
// ---------------------------------------------------------------------------------------------

interface RawTensor {
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

class HeaderReader {
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
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
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
      if (c === 0x22) {
        out += s.slice(runStart, this.i);
        this.i++;
        return out;
      }
      if (c < 0x20) this.syntax('control character in a string');
      if (c === 0x5c) {
        out += s.slice(runStart, this.i);
        out += this.escape();
        runStart = this.i;
        continue;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
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
        if (hi >= 0xdc00 && hi <= 0xdfff) this.syntax('lone trailing surrogate in a \\u escape');
        if (hi >= 0xd800 && hi <= 0xdbff) {
          if (this.s[this.i] !== '\\' || this.s[this.i + 1] !== 'u') this.syntax('lone leading surrogate in a \\u escape');
          this.i += 2;
          const lo = this.hex4();
          if (lo < 0xdc00 || lo > 0xdfff) this.syntax('invalid surrogate pair in a \\u escape');
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
      return c >= 0x30 && c <= 0x39;
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
    const value = digits.length > 16 ? Infinity : Number(digits);
    if (!Number.isSafeInteger(value)) {
      throw new SafetensorsError(
        'UnsafeInteger',
        this.fileName,
        `tensor ${q(tensor)}: ${field} ${text.length > 40 ? text.slice(0, 40) + '...' : text} is beyond 2^53 - 1, ` +
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
          this.skipValue(3); // fields the format does not define are ignored, as by the reference
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
function validateLayout(raw: RawTensor[], fileName: string): { sorted: RawTensor[]; dataLength: number } {
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

// ---------------------------------------------------------------------------------------------
// Public reader API.
// ---------------------------------------------------------------------------------------------

/**
 * Parses and validates the header of a safetensors file from its first bytes: `headerBytes` must
 * hold at least the first 8 + n bytes (n from {@link readSafetensorsHeaderLength}); more is fine.
 * With `fileSize` (the whole file's size) every check is made, the last one included (the data
 * section must end exactly at the end of the file); without it the checks that need the file's
 * size are skipped, and `byteLength` of the result says what size the file must have.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileName = 'safetensors file', fileSize?: number): SafetensorsFile {
  const n = readSafetensorsHeaderLength(headerBytes, fileName, fileSize);
  if (headerBytes.byteLength < 8 + n) {
    throw new SafetensorsError(
      'IncompleteHeader',
      fileName,
      `the header needs the first ${8 + n} bytes of the file, only ${headerBytes.byteLength} were given`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes.subarray(8, 8 + n));
  } catch {
    throw new SafetensorsError('InvalidHeader', fileName, 'header is not valid UTF-8');
  }
  const { tensors: raw, metadata } = new HeaderReader(text, fileName).read();
  const { sorted, dataLength } = validateLayout(raw, fileName);
  const dataOffset = 8 + n;
  const byteLength = dataOffset + dataLength;
  if (fileSize !== undefined && byteLength !== fileSize) {
    const msg =
      byteLength < fileSize
        ? `${fileSize - byteLength} trailing bytes after the data section (tensors end at byte ${byteLength}, the file has ${fileSize})`
        : `file is truncated: tensors end at byte ${byteLength}, the file has only ${fileSize}` +
          (sorted.length > 0 ? ` (last tensor ${q(sorted[sorted.length - 1].name)})` : '');
    throw new SafetensorsError('MetadataIncompleteBuffer', fileName, msg, byteLength > fileSize ? sorted[sorted.length - 1]?.name : undefined);
  }
  const map = new Map<string, SafetensorsTensorInfo>();
  for (const t of sorted) map.set(t.name, { dtype: t.dtype, shape: t.shape, begin: t.begin, end: t.end });
  return { fileName, tensors: map, metadata, headerLength: n, dataOffset, dataLength, byteLength };
}

/** Parses and fully validates a whole safetensors file held in memory. */
export function parseSafetensors(bytes: Uint8Array, fileName = 'safetensors file'): SafetensorsFile {
  return parseSafetensorsHeader(bytes, fileName, bytes.byteLength);
}

/**
 * Reads and fully validates the header of a file without reading its data (two small reads: the
 * 8-byte length, then the header), so a multi-GB checkpoint can be checked before it is loaded.
 */
export async function parseSafetensorsBlobHeader(blob: Blob, fileName = 'safetensors file'): Promise<SafetensorsFile> {
  const first8 = new Uint8Array(await blob.slice(0, Math.min(8, blob.size)).arrayBuffer());
  const n = readSafetensorsHeaderLength(first8, fileName, blob.size);
  const head = new Uint8Array(await blob.slice(0, 8 + n).arrayBuffer());
  return parseSafetensorsHeader(head, fileName, blob.size);
}

function lookup(file: SafetensorsFile, name: string): SafetensorsTensorInfo {
  const t = file.tensors.get(name);
  if (t === undefined) {
    throw new SafetensorsError('TensorNotFound', file.fileName, `no tensor named ${q(name)} (the file has ${file.tensors.size} tensors)`, name);
  }
  return t;
}

/** The raw bytes of a tensor (a view into `bytes`, the whole file). */
export function getTensorBytes(file: SafetensorsFile, bytes: Uint8Array, name: string): Uint8Array {
  const t = lookup(file, name);
  const start = file.dataOffset + t.begin;
  const end = file.dataOffset + t.end;
  if (bytes.byteLength < end) {
    throw new SafetensorsError(
      'MetadataIncompleteBuffer',
      file.fileName,
      `tensor ${q(name)} ends at byte ${end} of the file but only ${bytes.byteLength} bytes were given`,
      name,
    );
  }
  return bytes.subarray(start, end);
}

/** True for the dtypes {@link getTensorF32} converts. */
export function isFloatDtype(dtype: SafetensorsDtype): dtype is FloatDtype {
  return dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';
}

/**
 * A tensor's values as a new Float32Array (exact for F32, F16 and BF16). Other dtypes (integers,
 * BOOL, F64, FP8) are refused: they are listed in `file.tensors` but are not weights we load.
 */
export function getTensorF32(file: SafetensorsFile, bytes: Uint8Array, name: string): Float32Array {
  const t = lookup(file, name);
  if (!isFloatDtype(t.dtype)) {
    throw new SafetensorsError(
      'NotFloatDtype',
      file.fileName,
      `tensor ${q(name)} has dtype ${t.dtype}; only F32, F16 and BF16 can be read as float32`,
      name,
    );
  }
  return decodeToF32(t.dtype, getTensorBytes(file, bytes, name));
}

// ---------------------------------------------------------------------------------------------
// Writer.
// ---------------------------------------------------------------------------------------------

export interface TensorToWrite {
  name: string;
  dtype: FloatDtype;
  shape: readonly number[];
  /** Row-major values; F16 and BF16 are rounded to nearest even. */
  data: Float32Array;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Writes a safetensors file: tensors laid out in the given order, `__metadata__` first when given,
 * and the header padded with spaces so the data section starts at a multiple of 8 bytes (as the
 * reference writer does).
 */
export function writeSafetensors(tensors: readonly TensorToWrite[], metadata?: Record<string, string>, fileName = 'safetensors file'): Uint8Array<ArrayBuffer> {
  const bad = (message: string, tensor?: string): never => {
    throw new SafetensorsError('InvalidTensor', fileName, message, tensor);
  };
  const entries: string[] = [];
  if (metadata !== undefined) {
    const pairs: string[] = [];
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') bad(`__metadata__ value of ${q(k)} must be a string`);
      if (k === '__proto__' || LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v)) bad(`__metadata__ key ${q(k)} cannot be written`);
      pairs.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
    }
    entries.push(`"__metadata__":{${pairs.join(',')}}`);
  }
  const names = new Set<string>();
  const encoded: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name === '__proto__' || LONE_SURROGATE.test(t.name)) bad(`tensor name ${q(t.name)} cannot be written`, t.name);
    if (names.has(t.name)) bad(`duplicate tensor name ${q(t.name)}`, t.name);
    names.add(t.name);
    if (!(t.dtype in FLOAT_DTYPE_BYTES)) bad(`tensor ${q(t.name)}: dtype ${String(t.dtype)} cannot be written (F32, F16 or BF16)`, t.name);
    let count = 1;
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) bad(`tensor ${q(t.name)}: shape [${t.shape.join(', ')}] must hold non-negative integers`, t.name);
      count *= d;
    }
    if (count !== t.data.length) {
      bad(`tensor ${q(t.name)}: shape [${t.shape.join(', ')}] has ${count} elements but data has ${t.data.length}`, t.name);
    }
    const bytes = encodeFromF32(t.dtype, t.data);
    encoded.push(bytes);
    const end = offset + bytes.byteLength;
    entries.push(
      `${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = new TextEncoder().encode(`{${entries.join(',')}}`);
  const n = json.byteLength + ((8 - (json.byteLength % 8)) % 8);
  if (n > MAX_HEADER_BYTES) bad(`header of ${n} bytes is over the limit of ${MAX_HEADER_BYTES}`);
  const out = new Uint8Array(8 + n + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + n);
  let pos = 8 + n;
  for (const bytes of encoded) {
    out.set(bytes, pos);
    pos += bytes.byteLength;
  }
  return out;
}
