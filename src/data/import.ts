/**
 * Dataset import: reads a user's file into InstructionRecords, validating every record.
 *
 * Formats (chosen by extension, with a look at the content to tell JSON from JSON Lines):
 *   .json            a JSON array of records, or an object with exactly one array field ({"data": [...]})
 *   .jsonl, .ndjson  one JSON record per line; blank lines are skipped
 *   .csv, .tsv       a header row, then one record per row (quoted fields may span lines)
 *   .parquet         one record per row (Snappy-compressed or uncompressed)
 *
 * Record shapes:
 *   official LoRAMoE  {"instruction", "input"?, "output", "task_type": 0|1}
 *   Alpaca            {"instruction", "input"?, "output"}
 *   chat              {"messages": [{"role", "content"}, ...]}: the last assistant message is the output;
 *                     the system messages, then the user messages, before it (joined with "\n") are the
 *                     instruction. Assistant turns before the last one are not part of the prompt.
 * CSV and Parquet use columns with the same names (a "messages" column in a CSV holds JSON text).
 *
 * Data type: the field `task_type`, else `type`, else `task`; a number or a string. 1 and 0 (also as
 * the strings "1" and "0") are the official types "world knowledge" and "downstream task"; any other
 * integer is an error; other strings are type names, trimmed. A record without a type gets
 * opts.defaultType ("downstream task" unless told) and is counted in counts.defaultedType.
 *
 * Validation never drops a record silently: each bad record is reported, with every problem found,
 * in `errors` ({location, field, message}), and the good ones are kept. Locations: JSON Lines and
 * CSV/TSV give the 1-based line of the file where the record starts (a CSV header is line 1); JSON
 * gives the 0-based index in the array; Parquet gives the 1-based row number.
 *
 * Whole-file problems (an empty file, nothing usable, invalid JSON, not an array of objects, a CSV
 * without the instruction or output column, bytes that are not UTF-8, an unsupported extension, a
 * file over the size or record limit, a damaged Parquet file) throw a DatasetImportError whose
 * message starts with the file name. Every page of a Parquet file's columns is checked before
 * hyparquet decodes it (parquet-guard.ts), so a damaged file ends in such an error, never in a hang.
 */
import Papa from 'papaparse';
import { parquetMetadata, parquetReadObjects, parquetSchema, type FileMetaData } from 'hyparquet';
import { checkParquetPages, ParquetPageError, snappyDecompress } from './parquet-guard';
import type { InstructionRecord } from './template';
import { DOWNSTREAM_TASK, typeNamesFor, WORLD_KNOWLEDGE } from '../method/data-types';

/** Files larger than this are refused (bytes). */
export const MAX_DATASET_BYTES = 512 * 1024 * 1024;
/** Files with more records than this are refused. */
export const MAX_DATASET_RECORDS = 1_000_000;

export const SUPPORTED_EXTENSIONS = ['.json', '.jsonl', '.ndjson', '.csv', '.tsv', '.parquet'] as const;

export type DatasetFormat = 'json' | 'jsonl' | 'csv' | 'tsv' | 'parquet';
export type RecordShape = 'official' | 'alpaca' | 'chat';

/**
 * Where a record came from. `line` (JSON Lines, CSV, TSV) is the 1-based line of the file where the
 * record starts; `index` (JSON) is the 0-based position in the array, `field` naming the wrapping
 * object's array field when there is one; `row` (Parquet) is the 1-based row number.
 */
export type RecordLocation =
  | { kind: 'line'; line: number }
  | { kind: 'index'; index: number; field?: string }
  | { kind: 'row'; row: number };

export interface ImportedRecord extends InstructionRecord {
  location: RecordLocation;
  shape: RecordShape;
  /** True when the record had no data type and got the default. */
  typeDefaulted: boolean;
}

export interface ImportError {
  location: RecordLocation;
  /** The field at fault: "instruction", "output", "task_type", "messages[2].role", ... or "record" for the whole record. */
  field: string;
  message: string;
}

