/**
 * The importer's Parquet reader (every page checked by src/data/parquet-guard.ts, Snappy by
 * src/data/snappy.ts, then hyparquet) against hyparquet with hyparquet-compressors alone, run in a
 * worker with a deadline (tools/bench/parquet-alone.ts). Three measures:
 *
 *   1. damaged files: the hand-built files of parquet-guard.test.ts (each made hyparquet loop), both
 *      readers in a child process with a 10 s limit (a worker filling its heap aborts Node whole);
 *   2. byte edits: files from hyparquet-writer (random records, Snappy or none) with 1-3 byte edits
 *      (the fuzz suite's byteMutations), both readers on each case in a worker with a 2 s limit;
 *      the outcome of each is counted: loaded, refused by a check, refused after a crash inside
 *      the decoder (TypeError, RangeError, ...), no answer, worker died;
 *   3. speed: the demo training data (public/data/demo-train.jsonl) as a Parquet file, and the same
 *      records 20 times over with every value made unique, and 4,000 long records (2-6 KB of seeded
 *      words each), read by both in this process, alternated, and by the alternative through a
 *      worker (the bytes in, the rows back, the records made here).
 *
 *   npx vite-node tools/bench/parquet-readers.ts [--only damaged,edits,speed] [--cases N] [--rounds N] [--json FILE]
 */
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import fc from 'fast-check';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { MAX_DATASET_RECORDS, parseDataset } from '../../src/data/import';
import { Collector } from '../../src/data/records';
import { byteMutations, mutateBytes } from '../../src/fuzz/bytes';
import { HANG_CONFIRM_MS } from '../../src/fuzz/harness';
import { IsolatedRunner, transpiledModule } from '../../src/fuzz/isolated';
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
} from '../../src/test/parquet-file';
import { collectRows, parseParquetAlone, type ReadSummary } from './parquet-alone';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const CASES = arg('--cases', 400);
const ROUNDS = arg('--rounds', 5);
const jsonAt = process.argv.indexOf('--json');
const JSON_FILE = jsonAt >= 0 ? process.argv[jsonAt + 1] : undefined;
const onlyAt = process.argv.indexOf('--only');
/** Which measures to run: damaged, edits, speed (all by default). */
const ONLY = onlyAt >= 0 ? process.argv[onlyAt + 1].split(',') : ['damaged', 'edits', 'speed'];

/** Limit of one byte-edit case (ms); a case past it is tried again with HANG_CONFIRM_MS. */
const CASE_MS = 2000;

type Reader = 'ours' | 'alone';
const ENTRY: Record<Reader, string> = { ours: 'benchOurs', alone: 'benchAlone' };

type Outcome =
  | 'loaded'
  | 'refused: the footer (hyparquet reads it in both)'
  | 'refused: a page, named (row group, column, page)'
  | "refused: a page, hyparquet's message"
  | 'refused: a page, a crash message (TypeError, RangeError, ...)'
  | 'refused: the records (none usable, row counts)'
  | 'no answer'
  | 'worker died'
  | 'process aborted';

/** Messages the JavaScript engine writes for a crash (the importer's checks never say these). */
const CRASH_TEXT = /Cannot read properties|is not a function|is not iterable|is not defined|Invalid typed array length|Invalid array length|out of bounds|outside the bounds|Maximum call stack|Array buffer allocation|Cannot convert|Invalid string length|Cannot mix BigInt/;
const BUILTIN = new Set(['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError', 'EvalError', 'URIError']);

function classify(s: ReadSummary): Outcome {
  if (s.kind === 'load') return 'loaded';
  if (/row group \d+ of \d+, column "/.test(s.message)) return 'refused: a page, named (row group, column, page)';
  if (/: the Parquet data could not be read: /.test(s.message)) {
    return BUILTIN.has(s.cause) || CRASH_TEXT.test(s.message) ? 'refused: a page, a crash message (TypeError, RangeError, ...)' : "refused: a page, hyparquet's message";
  }
  if (/: not a readable Parquet file: /.test(s.message)) return 'refused: the footer (hyparquet reads it in both)';
  return 'refused: the records (none usable, row counts)';
}

/**
 * Runs one case in a child process with a 384 MB heap (the fuzz worker's) and `limitMs`: a worker
 * is not enough for these files, since one that fills its heap can abort the whole Node process.
 */
function inProcess(url: string, reader: Reader, bytes: Uint8Array, name: string, limitMs: number): { outcome: Outcome; summary?: ReadSummary; ms: number } {
  const script = `const m = await import(${JSON.stringify(url)}); const fs = await import('node:fs');
    const r = await m.${ENTRY[reader]}(new Uint8Array(fs.readFileSync(0)), ${JSON.stringify(name)}); process.stdout.write(JSON.stringify(r));`;
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--max-old-space-size=384', '--input-type=module', '-e', script], { input: bytes, timeout: limitMs, killSignal: 'SIGKILL', encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') return { outcome: 'no answer', ms };
  if (r.status !== 0) return { outcome: 'process aborted', ms, summary: { kind: 'refused', message: `exit ${r.status ?? r.signal}: ${r.stderr.split('\n').find((l) => /FATAL|Error/.test(l)) ?? ''}`, cause: 'abort' } };
  const summary = JSON.parse(r.stdout) as ReadSummary;
  return { outcome: classify(summary), summary, ms };
}

