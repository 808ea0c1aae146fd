/**
 * Regression tests of the Parquet page checks (parquet-guard.ts) on hand-built files
 * (src/test/parquet-file.ts): each damaged file here made hyparquet 1.33 loop forever or for minutes
 * (checked when these tests were written, on hyparquet alone, in a worker with a time limit), and
 * must now end in a clear refusal naming the file, row group, column, page and what was expected.
 * The damaged files run in a worker thread with a hard time limit, so a regression is reported as a
 * hang instead of freezing the test run (a synchronous loop no timer here can stop).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HANG_CONFIRM_MS } from '../fuzz/harness';
import { IsolatedRunner } from '../fuzz/isolated';
import { DatasetImportError, type ImportResult, parseDataset } from './import';
import {
  type Column,
  concat,
  dictHeader,
  ENCODING,
  lengthPrefixed,
  parquetFile,
  plainStrings,
  rleRun,
  stringColumnV1,
  v1Header,
  v2Header,
} from '../test/parquet-file';

/**
 * Longest a damaged file may take here (ms): the checks take about a millisecond and the loops
 * forever; the margin is for a loaded machine (the worker imports the importer on its first case).
 */
const LIMIT_MS = HANG_CONFIRM_MS;

let runner: IsolatedRunner;
beforeAll(async () => {
  runner = await IsolatedRunner.forEntries({ DatasetImportError });
});
afterAll(async () => {
  await runner?.close();
});

/** parseDataset in the worker: the refusal's message, or 'loaded N records', or 'no answer'. */
async function outcome(bytes: Uint8Array, fileName: string): Promise<string> {
  const r = await runner.run<ImportResult>('fuzzParseDataset', [bytes, fileName], LIMIT_MS);
  if (r.kind === 'hang') return `no answer within ${LIMIT_MS} ms`;
  if (r.kind === 'died') return `the worker died: ${r.message}`;
  if (r.kind === 'ok') return `loaded ${r.value.records.length} records`;
  expect(r.error).toBeInstanceOf(DatasetImportError);
  return r.error.message;
}

const ins = (n: number): string[] => Array.from({ length: n }, (_, i) => `q${i}`);
const outs = (n: number): string[] => Array.from({ length: n }, (_, i) => `a${i}`);

/** An OPTIONAL "output" column in one DATA_PAGE_V2 (all values present). */
function optionalOutputV2(values: readonly string[], drop: number[] = []): Column {
  const def = rleRun(values.length, 1);
  const body = concat(def, plainStrings(values));
  return {
    name: 'output',
    type: 6,
    repetition: 1,
    utf8: true,
    numValues: values.length,
    pages: [{ header: v2Header({ size: body.length, numValues: values.length, defLength: def.length, drop }), body }],
  };
}

/** A REQUIRED "output" column: a one-entry-per-value dictionary page, then RLE_DICTIONARY indices in a V2 page. */
function dictionaryOutputV2(dictionary: readonly string[], indices: ArrayLike<number>, n: number): Column {
  const dict = plainStrings(dictionary);
  return {
    name: 'output',
    type: 6,
    repetition: 0,
    utf8: true,
    numValues: n,
    pages: [
      { header: dictHeader({ size: dict.length, numValues: dictionary.length }), body: dict },
      { header: v2Header({ size: indices.length, numValues: n, encoding: ENCODING.RLE_DICTIONARY }), body: indices },
    ],
  };
}

