/**
 * Fuzz tests of the dataset importer (src/data/import.ts, parseDataset) for JSON, JSON Lines,
 * CSV, TSV and Parquet.
 *
 * Valid files are built from generated records (official, Alpaca and chat shapes, any Unicode text
 * with quotes, separators and line breaks in it) and must load exactly. Mutated files (text edits:
 * inserted quotes, line breaks, brackets, odd numbers and characters; a BOM; invalid UTF-8; byte
 * flips and truncation; values of the wrong type, huge or deeply nested in JSON; byte flips of
 * Parquet files from two writers: hyparquet-writer, and arrow-rs for V1 pages, Snappy, nested lists
 * and DELTA encodings; each Parquet case in a worker with a hard time limit) must end in a
 * DatasetImportError whose message starts with the file name, or in a result
 * whose every record is valid and whose counts and locations are consistent: no more records than
 * the file has lines (JSON Lines, CSV, TSV), elements (JSON) or rows (Parquet), and no more text
 * in the records than in the file.
 *
 * Run counts: see harness.ts (FUZZ_RUNS multiplies them).
 */
import fc from 'fast-check';
import { parquetMetadata } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { DatasetImportError, type ImportResult, MAX_DATASET_RECORDS, parseDataset } from '../data/import';
import { DOWNSTREAM_TASK, WORLD_KNOWLEDGE } from '../method/data-types';
import { byteMutations, mutateBytes } from './bytes';
import { checkClearError, FUZZ_TEST_TIMEOUT_MS, fuzzParams, runAsync, Tally, violation } from './harness';
import { assertIsolated, isolatedFuzzTest, runConfirmed, SlowCases, suiteRunner } from './isolated';
import { jsonMutations, materialize, mutateJson, toJsonText, weirdJsonValue } from './json';
import { encodeWith, encodingMutation, mutateText, textMutations } from './text';

const tally = new Tally('dataset.fuzz.test.ts');

/**
 * Parquet cases run parseDataset in a worker thread with a hard time limit: hyparquet looped forever
 * on some damaged pages (a synchronous loop no timer in this thread can stop) until
 * src/data/parquet-guard.ts checked every page first; should such a loop come back, it is reported
 * as a hang instead of stopping the run.
 */
const parquetRunner = suiteRunner(tally, { DatasetImportError });

// ---------------------------------------------------------------------------------------------
// Generated records and what they must load as.
// ---------------------------------------------------------------------------------------------

interface Expected {
  instruction: string;
  input: string;
  output: string;
  type: string;
}

interface Gen {
  /** The record as written to JSON / JSON Lines. */
  json: Record<string, unknown>;
  /** The record as CSV / Parquet cells (column -> text; '' = empty cell). */
  cells: Record<string, string>;
  /** Chat records: the messages (a nested Parquet column). */
  messages?: { role: string; content: string }[];
  expected: Expected;
}

/** Text with quotes, separators, line breaks, Unicode: anything a cell or a JSON string may hold. */
const anyText = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 16 }),
  fc.string({ maxLength: 16 }),
  fc.constantFrom('a,b', 'say "hi"', 'line\nbreak', 'cr\rlf\r\n', 'tab\there', '""', '\\n', '{"x": [1]}', '😀 日本語 é', '\u2028\u2029', '\ufeffbom'),
);
/** Text that is not blank. */
const solidText = fc.tuple(anyText, fc.constantFrom('x', 'Q', 'é', '7', '?', '😀'), anyText).map(([a, m, b]) => a + m + b);

const TYPE_COLUMNS = ['task_type', 'type', 'task'] as const;

const typeSpec = fc.oneof(
  fc.constant({ raw: undefined as string | number | undefined, name: DOWNSTREAM_TASK }),
  fc.constantFrom(
    { raw: 0, name: DOWNSTREAM_TASK },
    { raw: 1, name: WORLD_KNOWLEDGE },
    { raw: '0', name: DOWNSTREAM_TASK },
    { raw: '1', name: WORLD_KNOWLEDGE },
    { raw: ' 1 ', name: WORLD_KNOWLEDGE },
  ),
  fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 10 })
    .filter((s) => s.trim() !== '' && !/^[+-]?\d+(\.\d+)?$/.test(s.trim()) && !/[\r\n]/.test(s))
    .map((s) => ({ raw: s as string | number | undefined, name: s.trim() })),
);

