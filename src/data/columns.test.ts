/** Column layouts (official, Dolly, Alpaca, chat, by hand), rows as records, and a mix of datasets read back by the importer. */
import { describe, expect, it } from 'vitest';
import { detectMapping, mappingColumns, mappingProblem, mixJsonl, rowRecord, type ColumnMapping } from './columns';
import { parseDataset } from './import';
import { DOWNSTREAM_TASK, WORLD_KNOWLEDGE } from '../method/data-types';

describe('column mapping', () => {
  it('recognises the official, Dolly, Alpaca and chat layouts', () => {
    expect(detectMapping(['Instruction', 'input', 'output', 'task_type'])).toEqual({
      layout: 'official',
      instruction: 'Instruction',
      input: 'input',
      output: 'output',
      type: { column: 'task_type' },
    });
    expect(detectMapping(['instruction', 'context', 'response', 'category'])).toEqual({
      layout: 'dolly',
      instruction: 'instruction',
      input: 'context',
      output: 'response',
      type: { column: 'category' },
    });
    expect(detectMapping(['instruction', 'input', 'output', 'text'])).toEqual({ layout: 'alpaca', instruction: 'instruction', input: 'input', output: 'output', type: { name: 'downstream task' } });
    expect(detectMapping(['messages'], 'chat')).toEqual({ layout: 'chat', messages: 'messages', type: { name: 'chat' } });
    expect(detectMapping(['prompt', 'completion'])).toBeNull();
  });

  it('names what a hand-made mapping lacks', () => {
    const cols = ['prompt', 'completion', 'kind'];
    const m: ColumnMapping = { layout: 'custom', instruction: 'prompt', output: 'completion', type: { column: 'kind' } };
    expect(mappingProblem(m, cols)).toBeNull();
    expect(mappingColumns(m)).toEqual(['prompt', 'completion', 'kind']);
    expect(mappingProblem({ ...m, output: '' }, cols)).toBe('choose the output column (the columns are "prompt", "completion", "kind")');
    expect(mappingProblem({ ...m, type: { column: 'label' } }, cols)).toBe('no column "label": the columns are "prompt", "completion", "kind"');
    expect(mappingProblem({ ...m, type: { name: ' ' } }, cols)).toMatch(/name the data type/);
  });

  it('turns rows into records, and a mix into one file the importer reads with every type', async () => {
    const dolly = detectMapping(['instruction', 'context', 'response', 'category'])!;
    const official = detectMapping(['instruction', 'input', 'output', 'task_type'])!;
    const custom: ColumnMapping = { layout: 'custom', instruction: 'q', output: 'a', type: { name: 'arithmetic' } };
    const parts = [
      { label: 'o/dolly', records: [rowRecord({ instruction: 'Why?', context: null, response: 'Because.', category: 'open_qa' }, dolly)] },
      { label: 'o/facts', records: [rowRecord({ instruction: 'Capital of Peru?', input: '', output: 'Lima', task_type: 1n }, official), rowRecord({ instruction: 'Sort', input: 'b a', output: 'a b', task_type: 0n }, official)] },
      { label: 'o/sums', records: [rowRecord({ q: new TextEncoder().encode('1+1?'), a: '2' }, custom), rowRecord({ q: 'empty', a: '' }, custom)] },
    ];
    const mix = mixJsonl(parts);
    expect(mix.lines).toEqual([
      { label: 'o/dolly', first: 1, last: 1 },
      { label: 'o/facts', first: 2, last: 3 },
      { label: 'o/sums', first: 4, last: 5 },
    ]);
    const r = await parseDataset(new TextEncoder().encode(mix.text), 'hub-mix.jsonl');
    expect(r.records.map(({ instruction, input, output, type }) => ({ instruction, input, output, type }))).toEqual([
      { instruction: 'Why?', input: '', output: 'Because.', type: 'open_qa' },
      { instruction: 'Capital of Peru?', input: '', output: 'Lima', type: WORLD_KNOWLEDGE },
      { instruction: 'Sort', input: 'b a', output: 'a b', type: DOWNSTREAM_TASK },
      { instruction: '1+1?', input: '', output: '2', type: 'arithmetic' },
    ]);
    // The empty answer is reported on its line of the mix (the 2nd row of o/sums).
    expect(r.errors).toEqual([{ location: { kind: 'line', line: 5 }, field: 'output', message: 'empty output' }]);
  });
});