export interface ImportCounts {
  /** Records read from the file, good and bad. */
  total: number;
  /** Records kept. */
  good: number;
  /** Records rejected (each has one or more entries in `errors`). */
  bad: number;
  /** Kept records that had no data type and got the default. */
  defaultedType: number;
  /** Kept records per data type name. */
  byType: Record<string, number>;
  /** Kept records per shape. */
  byShape: Record<RecordShape, number>;
}

export interface ImportResult {
  fileName: string;
  format: DatasetFormat;
  records: ImportedRecord[];
  errors: ImportError[];
  counts: ImportCounts;
  /** The default type given to records without one. */
  defaultType: string;
  /** Remarks worth showing the user (e.g. a .json file read as JSON Lines). */
  notes: string[];
}

export interface ImportOptions {
  /**
   * Maps raw type values, as trimmed strings ("1", "qa", ...), to type names. Checked before the
   * built-in rules, so it can also rename the official 0/1 or give a name to another integer.
   */
  typeMapping?: Record<string, string>;
  /** Type given to records without one (default "downstream task"). */
  defaultType?: string;
  /** Size limit in bytes (default MAX_DATASET_BYTES). */
  maxBytes?: number;
  /** Record limit (default MAX_DATASET_RECORDS). */
  maxRecords?: number;
}

/** A whole-file refusal. The message starts with the file name. */
export class DatasetImportError extends Error {
  constructor(
    readonly fileName: string,
    readonly reason: string,
  ) {
    super(`${fileName}: ${reason}`);
    this.name = 'DatasetImportError';
  }
}

export function formatLocation(loc: RecordLocation): string {
  switch (loc.kind) {
    case 'line':
      return `line ${loc.line}`;
    case 'index':
      return loc.field === undefined ? `index ${loc.index}` : `index ${loc.index} of "${loc.field}"`;
    case 'row':
      return `row ${loc.row}`;
  }
}

/** "line 4: output: empty output" */
export function formatImportError(e: ImportError): string {
  return `${formatLocation(e.location)}: ${e.field}: ${e.message}`;
}

// ---------------------------------------------------------------------------------------------
// Entry point

export async function parseDataset(bytes: Uint8Array, fileName: string, opts: ImportOptions = {}): Promise<ImportResult> {
  const refuse = (reason: string): never => {
    throw new DatasetImportError(fileName, reason);
  };
  const ext = extensionOf(fileName);
  const format = formatOfExtension(ext);
  if (format === null) {
    refuse(
      `unsupported file type ${ext === '' ? '(no extension)' : `"${ext}"`}; use ${SUPPORTED_EXTENSIONS.slice(0, -1).join(', ')} or ${SUPPORTED_EXTENSIONS[SUPPORTED_EXTENSIONS.length - 1]}`,
    );
  }
  const maxBytes = opts.maxBytes ?? MAX_DATASET_BYTES;
  const maxRecords = opts.maxRecords ?? MAX_DATASET_RECORDS;
  if (bytes.byteLength > maxBytes) {
    refuse(`the file is ${formatBytes(bytes.byteLength)}, over the ${formatBytes(maxBytes)} limit`);
  }
  if (bytes.byteLength === 0) refuse('the file is empty');

  const collector = new Collector(fileName, opts, maxRecords);
  let actual = format as DatasetFormat;
  if (actual === 'parquet') {
    await readParquet(bytes, collector, refuse);
  } else {
    const text = decodeUtf8(bytes, refuse);
    if (text.trim() === '') refuse('the file is empty (only whitespace)');
    if (actual === 'json') actual = readJsonOrLines(text, collector, refuse);
    else if (actual === 'jsonl') actual = readJsonLinesOrArray(text, collector, refuse);
    else readDelimited(text, actual === 'tsv' ? '\t' : ',', collector, refuse);
  }
  return collector.finish(actual);
}

