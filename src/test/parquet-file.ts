/**
 * Hand-built Parquet files for tests (parquet-guard.test.ts): a Thrift compact writer and a file
 * writer that puts given pages, page headers and footer fields together byte by byte, so a test can
 * build exactly the damage it is about (a header without a required field, a run of 2^31 values)
 * without depending on a writer library's version. Not used by the app.
 */

/** A Thrift compact value. Structs are lists of [field id, value], ids increasing. */
type Thrift =
  | { i32: number }
  | { i64: number }
  | { bin: string | Uint8Array }
  | { bool: boolean }
  | { struct: ThriftFields }
  | { list: 'i32' | 'bin' | 'struct'; items: Thrift[] };
export type ThriftFields = [number, Thrift][];

const TYPE = { bool: 1, i32: 5, i64: 6, bin: 8, list: 9, struct: 12 } as const;

class ByteWriter {
  readonly bytes: number[] = [];

  byte(b: number): void {
    this.bytes.push(b & 0xff);
  }

  raw(b: ArrayLike<number>): void {
    for (let i = 0; i < b.length; i++) this.bytes.push(b[i] & 0xff);
  }

  /** Unsigned LEB128 (any non-negative safe integer). */
  varint(n: number): void {
    do {
      const low = n % 128;
      n = Math.floor(n / 128);
      this.byte(n > 0 ? low | 0x80 : low);
    } while (n > 0);
  }

  zigzag(n: number): void {
    this.varint(n >= 0 ? 2 * n : -2 * n - 1);
  }

  u32(n: number): void {
    for (let i = 0; i < 4; i++) this.byte(Math.floor(n / 2 ** (8 * i)));
  }

  get length(): number {
    return this.bytes.length;
  }

  toBytes(): Uint8Array<ArrayBuffer> {
    return Uint8Array.from(this.bytes);
  }
}

function typeOf(v: Thrift): number {
  if ('i32' in v) return TYPE.i32;
  if ('i64' in v) return TYPE.i64;
  if ('bin' in v) return TYPE.bin;
  if ('bool' in v) return v.bool ? 1 : 2;
  if ('struct' in v) return TYPE.struct;
  return TYPE.list;
}

function writeValue(w: ByteWriter, v: Thrift): void {
  if ('i32' in v || 'i64' in v) w.zigzag('i32' in v ? v.i32 : v.i64);
  else if ('bin' in v) {
    const b = typeof v.bin === 'string' ? new TextEncoder().encode(v.bin) : v.bin;
    w.varint(b.length);
    w.raw(b);
  } else if ('struct' in v) writeStruct(w, v.struct);
  else if ('list' in v) {
    const elem = TYPE[v.list];
    if (v.items.length < 15) w.byte((v.items.length << 4) | elem);
    else {
      w.byte(0xf0 | elem);
      w.varint(v.items.length);
    }
    for (const item of v.items) writeValue(w, item);
  }
  // booleans are in the field header
}

function writeStruct(w: ByteWriter, fields: ThriftFields): void {
  let last = 0;
  for (const [id, v] of fields) {
    const delta = id - last;
    if (delta > 0 && delta <= 15) w.byte((delta << 4) | typeOf(v));
    else {
      w.byte(typeOf(v));
      w.zigzag(id);
    }
    last = id;
    writeValue(w, v);
  }
  w.byte(0);
}

const i32 = (n: number): Thrift => ({ i32: n });
const i64 = (n: number): Thrift => ({ i64: n });

/** PLAIN BYTE_ARRAY values. */
export function plainStrings(values: readonly string[]): Uint8Array {
  const w = new ByteWriter();
  for (const v of values) {
    const b = new TextEncoder().encode(v);
    w.u32(b.length);
    w.raw(b);
  }
  return w.toBytes();
}

/** One RLE run of `count` copies of `value` (bit width at most 8) in the hybrid encoding. */
export function rleRun(count: number, value: number, width = 1): Uint8Array {
  const w = new ByteWriter();
  w.varint(count * 2);
  if (width > 0) w.byte(value);
  return w.toBytes();
}

export function concat(...parts: ArrayLike<number>[]): Uint8Array {
  const w = new ByteWriter();
  for (const p of parts) w.raw(p);
  return w.toBytes();
}

/** A 4-byte little-endian length, then `stream` (V1 level streams). */
export function lengthPrefixed(stream: Uint8Array): Uint8Array {
  const w = new ByteWriter();
  w.u32(stream.length);
  w.raw(stream);
  return w.toBytes();
}

export const ENCODING = { PLAIN: 0, PLAIN_DICTIONARY: 2, RLE: 3, RLE_DICTIONARY: 8 } as const;

/** A DATA_PAGE (V1) header; `drop` leaves out fields (ids of the DataPageHeader). */
export function v1Header(o: { size: number; uncompressed?: number; numValues: number; encoding?: number; drop?: number[] }): ThriftFields {
  const d: ThriftFields = [
    [1, i32(o.numValues)],
    [2, i32(o.encoding ?? ENCODING.PLAIN)],
    [3, i32(ENCODING.RLE)],
    [4, i32(ENCODING.RLE)],
  ];
  return [
    [1, i32(0)],
    [2, i32(o.uncompressed ?? o.size)],
    [3, i32(o.size)],
    [5, { struct: d.filter(([id]) => !(o.drop ?? []).includes(id)) }],
  ];
}

