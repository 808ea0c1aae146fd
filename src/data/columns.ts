/**
 * Which columns of a table (a Hub dataset's Parquet files) make an instruction record, and how a row
 * becomes the raw record the importer checks (records.ts `Collector.add`).
 *
 * Recognised layouts (column names compared without case):
 *   official  instruction, input?, output, task_type      (the type from task_type: 0/1 or a name)
 *   dolly     instruction, context, response, category    (databricks-dolly-15k: the type from category)
 *   alpaca    instruction, input?, output                 (one type for the whole dataset)
 *   chat      messages: [{role, content}, ...]            (one type for the whole dataset)
 * Any other table is mapped by hand (`custom`): which column is the instruction, the input
 * (optional) and the output, or the messages.
 *
 * The data type comes from a column (its values read as the importer reads `task_type`: 1 and 0 are
 * the official types, other strings are names) or is one name for the whole dataset.
 */
import { DOWNSTREAM_TASK } from '../method/data-types';

type ColumnLayout = 'official' | 'dolly' | 'alpaca' | 'chat' | 'custom';

/** Where a record's data type comes from. */
type TypeSource = { column: string } | { name: string };

export interface ColumnMapping {
  layout: ColumnLayout;
  /** Column names as the table spells them. A chat mapping sets `messages`; the others `instruction` and `output`. */
  instruction?: string;
  input?: string;
  output?: string;
  messages?: string;
  type: TypeSource;
}

/** The type given to a dataset without a type column unless the user names another. */
export const DEFAULT_DATASET_TYPE = DOWNSTREAM_TASK;

/** The recognised layout of these columns, or null when the user must map them. */
export function detectMapping(columns: readonly string[], fallbackType = DEFAULT_DATASET_TYPE): ColumnMapping | null {
  const lower = new Map(columns.map((c) => [c.toLowerCase(), c] as const));
  const col = (name: string): string | undefined => lower.get(name);
  const fixed: TypeSource = { name: fallbackType };
  if (col('instruction') && col('output')) {
    const base = { instruction: col('instruction'), input: col('input'), output: col('output') };
    return col('task_type') ? { layout: 'official', ...base, type: { column: col('task_type')! } } : { layout: 'alpaca', ...base, type: fixed };
  }
  if (col('instruction') && col('response')) {
    return { layout: 'dolly', instruction: col('instruction'), input: col('context'), output: col('response'), type: col('category') ? { column: col('category')! } : fixed };
  }
  if (col('messages')) return { layout: 'chat', messages: col('messages'), type: fixed };
  return null;
}

/** The columns a mapping reads (each once). */
export function mappingColumns(m: ColumnMapping): string[] {
  const cols = m.messages !== undefined ? [m.messages] : [m.instruction, m.input, m.output];
  if ('column' in m.type) cols.push(m.type.column);
  return [...new Set(cols.filter((c): c is string => c !== undefined && c !== ''))];
}

/** What is wrong with a mapping for these columns (a missing or unset column), or null. */
export function mappingProblem(m: ColumnMapping, columns: readonly string[]): string | null {
  const list = `the columns are ${columns.map((c) => `"${c}"`).join(', ')}`;
  if (m.messages === undefined) {
    if (!m.instruction) return `choose the instruction column (${list})`;
    if (!m.output) return `choose the output column (${list})`;
  }
  if ('name' in m.type && m.type.name.trim() === '') return 'name the data type of the dataset, or choose the column that holds it';
  const missing = mappingColumns(m).filter((c) => !columns.includes(c));
  if (missing.length > 0) return `no column ${missing.map((c) => `"${c}"`).join(', ')}: ${list}`;
  return null;
}

const utf8 = new TextDecoder();

/** A cell as JSON can carry it: bytes as UTF-8 text, 64-bit integers as their digits. */
function cell(v: unknown): unknown {
  if (v instanceof Uint8Array) return utf8.decode(v);
  if (typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return v.map(cell);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, cell(x)]));
  return v;
}

/**
 * One row as a raw record ({instruction, input, output, type} or {messages, type}); the importer
 * checks it (an absent or empty field is reported there, with the record's line).
 */
export function rowRecord(row: Record<string, unknown>, m: ColumnMapping): Record<string, unknown> {
  const type = 'column' in m.type ? cell(row[m.type.column]) : m.type.name;
  if (m.messages !== undefined) return { messages: cell(row[m.messages]), type };
  return {
    instruction: cell(row[m.instruction!]),
    input: m.input ? (cell(row[m.input]) ?? '') : '',
    output: cell(row[m.output!]),
    type,
  };
}

/** One dataset of a mix: its name (for messages) and its rows as raw records. */
export interface MixPart {
  label: string;
  records: readonly Record<string, unknown>[];
}

/**
 * Several datasets as one JSON Lines file (what the importer reads, checks and keeps), and the lines
 * each dataset took (1-based, inclusive), so that a problem the importer reports by line names its
 * dataset and row.
 */
export function mixJsonl(parts: readonly MixPart[]): { text: string; lines: { label: string; first: number; last: number }[] } {
  const out: string[] = [];
  const lines: { label: string; first: number; last: number }[] = [];
  for (const p of parts) {
    const first = out.length + 1;
    for (const r of p.records) out.push(JSON.stringify(r));
    lines.push({ label: p.label, first, last: out.length });
  }
  return { text: out.join('\n') + '\n', lines };
}
