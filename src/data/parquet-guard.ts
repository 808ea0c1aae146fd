/**
 * Checks every page of the Parquet column chunks the importer reads before hyparquet decodes them.
 *
 * hyparquet trusts a file's page headers and streams. A DATA_PAGE_V2 header without
 * repetition_levels_byte_length made its page reader's offset undefined; every read then landed on
 * byte 0 and a level decoder never advanced: an endless synchronous loop that no timer can stop (in
 * the browser it freezes the tab or worker). Fuzzing found more of the kind: an RLE run of 2^31
 * values written into a one-value page (minutes of sparse-array writes), a bit-packed run whose
 * 32-bit count wraps negative at bit width 0 (never ends), a Snappy literal length of 2^31 or more
 * read as negative (the decoder steps back onto the same tag forever), delta headers of 2^31 or
 * more (the reader moves backwards).
 *
 * So the chunks are read here first, with strict bounds: each page header is parsed from its Thrift
 * compact encoding (every required field present with its type, sizes within the chunk), each
 * page is decompressed (by snappyDecompress, ./snappy.ts, which hyparquet then uses too), and the streams
 * whose lengths and counts hyparquet follows blindly are walked: repetition and definition levels,
 * dictionary indices, boolean RLE values, PLAIN byte arrays, delta-encoded integers and lengths.
 * Anything that is not well formed is refused with a ParquetPageError that names the row group,
 * the column, the page and what was expected. A file that passes is read by hyparquet along the
 * same page boundaries and the same runs (the walk mirrors its reader where it departs from the
 * format), so it decodes in time bounded by the file's size and the value budget
 * (MAX_PARQUET_VALUES).
 *
 * The same walk also refuses what would otherwise come out as silently wrong records: dictionary
 * indices past the dictionary, levels above the schema's maximum, a column with more or fewer
 * rows than its row group, a byte array running into the next page.
 */
import { snappyDecompress } from './snappy';
import { type FileMetaData, parquetSchema, type SchemaTree } from 'hyparquet';
import { errorMessage } from '../util/errors';

/** Most values (page num_values summed over the columns read) a file may hold; bounds time and memory. */
export const MAX_PARQUET_VALUES = 1 << 26;

/**
 * Most bytes a Snappy page can decompress to per compressed byte: the best case is a 3-byte copy
 * element giving 64 bytes (21.3 per byte), so a page claiming more is damaged.
 */
const MAX_SNAPPY_EXPANSION = 22;

/** Deepest Thrift nesting (structs and lists) read in a page header (PageHeader > DataPageHeader > Statistics is 3). */
const MAX_THRIFT_DEPTH = 8;

/** A refusal: the message says where (row group, column, page) and what was expected. */
export class ParquetPageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParquetPageError';
  }
}

/**
 * What to say of an error hyparquet threw while reading a file's footer: its own message when it
 * wrote one; where the damage is when it crashed on it (a TypeError or RangeError such as "Cannot
 * read properties of undefined" says nothing about the file).
 */
export function footerProblem(e: unknown): string {
  if (e instanceof TypeError || e instanceof RangeError) return `its footer (the metadata at the end of the file) is damaged (${e.name}: ${e.message})`;
  return errorMessage(e);
}

/** A problem found inside one page (or chunk); the caller adds where it is. */
class Problem extends Error {}

const problem = (message: string): never => {
  throw new Problem(message);
};

// Thrift and Parquet enums, in the order of parquet.thrift (hyparquet uses the same tables).
const PAGE_TYPES = ['DATA_PAGE', 'INDEX_PAGE', 'DICTIONARY_PAGE', 'DATA_PAGE_V2'] as const;
const ENCODINGS = [
  'PLAIN',
  'GROUP_VAR_INT',
  'PLAIN_DICTIONARY',
  'RLE',
  'BIT_PACKED',
  'DELTA_BINARY_PACKED',
  'DELTA_LENGTH_BYTE_ARRAY',
  'DELTA_BYTE_ARRAY',
  'RLE_DICTIONARY',
  'BYTE_STREAM_SPLIT',
  'ALP',
] as const;
type Encoding = (typeof ENCODINGS)[number];