const alpacaRecord: fc.Arbitrary<Gen> = fc
  .record({ instruction: solidText, input: fc.option(anyText, { nil: undefined }), output: solidText, type: typeSpec, typeField: fc.constantFrom(...TYPE_COLUMNS) })
  .map(({ instruction, input, output, type, typeField }) => {
    const json: Record<string, unknown> = { instruction, output };
    if (input !== undefined) json.input = input;
    if (type.raw !== undefined) json[typeField] = type.raw;
    const cells: Record<string, string> = { instruction, input: input ?? '', output, [typeField]: type.raw === undefined ? '' : String(type.raw) };
    return { json, cells, expected: { instruction, input: input ?? '', output, type: type.name } };
  });

const chatRecord: fc.Arbitrary<Gen> = fc
  .record({
    system: fc.array(anyText, { maxLength: 2 }),
    users: fc.array(anyText, { minLength: 1, maxLength: 3 }),
    answer: solidText,
    type: typeSpec,
  })
  .map(({ system, users, answer, type }) => {
    const messages = [
      ...system.map((content) => ({ role: 'system', content })),
      ...users.map((content) => ({ role: 'user', content })),
      { role: 'assistant', content: answer },
    ];
    const json: Record<string, unknown> = { messages };
    if (type.raw !== undefined) json.task_type = type.raw;
    const cells: Record<string, string> = { messages: JSON.stringify(messages), task_type: type.raw === undefined ? '' : String(type.raw) };
    return { json, cells, messages, expected: { instruction: [...system, ...users].join('\n'), input: '', output: answer, type: type.name } };
  });

const records = fc.array(fc.oneof({ weight: 3, arbitrary: alpacaRecord }, { weight: 1, arbitrary: chatRecord }), { minLength: 1, maxLength: 6 });

// ---------------------------------------------------------------------------------------------
// Writers.
// ---------------------------------------------------------------------------------------------

const COLUMNS = ['instruction', 'input', 'output', 'messages', ...TYPE_COLUMNS];

