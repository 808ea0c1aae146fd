/**
 * What an imported dataset is made of, and how one raw record becomes an InstructionRecord: the
 * result types, the whole-file error, and the Collector that checks each record's shape (official,
 * Alpaca or chat) and data type, keeps the good ones and reports every problem of the bad ones.
 * The rules (record shapes, data types, locations) are described at the top of import.ts.
 */
import type { InstructionRecord } from './template';
import { DOWNSTREAM_TASK, WORLD_KNOWLEDGE } from '../method/data-types';

/** Errors named in the message when no record is usable (the rest are counted). */
const ERRORS_IN_MESSAGE = 3;

export type DatasetFormat = 'json' | 'jsonl' | 'csv' | 'tsv' | 'parquet';
type RecordShape = 'official' | 'alpaca' | 'chat';

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

/** Throws a DatasetImportError for the file being read. */
export type Refuse = (reason: string) => never;

/** The fields that can hold a record's data type, in the order they are looked at. */
export const TYPE_FIELDS = ['task_type', 'type', 'task'] as const;

/** A record-like value: an object that is not an array or binary data. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** What kind of value `v` is, for messages ("a string", "an array", ...). */
export function describeValue(v: unknown): string {
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
// Record validation

/** Checks the raw records one by one, keeps the good ones and their counts, reports the bad ones. */
export class Collector {
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
      const shown = this.errors.slice(0, ERRORS_IN_MESSAGE).map(formatImportError);
      const more = this.errors.length > shown.length ? `; and ${this.errors.length - shown.length} more` : '';
      throw new DatasetImportError(
        this.fileName,
        this.total === 0
          ? 'no records found'
          : this.total === 1 ? `no usable record: the only record is bad (${shown.join('; ')}${more})` : `no usable record: all ${this.total} records are bad (${shown.join('; ')}${more})`,
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