function extensionOf(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  const dot = base.lastIndexOf('.');
  return dot <= 0 ? '' : base.slice(dot).toLowerCase();
}

function formatOfExtension(ext: string): DatasetFormat | null {
  switch (ext) {
    case '.json':
      return 'json';
    case '.jsonl':
    case '.ndjson':
      return 'jsonl';
    case '.csv':
      return 'csv';
    case '.tsv':
      return 'tsv';
    case '.parquet':
      return 'parquet';
    default:
      return null;
  }
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${+(n / (1024 * 1024)).toFixed(1)} MB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KB`;
  return `${n} bytes`;
}

type Refuse = (reason: string) => never;

// ---------------------------------------------------------------------------------------------
// UTF-8

/** Byte offset of the first byte that is not part of well-formed UTF-8, or -1 when all is well. */
export function findInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0; // no overlong forms
      if (b === 0xed) hi = 0x9f; // no surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f; // nothing above U+10FFFF
    } else return i;
    for (let k = 1; k <= need; k++) {
      if (i + k >= n) return i;
      const c = bytes[i + k];
      if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

function decodeUtf8(bytes: Uint8Array, refuse: Refuse): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = findInvalidUtf8(bytes);
    return refuse(`the file is not UTF-8 text: invalid byte 0x${(bytes[at] ?? 0).toString(16).padStart(2, '0')} at byte offset ${at}`);
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

// ---------------------------------------------------------------------------------------------
// Line and column helpers

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) starts.push(i + 1);
    else if (c === 13 && text.charCodeAt(i + 1) !== 10) starts.push(i + 1);
  }
  return starts;
}

/** 1-based line and column of a character offset. */
function lineColumn(starts: readonly number[], offset: number): { line: number; column: number } {
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
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
  };
  const describe = (at: number): string => (at >= n ? 'unexpected end of input' : `unexpected character ${JSON.stringify(text[at])}`);
  const str = (): { offset: number; message: string } | null => {
    const start = i;
    i++; // opening quote
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return null;
      }
      if (c < 0x20) return fail('control character in a string (a line break must be written \\n)');
      if (c === 92) {
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
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === '-' || m[0] === '') return fail(describe(i));
    i += m[0].length;
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
        if (c === '{') {
          if (text[i] !== '"') return fail(i >= n ? 'unexpected end of input' : `expected a property name in double quotes, found ${JSON.stringify(text[i])}`);
          if ((err = str())) return err;
          ws();
          if (text[i] !== ':') return fail(i >= n ? 'unexpected end of input' : `expected ':' after a property name, found ${JSON.stringify(text[i])}`);
          i++;
        }
        continue;
      }
    } else if (c === '"') {
      if ((err = str())) return err;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      if ((err = num())) return err;
    } else if (text.startsWith('true', i)) i += 4;
    else if (text.startsWith('false', i)) i += 5;
    else if (text.startsWith('null', i)) i += 4;
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
        if (top === '{') {
          ws();
          if (text[i] !== '"') return fail(i >= n ? 'unexpected end of input' : `expected a property name in double quotes, found ${JSON.stringify(text[i])}`);
          if ((err = str())) return err;
          ws();
          if (text[i] !== ':') return fail(i >= n ? 'unexpected end of input' : `expected ':' after a property name, found ${JSON.stringify(text[i])}`);
          i++;
        }
        break;
      }
      return fail(i >= n ? 'unexpected end of input' : `expected ',' or '${close}', found ${JSON.stringify(text[i])}`);
    }
  }
}

function jsonErrorText(text: string): { line: number; column: number; message: string } {
  const { offset, message } = locateJsonError(text);
  return { ...lineColumn(lineStarts(text), offset), message };
}

// ---------------------------------------------------------------------------------------------
// JSON and JSON Lines

function tryParse(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function readJsonOrLines(text: string, c: Collector, refuse: Refuse): DatasetFormat {
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

function readJsonLinesOrArray(text: string, c: Collector, refuse: Refuse): DatasetFormat {
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

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'binary data';
  switch (typeof v) {
    case 'string':
      return 'a string';
    case 'number':
    case 'bigint':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    case 'object':
      return 'an object';
    default:
      return typeof v;
  }
}

// ---------------------------------------------------------------------------------------------
// CSV and TSV

const TYPE_FIELDS = ['task_type', 'type', 'task'] as const;

function readDelimited(text: string, delimiter: string, c: Collector, refuse: Refuse): void {
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
        c.addBad(location, 'record', `${kind} syntax: ${res.errors.map((e) => e.message).join('; ')}`);
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
function parquetString(bytes: Uint8Array | null | undefined): string | null | undefined {
  return bytes === undefined || bytes === null ? bytes : parquetText.decode(bytes);
}

async function readParquet(bytes: Uint8Array, c: Collector, refuse: Refuse): Promise<void> {
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
    return refuse(`not a readable Parquet file: ${e instanceof Error ? e.message : String(e)}`);
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
    return refuse(`the Parquet data could not be read: ${e instanceof Error ? e.message : String(e)}`);
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
    return refuse(`the Parquet data could not be read: ${e instanceof Error ? e.message : String(e)}`);
  }
  // A damaged page can decode to more (or fewer) rows than the footer declares: never invent records.
  if (objects.length !== rows) refuse(`the Parquet data has ${objects.length} rows but the file's footer says ${rows}: the file is damaged`);
  objects.forEach((o, i) => {
    const obj: Record<string, unknown> = {};
    for (const k of Object.keys(o)) obj[k.toLowerCase()] = o[k];
    c.add(obj, { kind: 'row', row: i + 1 }, true);
  });
}

