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
 *
 * This file is the entry (parseDataset) and re-exports the rest of the importer: the result types and
 * record checks (records.ts), the file formats (formats.ts), where UTF-8 and JSON go wrong
 * (text-errors.ts), and the data types' index order (type-index.ts).
 */
import { Collector, DatasetImportError, type DatasetFormat, type ImportOptions, type ImportResult } from './records';
import { readDelimited, readJsonLinesOrArray, readJsonOrLines, readParquet } from './formats';
import { decodeUtf8 } from './text-errors';

export {
  DatasetImportError,
  formatImportError,
  formatLocation,
  type DatasetFormat,
  type ImportCounts,
  type ImportedRecord,
  type ImportOptions,
  type ImportResult,
  type RecordLocation,
} from './records';
export { findInvalidUtf8, locateJsonError } from './text-errors';
export { typeIndexMapping } from './type-index';

/** Binary size units, for the size limit and the sizes in messages. */
const KIB = 1024;
const MIB = 1024 * KIB;

/** Files larger than this are refused (bytes). */
export const MAX_DATASET_BYTES = 512 * MIB;
/** Files with more records than this are refused. */
export const MAX_DATASET_RECORDS = 1_000_000;

const SUPPORTED_EXTENSIONS = ['.json', '.jsonl', '.ndjson', '.csv', '.tsv', '.parquet'] as const;

// ---------------------------------------------------------------------------------------------
// Entry point

/** Reads a dataset file into records (the format from its extension, as described above). */
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
  if (n >= MIB) return `${+(n / MIB).toFixed(1)} MB`;
  if (n >= KIB) return `${+(n / KIB).toFixed(1)} KB`;
  return `${n} bytes`;
}
