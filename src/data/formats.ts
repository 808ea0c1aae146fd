/**
 * The dataset importer's file formats, each read into the Collector (records.ts): JSON (an array, or
 * an object with one array field), JSON Lines, CSV and TSV (papaparse), Parquet (hyparquet, every
 * page checked first by parquet-guard.ts). import.ts picks the reader by extension.
 */
import Papa from 'papaparse';
import { parquetMetadata, parquetReadObjects, parquetSchema, type FileMetaData } from 'hyparquet';
import { checkParquetPages, footerProblem, ParquetPageError } from './parquet-guard';
import { snappyDecompress } from './snappy';
import { type Collector, describeValue, type DatasetFormat, isPlainObject, type RecordLocation, type Refuse, TYPE_FIELDS } from './records';
import { jsonErrorText, lineColumn, lineStarts, locateJsonError } from './text-errors';
import { errorMessage } from '../util/errors';

// ---------------------------------------------------------------------------------------------
// JSON and JSON Lines

function tryParse(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** A .json file: one JSON value, or JSON Lines when it is one record per line; returns the format read. */
export function readJsonOrLines(text: string, c: Collector, refuse: Refuse): DatasetFormat {
  const parsed = tryParse(text);
  if (!parsed.ok) {
    // A .json file holding JSON Lines (a common mix-up): the first line is a whole object by itself.
    const first = text.split(/\r\n|\n|\r/).find((l) => l.trim() !== '');
    const firstParsed = first === undefined ? null : tryParse(first);
    const lines = text.split(/\r\n|\n|\r/).filter((l) => l.trim() !== '').length;
    if (lines > 1 && firstParsed?.ok && isPlainObject(firstParsed.value)) {
      c.notes.push('the file is named .json but holds one JSON record per line; it was read as JSON Lines');
      readJsonLines(text, c);
      return 'jsonl';
    }
    const e = jsonErrorText(text);
    return refuse(`invalid JSON at line ${e.line}, column ${e.column}: ${e.message}`);
  }
  readJsonValue(parsed.value, c, refuse);
  return 'json';
}

/** A .jsonl file: JSON Lines, or one JSON array when it is one; returns the format read. */
export function readJsonLinesOrArray(text: string, c: Collector, refuse: Refuse): DatasetFormat {
  if (text.trimStart().startsWith('[')) {
    const parsed = tryParse(text);
    if (parsed.ok && Array.isArray(parsed.value)) {
      c.notes.push('the file is named as JSON Lines but holds one JSON array; it was read as JSON');
      readJsonValue(parsed.value, c, refuse);
      return 'json';
    }
  }
  readJsonLines(text, c);
  return 'jsonl';
}

function readJsonValue(value: unknown, c: Collector, refuse: Refuse): void {
  let list: unknown[];
  let field: string | undefined;
  if (Array.isArray(value)) {
    list = value;
  } else if (isPlainObject(value)) {
    const arrays = Object.keys(value).filter((k) => Array.isArray(value[k]));
    if (arrays.length !== 1) {
      const looksLikeRecord = 'instruction' in value || 'messages' in value || 'output' in value;
      refuse(
        looksLikeRecord
          ? 'the JSON is a single record, not a list of records; wrap it in [ ]'
          : arrays.length === 0
            ? 'the JSON is an object with no array field; expected a JSON array of records or an object with one array field such as {"data": [...]}'
            : `the JSON object has several array fields (${arrays.map((k) => `"${k}"`).join(', ')}); expected exactly one array of records`,
      );
    }
    field = arrays[0];
    list = value[field] as unknown[];
  } else {
    return refuse(`the JSON is ${describeValue(value)}, not an array of records`);
  }
  const where = field === undefined ? 'the JSON array' : `the array "${field}"`;
  if (list.length === 0) refuse(`${where} is empty: no records`);
  if (!list.some(isPlainObject)) refuse(`${where} is not an array of objects (its first element is ${describeValue(list[0])})`);
  c.checkCount(list.length);
  list.forEach((item, index) => c.add(item, field === undefined ? { kind: 'index', index } : { kind: 'index', index, field }));
}

function readJsonLines(text: string, c: Collector): void {
  const lines = text.split(/\r\n|\n|\r/);
  c.checkCount(lines.reduce((k, l) => k + (l.trim() === '' ? 0 : 1), 0));
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const location: RecordLocation = { kind: 'line', line: i + 1 };
    const parsed = tryParse(line);
    if (!parsed.ok) {
      const e = locateJsonError(line);
      c.addBad(location, 'record', `invalid JSON at column ${e.offset + 1}: ${e.message}`);
      return;
    }
    c.add(parsed.value, location);
  });
}

// ---------------------------------------------------------------------------------------------
// CSV and TSV