function quoteCell(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** CSV or TSV with every cell quoted; returns the text and the line each record starts on. */
function writeDelimited(gens: readonly Gen[], delimiter: string): { text: string; lines: number[] } {
  const columns = COLUMNS.filter((c) => gens.some((g) => c in g.cells));
  let text = columns.join(delimiter) + '\n';
  const lines: number[] = [];
  for (const g of gens) {
    lines.push(1 + (text.match(/\r\n|\n|\r/g) ?? []).length);
    text += columns.map((c) => quoteCell(g.cells[c] ?? '')).join(delimiter) + '\n';
  }
  return { text, lines };
}

function writeJsonLines(values: readonly unknown[]): string {
  return values.map((v) => toJsonText(v)).join('\n') + '\n';
}

/**
 * A Parquet file of the records: text columns, task_type as INT64 when `typeAsInt` and every type
 * is 0 or 1; when every record is a chat, a nested "messages" column (a list of {role, content}).
 */
function writeParquet(gens: readonly Gen[], typeAsInt: boolean): Uint8Array<ArrayBuffer> {
  const chat = gens.every((g) => g.messages !== undefined);
  const columns = COLUMNS.filter((c) => gens.some((g) => c in g.cells) && (chat || c !== 'messages'));
  const columnData = columns.map((name) => {
    if (name === 'messages') return { name, data: gens.map((g) => g.messages!) };
    if (typeAsInt && name === 'task_type' && gens.every((g) => /^[01]?$/.test(g.cells.task_type ?? ''))) {
      return { name, data: gens.map((g) => (g.cells.task_type ? BigInt(g.cells.task_type) : null)), type: 'INT64' as const };
    }
    return { name, data: gens.map((g) => (g.cells[name] === undefined || g.cells[name] === '' ? null : g.cells[name])), type: 'STRING' as const };
  });
  return new Uint8Array(parquetWriteBuffer({ columnData }));
}

// ---------------------------------------------------------------------------------------------
// The outcome check.
// ---------------------------------------------------------------------------------------------

const lineCount = (text: string): number => (text.match(/\r\n|\n|\r/g) ?? []).length + 1;

interface Limits {
  /** Most records the file can hold (lines, elements or rows). */
  maxRecords: number;
  /** Most characters of record text (undefined: not checked, e.g. Parquet's dictionary encoding). */
  maxChars?: number;
  /** Most lines (locations of kind 'line'). */
  lines?: number;
}

/** Checks a refusal or a result; returns the result when the file loaded. */
function checkImport(r: { ok: true; value: ImportResult } | { ok: false; error: unknown }, fileName: string, limits: Limits, label: string): ImportResult | null {
  if (!r.ok) {
    const e = checkClearError(r.error, { classes: [DatasetImportError] });
    if (!e.message.startsWith(`${fileName}: `)) violation(`the message does not start with the file name: ${JSON.stringify(e.message.slice(0, 300))}`);
    if (e.message.startsWith(`${fileName}: invalid JSON`) && !/^[^:]*: invalid JSON at line \d+, column \d+: ./.test(e.message)) {
      violation(`a JSON syntax error without its line and column: ${e.message.slice(0, 300)}`);
    }
    return null;
  }
  const res = r.value;
  const where = `${label}: `;
  if (res.fileName !== fileName) violation(`${where}fileName ${res.fileName}`);
  const c = res.counts;
  if (c.total !== c.good + c.bad || c.good !== res.records.length || c.good < 1) violation(`${where}counts do not add up: ${JSON.stringify(c)}`);
  if (c.total > limits.maxRecords) violation(`${where}${c.total} records from a file that can hold at most ${limits.maxRecords}`);
  const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  if (sum(c.byType) !== c.good || sum(c.byShape) !== c.good) violation(`${where}byType / byShape do not add up`);
  let chars = 0;
  const locs = new Set<string>();
  for (const rec of res.records) {
    if (typeof rec.instruction !== 'string' || typeof rec.input !== 'string' || typeof rec.output !== 'string') violation(`${where}a record field is not a string`);
    if (rec.output.trim() === '') violation(`${where}a record with an empty output was kept`);
    // (Chats are kept with blank user messages: only Alpaca-style records need a non-blank instruction or input.)
    if (rec.shape !== 'chat' && rec.instruction.trim() === '' && rec.input.trim() === '') violation(`${where}a record with an empty instruction and input was kept`);
    if (typeof rec.type !== 'string' || rec.type.trim() === '' || rec.type !== rec.type.trim()) violation(`${where}bad type name ${JSON.stringify(rec.type)}`);
    chars += rec.instruction.length + rec.input.length + rec.output.length;
    checkLocation(rec.location, limits, where);
    const key = JSON.stringify(rec.location);
    if (locs.has(key)) violation(`${where}two records at ${key}`);
    locs.add(key);
  }
  const badLocs = new Set<string>();
  for (const e of res.errors) {
    if (typeof e.field !== 'string' || e.field === '' || typeof e.message !== 'string' || e.message.trim() === '') violation(`${where}an unclear record error ${JSON.stringify(e)}`);
    checkLocation(e.location, limits, where);
    const key = JSON.stringify(e.location);
    if (locs.has(key)) violation(`${where}a kept record also has an error at ${key}`);
    badLocs.add(key);
  }
  if (badLocs.size !== c.bad) violation(`${where}${c.bad} bad records but errors at ${badLocs.size} locations`);
  if (limits.maxChars !== undefined && chars > limits.maxChars) violation(`${where}${chars} characters of records from ${limits.maxChars} characters of file`);
  return res;
}

function checkLocation(loc: ImportResult['records'][number]['location'], limits: Limits, where: string): void {
  const n = loc.kind === 'line' ? loc.line : loc.kind === 'index' ? loc.index + 1 : loc.row;
  if (!Number.isSafeInteger(n) || n < 1) violation(`${where}bad location ${JSON.stringify(loc)}`);
  if (loc.kind === 'line' && limits.lines !== undefined && loc.line > limits.lines) violation(`${where}line ${loc.line} of a file of ${limits.lines} lines`);
  if (loc.kind !== 'line' && n > limits.maxRecords) violation(`${where}location ${JSON.stringify(loc)} past the ${limits.maxRecords} elements`);
}

/** Parses `bytes` as `fileName` and checks the outcome against what the bytes can hold. */
async function importCase(parser: string, bytes: Uint8Array, fileName: string): Promise<ImportResult | null> {
  const r = await runAsync(parser, () => parseDataset(bytes, fileName));
  tally.record(parser, r.ok ? 'load' : 'error', r.ms);
  const text = new TextDecoder().decode(bytes);
  const lines = lineCount(text);
  // JSON: elements are separated by commas (or the file is read as JSON Lines: one per line).
  const elements = (text.match(/,/g) ?? []).length + 1;
  const limits = { maxRecords: fileName.endsWith('.json') ? Math.max(elements, lines) : lines, maxChars: text.length, lines };
  return checkImport(r, fileName, limits, parser);
}

/** A Parquet case that did not finish within the time limit (hyparquet looping on a damaged page). */
interface Hang {
  parser: string;
  bytes: string;
  ms: number;
}

/**
 * Parses Parquet bytes in the worker and checks the outcome: no more records than the footer's
 * num_rows (or the record limit). A case over the time limit is returned as a Hang.
 */
async function parquetCase(parser: string, bytes: Uint8Array, fileName = 'fuzz/data.parquet', slow?: SlowCases): Promise<ImportResult | null | Hang> {
  const r = await runConfirmed<ImportResult>(parquetRunner, 'fuzzParseDataset', [bytes, fileName], slow ?? new SlowCases());
  if (r.kind === 'hang') {
    tally.record(parser, 'error', r.ms);
    return { parser, bytes: Buffer.from(bytes).toString('hex'), ms: r.ms };
  }
  if (r.kind === 'died') return violation(`${parser}: the worker died (${r.message}): an allocation far beyond the ${bytes.length}-byte input`);
  tally.record(parser, r.kind === 'ok' ? 'load' : 'error', r.ms);
  let rows = MAX_DATASET_RECORDS;
  try {
    // (geoparquet: false as the importer: hyparquet's GeoParquet pass loops on a num_children of -1.)
    const n = Number(parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, { geoparquet: false }).num_rows);
    // A damaged footer can claim a negative row count; then only the record limit bounds the rows.
    if (Number.isSafeInteger(n) && n >= 0) rows = n;
  } catch {
    if (r.kind === 'ok') violation(`${parser}: loaded a Parquet file whose footer hyparquet cannot read`);
  }
  return checkImport(r.kind === 'ok' ? { ok: true, value: r.value } : { ok: false, error: r.error }, fileName, { maxRecords: Math.min(rows, MAX_DATASET_RECORDS) }, parser);
}