/** Runs one case in the worker; a case past `limit` is confirmed with HANG_CONFIRM_MS. */
async function isolated(runner: IsolatedRunner, reader: Reader, bytes: Uint8Array, name: string, limit: number): Promise<{ outcome: Outcome; summary?: ReadSummary; ms: number }> {
  let r = await runner.run<ReadSummary>(ENTRY[reader], [bytes, name], limit);
  if (r.kind === 'hang' && limit < HANG_CONFIRM_MS) r = await runner.run<ReadSummary>(ENTRY[reader], [bytes, name], HANG_CONFIRM_MS);
  if (r.kind === 'hang') return { outcome: 'no answer', ms: r.ms };
  if (r.kind === 'died') return { outcome: 'worker died', ms: r.ms };
  if (r.kind === 'error') throw new Error(`${reader} threw outside its summary: ${r.error.message}`);
  return { outcome: classify(r.value), summary: r.value, ms: r.ms };
}

// ---------------------------------------------------------------------------------------------
// 1. The hand-built damaged files of parquet-guard.test.ts

function optionalOutputV2(values: readonly string[], drop: number[] = []): Column {
  const def = rleRun(values.length, 1);
  const body = concat(def, plainStrings(values));
  return { name: 'output', type: 6, repetition: 1, utf8: true, numValues: values.length, pages: [{ header: v2Header({ size: body.length, numValues: values.length, defLength: def.length, drop }), body }] };
}

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

function damagedFiles(): [string, Uint8Array][] {
  const ins = (n: number): string[] => Array.from({ length: n }, (_, i) => `q${i}`);
  const outs = (n: number): string[] => Array.from({ length: n }, (_, i) => `a${i}`);
  const q = stringColumnV1('instruction', ['q']);
  const rle = concat(lengthPrefixed(concat([0xfe, 0xff, 0xff, 0xff, 0x0f], [1])), plainStrings(['a']));
  const snappy = concat([10], [0xfc, 0xfa, 0xff, 0xff, 0xff], [0, 0, 0, 0]);
  const children = stringColumnV1('output', ['a']);
  children.schemaExtra = [[5, { i32: -1 }]];
  const short = stringColumnV1('output', ['a']);
  short.sizeDelta = -2;
  return [
    ['a V2 page header without repetition_levels_byte_length', parquetFile([stringColumnV1('instruction', ins(70)), optionalOutputV2(outs(70), [6])], 70)],
    ['an RLE run of 2^31 - 1 levels in a one-value page', parquetFile([q, { name: 'output', type: 6, repetition: 1, utf8: true, numValues: 1, pages: [{ header: v1Header({ size: rle.length, numValues: 1 }), body: rle }] }], 1)],
    ['a bit-packed run whose count wraps negative', parquetFile([q, dictionaryOutputV2(['a'], concat([0], [0xff, 0xff, 0xff, 0xff, 0x03]), 1)], 1)],
    ['dictionary indices past the dictionary', parquetFile([q, dictionaryOutputV2(['a'], [1, 2, 5], 1)], 1)],
    ['a Snappy literal length of 2^32 - 6', parquetFile([q, { name: 'output', type: 6, repetition: 0, utf8: true, codec: 1, numValues: 1, pages: [{ header: v1Header({ size: snappy.length, uncompressed: 10, numValues: 1 }), body: snappy }] }], 1)],
    ['a schema num_children of -1', parquetFile([q, children], 1)],
    ['a page 2 bytes longer than its chunk', parquetFile([q, short], 1)],
  ];
}

// ---------------------------------------------------------------------------------------------
// 2. Byte edits of written files

const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 });
const record = fc.record({ instruction: text, output: text, task_type: fc.constantFrom('0', '1', 'qa', 'math') });
const fileCase = fc.record({ rows: fc.array(record, { minLength: 1, maxLength: 6 }), codec: fc.constantFrom('SNAPPY' as const, 'UNCOMPRESSED' as const), muts: byteMutations(3) });