/** A DATA_PAGE_V2 header; `drop` leaves out fields (ids of the DataPageHeaderV2). */
export function v2Header(o: {
  size: number;
  uncompressed?: number;
  numValues: number;
  numNulls?: number;
  numRows?: number;
  encoding?: number;
  defLength?: number;
  repLength?: number;
  compressed?: boolean;
  drop?: number[];
}): ThriftFields {
  const d: ThriftFields = [
    [1, i32(o.numValues)],
    [2, i32(o.numNulls ?? 0)],
    [3, i32(o.numRows ?? o.numValues)],
    [4, i32(o.encoding ?? ENCODING.PLAIN)],
    [5, i32(o.defLength ?? 0)],
    [6, i32(o.repLength ?? 0)],
  ];
  if (o.compressed !== undefined) d.push([7, { bool: o.compressed }]);
  return [
    [1, i32(3)],
    [2, i32(o.uncompressed ?? o.size)],
    [3, i32(o.size)],
    [8, { struct: d.filter(([id]) => !(o.drop ?? []).includes(id)) }],
  ];
}

/** A DICTIONARY_PAGE header. */
export function dictHeader(o: { size: number; uncompressed?: number; numValues: number }): ThriftFields {
  return [
    [1, i32(2)],
    [2, i32(o.uncompressed ?? o.size)],
    [3, i32(o.size)],
    [7, { struct: [[1, i32(o.numValues)], [2, i32(ENCODING.PLAIN)]] }],
  ];
}

interface Page {
  header: ThriftFields;
  body: ArrayLike<number>;
}

export interface Column {
  name: string;
  /** Parquet physical type: 1 INT32, 2 INT64, 6 BYTE_ARRAY. */
  type: 1 | 2 | 6;
  /** 0 REQUIRED, 1 OPTIONAL. */
  repetition: 0 | 1;
  /** Strings: converted type UTF8. */
  utf8?: boolean;
  /** Extra schema element fields (e.g. [5, { i32: -1 }] for a num_children of -1). */
  schemaExtra?: ThriftFields;
  /** 0 UNCOMPRESSED (default), 1 SNAPPY. */
  codec?: 0 | 1;
  pages: Page[];
  /** The chunk's values (num_values in its metadata). */
  numValues: number;
  /** Bytes added to total_compressed_size (a chunk that claims more or less than it holds). */
  sizeDelta?: number;
}

/**
 * A one-row-group Parquet file: PAR1, each column's pages (header, then body), the FileMetaData
 * footer, its length, PAR1. `rowGroupRows` defaults to `rows`.
 */
export function parquetFile(columns: readonly Column[], rows: number, rowGroupRows = rows): Uint8Array<ArrayBuffer> {
  const w = new ByteWriter();
  w.raw([0x50, 0x41, 0x52, 0x31]);
  const chunks: Thrift[] = [];
  for (const col of columns) {
    const start = w.length;
    for (const p of col.pages) {
      writeStruct(w, p.header);
      w.raw(p.body);
    }
    const size = w.length - start + (col.sizeDelta ?? 0);
    chunks.push({
      struct: [
        [2, i64(start)],
        [
          3,
          {
            struct: [
              [1, i32(col.type)],
              [2, { list: 'i32', items: [i32(ENCODING.PLAIN), i32(ENCODING.RLE)] }],
              [3, { list: 'bin', items: [{ bin: col.name }] }],
              [4, i32(col.codec ?? 0)],
              [5, i64(col.numValues)],
              [6, i64(size)],
              [7, i64(size)],
              [9, i64(start)],
            ],
          },
        ],
      ],
    });
  }
  const schema: Thrift[] = [
    { struct: [[4, { bin: 'schema' }], [5, i32(columns.length)]] },
    ...columns.map(
      (c): Thrift => ({
        struct: [
          [1, i32(c.type)],
          [3, i32(c.repetition)],
          [4, { bin: c.name }],
          ...(c.schemaExtra ?? []),
          ...(c.utf8 ? ([[6, i32(0)]] as ThriftFields) : []),
        ].sort((a, b) => (a[0] as number) - (b[0] as number)) as ThriftFields,
      }),
    ),
  ];
  const footerStart = w.length;
  writeStruct(w, [
    [1, i32(1)],
    [2, { list: 'struct', items: schema }],
    [3, i64(rows)],
    [4, { list: 'struct', items: [{ struct: [[1, { list: 'struct', items: chunks }], [2, i64(w.length)], [3, i64(rowGroupRows)]] }] }],
  ]);
  w.u32(w.length - footerStart);
  w.raw([0x50, 0x41, 0x52, 0x31]);
  return w.toBytes();
}

/** A REQUIRED UTF8 column of PLAIN strings in one V1 page. */
export function stringColumnV1(name: string, values: readonly string[]): Column {
  const body = plainStrings(values);
  return { name, type: 6, repetition: 0, utf8: true, numValues: values.length, pages: [{ header: v1Header({ size: body.length, numValues: values.length }), body }] };
}