const isHang = (x: unknown): x is Hang => typeof x === 'object' && x !== null && 'bytes' in x && 'ms' in x && !('records' in x);

function expectRecords(res: ImportResult | null, gens: readonly Gen[], what: string): void {
  if (res === null) return violation(`${what}: a valid file was refused`);
  expect(res.errors, what).toEqual([]);
  expect(
    res.records.map(({ instruction, input, output, type }) => ({ instruction, input, output, type })),
    what,
  ).toEqual(gens.map((g) => g.expected));
}

// ---------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------

/**
 * A 419-byte Parquet file written by hyparquet-writer 0.17 (columns instruction, output as STRING and
 * task_type as INT64; rows ["What is it?", "x", 1], ["b", "yy", 0], [null, "z", null]), kept as
 * bytes so the regression tests below do not depend on the writer's version.
 */
const PARQUET_BASE_HEX =
  '504152311506152c15305c15061502150615001504150000000303144c0b000000576861742069732069743f01000000621506152415285c15061500150615001504150000000307103c0100000078020000007979010000007a1506152415285c15061502150615001504150000000303103c010000000000000000000000000000001504194c4804726f6f74150600150c2502180b696e737472756374696f6e250000150c250218066f75747075742500001504250218097461736b5f74797065001606191c193c26081c150c19150019180b696e737472756374696f6e150216061656165a26083c3602280162180b576861742069732069743f00191c15061500150200000026621c150c1915001918066f757470757415021606164e165226623c360028017a18017800191c15061500150200000026b4011c15041915001918097461736b5f7479706515021606164e165226b4013c3602280801000000000000001808000000000000000000191c15061500150200000016f201160636fe01002809687970617271756574193c1c00001c00001c0000001801000050415231';
const parquetBase = (): Uint8Array<ArrayBuffer> => Uint8Array.from(Buffer.from(PARQUET_BASE_HEX, 'hex'));

/**
 * Small Parquet files written by a second writer, arrow-rs (parquet-wasm 0.6, statistics off; the
 * footer's ARROW:schema key-value entry then cut out, to keep them short), for what hyparquet-writer
 * does not write: V1 data pages, Snappy, a nested list<struct<role, content>>
 * column (repetition levels), DELTA_BYTE_ARRAY / DELTA_LENGTH_BYTE_ARRAY / DELTA_BINARY_PACKED.
 * Chats: [system "be brief", user "hi", assistant "hello"] type 1; [user "\ufeffq", assistant "a"]
 * no type; [user "x", user "y", assistant "z"] type 0. Flat: ["What is it?", "x", 1],
 * [null, "yy", null], ["\ufeffbom", "z", 0] as instruction, output, task_type (INT64).
 */