describe('Parquet page checks', () => {
  it('a sound hand-built file loads (V1 and V2 pages, levels, a dictionary)', async () => {
    const n = 70;
    const res = await parseDataset(parquetFile([stringColumnV1('instruction', ins(n)), optionalOutputV2(outs(n))], n), 'sound.parquet');
    expect(res.records.map((r) => [r.instruction, r.output])).toEqual(ins(n).map((q, i) => [q, outs(n)[i]]));
    // Indices 0, 1, 0 bit-packed at width 1: one group of 8 (header 3), bits 0b010.
    const dict = await parseDataset(parquetFile([stringColumnV1('instruction', ins(3)), dictionaryOutputV2(['x', 'y'], [1, 0x03, 0b010], 3)], 3), 'dict.parquet');
    expect(dict.records.map((r) => r.output)).toEqual(['x', 'y', 'x']);
  });

  // Regression: hyparquet decoded strings with a default TextDecoder, which drops a leading U+FEFF.
  it('a leading U+FEFF of a string value is kept (PLAIN in V1 and V2 pages, dictionary)', async () => {
    const v1 = await parseDataset(parquetFile([stringColumnV1('instruction', ['\ufeffq']), stringColumnV1('output', ['a'])], 1), 'bom1.parquet');
    expect(v1.records[0].instruction).toBe('\ufeffq');
    const v2 = await parseDataset(parquetFile([stringColumnV1('instruction', ['q']), optionalOutputV2(['\ufeffa'])], 1), 'bom2.parquet');
    expect(v2.records[0].output).toBe('\ufeffa');
    const dict = await parseDataset(parquetFile([stringColumnV1('instruction', ['q']), dictionaryOutputV2(['\ufeffd'], [0, 2], 1)], 1), 'bom3.parquet');
    expect(dict.records[0].output).toBe('\ufeffd');
  });

  // Regression (the fuzz finding): without repetition_levels_byte_length hyparquet set its page
  // reader's offset to undefined; every read then hit byte 0, here 0x8c (the definition levels' RLE
  // header of 70 values, a varint that continues), and reading that varint never ended.
  it('a DATA_PAGE_V2 header without repetition_levels_byte_length is refused, not an endless loop', async () => {
    const n = 70;
    const bytes = parquetFile([stringColumnV1('instruction', ins(n)), optionalOutputV2(outs(n), [6])], n);
    expect(await outcome(bytes, 'no-rep-length.parquet')).toBe(
      'no-rep-length.parquet: not a readable Parquet file: row group 1 of 1, column "output", page 1 (byte 504 of the file): ' +
        'the DATA_PAGE_V2 header has no repetition_levels_byte_length (field 6), which is required',
    );
  });

  it('other missing required page header fields are refused, each named', async () => {
    const n = 3;
    const v1 = stringColumnV1('output', outs(n));
    v1.pages[0].header = v1Header({ size: plainStrings(outs(n)).length, numValues: n, drop: [1] });
    expect(await outcome(parquetFile([stringColumnV1('instruction', ins(n)), v1], n), 'v1.parquet')).toMatch(
      /^v1\.parquet: not a readable Parquet file: row group 1 of 1, column "output", page 1 \(byte \d+ of the file\): the DATA_PAGE header has no num_values \(field 1\), which is required$/,
    );
    const noSize = stringColumnV1('output', outs(n));
    noSize.pages[0].header = noSize.pages[0].header.filter(([id]) => id !== 3);
    expect(await outcome(parquetFile([stringColumnV1('instruction', ins(n)), noSize], n), 'size.parquet')).toMatch(
      /: the page header has no compressed_page_size \(field 3\), which is required$/,
    );
  });

  // hyparquet wrote the run's 2^31 - 1 values into a one-element array, growing it sparse for minutes.
  it('an RLE run of more values than the page holds is refused', async () => {
    const def = lengthPrefixed(concat([0xfe, 0xff, 0xff, 0xff, 0x0f], [1]));
    const body = concat(def, plainStrings(['a']));
    const out: Column = { name: 'output', type: 6, repetition: 1, utf8: true, numValues: 1, pages: [{ header: v1Header({ size: body.length, numValues: 1 }), body }] };
    expect(await outcome(parquetFile([stringColumnV1('instruction', ['q']), out], 1), 'rle.parquet')).toMatch(
      /^rle\.parquet: not a readable Parquet file: row group 1 of 1, column "output", page 1 \(byte \d+ of the file\): the definition levels: a run of 2147483647 values where 1 remain$/,
    );
  });

  // hyparquet computes a bit-packed run's count as (header >> 1) << 3 in 32 bits: here -8, and at
  // bit width 0 its loop counts down from -8 without ever reaching 0.
  it('a bit-packed run of dictionary indices whose count wraps negative is refused', async () => {
    const indices = concat([0], [0xff, 0xff, 0xff, 0xff, 0x03]); // bit width 0, header 0x3fffffff
    expect(await outcome(parquetFile([stringColumnV1('instruction', ['q']), dictionaryOutputV2(['a'], indices, 1)], 1), 'bp.parquet')).toMatch(
      /, column "output", page 2 \(byte \d+ of the file\): the RLE_DICTIONARY values: a bit-packed run of 4294967288 values where 1 remain$/,
    );
  });

  it('dictionary indices past the dictionary are refused (they were undefined values)', async () => {
    expect(await outcome(parquetFile([stringColumnV1('instruction', ['q']), dictionaryOutputV2(['a'], [1, 2, 5], 1)], 1), 'index.parquet')).toMatch(
      /: the RLE_DICTIONARY values: dictionary index 5, but the dictionary has 1 value$/,
    );
  });

  // hyparquet's Snappy decoder read this literal's 4-byte length (0xfffffffa) as -6, stepped back
  // onto the same tag and read it again, forever. The importer decodes Snappy itself.
  it('a Snappy literal length past the page is refused', async () => {
    const body = concat([10], [0xfc, 0xfa, 0xff, 0xff, 0xff], [0, 0, 0, 0]);
    const out: Column = { name: 'output', type: 6, repetition: 0, utf8: true, codec: 1, numValues: 1, pages: [{ header: v1Header({ size: body.length, uncompressed: 10, numValues: 1 }), body }] };
    expect(await outcome(parquetFile([stringColumnV1('instruction', ['q']), out], 1), 'snappy.parquet')).toMatch(
      /, column "output", page 1 \(byte \d+ of the file\): the page: the Snappy data ends inside a literal of 4294967291 bytes \(at its byte 6\)$/,
    );
  });

  // hyparquet's GeoParquet pass skips num_children schema elements after a group: -1 stepped back
  // onto the same element forever, inside parquetMetadata. The importer skips that pass.
  it('a schema element with num_children -1 does not stop the footer from being read', async () => {
    const out = stringColumnV1('output', ['a']);
    out.schemaExtra = [[5, { i32: -1 }]];
    expect(await outcome(parquetFile([stringColumnV1('instruction', ['q']), out], 1), 'children.parquet')).toBe('loaded 1 records');
  });

  // hyparquet's footer reader crashes on some damage (here the footer's first field header zeroed, so
  // it reads as ending at once and has no schema): the refusal says the footer is what is damaged.
  it('a footer hyparquet crashes on is refused as a damaged footer', async () => {
    const bytes = parquetFile([stringColumnV1('instruction', ['q']), stringColumnV1('output', ['a'])], 1);
    const footerLength = new DataView(bytes.buffer).getUint32(bytes.length - 8, true);
    bytes[bytes.length - 8 - footerLength] = 0;
    expect(await outcome(bytes, 'footer.parquet')).toMatch(/^footer\.parquet: not a readable Parquet file: its footer \(the metadata at the end of the file\) is damaged \(TypeError: .+\)$/);
  });

  it('chunks and pages outside their bounds, and row counts that disagree, are refused', async () => {
    const short = stringColumnV1('output', ['a']);
    short.sizeDelta = -2;
    expect(await outcome(parquetFile([stringColumnV1('instruction', ['q']), short], 1), 'short.parquet')).toMatch(
      /, column "output", page 1 \(byte \d+ of the file\): the page is 5 bytes, but only 3 remain in the column chunk$/,
    );
    const long = stringColumnV1('output', ['a']);
    long.sizeDelta = 10_000;
    expect(await outcome(parquetFile([stringColumnV1('instruction', ['q']), long], 1), 'long.parquet')).toMatch(
      /^long\.parquet: not a readable Parquet file: row group 1 of 1, column "output": the chunk's bytes \(offset \d+, \d+ bytes\) are not inside the \d+-byte file$/,
    );
    expect(await outcome(parquetFile([stringColumnV1('instruction', ['q', 'r']), stringColumnV1('output', ['a', 'b'])], 2, 1), 'rows.parquet')).toBe(
      "rows.parquet: not a readable Parquet file: the row groups hold 1 row but the file's footer says 2: the file is damaged",
    );
    expect(await outcome(parquetFile([stringColumnV1('instruction', ['q', 'r']), stringColumnV1('output', ['a'])], 2), 'values.parquet')).toBe(
      'values.parquet: not a readable Parquet file: row group 1 of 1, column "output": the column chunk holds 1 row, but the row group has 2',
    );
  });
});