// ---------------------------------------------------------------------------------------------
// Record validation

class Collector {
  readonly records: ImportedRecord[] = [];
  readonly errors: ImportError[] = [];
  readonly notes: string[] = [];
  private total = 0;
  private bad = 0;
  private readonly defaultType: string;
  private readonly typeMapping: Record<string, string>;

  constructor(
    private readonly fileName: string,
    opts: ImportOptions,
    readonly maxRecords: number,
  ) {
    const d = (opts.defaultType ?? DOWNSTREAM_TASK).trim();
    if (d === '') throw new Error('parseDataset: defaultType must be a non-empty name');
    this.defaultType = d;
    // No prototype: a type value such as "constructor" or "__proto__" must not find Object.prototype's members.
    this.typeMapping = Object.create(null) as Record<string, string>;
    for (const [k, v] of Object.entries(opts.typeMapping ?? {})) {
      if (typeof v !== 'string' || v.trim() === '') throw new Error(`parseDataset: typeMapping["${k}"] must be a non-empty name`);
      this.typeMapping[k.trim()] = v.trim();
    }
  }

  /** Refuses more than maxRecords records; `exact` false when counting stopped past the limit. */
  checkCount(n: number, exact = true): void {
    if (n > this.maxRecords) {
      const limit = this.maxRecords.toLocaleString('en-US');
      throw new DatasetImportError(
        this.fileName,
        `${exact ? n.toLocaleString('en-US') : `more than ${limit}`} records, over the limit of ${limit}; split the file or keep a sample`,
      );
    }
  }

  addBad(location: RecordLocation, field: string, message: string): void {
    this.total++;
    this.bad++;
    this.errors.push({ location, field, message });
  }