const CHAT_RECORDS = [
  { instruction: 'be brief\nhi', input: '', output: 'hello', type: WORLD_KNOWLEDGE },
  { instruction: '\ufeffq', input: '', output: 'a', type: DOWNSTREAM_TASK },
  { instruction: 'x\ny', input: '', output: 'z', type: DOWNSTREAM_TASK },
];
const fromHex = (hex: string) => (): Uint8Array<ArrayBuffer> => Uint8Array.from(Buffer.from(hex, 'hex'));
const ARROW_RS_PARQUET = {
  // messages and task_type; V1 pages, Snappy, dictionary-encoded.
  chatV1Snappy: {
    bytes: fromHex(
      '504152311504153e15424c150615001200001f780600000073797374656d040000007573657209000000617373697374616e741500152015242c15101510150615060000103c0200000003d602000000100402036496150c19350006101948086d65737361676573046c697374046974656d04726f6c6515021610169c0116a401265e2600001504156e15704c1510150012000037480800000062652062726965660200000068690501067c656c6c6f04000000efbbbf71010000006101000000780100000079010000007a1500152215262c1510151015061506000011400200000003d6020000001004030388c6fa150c19350006101948086d65737361676573046c697374046974656d07636f6e74656e741502161016ce0116d401268c012600001504152015244c15041500120000103c010000000000000000000000000000001500151215162c150615101506150600000920020000000305010302150419350006101918097461736b5f7479706515021606167016782640260000191c1666154616000000191c169803154816000000191c1688051538160000001502197c480c6172726f775f736368656d61150400350218086d65737361676573150215064c3c000000350418046c697374150200350218046974656d150400150c25021804726f6c6525004c1c000000150c25021807636f6e74656e7425004c1c0000001504250218097461736b5f74797065001606191c193c26ac011c150c19350006101948086d65737361676573046c697374046974656d04726f6c6515021610169c0116a401266626080016800615140026e0031c150c19350006101948086d65737361676573046c697374046974656d07636f6e74656e741502161016ce0116d401269803268c020016940615160026c0051c150419350006101918097461736b5f74797065150216061670167826880526c8040016aa0615160016da031606260816f003140000280a706172717565742d7273193c1c00001c00001c0000004501000050415231',
    ),
    records: CHAT_RECORDS,
    bad: 0,
  },
  // The same chats; V2 pages, uncompressed.
  chatV2: {
    bytes: fromHex(
      '504152311504153e153e4c150615001200000600000073797374656d040000007573657209000000617373697374616e741506151015105c15101500150615101504150412000003d6100402036496150c19350006101948086d65737361676573046c697374046974656d04726f6c6515001610169601169601265a2600001504156e156e4c151015001200000800000062652062726965660200000068690500000068656c6c6f04000000efbbbf71010000006101000000780100000079010000007a1506151215125c15101500150615101504150412000003d61004030388c6fa150c19350006101948086d65737361676573046c697374046974656d07636f6e74656e741500161016c80116c801268a012600001504152015204c15041500120000010000000000000000000000000000001506150a150a5c1506150215061510150415001200000305010302150419350006101918097461736b5f747970651500160616721672263c260000191c1662153c16000000191c168803153e16000000191c16ea041536160000001504197c480c6172726f775f736368656d61150400350218086d65737361676573150215064c3c000000350418046c697374150200350218046974656d150400150c25021804726f6c6525004c1c000000150c25021807636f6e74656e7425004c1c0000001504250218097461736b5f74797065001606191c193c269e011c150c19350006101948086d65737361676573046c697374046974656d04726f6c6515001610169601169601266226080016e00515140026c6031c150c19350006101948086d65737361676573046c697374046974656d07636f6e74656e741500161016c80116c80126880326fe010016f40515160026a0051c150419350006101918097461736b5f74797065150016061672167226ea0426ae0400168a0615160016d0031606260816d003140000280a706172717565742d7273193c1c00001c00001c0000004501000050415231',
    ),
    records: CHAT_RECORDS,
    bad: 0,
  },
  // instruction (DELTA_BYTE_ARRAY), output (DELTA_LENGTH_BYTE_ARRAY), task_type (DELTA_BINARY_PACKED); V1 pages, uncompressed.
  flatV1Delta: {
    bytes: fromHex(
      '504152311500155615562c1506150e1506150600000200000003058001040200000000000080010402160900000000576861742069732069743fefbbbf626f6d150c1925060e19180b696e737472756374696f6e15001606167816782600001500153815382c1506150c1506150600000200000006018001040302010200000002000000000000007879797a150c1925060c1918066f757470757415001606165a165a2600001500152015202c1506150a1506150600000200000003058002040202010000000015041925060a1918097461736b5f747970651500160616421642260000191c1608157816000000191c16be01155a16000000191c16cc021542160000001502194c480c6172726f775f736368656d61150600150c2502180b696e737472756374696f6e25004c1c000000150c250218066f757470757425004c1c0000001504250218097461736b5f74797065001606191c193c2680011c150c1925060e19180b696e737472756374696f6e150016061678167826080016c8031514002698021c150c1925060c1918066f757470757415001606165a165a26be010016dc03151600268e031c15041925060a1918097461736b5f74797065150016061642164226cc020016f20315160016940216062608169402140000280a706172717565742d7273193c1c00001c00001c000000f100000050415231',
    ),
    records: [
      { instruction: 'What is it?', input: '', output: 'x', type: WORLD_KNOWLEDGE },
      { instruction: '\ufeffbom', input: '', output: 'z', type: DOWNSTREAM_TASK },
    ],
    bad: 1,
  },
};