/** Value encodings hyparquet reads, by physical type (as parquet.thrift allows them). */
function encodingAllowed(encoding: Encoding, type: string): boolean {
  switch (encoding) {
    case 'PLAIN':
      return true;
    case 'PLAIN_DICTIONARY':
    case 'RLE_DICTIONARY':
      // hyparquet reads dictionary-encoded booleans as RLE booleans (no bit-width byte); no
      // writer produces them.
      return type !== 'BOOLEAN';
    case 'RLE':
      return type === 'BOOLEAN';
    case 'DELTA_BINARY_PACKED':
      return type === 'INT32' || type === 'INT64';
    case 'DELTA_LENGTH_BYTE_ARRAY':
      return type === 'BYTE_ARRAY';
    case 'DELTA_BYTE_ARRAY':
      return type === 'BYTE_ARRAY' || type === 'FIXED_LEN_BYTE_ARRAY';
    case 'BYTE_STREAM_SPLIT':
      return type === 'FLOAT' || type === 'DOUBLE' || type === 'INT32' || type === 'INT64' || type === 'FIXED_LEN_BYTE_ARRAY';
    default:
      // GROUP_VAR_INT and BIT_PACKED are deprecated and never value encodings; ALP (floats) is
      // not needed for a dataset's columns, and its decoder is not checked here.
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Bounded byte reading

/** Reads bytes[pos, end) and refuses any read past `end`. */
class Cursor {
  constructor(
    readonly bytes: Uint8Array,
    public pos: number,
    readonly end: number,
    readonly what: string,
  ) {}

  byte(): number {
    if (this.pos >= this.end) problem(`${this.what}: the bytes end early (at its byte ${this.pos})`);
    return this.bytes[this.pos++];
  }

  /**
   * An unsigned LEB128 varint of at most `maxBytes` bytes, exactly (no 32-bit wrap-around: a value
   * hyparquet would wrap is refused by the callers' range checks instead).
   */
  varint(maxBytes: number): number {
    let value = 0;
    for (let i = 0; i < maxBytes; i++) {
      const b = this.byte();
      value += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return value;
    }
    return problem(`${this.what}: a varint longer than ${maxBytes} bytes`);
  }

  /** A 32-bit varint (at most 5 bytes, below 2^32). */
  varint32(): number {
    const v = this.varint(5);
    if (v > 0xffffffff) problem(`${this.what}: a 32-bit varint of ${v}`);
    return v;
  }

  advance(n: number): void {
    if (n > this.end - this.pos) problem(`${this.what}: the bytes end early (${n} needed at its byte ${this.pos}, ${this.end - this.pos} left)`);
    this.pos += n;
  }
}

/** Zigzag decoding of a 32-bit varint, as hyparquet's readZigZag computes it. */
const zigzag32 = (v: number): number => (v >>> 1) ^ -(v & 1);

// ---------------------------------------------------------------------------------------------
// Thrift compact protocol (page headers)

const T_TRUE = 1;
const T_FALSE = 2;
const T_BYTE = 3;
const T_I16 = 4;
const T_I32 = 5;
const T_I64 = 6;
const T_DOUBLE = 7;
const T_BINARY = 8;
const T_LIST = 9;
const T_STRUCT = 12;

type ThriftValue = number | boolean | Uint8Array | ThriftStruct | ThriftValue[];
interface ThriftField {
  type: number;
  value: ThriftValue;
}
type ThriftStruct = Map<number, ThriftField>;

/**
 * One struct, with hyparquet's field-id rules (a delta in the field header, else a zigzag id). A
 * field that appears twice is refused: hyparquet keeps the last, a check of the first would not hold.
 */
function readStruct(c: Cursor, depth: number): ThriftStruct {
  if (depth > MAX_THRIFT_DEPTH) problem(`${c.what}: structs and lists nested more than ${MAX_THRIFT_DEPTH} deep`);
  const fields: ThriftStruct = new Map();
  let fid = 0;
  for (;;) {
    if (c.pos >= c.end) problem(`${c.what}: the bytes end before its STOP byte`);
    const head = c.byte();
    const type = head & 0x0f;
    if (type === 0) return fields;
    const delta = head >> 4;
    fid = delta !== 0 ? fid + delta : zigzag32(c.varint32());
    if (fields.has(fid)) problem(`${c.what}: field ${fid} appears twice`);
    fields.set(fid, { type, value: readValue(c, type, depth) });
  }
}

function readValue(c: Cursor, type: number, depth: number): ThriftValue {
  switch (type) {
    case T_TRUE:
      return true;
    case T_FALSE:
      return false;
    case T_BYTE:
      return (c.byte() << 24) >> 24;
    case T_I16:
    case T_I32:
      return zigzag32(c.varint32());
    case T_I64:
      c.varint(10); // no 64-bit field of a page header is used: its value is not kept
      return 0;
    case T_DOUBLE:
      c.advance(8);
      return 0;
    case T_BINARY: {
      const n = c.varint32();
      const start = c.pos;
      c.advance(n);
      return c.bytes.subarray(start, start + n);
    }
    case T_LIST: {
      if (depth >= MAX_THRIFT_DEPTH) problem(`${c.what}: structs and lists nested more than ${MAX_THRIFT_DEPTH} deep`);
      const head = c.byte();
      const elemType = head & 0x0f;
      let size = head >> 4;
      if (size === 15) size = c.varint32();
      // Every element takes at least one byte: a longer list cannot fit.
      if (size > c.end - c.pos) problem(`${c.what}: a list of ${size} elements in ${c.end - c.pos} bytes`);
      const out: ThriftValue[] = [];
      for (let i = 0; i < size; i++) {
        // hyparquet reads booleans in a list as one byte each.
        out.push(elemType === T_TRUE || elemType === T_FALSE ? c.byte() === 1 : readValue(c, elemType, depth + 1));
      }
      return out;
    }
    case T_STRUCT:
      return readStruct(c, depth + 1);
    default:
      return problem(`${c.what}: a value of Thrift type ${type}, which a page header never holds`);
  }
}

/** Reads a field of a header struct, checking its Thrift type. */
function field(s: ThriftStruct, id: number, thriftType: 'i32' | 'bool' | 'struct', name: string, where: string, required: boolean): ThriftField['value'] | undefined {
  const f = s.get(id);
  if (f === undefined) {
    if (required) problem(`the ${where} has no ${name} (field ${id}), which is required`);
    return undefined;
  }
  const ok = thriftType === 'i32' ? f.type === T_I32 : thriftType === 'bool' ? f.type === T_TRUE || f.type === T_FALSE : f.type === T_STRUCT;
  if (!ok) problem(`the ${where}'s ${name} (field ${id}) has Thrift type ${f.type}, not ${thriftType}`);
  return f.value;
}

function count(s: ThriftStruct, id: number, name: string, where: string): number {
  const v = field(s, id, 'i32', name, where, true) as number;
  if (v < 0) problem(`the ${where}'s ${name} is ${v}; it must not be negative`);
  return v;
}

function encodingField(s: ThriftStruct, id: number, name: string, where: string): Encoding {
  const v = field(s, id, 'i32', name, where, true) as number;
  const e = ENCODINGS[v];
  if (e === undefined) problem(`the ${where}'s ${name} is ${v}, not a Parquet encoding`);
  return e;
}

interface PageHeader {
  type: (typeof PAGE_TYPES)[number];
  uncompressed: number;
  compressed: number;
  v1?: { numValues: number; encoding: Encoding; defEncoding: Encoding; repEncoding: Encoding };
  dict?: { numValues: number; encoding: Encoding };
  v2?: { numValues: number; numNulls: number; numRows: number; encoding: Encoding; defLength: number; repLength: number; isCompressed: boolean };
}

function readPageHeader(c: Cursor): PageHeader {
  const s = readStruct(c, 0);
  const where = 'page header';
  const typeId = field(s, 1, 'i32', 'type', where, true) as number;
  const type = PAGE_TYPES[typeId];
  if (type === undefined) problem(`the page header's type is ${typeId}, not a Parquet page type`);
  const uncompressed = count(s, 2, 'uncompressed_page_size', where);
  const compressed = count(s, 3, 'compressed_page_size', where);
  field(s, 4, 'i32', 'crc', where, false);
  const h: PageHeader = { type, uncompressed, compressed };
  if (type === 'DATA_PAGE') {
    const d = field(s, 5, 'struct', 'data_page_header', 'DATA_PAGE header', true) as ThriftStruct;
    const w = 'DATA_PAGE header';
    h.v1 = {
      numValues: count(d, 1, 'num_values', w),
      encoding: encodingField(d, 2, 'encoding', w),
      defEncoding: encodingField(d, 3, 'definition_level_encoding', w),
      repEncoding: encodingField(d, 4, 'repetition_level_encoding', w),
    };
  } else if (type === 'DICTIONARY_PAGE') {
    const d = field(s, 7, 'struct', 'dictionary_page_header', 'DICTIONARY_PAGE header', true) as ThriftStruct;
    const w = 'DICTIONARY_PAGE header';
    h.dict = { numValues: count(d, 1, 'num_values', w), encoding: encodingField(d, 2, 'encoding', w) };
    field(d, 3, 'bool', 'is_sorted', w, false);
  } else if (type === 'DATA_PAGE_V2') {
    const d = field(s, 8, 'struct', 'data_page_header_v2', 'DATA_PAGE_V2 header', true) as ThriftStruct;
    const w = 'DATA_PAGE_V2 header';
    h.v2 = {
      numValues: count(d, 1, 'num_values', w),
      numNulls: count(d, 2, 'num_nulls', w),
      numRows: count(d, 3, 'num_rows', w),
      encoding: encodingField(d, 4, 'encoding', w),
      defLength: count(d, 5, 'definition_levels_byte_length', w),
      repLength: count(d, 6, 'repetition_levels_byte_length', w),
      // hyparquet reads the page as compressed unless this is false (the Thrift default is true).
      isCompressed: (field(d, 7, 'bool', 'is_compressed', w, false) as boolean | undefined) ?? true,
    };
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// Page content streams

/** `width` bits (at most 32) starting `bitOffset` bits after bytes[base], little-endian as Parquet packs them. */
function readBits(bytes: Uint8Array, base: number, bitOffset: number, width: number): number {
  let v = 0;
  let got = 0;
  let at = base + (bitOffset >> 3);
  let shift = bitOffset & 7;
  while (got < width) {
    const take = Math.min(8 - shift, width - got);
    v += ((bytes[at] >> shift) & ((1 << take) - 1)) * 2 ** got;
    got += take;
    shift = 0;
    at++;
  }
  return v;
}

/**
 * Walks an RLE / bit-packed hybrid stream of `n` values of `width` bits in bytes[pos, end), run by
 * run as hyparquet's readRleBitPackedHybrid reads it, calling `visit(value, times)` for each run of
 * equal values. Refused: runs past the end, runs of more values than remain (an RLE run of 2^31
 * values made hyparquet fill a sparse array for minutes; a bit-packed run's count wrapped negative
 * at width 0 never ended).
 */
function walkHybrid(bytes: Uint8Array, pos: number, end: number, width: number, n: number, what: string, visit: (value: number, times: number) => void): void {
  const c = new Cursor(bytes, pos, end, what);
  let seen = 0;
  while (seen < n) {
    const header = c.varint32();
    const left = n - seen;
    if (header % 2 === 1) {
      const groups = (header - 1) / 2;
      const values = groups * 8;
      if (values > left + 7) problem(`${what}: a bit-packed run of ${values} values where ${left} remain`);
      const start = c.pos;
      const dataBytes = groups * width;
      if (dataBytes > 0) c.advance(dataBytes);
      // hyparquet's readBitPacked reads a first byte even for a run without data bytes (width 0,
      // as hyparquet-writer writes a one-entry dictionary's indices, or no groups): so does the walk,
      // to stay on the same runs. Past the stream it throws, unless the width is 0.
      else if (c.pos < c.end) c.pos++;
      else if (width > 0) problem(`${what}: an empty bit-packed run at the end`);
      const emit = Math.min(values, left);
      if (width === 0) {
        if (emit > 0) visit(0, emit);
      } else for (let i = 0; i < emit; i++) visit(readBits(bytes, start, i * width, width), 1);
      seen += emit;
    } else {
      const times = header / 2;
      if (times > left) problem(`${what}: a run of ${times} values where ${left} remain`);
      const start = c.pos;
      const valueBytes = (width + 7) >> 3;
      c.advance(valueBytes);
      // The value's bytes whole, unmasked, as hyparquet's readRle takes them.
      let value = 0;
      for (let k = 0; k < valueBytes; k++) value += bytes[start + k] * 2 ** (8 * k);
      if (times > 0) visit(value, times);
      seen += times;
    }
  }
}

/** A level stream with its 4-byte length (V1 pages, boolean RLE values): returns where it ends. */
function lengthPrefixed(bytes: Uint8Array, pos: number, what: string): { start: number; end: number } {
  if (bytes.length - pos < 4) problem(`${what}: no 4-byte length (${bytes.length - pos} bytes left in the page)`);
  const len = (bytes[pos] | (bytes[pos + 1] << 8) | (bytes[pos + 2] << 16)) + bytes[pos + 3] * 2 ** 24;
  if (len > bytes.length - pos - 4) problem(`${what}: a length of ${len} bytes, but ${bytes.length - pos - 4} remain in the page`);
  return { start: pos + 4, end: pos + 4 + len };
}

const bitWidthOf = (max: number): number => 32 - Math.clz32(max);

interface Levels {
  /** Values at the maximum definition level (not null). */
  defined: number;
  /** Values that start a row (repetition level 0). */
  rowStarts: number;
  /** The first repetition level (a chunk must start a row). */
  firstRep: number;
}

/** Checks level values against the schema's maxima while walking. */
function levelVisitor(max: number, what: string, onValue: (v: number, times: number) => void): (v: number, times: number) => void {
  return (v, times) => {
    if (v > max) problem(`${what}: level ${v}, above the column's maximum ${max}`);
    onValue(v, times);
  };
}

/**
 * DELTA_BINARY_PACKED: a header (block size, miniblocks per block, value count, first value), then
 * blocks of a min delta, the miniblocks' bit widths and the miniblocks. Checked as the format
 * requires (block size a multiple of 128, values per miniblock a multiple of 32, widths within the
 * type), which also bounds hyparquet's decoder (it allocates miniblocks-per-block bytes up front).
 * With `values`, the 32-bit values are computed as hyparquet does (wrapping) and passed on.
 * Returns where the stream ends.
 */
function walkDelta(bytes: Uint8Array, pos: number, end: number, n: number, bits: 32 | 64, what: string, values?: (v: number) => void): number {
  const c = new Cursor(bytes, pos, end, what);
  const blockSize = c.varint32();
  const miniblocks = c.varint32();
  const total = c.varint32();
  // hyparquet reads these as 32-bit signed integers: a value of 2^31 or more turns negative there
  // (a negative miniblock size sends its reader backwards), so such a header is refused.
  if (blockSize >= 2 ** 31 || miniblocks >= 2 ** 31 || total >= 2 ** 31) problem(`${what}: a header value of 2^31 or more`);
  if (blockSize === 0 || blockSize % 128 !== 0) problem(`${what}: a block size of ${blockSize}; it must be a positive multiple of 128`);
  if (miniblocks === 0 || blockSize % miniblocks !== 0 || (blockSize / miniblocks) % 32 !== 0) {
    problem(`${what}: ${miniblocks} miniblocks per block of ${blockSize}; each miniblock must hold a multiple of 32 values`);
  }
  if (total !== n) problem(`${what}: ${total} values, but the page has ${n}`);
  const perMiniblock = blockSize / miniblocks;
  // Zigzag varints: 32-bit streams as hyparquet's readZigZag / readZigZagInt33, 64-bit ones skipped.
  const zigzag = (maxBits: number): number => {
    if (bits === 64) {
      c.varint(10);
      return 0;
    }
    const v = c.varint(5);
    if (v >= 2 ** maxBits) problem(`${what}: a delta of ${v} (zigzag), wider than ${maxBits} bits`);
    const low = v % 2 ** 32;
    const high = Math.floor(v / 2 ** 32) & 1;
    return ((low >>> 1) | (high << 31)) ^ -(low & 1);
  };
  let value = zigzag(32);
  let done = 0;
  if (n > 0) {
    values?.(value);
    done = 1;
  }
  while (done < n) {
    const minDelta = zigzag(33);
    const widthsAt = c.pos;
    c.advance(miniblocks);
    for (let i = 0; i < miniblocks && done < n; i++) {
      const width = bytes[widthsAt + i];
      if (width > bits) problem(`${what}: a miniblock of bit width ${width}, wider than its ${bits}-bit values`);
      const start = c.pos;
      c.advance((perMiniblock * width) / 8);
      const take = Math.min(perMiniblock, n - done);
      if (values) {
        for (let j = 0; j < take; j++) {
          value = (value + minDelta + readBits(bytes, start, j * width, width)) | 0;
          values(value);
        }
      }
      done += take;
    }
  }
  return c.pos;
}

/** Byte-array lengths of DELTA_LENGTH_BYTE_ARRAY / DELTA_BYTE_ARRAY: must fit in what follows. */
function walkDeltaByteArrays(bytes: Uint8Array, pos: number, n: number, prefixed: boolean, what: string): void {
  const prefixes = new Int32Array(n);
  let i = 0;
  if (prefixed) pos = walkDelta(bytes, pos, bytes.length, n, 32, `${what}'s prefix lengths`, (v) => (prefixes[i++] = v));
  const lengths = new Int32Array(n);
  i = 0;
  pos = walkDelta(bytes, pos, bytes.length, n, 32, `${what}'s lengths`, (v) => (lengths[i++] = v));
  let total = 0;
  let previous = 0;
  for (let k = 0; k < n; k++) {
    if (lengths[k] < 0) problem(`${what}: value ${k + 1} has length ${lengths[k]}`);
    if (prefixes[k] < 0 || prefixes[k] > previous) problem(`${what}: value ${k + 1} shares ${prefixes[k]} bytes with a previous value of ${previous} bytes`);
    previous = prefixes[k] + lengths[k];
    total += lengths[k];
  }
  if (total > bytes.length - pos) problem(`${what}: the values take ${total} bytes, but ${bytes.length - pos} remain in the page`);
}

interface ColumnInfo {
  path: string;
  type: string;
  /** FIXED_LEN_BYTE_ARRAY's length (else undefined). */
  typeLength: number | undefined;
  maxDef: number;
  maxRep: number;
  /** hyparquet's isFlatColumn: a top-level, non-repeated leaf. */
  flat: boolean;
}

/** What a chunk's pages add up to, and the dictionary seen so far. */
interface ChunkState {
  dictionary: number | null;
  sawData: boolean;
  values: number;
  rows: number;
}

/**
 * The values of a data page after its levels: checks the encoding's streams. `n` is the number of
 * non-null values.
 */
function checkValues(page: Uint8Array, pos: number, encoding: Encoding, col: ColumnInfo, n: number, state: ChunkState, v2: boolean): void {
  if (!encodingAllowed(encoding, col.type)) problem(`values encoded as ${encoding}, which this importer cannot read for a ${col.type} column`);
  const what = `the ${encoding} values`;
  switch (encoding) {
    case 'PLAIN_DICTIONARY':
    case 'RLE_DICTIONARY': {
      const size = state.dictionary;
      if (size === null) return problem(`${encoding} values but no dictionary page before them`);
      // hyparquet reads the bit width even for a page without values.
      if (pos >= page.length) problem(`${what}: no bit-width byte`);
      const width = page[pos];
      if (width > 32) problem(`${what}: a bit width of ${width}, above 32`);
      const checkIndex = (v: number): void => {
        if (v >= size) problem(`${what}: dictionary index ${v}, but the dictionary has ${size} value${size === 1 ? '' : 's'}`);
      };
      // A V1 page of width 0 is read as n zeros; a V2 page goes through the hybrid decoder anyway.
      if (width === 0 && !v2) {
        if (n > 0) checkIndex(0);
        return;
      }
      walkHybrid(page, pos + 1, page.length, width, n, what, (v) => checkIndex(v));
      return;
    }
    case 'RLE': {
      const s = lengthPrefixed(page, pos, what);
      walkHybrid(page, s.start, s.end, 1, n, what, () => undefined);
      return;
    }
    case 'DELTA_BINARY_PACKED':
      walkDelta(page, pos, page.length, n, col.type === 'INT32' ? 32 : 64, what);
      return;
    case 'DELTA_LENGTH_BYTE_ARRAY':
      walkDeltaByteArrays(page, pos, n, false, what);
      return;
    case 'DELTA_BYTE_ARRAY':
      walkDeltaByteArrays(page, pos, n, true, what);
      return;
    case 'PLAIN':
      checkPlain(page, pos, col, n, what);
      return;
    default:
      // BYTE_STREAM_SPLIT: hyparquet reads exactly n values of the type's width, each bounds-checked.
      return;
  }
}

/** Bytes of one PLAIN value of a fixed-width type (BYTE_ARRAY: null, length-prefixed). */
function plainWidth(col: ColumnInfo): number | null {
  switch (col.type) {
    case 'INT32':
    case 'FLOAT':
      return 4;
    case 'INT64':
    case 'DOUBLE':
      return 8;
    case 'INT96':
      return 12;
    case 'FIXED_LEN_BYTE_ARRAY':
      if (col.typeLength === undefined || col.typeLength < 1) return problem(`the schema gives the FIXED_LEN_BYTE_ARRAY column no length`);
      return col.typeLength;
    default:
      return null;
  }
}

/**
 * n PLAIN values must lie inside the page: hyparquet cuts byte arrays from the underlying buffer,
 * which for an uncompressed chunk goes on past the page, so a damaged length would otherwise take
 * the next page's bytes as text.
 */
function checkPlain(page: Uint8Array, pos: number, col: ColumnInfo, n: number, what: string): void {
  const left = page.length - pos;
  if (col.type === 'BOOLEAN') {
    if (Math.ceil(n / 8) > left) problem(`${what}: ${n} booleans need ${Math.ceil(n / 8)} bytes, but ${left} remain in the page`);
    return;
  }
  const width = plainWidth(col);
  if (width !== null) {
    if (n * width > left) problem(`${what}: ${n} values of ${width} bytes, but ${left} bytes remain in the page`);
    return;
  }
  for (let i = 0; i < n; i++) {
    if (page.length - pos < 4) problem(`${what}: value ${i + 1} of ${n} has no 4-byte length (the page ends)`);
    const len = (page[pos] | (page[pos + 1] << 8) | (page[pos + 2] << 16)) + page[pos + 3] * 2 ** 24;
    pos += 4;
    if (len > page.length - pos) problem(`${what}: value ${i + 1} of ${n} is ${len} bytes long, but ${page.length - pos} remain in the page`);
    pos += len;
  }
}

/** The uncompressed bytes of a page (or of a V2 page's values). */
function decompress(codec: string, compressed: Uint8Array, size: number, what: string): Uint8Array {
  if (codec === 'UNCOMPRESSED') {
    if (compressed.length !== size) problem(`${what}: ${compressed.length} bytes, but the header says ${size} uncompressed`);
    return compressed;
  }
  if (codec !== 'SNAPPY') return problem(`${what}: compressed with ${codec}`);
  // Checked before allocating: the best Snappy does is 64 bytes from a 3-byte copy.
  if (size > compressed.length * MAX_SNAPPY_EXPANSION + 16) {
    problem(`${what}: ${size} bytes uncompressed from ${compressed.length} Snappy bytes, more than Snappy can expand to`);
  }
  try {
    return snappyDecompress(compressed, size);
  } catch (e) {
    return problem(`${what}: ${errorMessage(e)}`);
  }
}

/** Checks one page; adds its values and rows to `state`. */
function checkPage(h: PageHeader, body: Uint8Array, col: ColumnInfo, codec: string, state: ChunkState, budget: { left: number }): void {
  const spend = (n: number): void => {
    budget.left -= n;
    if (budget.left < 0) problem(`the file holds more than ${MAX_PARQUET_VALUES.toLocaleString('en-US')} values in the dataset's columns; split it`);
  };
  if (h.type === 'INDEX_PAGE') problem('an INDEX_PAGE, which this importer cannot read');
  if (h.dict) {
    if (state.dictionary !== null) problem('a second dictionary page (a column chunk has at most one)');
    if (state.sawData) problem('a dictionary page after data pages (it must come first)');
    if (h.dict.encoding !== 'PLAIN' && h.dict.encoding !== 'PLAIN_DICTIONARY') problem(`a dictionary encoded as ${h.dict.encoding}; expected PLAIN`);
    const page = decompress(codec, body, h.uncompressed, 'the dictionary page');
    // Every PLAIN value takes at least one bit: a count past that is refused before walking it.
    if (h.dict.numValues > page.length * 8) problem(`the dictionary page says it holds ${h.dict.numValues} values in ${page.length} bytes`);
    spend(h.dict.numValues);
    checkPlain(page, 0, col, h.dict.numValues, 'the dictionary');
    state.dictionary = h.dict.numValues;
    return;
  }
  state.sawData = true;
  const levels: Levels = { defined: 0, rowStarts: 0, firstRep: -1 };
  const onRep = (v: number, times: number): void => {
    if (levels.firstRep < 0) levels.firstRep = v;
    if (v === 0) levels.rowStarts += times;
  };
  const onDef = (v: number, times: number): void => {
    if (v === col.maxDef) levels.defined += times;
  };
  let numValues: number;
  let nonNull: number;
  if (h.v1) {
    const d = h.v1;
    numValues = d.numValues;
    spend(numValues);
    const page = decompress(codec, body, h.uncompressed, 'the page');
    let pos = 0;
    if (col.maxRep > 0) {
      if (d.repEncoding !== 'RLE') problem(`repetition levels encoded as ${d.repEncoding}; expected RLE`);
      const s = lengthPrefixed(page, pos, 'the repetition levels');
      walkHybrid(page, s.start, s.end, bitWidthOf(col.maxRep), numValues, 'the repetition levels', levelVisitor(col.maxRep, 'the repetition levels', onRep));
      pos = s.end;
    }
    if (col.maxDef > 0) {
      if (d.defEncoding !== 'RLE') problem(`definition levels encoded as ${d.defEncoding}; expected RLE`);
      const s = lengthPrefixed(page, pos, 'the definition levels');
      walkHybrid(page, s.start, s.end, bitWidthOf(col.maxDef), numValues, 'the definition levels', levelVisitor(col.maxDef, 'the definition levels', onDef));
      pos = s.end;
      nonNull = levels.defined;
    } else nonNull = numValues;
    checkValues(page, pos, d.encoding, col, nonNull, state, false);
  } else if (h.v2) {
    const d = h.v2;
    numValues = d.numValues;
    spend(numValues);
    if (d.numNulls > numValues) problem(`the DATA_PAGE_V2 header says ${d.numNulls} nulls among ${numValues} values`);
    if (d.numRows > numValues) problem(`the DATA_PAGE_V2 header says ${d.numRows} rows among ${numValues} values`);
    const levelBytes = d.repLength + d.defLength;
    if (levelBytes > body.length) problem(`the levels take ${levelBytes} bytes (repetition ${d.repLength}, definition ${d.defLength}), but the page is ${body.length}`);
    if (levelBytes > h.uncompressed) problem(`the levels take ${levelBytes} bytes, more than the page's uncompressed size ${h.uncompressed}`);
    if (col.maxRep > 0) {
      walkHybrid(body, 0, d.repLength, bitWidthOf(col.maxRep), numValues, 'the repetition levels', levelVisitor(col.maxRep, 'the repetition levels', onRep));
    }
    if (col.maxDef > 0) {
      walkHybrid(body, d.repLength, levelBytes, bitWidthOf(col.maxDef), numValues, 'the definition levels', levelVisitor(col.maxDef, 'the definition levels', onDef));
      if (numValues - levels.defined !== d.numNulls) problem(`the DATA_PAGE_V2 header says ${d.numNulls} nulls, but the definition levels have ${numValues - levels.defined}`);
    } else if (d.numNulls !== 0) problem(`the DATA_PAGE_V2 header says ${d.numNulls} nulls in a column that cannot hold nulls`);
    nonNull = numValues - d.numNulls;
    const valuesSize = h.uncompressed - levelBytes;
    const raw = body.subarray(levelBytes);
    // As hyparquet: values are decompressed unless is_compressed is false or there are none.
    const page = d.isCompressed && valuesSize > 0 ? decompress(codec, raw, valuesSize, "the page's values") : raw;
    checkValues(page, 0, d.encoding, col, nonNull, state, true);
  } else return;
  if (col.maxRep > 0) {
    if (state.values === 0 && numValues > 0 && levels.firstRep !== 0) problem('the first value of the column chunk does not start a row (repetition level 0)');
    state.rows += levels.rowStarts;
  } else state.rows += numValues;
  state.values += numValues;
}

// ---------------------------------------------------------------------------------------------
// Entry point

const rowsText = (n: number): string => `${n} row${n === 1 ? '' : 's'}`;

/** A non-negative safe integer from a footer field (bigint or number), or null. */
function footerInt(v: unknown): number | null {
  const n = typeof v === 'bigint' ? Number(v) : v;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : null;
}

function columnInfo(tree: SchemaTree, path: readonly unknown[]): ColumnInfo | string {
  if (!Array.isArray(path) || path.length === 0 || !path.every((p) => typeof p === 'string')) return 'the column chunk has no path in the schema';
  const names = path as string[];
  let node = tree;
  let maxDef = 0;
  // As hyparquet's getMaxRepetitionLevel, the root counts too (it is never REPEATED in a sound file).
  let maxRep = tree.element.repetition_type === 'REPEATED' ? 1 : 0;
  for (const name of names) {
    // The first child of that name, as hyparquet's getTreePath finds it.
    const child = node.children.find((ch) => ch.element.name === name);
    if (!child) return `the column chunk's path ${JSON.stringify(names.join('.'))} is not in the schema`;
    node = child;
    if (node.element.repetition_type !== 'REQUIRED') maxDef++;
    if (node.element.repetition_type === 'REPEATED') maxRep++;
  }
  if (node.children.length > 0) return `the column chunk's path ${JSON.stringify(names.join('.'))} is a group, not a column`;
  const type = node.element.type;
  if (typeof type !== 'string') return `the schema gives column ${JSON.stringify(names.join('.'))} no type`;
  const flat = names.length === 1 && node.element.repetition_type !== 'REPEATED';
  const typeLength = typeof node.element.type_length === 'number' ? node.element.type_length : undefined;
  return { path: names.join('.'), type, typeLength, maxDef, maxRep, flat };
}

/**
 * The leaf paths (dotted) under the top-level columns `columns`. A VARIANT group is refused: its
 * decoder follows offsets inside each value, and values whose elements all point at the same
 * nested array make it do exponential work.
 */
function leafPaths(tree: SchemaTree, columns: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (node: SchemaTree, path: string[], depth: number): void => {
    if (depth > 64) throw new ParquetPageError(`column "${path.slice(0, 3).join('.')}..." is nested more than 64 deep`);
    if (node.element.logical_type?.type === 'VARIANT') throw new ParquetPageError(`column "${path.join('.')}" holds VARIANT values, which this importer cannot read`);
    if (node.children.length === 0) out.push(path.join('.'));
    for (const ch of node.children) walk(ch, [...path, ch.element.name], depth + 1);
  };
  for (const name of columns) {
    const top = tree.children.find((ch) => ch.element.name === name);
    if (top) walk(top, [name], 1);
  }
  return out;
}

/**
 * Checks the column chunks of `columns` (top-level names, as passed to parquetReadObjects) in every
 * row group hyparquet reads. Throws a ParquetPageError; returns nothing when all is well.
 */
export function checkParquetPages(file: Uint8Array, metadata: FileMetaData, columns: readonly string[]): void {
  const fileRows = footerInt(metadata.num_rows);
  if (fileRows === null) throw new ParquetPageError(`the footer's row count (num_rows) is ${String(metadata.num_rows)}, not a non-negative integer`);
  let tree: SchemaTree;
  try {
    tree = parquetSchema(metadata);
  } catch (e) {
    throw new ParquetPageError(`the schema cannot be read: ${errorMessage(e)}`);
  }
  const leaves = leafPaths(tree, columns);
  const budget = { left: MAX_PARQUET_VALUES };
  const groups = Array.isArray(metadata.row_groups) ? metadata.row_groups : [];
  // Row counts first: they bound every loop below (and hyparquet's rows), and must add up.
  const groupRows: number[] = [];
  for (let g = 0; g < groups.length; g++) {
    const n = footerInt(groups[g].num_rows);
    if (n === null) throw new ParquetPageError(`row group ${g + 1} of ${groups.length}: its row count (num_rows) is ${String(groups[g].num_rows)}, not a non-negative integer`);
    groupRows.push(n);
  }
  const rowSum = groupRows.reduce((a, b) => a + b, 0);
  if (rowSum !== fileRows) throw new ParquetPageError(`the row groups hold ${rowsText(rowSum)} but the file's footer says ${fileRows}: the file is damaged`);
  for (let g = 0; g < groups.length; g++) {
    const rg = groups[g];
    const rgWhere = `row group ${g + 1} of ${groups.length}`;
    const rgRows = groupRows[g];
    // hyparquet skips empty row groups without reading them.
    if (rgRows === 0) continue;
    const seen = new Set<string>();
    for (const chunk of Array.isArray(rg.columns) ? rg.columns : []) {
      const meta = chunk?.meta_data;
      const top = meta?.path_in_schema?.[0];
      // Not read (a chunk without metadata makes hyparquet throw; the missing-column check below names it).
      if (meta === undefined || typeof top !== 'string' || !columns.includes(top)) continue;
      const info = columnInfo(tree, meta.path_in_schema);
      if (typeof info === 'string') throw new ParquetPageError(`${rgWhere}: ${info}`);
      const where = `${rgWhere}, column "${info.path}"`;
      if (seen.has(info.path)) throw new ParquetPageError(`${where}: the row group has two chunks of this column`);
      seen.add(info.path);
      if (chunk.file_path !== undefined) throw new ParquetPageError(`${where}: the chunk is in another file (${String(chunk.file_path)}), which this importer cannot read`);
      if (meta.type !== info.type) throw new ParquetPageError(`${where}: the chunk's type ${String(meta.type)} is not the schema's ${info.type}`);
      // Where hyparquet starts reading the chunk (a dictionary page offset of 0 counts as none).
      const startRaw = meta.dictionary_page_offset || meta.data_page_offset;
      const start = footerInt(startRaw);
      const size = footerInt(meta.total_compressed_size);
      if (start === null || size === null || size === 0 || start + size > file.length) {
        throw new ParquetPageError(
          `${where}: the chunk's bytes (offset ${String(startRaw)}, ${String(meta.total_compressed_size)} bytes) are not inside the ${file.length}-byte file`,
        );
      }
      checkChunk(file.subarray(start, start + size), start, info, String(meta.codec), rgRows, where, budget);
    }
    const missing = leaves.filter((p) => !seen.has(p));
    if (missing.length > 0) throw new ParquetPageError(`${rgWhere}: no chunk of column ${missing.map((p) => `"${p}"`).join(', ')}, which the schema has`);
  }
}

/**
 * Walks the pages of one column chunk as hyparquet's readColumn does: a flat column until its
 * values reach the row group's rows, a nested one until the chunk's last byte.
 */
function checkChunk(chunk: Uint8Array, fileOffset: number, col: ColumnInfo, codec: string, rgRows: number, where: string, budget: { left: number }): void {
  const state: ChunkState = { dictionary: null, sawData: false, values: 0, rows: 0 };
  let pos = 0;
  let page = 0;
  // hyparquet stops at the chunk's last byte: a 1-byte tail is never read as a header.
  while ((col.flat ? state.values < rgRows : true) && pos < chunk.length - 1) {
    page++;
    const at = `${where}, page ${page} (byte ${fileOffset + pos} of the file)`;
    try {
      const c = new Cursor(chunk, pos, chunk.length, 'the page header');
      const h = readPageHeader(c);
      if (h.compressed > chunk.length - c.pos) problem(`the page is ${h.compressed} bytes, but only ${chunk.length - c.pos} remain in the column chunk`);
      checkPage(h, chunk.subarray(c.pos, c.pos + h.compressed), col, codec, state, budget);
      pos = c.pos + h.compressed;
    } catch (e) {
      if (e instanceof Problem) throw new ParquetPageError(`${at}: ${e.message}`);
      throw e;
    }
  }
  const got = col.flat ? state.values : state.rows;
  if (got !== rgRows) throw new ParquetPageError(`${where}: the column chunk holds ${rowsText(got)}, but the row group has ${rgRows}`);
}
