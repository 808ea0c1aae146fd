import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { DatasetImportError, findInvalidUtf8, formatImportError, locateJsonError, parseDataset, typeIndexMapping, type ImportResult } from './import';
import { DOWNSTREAM_TASK, WORLD_KNOWLEDGE } from '../method/data-types';
import { makeBatch } from './batch';

const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`./fixtures/${name}`, import.meta.url)));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const errorLines = (r: ImportResult): string[] => r.errors.map(formatImportError);
const brief = (r: ImportResult) => r.records.map(({ instruction, input, output, type }) => ({ instruction, input, output, type }));

async function refusal(bytes: Uint8Array, fileName: string, opts?: Parameters<typeof parseDataset>[2]): Promise<string> {
  try {
    await parseDataset(bytes, fileName, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(DatasetImportError);
    return (e as Error).message;
  }
  throw new Error(`${fileName} was not refused`);
}

describe('official JSON', () => {
  it('maps task_type 0/1 to the official names and reports every bad record by array index', async () => {
    const r = await parseDataset(fixture('official.json'), 'official.json');
    expect(r.format).toBe('json');
    expect(brief(r)).toEqual([
      { instruction: 'What is the capital of France?', input: '', output: 'Paris.', type: WORLD_KNOWLEDGE },
      { instruction: 'Translate to German.', input: 'Good morning', output: 'Guten Morgen', type: DOWNSTREAM_TASK },
      { instruction: 'Who wrote Hamlet?', input: '', output: 'Shakespeare.', type: WORLD_KNOWLEDGE },
      { instruction: 'Classify the sentiment.', input: 'I love it', output: 'positive', type: DOWNSTREAM_TASK },
      { instruction: 'Name a prime.', input: '', output: '7', type: 'math' },
    ]);
    expect(r.records.map((x) => x.location)).toEqual([0, 1, 8, 9, 10].map((index) => ({ kind: 'index', index })));
    expect(r.records.map((x) => x.typeDefaulted)).toEqual([false, false, false, true, false]);
    expect(errorLines(r)).toEqual([
      'index 2: output: empty output',
      'index 3: instruction: missing instruction',
      'index 4: output: output is a number, not a string',
      'index 5: task_type: task_type is 2; it must be 0 (downstream task), 1 (world knowledge) or a type name',
      'index 6: task_type: task_type is a boolean; it must be 0 (downstream task), 1 (world knowledge) or a type name',
      'index 7: record: expected an object, found a string',
      'index 11: instruction: instruction is a number, not a string',
      'index 11: output: empty output',
    ]);
    expect(r.errors[0]).toEqual({ location: { kind: 'index', index: 2 }, field: 'output', message: 'empty output' });
    expect(r.counts).toEqual({
      total: 12,
      good: 5,
      bad: 7,
      defaultedType: 1,
      byType: { [WORLD_KNOWLEDGE]: 2, [DOWNSTREAM_TASK]: 2, math: 1 },
      byShape: { official: 4, alpaca: 1, chat: 0 },
    });
    expect(r.defaultType).toBe(DOWNSTREAM_TASK);
  });

  it('reads an object with one array field, locating records inside it', async () => {
    const r = await parseDataset(fixture('wrapped.json'), 'wrapped.json');
    expect(brief(r)).toEqual([
      { instruction: 'What is 2 + 2?', input: '', output: '4', type: DOWNSTREAM_TASK },
      { instruction: 'Which planet is largest?', input: '', output: 'Jupiter', type: WORLD_KNOWLEDGE },
    ]);
    expect(r.records[1].location).toEqual({ kind: 'index', index: 1, field: 'data' });
    expect(errorLines(r)).toEqual(['index 2 of "data": output: missing output']);
  });

  it('applies a default type and a type mapping', async () => {
    const text = JSON.stringify([
      { instruction: 'a', output: 'b' },
      { instruction: 'c', output: 'd', task_type: 'qa' },
      { instruction: 'e', output: 'f', task_type: 7 },
      { instruction: 'g', output: 'h', task_type: 1 },
    ]);
    const r = await parseDataset(utf8(text), 'x.json', { defaultType: ' chit-chat ', typeMapping: { qa: WORLD_KNOWLEDGE, '7': 'code' } });
    expect(r.records.map((x) => x.type)).toEqual(['chit-chat', WORLD_KNOWLEDGE, 'code', WORLD_KNOWLEDGE]);
    expect(r.counts.defaultedType).toBe(1);
    expect(r.defaultType).toBe('chit-chat');
    expect(r.errors).toEqual([]);
  });

  it('reads a .json file that holds JSON Lines, with a note', async () => {
    const r = await parseDataset(utf8('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d", "task_type": 1}\n'), 'lines.json');
    expect(r.format).toBe('jsonl');
    expect(r.records.map((x) => x.location)).toEqual([
      { kind: 'line', line: 1 },
      { kind: 'line', line: 2 },
    ]);
    expect(r.notes).toEqual(['the file is named .json but holds one JSON record per line; it was read as JSON Lines']);
  });

  it('accepts a byte-order mark and an input of null', async () => {
    const r = await parseDataset(utf8('\ufeff[{"instruction": "a", "input": null, "output": "b"}]'), 'bom.json');
    expect(brief(r)).toEqual([{ instruction: 'a', input: '', output: 'b', type: DOWNSTREAM_TASK }]);
  });
});

describe('JSON Lines', () => {
  it('skips blank lines and reports bad lines by 1-based line number', async () => {
    const r = await parseDataset(fixture('alpaca.jsonl'), 'alpaca.jsonl');
    expect(r.format).toBe('jsonl');
    expect(brief(r)).toEqual([
      { instruction: 'Give a synonym for happy.', input: '', output: 'joyful', type: DOWNSTREAM_TASK },
      { instruction: 'Add the numbers.', input: '2 3', output: '5', type: 'math' },
      { instruction: 'Capital of Japan?', input: '', output: 'Tokyo', type: WORLD_KNOWLEDGE },
    ]);
    expect(r.records.map((x) => x.location)).toEqual([1, 3, 8].map((line) => ({ kind: 'line', line })));
    const line4 = '{"instruction": "broken", "output": }';
    expect(errorLines(r)).toEqual([
      `line 4: record: invalid JSON at column ${line4.indexOf('}') + 1}: unexpected character "}"`,
      'line 5: output: missing output',
      'line 7: record: expected an object, found an array',
      'line 9: task_type: task_type is -1; it must be 0 (downstream task), 1 (world knowledge) or a type name',
    ]);
    expect(r.counts).toMatchObject({ total: 7, good: 3, bad: 4, defaultedType: 1, byShape: { official: 2, alpaca: 1, chat: 0 } });
  });

  it('reads chat records (.ndjson): system prepended, user turns joined, last assistant is the output', async () => {
    const r = await parseDataset(fixture('chat.ndjson'), 'chat.ndjson');
    expect(brief(r)).toEqual([
      { instruction: 'You are terse.\nHi', input: '', output: 'Hello.', type: DOWNSTREAM_TASK },
      { instruction: '2+2?\nand 3+3?', input: '', output: '6', type: DOWNSTREAM_TASK },
      { instruction: 'Who painted the Mona Lisa?', input: '', output: 'Leonardo da Vinci.', type: WORLD_KNOWLEDGE },
    ]);
    expect(r.records.map((x) => [x.location, x.shape, x.typeDefaulted])).toEqual([
      [{ kind: 'line', line: 1 }, 'chat', false],
      [{ kind: 'line', line: 2 }, 'chat', true],
      [{ kind: 'line', line: 7 }, 'chat', false],
    ]);
    expect(errorLines(r)).toEqual([
      'line 3: messages: no assistant message (the last assistant message is the output)',
      'line 4: messages[0].role: unknown role "bot"; expected system, user or assistant',
      'line 4: messages[1].content: content is an array, not a string',
      'line 5: messages[1].content: empty output (the last assistant message is empty)',
      'line 6: messages: messages is a string, not a list of {role, content}',
    ]);
    expect(r.counts).toMatchObject({ total: 7, good: 3, bad: 4, defaultedType: 1, byShape: { official: 0, alpaca: 0, chat: 3 } });
  });

  it('reads a .jsonl file that holds a JSON array, with a note', async () => {
    const r = await parseDataset(utf8('[{"instruction": "a", "output": "b"}]'), 'x.jsonl');
    expect(r.format).toBe('json');
    expect(r.records[0].location).toEqual({ kind: 'index', index: 0 });
    expect(r.notes).toHaveLength(1);
  });

  it('counts lines the same with CRLF endings', async () => {
    const r = await parseDataset(utf8('{"instruction": "a", "output": "b"}\r\n\r\n{"instruction": "c"}\r\n'), 'crlf.jsonl');
    expect(errorLines(r)).toEqual(['line 3: output: missing output']);
  });
});

describe('CSV and TSV', () => {
  it('handles quoted newlines, doubled quotes and blank lines; reports rows by the line they start on', async () => {
    const r = await parseDataset(fixture('quoted.csv'), 'quoted.csv');
    expect(r.format).toBe('csv');
    expect(brief(r)).toEqual([
      { instruction: 'Write a haiku.', input: '', output: 'An old silent pond\na frog jumps in', type: DOWNSTREAM_TASK },
      { instruction: 'Capital of Italy?', input: '', output: 'Rome', type: WORLD_KNOWLEDGE },
      { instruction: 'He said "hi"', input: '', output: 'reply', type: WORLD_KNOWLEDGE },
      { instruction: 'Multi\nline instruction', input: 'context', output: 'out\nput', type: DOWNSTREAM_TASK },
    ]);
    expect(r.records.map((x) => x.location)).toEqual([2, 4, 6, 9].map((line) => ({ kind: 'line', line })));
    expect(r.records.map((x) => x.typeDefaulted)).toEqual([false, false, false, true]);
    expect(errorLines(r)).toEqual([
      'line 7: output: empty output',
      'line 8: record: 5 fields, but the header has 4',
      'line 12: record: CSV syntax: Quoted field unterminated',
    ]);
    expect(r.counts).toMatchObject({ total: 7, good: 4, bad: 3, defaultedType: 1 });
  });

  it('reads CRLF CSV with a case-insensitive header and a messages column holding JSON', async () => {
    const csv = 'Instruction , Output,Task_Type\r\n"a\r\nb",c,1\r\nd,e,0\r\n';
    const r = await parseDataset(utf8(csv), 'crlf.csv');
    expect(brief(r)).toEqual([
      { instruction: 'a\r\nb', input: '', output: 'c', type: WORLD_KNOWLEDGE },
      { instruction: 'd', input: '', output: 'e', type: DOWNSTREAM_TASK },
    ]);
    expect(r.records.map((x) => x.location)).toEqual([2, 4].map((line) => ({ kind: 'line', line })));
    const chat = 'messages,task_type\n"[{""role"": ""user"", ""content"": ""hi""}, {""role"": ""assistant"", ""content"": ""yo""}]",1\n"[{""role"": ",0\n';
    const c = await parseDataset(utf8(chat), 'chat.csv');
    expect(brief(c)).toEqual([{ instruction: 'hi', input: '', output: 'yo', type: WORLD_KNOWLEDGE }]);
    expect(errorLines(c)).toEqual(['line 3: messages: the "messages" cell is not valid JSON (column 11 of the cell: unexpected end of input)']);
  });

  it('reads TSV', async () => {
    const r = await parseDataset(fixture('data.tsv'), 'data.tsv');
    expect(r.format).toBe('tsv');
    expect(brief(r)).toEqual([
      { instruction: 'Capital of Spain?', input: '', output: 'Madrid', type: WORLD_KNOWLEDGE },
      { instruction: 'Reverse the word.', input: 'abc', output: 'cba', type: DOWNSTREAM_TASK },
    ]);
    expect(errorLines(r)).toEqual(['line 4: record: 2 fields, but the header has 4']);
  });
});

describe('Parquet', () => {
  it('reads official columns (INT64 task_type), reporting rows 1-based', async () => {
    const buf = parquetWriteBuffer({
      columnData: [
        { name: 'instruction', data: ['What is the boiling point of water?', null, 'Sort: b a', 'q'], type: 'STRING' },
        { name: 'input', data: ['', '', 'b a', null], type: 'STRING' },
        { name: 'output', data: ['100 C', 'x', 'a b', ''], type: 'STRING' },
        { name: 'task_type', data: [1n, 0n, 0n, 5n], type: 'INT64' },
        { name: 'unused', data: [1, 2, 3, 4], type: 'INT32' },
      ],
    });
    const r = await parseDataset(new Uint8Array(buf), 'train.parquet');
    expect(r.format).toBe('parquet');
    expect(brief(r)).toEqual([
      { instruction: 'What is the boiling point of water?', input: '', output: '100 C', type: WORLD_KNOWLEDGE },
      { instruction: 'Sort: b a', input: 'b a', output: 'a b', type: DOWNSTREAM_TASK },
    ]);
    expect(r.records.map((x) => x.location)).toEqual([
      { kind: 'row', row: 1 },
      { kind: 'row', row: 3 },
    ]);
    expect(errorLines(r)).toEqual([
      'row 2: instruction: missing instruction',
      'row 4: output: empty output',
      'row 4: task_type: task_type is 5; it must be 0 (downstream task), 1 (world knowledge) or a type name',
    ]);
  });

  it('reads a chat column (list of structs) and string types', async () => {
    const buf = parquetWriteBuffer({
      columnData: [
        {
          name: 'messages',
          data: [
            [
              { role: 'system', content: 'Be brief.' },
              { role: 'user', content: 'Capital of Peru?' },
              { role: 'assistant', content: 'Lima.' },
            ],
            [{ role: 'user', content: 'unanswered' }],
          ],
        },
        { name: 'type', data: ['world knowledge', 'world knowledge'], type: 'STRING' },
      ],
    });
    const r = await parseDataset(new Uint8Array(buf), 'chat.parquet');
    expect(brief(r)).toEqual([{ instruction: 'Be brief.\nCapital of Peru?', input: '', output: 'Lima.', type: WORLD_KNOWLEDGE }]);
    expect(errorLines(r)).toEqual(['row 2: messages: no assistant message (the last assistant message is the output)']);
  });

  it('refuses a Parquet file without an output column, and one that is not Parquet', async () => {
    const buf = parquetWriteBuffer({ columnData: [{ name: 'instruction', data: ['a'], type: 'STRING' }] });
    expect(await refusal(new Uint8Array(buf), 'no-output.parquet')).toBe('no-output.parquet: the Parquet file has no "output" column (columns: "instruction")');
    expect(await refusal(utf8('not parquet at all'), 'fake.parquet')).toMatch(/^fake\.parquet: not a readable Parquet file: /);
  });
});

describe('refusals', () => {
  it('an empty file', async () => {
    expect(await refusal(new Uint8Array(0), 'empty.jsonl')).toBe('empty.jsonl: the file is empty');
    expect(await refusal(utf8(' \n\n '), 'blank.csv')).toBe('blank.csv: the file is empty (only whitespace)');
  });

  it('an unsupported extension', async () => {
    expect(await refusal(utf8('x'), 'data.txt')).toBe('data.txt: unsupported file type ".txt"; use .json, .jsonl, .ndjson, .csv, .tsv or .parquet');
    expect(await refusal(utf8('x'), 'README')).toBe('README: unsupported file type (no extension); use .json, .jsonl, .ndjson, .csv, .tsv or .parquet');
  });

  it('invalid JSON, with line and column', async () => {
    const text = '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c" "output": "d"}\n]';
    expect(await refusal(utf8(text), 'bad.json')).toBe(`bad.json: invalid JSON at line 3, column 23: expected ',' or '}', found "\\""`);
    expect(await refusal(utf8('[{"instruction": "a",'), 'cut.json')).toBe('cut.json: invalid JSON at line 1, column 22: unexpected end of input');
  });

  it('JSON that is not an array of objects', async () => {
    expect(await refusal(utf8('[1, 2, 3]'), 'nums.json')).toBe('nums.json: the JSON array is not an array of objects (its first element is a number)');
    expect(await refusal(utf8('"text"'), 'str.json')).toBe('str.json: the JSON is a string, not an array of records');
    expect(await refusal(utf8('[]'), 'none.json')).toBe('none.json: the JSON array is empty: no records');
    expect(await refusal(utf8('{"instruction": "a", "output": "b"}'), 'one.json')).toBe('one.json: the JSON is a single record, not a list of records; wrap it in [ ]');
    expect(await refusal(utf8('{"train": [], "test": []}'), 'two.json')).toBe('two.json: the JSON object has several array fields ("train", "test"); expected exactly one array of records');
    expect(await refusal(utf8('{"meta": 1}'), 'obj.json')).toBe(
      'obj.json: the JSON is an object with no array field; expected a JSON array of records or an object with one array field such as {"data": [...]}',
    );
  });

  it('a file with no usable record', async () => {
    const text = '{"instruction": "a"}\n{"output": "b"}\n';
    expect(await refusal(utf8(text), 'bad.jsonl')).toBe('bad.jsonl: no usable record: all 2 records are bad (line 1: output: missing output; line 2: instruction: missing instruction)');
    const many = Array.from({ length: 5 }, () => '{"instruction": "a"}').join('\n');
    expect(await refusal(utf8(many), 'many.jsonl')).toBe(
      'many.jsonl: no usable record: all 5 records are bad (line 1: output: missing output; line 2: output: missing output; line 3: output: missing output; and 2 more)',
    );
    expect(await refusal(utf8('instruction,output\n'), 'header-only.csv')).toBe('header-only.csv: no records found');
    expect(await refusal(utf8('{"instruction": "a"}\n'), 'one.jsonl')).toBe('one.jsonl: no usable record: the only record is bad (line 1: output: missing output)');
  });

  it('a CSV row with a syntax problem names each problem once', async () => {
    // papaparse reports "Trailing quote on quoted field is malformed" once per quote it meets in the row.
    const r = await parseDataset(utf8('instruction,output\ng,h\n"a"b,c\n"d"e,f\n'), 'quotes.csv');
    expect(r.records).toHaveLength(1);
    expect(r.errors.map((e) => e.message)).toEqual(['CSV syntax: Trailing quote on quoted field is malformed; Quoted field unterminated']);
  });

  it('a CSV missing the instruction or output column', async () => {
    expect(await refusal(utf8('prompt,output\na,b\n'), 'cols.csv')).toBe('cols.csv: the CSV header has no "instruction" column (columns: "prompt", "output")');
    expect(await refusal(utf8('question\tanswer\na\tb\n'), 'cols.tsv')).toBe('cols.tsv: the TSV header has no "instruction" or "output" column (columns: "question", "answer")');
  });

  it('bytes that are not UTF-8, with the byte offset', async () => {
    const bytes = new Uint8Array([...utf8('[{"instruction": "caf'), 0xe9, ...utf8('", "output": "x"}]')]);
    expect(await refusal(bytes, 'latin1.json')).toBe('latin1.json: the file is not UTF-8 text: invalid byte 0xe9 at byte offset 21');
  });

  it('files over the size or record limit', async () => {
    expect(await refusal(utf8('[{"instruction": "a", "output": "b"}]'), 'big.json', { maxBytes: 10 })).toBe('big.json: the file is 37 bytes, over the 10 bytes limit');
    const lines = Array.from({ length: 4 }, (_, i) => `{"instruction": "q${i}", "output": "a"}`).join('\n');
    expect(await refusal(utf8(lines), 'many.jsonl', { maxRecords: 3 })).toBe('many.jsonl: 4 records, over the limit of 3; split the file or keep a sample');
    const csv = 'instruction,output\n' + Array.from({ length: 5 }, (_, i) => `q${i},a`).join('\n');
    expect(await refusal(utf8(csv), 'many.csv', { maxRecords: 3 })).toBe('many.csv: more than 3 records, over the limit of 3; split the file or keep a sample');
    // The defaults: 512 MB and one million records.
    const big = new Uint8Array(0);
    Object.defineProperty(big, 'byteLength', { value: 513 * 1024 * 1024 });
    expect(await refusal(big, 'huge.jsonl')).toBe('huge.jsonl: the file is 513 MB, over the 512 MB limit');
    const million = '{"instruction":"q","output":"a"}\n'.repeat(1_000_001);
    expect(await refusal(utf8(million), 'million.jsonl')).toBe('million.jsonl: 1,000,001 records, over the limit of 1,000,000; split the file or keep a sample');
  });
});

describe('helpers', () => {
  it('findInvalidUtf8 finds the first bad byte', () => {
    expect(findInvalidUtf8(utf8('héllo € 😀'))).toBe(-1);
    expect(findInvalidUtf8(new Uint8Array([0x61, 0xc3]))).toBe(1); // truncated sequence
    expect(findInvalidUtf8(new Uint8Array([0x61, 0x62, 0xc0, 0x80]))).toBe(2); // overlong
    expect(findInvalidUtf8(new Uint8Array([0xed, 0xa0, 0x80]))).toBe(0); // surrogate
    expect(findInvalidUtf8(new Uint8Array([0x61, 0x80]))).toBe(1); // stray continuation
  });

  it('locateJsonError agrees with JSON.parse on where the text goes wrong', () => {
    const cases: [string, number, string][] = [
      ['[1,]', 3, 'unexpected character "]"'],
      ['{"a" 1}', 5, `expected ':' after a property name, found "1"`],
      ['{a: 1}', 1, 'expected a property name in double quotes, found "a"'],
      ['["a\nb"]', 3, 'control character in a string (a line break must be written \\n)'],
      ['[1] x', 4, 'unexpected "x" after the end of the JSON value'],
      ['[tru]', 1, 'unexpected character "t"'],
      ['["\\x"]', 2, 'bad escape \\x in a string'],
      ['{"a": [1, 2}', 11, `expected ',' or ']', found "}"`],
    ];
    for (const [text, offset, message] of cases) {
      expect(() => JSON.parse(text)).toThrow();
      expect(locateJsonError(text)).toEqual({ offset, message });
    }
    // Deep nesting does not overflow the stack.
    expect(locateJsonError('['.repeat(200_000)).message).toBe('unexpected end of input');
  });
});

describe('typeIndexMapping', () => {
  it('puts downstream task, then world knowledge, then the other names sorted', () => {
    const m = typeIndexMapping([{ type: 'math' }, { type: WORLD_KNOWLEDGE }, { type: 'code' }, { type: DOWNSTREAM_TASK }, { type: 'math' }]);
    expect(m.names).toEqual([DOWNSTREAM_TASK, WORLD_KNOWLEDGE, 'code', 'math']);
    expect([DOWNSTREAM_TASK, WORLD_KNOWLEDGE, 'code', 'math'].map(m.index)).toEqual([0, 1, 2, 3]);
    expect(() => m.index('poetry')).toThrow('unknown data type "poetry"');
    expect(typeIndexMapping([{ type: 'b' }, { type: WORLD_KNOWLEDGE }, { type: 'a' }]).names).toEqual([WORLD_KNOWLEDGE, 'a', 'b']);
    expect(typeIndexMapping([]).names).toEqual([]);
  });

  it('gives the official indices for official data and feeds makeBatch', async () => {
    const r = await parseDataset(fixture('official.json'), 'official.json');
    const m = typeIndexMapping(r.records);
    expect(m.index(DOWNSTREAM_TASK)).toBe(0);
    expect(m.index(WORLD_KNOWLEDGE)).toBe(1);
    const samples = r.records.slice(0, 2).map((x) => ({ ids: [1, 2, 3], promptLength: 1, truncated: false, type: x.type }));
    expect(Array.from(makeBatch(samples, 3, 4, 0, m.index).types)).toEqual([1, 0, -1]);
  });
});