  /** `tabular`: the values came from CSV cells or Parquet columns (an empty cell means "absent"). */
  add(raw: unknown, location: RecordLocation, tabular = false): void {
    this.total++;
    const errors: ImportError[] = [];
    const err = (field: string, message: string): void => {
      errors.push({ location, field, message });
    };
    if (!isPlainObject(raw)) {
      err('record', `expected an object, found ${describeValue(raw)}`);
      this.reject(errors);
      return;
    }
    const absent = (v: unknown): boolean => v === undefined || v === null || (tabular && v === '');
    let shape: RecordShape;
    let instruction = '';
    let input = '';
    let output = '';
    if (!absent(raw.messages) && absent(raw.instruction)) {
      shape = 'chat';
      const chat = readChat(raw.messages, err);
      if (chat) ({ instruction, output } = chat);
    } else {
      shape = TYPE_FIELDS.some((k) => !absent(raw[k])) ? 'official' : 'alpaca';
      const text = (field: 'instruction' | 'input' | 'output'): string | null => {
        const v = raw[field];
        if (v === undefined || v === null) return null;
        if (v instanceof Uint8Array) return tryUtf8(v);
        if (typeof v !== 'string') {
          err(field, `${field} is ${describeValue(v)}, not a string`);
          return '';
        }
        return v;
      };
      const ins = text('instruction');
      const inp = text('input');
      const out = text('output');
      if (ins === null) err('instruction', 'missing instruction');
      if (out === null) err('output', 'missing output');
      else if (out.trim() === '' && !errors.some((e) => e.field === 'output')) err('output', 'empty output');
      instruction = ins ?? '';
      input = inp ?? '';
      output = out ?? '';
      if (ins !== null && instruction.trim() === '' && input.trim() === '' && !errors.some((e) => e.field === 'instruction')) {
        err('instruction', 'empty instruction (and no input)');
      }
    }
    const type = this.readType(raw, absent, err);
    if (errors.length > 0) {
      this.reject(errors);
      return;
    }
    this.records.push({ instruction, input, output, type: type ?? this.defaultType, location, shape, typeDefaulted: type === null });
  }

  private reject(errors: ImportError[]): void {
    this.bad++;
    this.errors.push(...errors);
  }

  /** The record's type name, null when it has none, or undefined after reporting an error. */
  private readType(raw: Record<string, unknown>, absent: (v: unknown) => boolean, err: (field: string, message: string) => void): string | null | undefined {
    const field = TYPE_FIELDS.find((k) => !absent(raw[k]));
    if (field === undefined) return null;
    const v = raw[field];
    const expected = `must be 0 (${DOWNSTREAM_TASK}), 1 (${WORLD_KNOWLEDGE}) or a type name`;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint') {
      const key = String(v).trim();
      if (key === '') return null;
      const mapped = this.typeMapping[key];
      if (mapped !== undefined) return mapped;
      if (typeof v === 'string' && !/^[+-]?\d+(\.\d+)?$/.test(key)) return key;
      const num = Number(key);
      if (num === 1) return WORLD_KNOWLEDGE;
      if (num === 0) return DOWNSTREAM_TASK;
      err(field, `${field} is ${key}; it ${expected}`);
      return undefined;
    }
    err(field, `${field} is ${describeValue(v)}; it ${expected}`);
    return undefined;
  }

  finish(format: DatasetFormat): ImportResult {
    if (this.records.length === 0) {
      const shown = this.errors.slice(0, 3).map(formatImportError);
      const more = this.errors.length > shown.length ? `; and ${this.errors.length - shown.length} more` : '';
      throw new DatasetImportError(
        this.fileName,
        this.total === 0
          ? 'no records found'
          : `no usable record: all ${this.total} record${this.total === 1 ? ' is' : 's are'} bad (${shown.join('; ')}${more})`,
      );
    }
    // Counted in a Map: type names come from the file ("__proto__", "constructor" are names too).
    const typeCounts = new Map<string, number>();
    const byShape: Record<RecordShape, number> = { official: 0, alpaca: 0, chat: 0 };
    let defaultedType = 0;
    for (const r of this.records) {
      typeCounts.set(r.type, (typeCounts.get(r.type) ?? 0) + 1);
      byShape[r.shape]++;
      if (r.typeDefaulted) defaultedType++;
    }
    const byType: Record<string, number> = Object.fromEntries(typeCounts);
    return {
      fileName: this.fileName,
      format,
      records: this.records,
      errors: this.errors,
      counts: { total: this.total, good: this.records.length, bad: this.bad, defaultedType, byType, byShape },
      defaultType: this.defaultType,
      notes: this.notes,
    };
  }
}