function writeRecords(rows: readonly Record<string, string>[], codec: 'SNAPPY' | 'UNCOMPRESSED'): Uint8Array<ArrayBuffer> {
  const names = ['instruction', 'input', 'output', 'task_type'].filter((k) => rows.some((r) => k in r));
  return new Uint8Array(parquetWriteBuffer({ codec, columnData: names.map((name) => ({ name, data: rows.map((r) => r[name] ?? null), type: 'STRING' as const })) }));
}

// ---------------------------------------------------------------------------------------------
// 3. Speed

/** `n` records of 2-6 KB of words from a seeded generator (little for a dictionary or Snappy to fold). */
function longRecords(n: number): Record<string, string>[] {
  let x = 12345;
  const next = (): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  const words = (k: number): string => Array.from({ length: k }, () => (next() % 1_000_000).toString(36)).join(' ');
  return Array.from({ length: n }, (_, i) => ({ instruction: words(100 + (next() % 300)), output: words(300 + (next() % 600)), task_type: String(i % 2) }));
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const url = await transpiledModule('tools/bench/parquet-alone.ts');
  const runner = new IsolatedRunner(url);
  const report: Record<string, unknown> = {};
  try {
    if (ONLY.includes('damaged')) {
    console.log('1. Damaged files (parquet-guard.test.ts), each reader in a child process with a 10 s limit');
    const damaged: Record<string, Record<Reader, string>> = {};
    for (const [what, bytes] of damagedFiles()) {
      const row = {} as Record<Reader, string>;
      for (const reader of ['ours', 'alone'] as const) {
        const r = inProcess(url, reader, bytes, 'damaged.parquet', HANG_CONFIRM_MS);
        const s = r.summary;
        row[reader] = `${r.outcome} (${r.ms.toFixed(0)} ms)${s?.kind === 'refused' ? `: ${s.message}` : s?.kind === 'load' ? `: ${s.good} records` : ''}`;
      }
      damaged[what] = row;
      console.log(`  ${what}\n    ours:  ${row.ours}\n    alone: ${row.alone}`);
    }
    report.damaged = damaged;
    }

    if (ONLY.includes('edits')) {
    console.log(`\n2. Byte edits: ${CASES} files from hyparquet-writer with 1-3 byte edits, each reader in a worker (${CASE_MS} ms, then ${HANG_CONFIRM_MS} ms)`);
    const counts: Record<Reader, Partial<Record<Outcome, number>>> = { ours: {}, alone: {} };
    const examples: Record<string, string> = {};
    let aloneLoadedOursRefused = 0;
    /** What ours said of files the alternative loaded: stricter checks, or damage the alternative reads as data. */
    const oursWhereAloneLoaded: string[] = [];
    let oursLoadedAloneRefused = 0;
    const cases = fc.sample(fileCase, { numRuns: CASES, seed: 2042 });
    for (const [i, c] of cases.entries()) {
      const bytes = mutateBytes(writeRecords(c.rows, c.codec), c.muts);
      const out = {} as Record<Reader, Outcome>;
      let lastOurs = '';
      for (const reader of ['ours', 'alone'] as const) {
        const r = await isolated(runner, reader, bytes, 'fuzz/data.parquet', CASE_MS);
        out[reader] = r.outcome;
        if (reader === 'ours' && r.summary?.kind === 'refused') lastOurs = r.summary.message;
        counts[reader][r.outcome] = (counts[reader][r.outcome] ?? 0) + 1;
        const key = `${reader}: ${r.outcome}`;
        if (!(key in examples) || (examples[key].length < 400 && r.summary?.kind === 'refused')) {
          examples[key] = r.summary?.kind === 'refused' ? r.summary.message : Buffer.from(bytes).toString('hex').slice(0, 400);
        }
      }
      if (out.alone === 'loaded' && out.ours !== 'loaded') {
        aloneLoadedOursRefused++;
        oursWhereAloneLoaded.push(lastOurs.replace(/^[^:]*: /, '').replace(/\(byte \d+ of the file\)/, '(byte N)'));
      }
      if (out.ours === 'loaded' && out.alone !== 'loaded') oursLoadedAloneRefused++;
      if ((i + 1) % 100 === 0) console.log(`  ${i + 1} cases`);
    }
    for (const reader of ['ours', 'alone'] as const) console.log(`  ${reader}: ${JSON.stringify(counts[reader])}`);
    console.log(`  loaded by the alternative but refused by ours: ${aloneLoadedOursRefused}; loaded by ours but refused by the alternative: ${oursLoadedAloneRefused}`);
    const said = new Map<string, number>();
    for (const m of oursWhereAloneLoaded) said.set(m.replace(/\d+/g, 'N'), (said.get(m.replace(/\d+/g, 'N')) ?? 0) + 1);
    console.log('  what ours said of the files the alternative loaded:');
    for (const [m, n] of [...said].sort((a, b) => b[1] - a[1])) console.log(`    ${n} x ${m.slice(0, 240)}`);
    console.log('  an example of each outcome:');
    for (const [k, v] of Object.entries(examples)) console.log(`    ${k}: ${v.slice(0, 300)}`);
    report.byteEdits = { cases: CASES, counts, aloneLoadedOursRefused, oursLoadedAloneRefused, oursWhereAloneLoaded, examples };
    }

    if (ONLY.includes('speed')) {
    console.log(`\n3. Speed: median of ${ROUNDS} rounds, the readers alternated, CPU time and wall time`);
    const demo = await parseDataset(await readFile('public/data/demo-train.jsonl'), 'demo-train.jsonl');
    const demoRows = demo.records.map((r) => ({ instruction: r.instruction, input: r.input, output: r.output, task_type: r.type }));
    const speed: Record<string, unknown> = {};
    for (const [label, rows] of [
      ['demo', demoRows],
      // Every value made unique (a copy number), so the writer cannot fold the copies into dictionaries.
      ['demo x20, values unique', Array.from({ length: 20 }, (_, k) => demoRows.map((r) => ({ instruction: `${r.instruction} (${k})`, input: r.input, output: `${r.output} (${k})`, task_type: r.task_type }))).flat()],
      ['4,000 long records', longRecords(4000)],
    ] as const) {
      const bytes = writeRecords(rows, 'SNAPPY');
      type Way = 'ours' | 'alone' | 'alone in a worker';
      const ways: Way[] = ['ours', 'alone', 'alone in a worker'];
      // Wall time and CPU time (the process's user + system, the worker's thread included): on a
      // machine shared with other jobs the CPU time is the steadier measure.
      const wall: Record<Way, number[]> = { ours: [], alone: [], 'alone in a worker': [] };
      const cpu: Record<Way, number[]> = { ours: [], alone: [], 'alone in a worker': [] };
      const read: Record<Way, () => Promise<number>> = {
        ours: async () => (await parseDataset(bytes, `${label}.parquet`)).counts.good,
        alone: async () => {
          const b = await parseParquetAlone(bytes, `${label}.parquet`);
          return b.kind === 'load' ? b.good : -1;
        },
        'alone in a worker': async () => {
          const w = await runner.run<Record<string, unknown>[]>('readRowsAlone', [bytes], 120_000);
          const c = w.kind === 'ok' ? collectRows(w.value, new Collector(`${label}.parquet`, {}, MAX_DATASET_RECORDS)) : null;
          return c?.kind === 'load' ? c.good : -1;
        },
      };
      for (let r = 0; r < ROUNDS + 1; r++) {
        for (const way of ways) {
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          const good = await read[way]();
          const t = performance.now() - t0;
          const c = process.cpuUsage(c0);
          if (good !== rows.length) throw new Error(`${label}: ${way} read ${good} records of ${rows.length}`);
          if (r === 0) continue; // warm-up
          wall[way].push(t);
          cpu[way].push((c.user + c.system) / 1000);
        }
      }
      const mw = Object.fromEntries(ways.map((k) => [k, median(wall[k])])) as Record<Way, number>;
      const mc = Object.fromEntries(ways.map((k) => [k, median(cpu[k])])) as Record<Way, number>;
      speed[label] = { rows: rows.length, bytes: bytes.length, medianWallMs: mw, medianCpuMs: mc };
      const both = (k: Way): string => `${mc[k].toFixed(0)} / ${mw[k].toFixed(0)} ms`;
      console.log(
        `  ${label}: ${rows.length} rows, ${(bytes.length / 2 ** 20).toFixed(2)} MiB (CPU / wall): ours ${both('ours')}, alone ${both('alone')} ` +
          `(ours / alone ${(mc.ours / mc.alone).toFixed(2)} / ${(mw.ours / mw.alone).toFixed(2)}), alone in a worker ${both('alone in a worker')}`,
      );
    }
    report.speed = speed;
    }
    if (JSON_FILE) await writeFile(JSON_FILE, JSON.stringify(report, null, 2));
  } finally {
    await runner.close();
  }
}

await main();
