/**
 * The alternative Parquet reader weighed against the importer's (tools/bench/parquet-readers.ts):
 * hyparquet with hyparquet-compressors' codecs and no page checks, the importer's readParquet
 * (src/data/formats.ts) less checkParquetPages and its own Snappy decoder. Run in a worker with a
 * deadline, as that design would (the bench's IsolatedRunner is the deadline).
 *
 * Both readers are exported as worker entries that return plain data: a load's counts, or a
 * refusal's message and the class of the error under it.
 */
import { parquetMetadata, parquetReadObjects, parquetSchema, type FileMetaData } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { MAX_DATASET_RECORDS, parseDataset } from '../../src/data/import';
import { parquetString } from '../../src/data/formats';
import { Collector, DatasetImportError, TYPE_FIELDS } from '../../src/data/records';

/** What one read came to, as plain data. */
export type ReadSummary =
  | { kind: 'load'; total: number; good: number }
  /** `cause`: the constructor of the error the refusal wraps (TypeError, RangeError, ... is a crash inside the decoder). */
  | { kind: 'refused'; message: string; cause: string };

/** A refusal that keeps the class of what it wraps, so the bench can tell a crash from a check. */
class Refusal extends DatasetImportError {
  constructor(
    fileName: string,
    reason: string,
    readonly cause: string,
  ) {
    super(fileName, reason);
  }
}

/** The importer's readParquet without the page checks, with hyparquet-compressors. */
export async function parseParquetAlone(bytes: Uint8Array, fileName: string): Promise<ReadSummary> {
  const refuse = (reason: string, cause = 'check'): never => {
    throw new Refusal(fileName, reason, cause);
  };
  const c = new Collector(fileName, {}, MAX_DATASET_RECORDS);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let metadata: FileMetaData;
  let columns: string[];
  try {
    metadata = parquetMetadata(buffer, { geoparquet: false });
    columns = parquetSchema(metadata).children.map((ch) => ch.element.name);
    if (!columns.every((name) => typeof name === 'string')) throw new Error('a column of the schema has no name');
  } catch (e) {
    return refuse(`not a readable Parquet file: ${(e as Error).message}`, (e as Error).constructor.name);
  }
  const rows = Number(metadata.num_rows);
  const lower = new Map(columns.map((name) => [name.toLowerCase(), name] as const));
  const has = (k: string): boolean => lower.has(k);
  if (!has('messages') && (!has('instruction') || !has('output'))) refuse('the Parquet file has no "instruction" or "output" column');
  if (rows === 0) refuse('the Parquet file has no rows');
  try {
    c.checkCount(rows);
  } catch (e) {
    return refuse((e as Error).message);
  }
  const wanted = ['instruction', 'input', 'output', 'messages', ...TYPE_FIELDS].filter(has).map((k) => lower.get(k)!);
  let objects: Record<string, unknown>[];
  try {
    objects = (await parquetReadObjects({ file: buffer, metadata, columns: wanted, parsers: { stringFromBytes: parquetString }, compressors })) as Record<string, unknown>[];
  } catch (e) {
    return refuse(`the Parquet data could not be read: ${(e as Error).message}`, (e as Error).constructor.name);
  }
  if (objects.length !== rows) refuse(`the Parquet data has ${objects.length} rows but the file's footer says ${rows}: the file is damaged`);
  return collectRows(objects, c);
}

/** The decoded rows into records (what the caller of a reader worker does with the rows it gets back). */
export function collectRows(objects: readonly Record<string, unknown>[], c: Collector): ReadSummary {
  objects.forEach((o, i) => {
    const obj: Record<string, unknown> = {};
    for (const k of Object.keys(o)) obj[k.toLowerCase()] = o[k];
    c.add(obj, { kind: 'row', row: i + 1 }, true);
  });
  const res = c.finish('parquet');
  return { kind: 'load', total: res.counts.total, good: res.counts.good };
}

function summary(e: unknown): ReadSummary {
  if (e instanceof Refusal) return { kind: 'refused', message: e.message, cause: e.cause };
  if (e instanceof DatasetImportError) return { kind: 'refused', message: e.message, cause: 'check' };
  throw e;
}

// Worker entries (IsolatedRunner calls them by name).

/** The importer as it is: parseDataset, every page checked by parquet-guard.ts first. */
export async function benchOurs(bytes: Uint8Array, fileName: string): Promise<ReadSummary> {
  try {
    const res = await parseDataset(bytes, fileName);
    return { kind: 'load', total: res.counts.total, good: res.counts.good };
  } catch (e) {
    return summary(e);
  }
}

/** The alternative: hyparquet and hyparquet-compressors alone. */
export async function benchAlone(bytes: Uint8Array, fileName: string): Promise<ReadSummary> {
  try {
    return await parseParquetAlone(bytes, fileName);
  } catch (e) {
    return summary(e);
  }
}

/** The rows hyparquet reads with hyparquet-compressors: what a reader worker would send back. */
export async function readRowsAlone(bytes: Uint8Array): Promise<Record<string, unknown>[]> {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return (await parquetReadObjects({ file: buffer, parsers: { stringFromBytes: parquetString }, compressors })) as Record<string, unknown>[];
}