function tryUtf8(v: Uint8Array): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(v);
  } catch {
    return null;
  }
}

const ROLES = ['system', 'user', 'assistant'] as const;

function readChat(messages: unknown, err: (field: string, message: string) => void): { instruction: string; output: string } | null {
  if (!Array.isArray(messages)) {
    err('messages', `messages is ${describeValue(messages)}, not a list of {role, content}`);
    return null;
  }
  const parsed: { role: (typeof ROLES)[number]; content: string }[] = [];
  let ok = true;
  messages.forEach((m, j) => {
    if (!isPlainObject(m)) {
      err(`messages[${j}]`, `expected an object {role, content}, found ${describeValue(m)}`);
      ok = false;
      return;
    }
    let role: (typeof ROLES)[number] | null = null;
    if (typeof m.role !== 'string') {
      err(`messages[${j}].role`, m.role === undefined || m.role === null ? 'missing role' : `role is ${describeValue(m.role)}, not a string`);
    } else {
      const r = m.role.trim().toLowerCase();
      role = (ROLES as readonly string[]).includes(r) ? (r as (typeof ROLES)[number]) : null;
      if (role === null) err(`messages[${j}].role`, `unknown role "${m.role}"; expected system, user or assistant`);
    }
    let content: string | null = null;
    if (typeof m.content === 'string') content = m.content;
    else if (m.content instanceof Uint8Array) content = tryUtf8(m.content);
    if (content === null) {
      err(`messages[${j}].content`, m.content === undefined || m.content === null ? 'missing content' : `content is ${describeValue(m.content)}, not a string`);
    }
    if (role === null || content === null) ok = false;
    else parsed.push({ role, content });
  });
  if (!ok) return null;
  let last = -1;
  for (let j = parsed.length - 1; j >= 0; j--) {
    if (parsed[j].role === 'assistant') {
      last = j;
      break;
    }
  }
  if (last < 0) {
    err('messages', 'no assistant message (the last assistant message is the output)');
    return null;
  }
  const before = parsed.slice(0, last);
  const system = before.filter((m) => m.role === 'system').map((m) => m.content);
  const user = before.filter((m) => m.role === 'user').map((m) => m.content);
  let good = true;
  if (user.length === 0) {
    err('messages', 'no user message before the last assistant message');
    good = false;
  }
  const output = parsed[last].content;
  if (output.trim() === '') {
    err(`messages[${last}].content`, 'empty output (the last assistant message is empty)');
    good = false;
  }
  return good ? { instruction: [...system, ...user].join('\n'), output } : null;
}

// ---------------------------------------------------------------------------------------------
// Type names to indices

export interface TypeIndexMapping {
  /** Type names in index order. */
  names: string[];
  /** Index of a type name; throws for a name not in `names`. */
  index(name: string): number;
}

/**
 * The data types present in `records` in index order (src/method/data-types.ts typeNamesFor, the
 * order the runner uses too). Used for the LBC's type-to-expert-group mapping and for batches' type
 * indices.
 */
export function typeIndexMapping(records: readonly Pick<InstructionRecord, 'type'>[]): TypeIndexMapping {
  const names = typeNamesFor(records.map((r) => r.type));
  const map = new Map(names.map((n, i) => [n, i] as const));
  return {
    names,
    index(name: string): number {
      const i = map.get(name);
      if (i === undefined) throw new Error(`unknown data type "${name}"; the dataset's types are ${names.map((n) => `"${n}"`).join(', ')}`);
      return i;
    },
  };
}