const FORMATS = ['json', 'jsonl', 'csv', 'tsv'] as const;
type TextFormat = (typeof FORMATS)[number];

function writeText(format: TextFormat, gens: readonly Gen[], wrap: boolean): string {
  switch (format) {
    case 'json':
      return toJsonText(wrap ? { data: gens.map((g) => g.json) } : gens.map((g) => g.json), true);
    case 'jsonl':
      return writeJsonLines(gens.map((g) => g.json));
    case 'csv':
      return writeDelimited(gens, ',').text;
    case 'tsv':
      return writeDelimited(gens, '\t').text;
  }
}

describe('dataset import fuzz', () => {
  for (const format of FORMATS) {
    it(`${format}: valid files load exactly, with the right locations`, async () => {
      await fc.assert(
        fc.asyncProperty(records, fc.boolean(), fc.boolean(), async (gens, wrap, bom) => {
          const text = writeText(format, gens, wrap);
          const bytes = encodeWith(text, { kind: bom ? 'bom' : 'none' });
          const res = await importCase(`${format} valid`, bytes, `fuzz/data.${format}`);
          expectRecords(res, gens, `${format} valid`);
          const locs = res!.records.map((r) => r.location);
          if (format === 'jsonl') expect(locs).toEqual(gens.map((_, i) => ({ kind: 'line', line: i + 1 })));
          if (format === 'json') expect(locs).toEqual(gens.map((_, i) => (wrap ? { kind: 'index', index: i, field: 'data' } : { kind: 'index', index: i })));
          if (format === 'csv' || format === 'tsv') {
            const { lines } = writeDelimited(gens, format === 'csv' ? ',' : '\t');
            expect(locs).toEqual(lines.map((line) => ({ kind: 'line', line })));
          }
        }),
        fuzzParams(2001 + FORMATS.indexOf(format), 100),
      );
    }, FUZZ_TEST_TIMEOUT_MS);

    it(`${format}: text edits (quotes, line breaks, brackets, numbers, Unicode), BOM, invalid UTF-8`, async () => {
      await fc.assert(
        fc.asyncProperty(records, fc.boolean(), textMutations(4), encodingMutation, async (gens, wrap, muts, enc) => {
          const text = mutateText(writeText(format, gens, wrap), muts);
          await importCase(`${format} text edits`, encodeWith(text, enc), `fuzz/data.${format}`);
        }),
        fuzzParams(2011 + FORMATS.indexOf(format), 600),
      );
    }, FUZZ_TEST_TIMEOUT_MS);

    it(`${format}: byte edits and truncation`, async () => {
      await fc.assert(
        fc.asyncProperty(records, fc.boolean(), byteMutations(4), async (gens, wrap, muts) => {
          const bytes = mutateBytes(new TextEncoder().encode(writeText(format, gens, wrap)), muts);
          await importCase(`${format} byte edits`, bytes, `fuzz/data.${format}`);
        }),
        fuzzParams(2021 + FORMATS.indexOf(format), 400),
      );
    }, FUZZ_TEST_TIMEOUT_MS);
  }

  const FIELDS = ['instruction', 'input', 'output', 'task_type', 'type', 'task', 'messages', 'role', 'content', 'data'];

  it('json and jsonl: fields of the wrong type, huge numbers, deep nesting, odd keys', async () => {
    await fc.assert(
      fc.asyncProperty(records, fc.constantFrom('json', 'jsonl', 'ndjson'), fc.boolean(), jsonMutations(FIELDS, 4), async (gens, ext, wrap, muts) => {
        const fileName = `fuzz/data.${ext}`;
        let text: string;
        if (ext === 'json') {
          text = toJsonText(mutateJson(wrap ? { data: gens.map((g) => g.json) } : gens.map((g) => g.json), muts), true);
        } else {
          const lines = mutateJson(gens.map((g) => g.json), muts);
          text = Array.isArray(lines) ? writeJsonLines(lines) : toJsonText(lines);
        }
        await importCase(`${ext} value edits`, new TextEncoder().encode(text), fileName);
      }),
      fuzzParams(2031, 400),
    );
  }, FUZZ_TEST_TIMEOUT_MS);

  it('csv and tsv: odd headers and cells (missing, duplicate, blank, case, __proto__ columns; huge and JSON cells)', async () => {
    const header = fc.array(fc.oneof(fc.constantFrom(...FIELDS, 'Instruction', ' OUTPUT ', '', '__proto__', 'constructor', 'toString'), fc.string({ maxLength: 6 })), {
      minLength: 1,
      maxLength: 7,
    });
    const cell = fc.oneof(anyText, fc.constantFrom('', ' ', '0', '1', '2', '-1', '1e400', '123456789012345678901234567890', '[]', '[{"role":"user"}]', 'null'));
    await fc.assert(
      fc.asyncProperty(header, fc.array(fc.array(cell, { maxLength: 8 }), { minLength: 1, maxLength: 5 }), fc.boolean(), fc.boolean(), async (cols, rows, tsv, quote) => {
        const d = tsv ? '\t' : ',';
        const q = (s: string) => (quote ? quoteCell(s) : s);
        const text = [cols.map(q).join(d), ...rows.map((r) => r.map(q).join(d))].join('\n');
        await importCase(`${tsv ? 'tsv' : 'csv'} odd headers`, new TextEncoder().encode(text), `fuzz/data.${tsv ? 'tsv' : 'csv'}`);
      }),
      fuzzParams(2032, 600),
    );
  }, FUZZ_TEST_TIMEOUT_MS);

  it('json: any JSON value as the whole file', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(weirdJsonValue(), fc.array(weirdJsonValue(), { maxLength: 5 }), fc.dictionary(fc.constantFrom(...FIELDS), weirdJsonValue())), async (v) => {
        await importCase('json any value', new TextEncoder().encode(toJsonText(materialize(v))), 'fuzz/any.json');
      }),
      fuzzParams(2033, 300),
    );
  }, FUZZ_TEST_TIMEOUT_MS);

  // Parquet has no JSON-text messages column: either all Alpaca records, or all chats (nested column).
  const parquetRecords = fc.oneof(fc.array(alpacaRecord, { minLength: 1, maxLength: 6 }), fc.array(chatRecord, { minLength: 1, maxLength: 4 }));

  it('parquet: valid files load exactly', async () => {
    await fc.assert(
      fc.asyncProperty(parquetRecords, fc.boolean(), async (gens, typeAsInt) => {
        const out = await parquetCase('parquet valid', writeParquet(gens, typeAsInt));
        if (isHang(out)) return violation(`a valid Parquet file did not load within the time limit: ${out.bytes}`);
        const res = out;
        // Exact, a leading U+FEFF of a value included (regression: hyparquet's default decoder dropped it).
        expectRecords(res, gens, 'parquet valid');
        expect(res!.records.map((r) => r.location)).toEqual(gens.map((_, i) => ({ kind: 'row', row: i + 1 })));
      }),
      fuzzParams(2041, 100),
    );
  }, FUZZ_TEST_TIMEOUT_MS);

  // A case that does not answer within the time limit (hyparquet looping on a damaged page, as it
  // did before parquet-guard.ts) is collected (see SlowCases) and listed at the end.
  isolatedFuzzTest('parquet: byte flips, edits and truncation (each case in a worker with a hard time limit)', fuzzParams(2042, 800), (slow) =>
    fc.asyncProperty(parquetRecords, fc.boolean(), byteMutations(3), async (gens, typeAsInt, muts) => {
      const out = await parquetCase('parquet byte edits', mutateBytes(writeParquet(gens, typeAsInt), muts), undefined, slow);
      if (isHang(out)) slow.add('parquet byte edits', out.bytes, `no answer after ${out.ms.toFixed(0)} ms`);
    }),
    `Parquet files (hex) the import did not finish:\n`,
  );

  it('parquet written by arrow-rs (V1 pages, Snappy, dictionaries, nested lists, DELTA encodings) loads exactly', async () => {
    for (const [name, f] of Object.entries(ARROW_RS_PARQUET)) {
      const out = await parquetCase(`arrow-rs valid`, f.bytes(), `fuzz/${name}.parquet`);
      if (isHang(out)) return violation(`${name} did not load within the time limit`);
      expect(out?.records.map(({ instruction, input, output, type }) => ({ instruction, input, output, type })), name).toEqual(f.records);
      expect(out?.counts.bad, name).toBe(f.bad);
    }
  });

  it('parquet written by arrow-rs: byte flips, edits and truncation (each case in a worker with a hard time limit)', async () => {
    const names = Object.keys(ARROW_RS_PARQUET) as (keyof typeof ARROW_RS_PARQUET)[];
    await assertIsolated(
      (slow) =>
        fc.asyncProperty(fc.constantFrom(...names), byteMutations(3), async (name, muts) => {
          const out = await parquetCase('arrow-rs byte edits', mutateBytes(ARROW_RS_PARQUET[name].bytes(), muts), `fuzz/${name}.parquet`, slow);
          if (isHang(out)) slow.add('arrow-rs byte edits', out.bytes, `no answer after ${out.ms.toFixed(0)} ms`);
        }),
      fuzzParams(2043, 800),
      `Parquet files (hex) the import did not finish:\n`,
    );
  }, FUZZ_TEST_TIMEOUT_MS);

  it('type names that are Object.prototype members stay plain names (regression: "constructor" was the Object function)', async () => {
    const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
    const text = names.map((t) => JSON.stringify({ instruction: 'q', output: 'a', task_type: t })).join('\n');
    const res = await importCase('prototype type names', new TextEncoder().encode(text), 'fuzz/proto.jsonl');
    expect(res!.records.map((r) => r.type)).toEqual(names);
    expect(Object.entries(res!.counts.byType)).toEqual(names.map((n) => [n, 1]));
    const mapped = await parseDataset(new TextEncoder().encode(text), 'fuzz/proto.jsonl', { typeMapping: { __proto__x: 'y' } });
    expect(mapped.records.map((r) => r.type)).toEqual(names);
  });

  // Regressions found by the Parquet byte-edit property (each a one-byte change of PARQUET_BASE).
  it('regression: damaged Parquet footers and row counts are refused (were TypeErrors, or records the footer does not declare)', async () => {
    const cases: [number, number, RegExp][] = [
      [148, 120, /not a readable Parquet file: a column of the schema has no name/], // was TypeError: reading 'toLowerCase'
      [142, 0x0e, /not a readable Parquet file: /], // was TypeError from hyparquet's parquetSchema, outside the try
      [195, 1, /not a readable Parquet file: the footer's row count \(num_rows\) is true, not a non-negative integer/], // was: 3 records imported from a 1-row file
    ];
    for (const [at, value, want] of cases) {
      const bytes = parquetBase();
      bytes[at] = value;
      const out = await parquetCase('regression: parquet', bytes, 'fuzz/damaged.parquet');
      expect(isHang(out) ? 'hang' : out === null ? 'refused' : 'loaded', `byte ${at} = ${value}`).toBe('refused');
      const r = await parquetRunner.run<ImportResult>('fuzzParseDataset', [bytes, 'fuzz/damaged.parquet']);
      expect(r.kind === 'error' ? r.error.message : r.kind).toMatch(want);
    }
  });

  // Regression: PARQUET_BASE with one byte changed (offset 107, 0x15 -> 0x00), so the task_type
  // page's DATA_PAGE_V2 header loses its repetition_levels_byte_length field. hyparquet then set its
  // page reader's offset to undefined, every read landed on byte 0 and readRleBitPackedHybrid never
  // advanced: parseDataset never returned (a synchronous loop; in the browser it froze the tab).
  // parquet-guard.ts now refuses the header before hyparquet reads it.
  it('regression: a Parquet page header without repetition_levels_byte_length is refused, not an endless loop', async () => {
    const ok = await parquetCase('regression: parquet hang', parquetBase(), 'fuzz/hang.parquet');
    expect(isHang(ok) || ok === null ? null : ok.counts.total, 'the unedited file loads').toBe(3);
    const bytes = parquetBase();
    bytes[107] = 0x00;
    const r = await parquetRunner.run<ImportResult>('fuzzParseDataset', [bytes, 'fuzz/hang.parquet']);
    expect(r.kind).toBe('error');
    expect(r.kind === 'error' ? r.error.message : '').toBe(
      'fuzz/hang.parquet: not a readable Parquet file: row group 1 of 1, column "task_type", page 1 (byte 90 of the file): ' +
        'the DATA_PAGE_V2 header has no repetition_levels_byte_length (field 6), which is required',
    );
    expect(r.ms).toBeLessThan(1000);
  });

  // Regression: hyparquet decodes string columns with a default TextDecoder, which strips a leading
  // U+FEFF, so such a cell lost its first character. The importer decodes them itself.
  it('regression: a Parquet string cell starting with U+FEFF keeps it', async () => {
    const buf = parquetWriteBuffer({
      columnData: [
        { name: 'instruction', data: ['\ufeffq'], type: 'STRING' },
        { name: 'output', data: ['a'], type: 'STRING' },
      ],
    });
    const res = await parseDataset(new Uint8Array(buf), 'fuzz/bom.parquet');
    expect(res.records[0].instruction).toBe('\ufeffq');
  });
});