/** A CSV or TSV file: a header row, then one record per row. */
export function readDelimited(text: string, delimiter: string, c: Collector, refuse: Refuse): void {
  const starts = lineStarts(text);
  const kind = delimiter === '\t' ? 'TSV' : 'CSV';
  let header: string[] | null = null;
  let prevCursor = 0;
  let tooMany = false;
  let count = 0;
  Papa.parse<string[]>(text, {
    delimiter,
    header: false,
    skipEmptyLines: false,
    step: (res, parser) => {
      const start = prevCursor;
      prevCursor = res.meta.cursor;
      const row = res.data;
      const location: RecordLocation = { kind: 'line', line: lineColumn(starts, start).line };
      if (header === null) {
        if (row.length === 1 && row[0].trim() === '') return; // blank lines before the header
        header = row.map((h) => h.trim().toLowerCase());
        const has = (k: string): boolean => header!.includes(k);
        if (!has('messages') && (!has('instruction') || !has('output'))) {
          const missing = ['instruction', 'output'].filter((k) => !has(k));
          refuse(`the ${kind} header has no ${missing.map((k) => `"${k}"`).join(' or ')} column (columns: ${header.map((h) => `"${h}"`).join(', ')})`);
        }
        return;
      }
      if (row.length === 1 && row[0].trim() === '' && res.errors.length === 0) return; // blank line
      count++;
      if (count > c.maxRecords) {
        tooMany = true;
        parser.abort();
        return;
      }
      if (res.errors.length > 0) {
        // papaparse may report one problem once per quote it meets: each message is said once.
        c.addBad(location, 'record', `${kind} syntax: ${[...new Set(res.errors.map((e) => e.message))].join('; ')}`);
        return;
      }
      if (row.length !== header.length) {
        c.addBad(location, 'record', `${row.length} field${row.length === 1 ? '' : 's'}, but the header has ${header.length}`);
        return;
      }
      const obj: Record<string, unknown> = {};
      header.forEach((h, k) => {
        if (h === '' || h in obj) return;
        obj[h] = row[k];
      });
      if (typeof obj.messages === 'string' && !('instruction' in obj && obj.instruction !== '')) {
        const parsed = tryParse(obj.messages);
        if (!parsed.ok) {
          const e = locateJsonError(obj.messages);
          c.addBad(location, 'messages', `the "messages" cell is not valid JSON (column ${e.offset + 1} of the cell: ${e.message})`);
          return;
        }
        obj.messages = parsed.value;
      }
      c.add(obj, location, true);
    },
  });
  if (header === null) refuse(`the ${kind} file has no header row`);
  if (tooMany) c.checkCount(c.maxRecords + 1, false);
}

// ---------------------------------------------------------------------------------------------
// Parquet

/**
 * Parquet string values keep a leading U+FEFF: it is a character of the value, not a byte order mark
 * of a text file. (hyparquet's default decoder is a plain TextDecoder, which drops it.) Bytes that
 * are not UTF-8 become U+FFFD, as before.
 */
const parquetText = new TextDecoder('utf-8', { ignoreBOM: true });
export function parquetString(bytes: Uint8Array | null | undefined): string | null | undefined {
  return bytes === undefined || bytes === null ? bytes : parquetText.decode(bytes);
}
/** A Parquet file: one record per row. */
export async function readParquet(bytes: Uint8Array, c: Collector, refuse: Refuse): Promise<void> {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let metadata: FileMetaData;
  let columns: string[];
  try {
    // No GeoParquet pass: it walks the schema by num_children, and a damaged count of -1 made it
    // loop forever (geo columns mean nothing to a dataset of text).
    metadata = parquetMetadata(buffer, { geoparquet: false });
    // The schema comes from the same (possibly damaged) footer: failing to read it is a damaged file too.
    columns = parquetSchema(metadata).children.map((ch) => ch.element.name);
    if (!columns.every((name) => typeof name === 'string')) throw new Error('a column of the schema has no name');
  } catch (e) {
    return refuse(`not a readable Parquet file: ${footerProblem(e)}`);
  }
  const rows = Number(metadata.num_rows);
  const lower = new Map(columns.map((name) => [name.toLowerCase(), name] as const));
  const has = (k: string): boolean => lower.has(k);
  if (!has('messages') && (!has('instruction') || !has('output'))) {
    const missing = ['instruction', 'output'].filter((k) => !has(k));
    refuse(`the Parquet file has no ${missing.map((k) => `"${k}"`).join(' or ')} column (columns: ${columns.map((h) => `"${h}"`).join(', ')})`);
  }
  if (rows === 0) refuse('the Parquet file has no rows');
  c.checkCount(rows);
  const wanted = ['instruction', 'input', 'output', 'messages', ...TYPE_FIELDS].filter(has).map((k) => lower.get(k)!);
  const codecs = new Set<string>();
  for (const rg of metadata.row_groups) {
    for (const col of rg.columns) {
      if (col.meta_data && wanted.includes(col.meta_data.path_in_schema[0])) codecs.add(col.meta_data.codec);
    }
  }
  const unsupported = [...codecs].filter((k) => k !== 'SNAPPY' && k !== 'UNCOMPRESSED');
  if (unsupported.length > 0) {
    refuse(`the Parquet file is compressed with ${unsupported.join(', ')}, which this importer cannot read; save it with Snappy compression or none`);
  }
  // Every page of the chunks read is checked first: hyparquet follows damaged page headers and
  // level runs blindly, into endless loops (see parquet-guard.ts).
  try {
    checkParquetPages(bytes, metadata, wanted);
  } catch (e) {
    if (e instanceof ParquetPageError) return refuse(`not a readable Parquet file: ${e.message}`);
    return refuse(`the Parquet data could not be read: ${errorMessage(e)}`);
  }
  let objects: Record<string, unknown>[];
  try {
    objects = (await parquetReadObjects({
      file: buffer,
      metadata,
      columns: wanted,
      parsers: { stringFromBytes: parquetString },
      // The checked decoder: hyparquet's own loops on some damaged Snappy data (see parquet-guard.ts).
      compressors: { SNAPPY: snappyDecompress },
    })) as Record<string, unknown>[];
  } catch (e) {
    return refuse(`the Parquet data could not be read: ${errorMessage(e)}`);
  }
  // A damaged page can decode to more (or fewer) rows than the footer declares: never invent records.
  if (objects.length !== rows) refuse(`the Parquet data has ${objects.length} rows but the file's footer says ${rows}: the file is damaged`);
  objects.forEach((o, i) => {
    const obj: Record<string, unknown> = {};
    for (const k of Object.keys(o)) obj[k.toLowerCase()] = o[k];
    c.add(obj, { kind: 'row', row: i + 1 }, true);
  });
}
