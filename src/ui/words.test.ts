/** The sentences the panels build from numbers: the resume banner, a heatmap's reading, an import's names and notes. */
import { describe, expect, it } from 'vitest';
import { importName, settingsChangeNote } from '../store/model-actions';
import { defaultSettings } from '../store/settings-table';
import type { RoutingSummary } from '../train/routing';
import { resumedSentence } from './RunPanel';
import { ownGroupReading } from './views/RoutingHeatmap';

describe('resumedSentence', () => {
  const base = { name: 'Run 2: LoRAMoE 8×4 + LBC (official)', state: 'resumed' };
  it('names the run, the step the page showed, the checkpoint and the steps trained again', () => {
    expect(resumedSentence({ ...base, seenStep: 12, fromStep: 10, redone: 2 })).toBe(
      'Resumed Run 2: LoRAMoE 8×4 + LBC (official), which the reload interrupted at step 12, from its checkpoint at step 10: steps 11-12 are trained again.',
    );
    expect(resumedSentence({ ...base, seenStep: 11, fromStep: 10, redone: 1 })).toMatch(/: step 11 is trained again\.$/);
    expect(resumedSentence({ ...base, state: 'resuming', seenStep: 10, fromStep: 10, redone: 0 })).toBe(
      'Resuming Run 2: LoRAMoE 8×4 + LBC (official), which the reload interrupted at step 10, from its checkpoint at step 10: no step is trained again.',
    );
  });
});

describe('ownGroupReading', () => {
  const summary = {
    types: ['downstream task', 'world knowledge', 'poetry'],
    ownGroup: [
      { type: 'downstream task', samples: 4, share: 0.612, target: 0.55 },
      { type: 'world knowledge', samples: 4, share: 0.694, target: null },
      { type: 'poetry', samples: 2, share: 0.5, target: 0.5 },
    ],
  } as unknown as RoutingSummary;
  const groups = [
    { name: 'world knowledge', experts: [0, 1, 2, 3], color: '#000', types: ['world knowledge'] },
    { name: 'downstream task', experts: [4, 5, 7], color: '#111', types: ['downstream task'] },
  ];
  it('reads the type, its experts, its share and the target', () => {
    expect(ownGroupReading(summary, groups, 0)).toBe('downstream task → experts 4-5, 7: 61%, target 55%');
    expect(ownGroupReading(summary, groups, 1)).toBe('world knowledge → experts 0-3: 69%, no target (constraint off)');
    expect(ownGroupReading(summary, groups, 2)).toBe('poetry: no expert group of its own');
  });
});

describe('an imported adapter', () => {
  const entry = (path: string) => ({ path, file: new Blob([]) });
  it('is named by its zip or folder and its base model', () => {
    expect(importName([entry('run-7.zip')], 'run-7.zip', 'HuggingFaceTB/SmolLM2-135M')).toBe('run-7 (HuggingFaceTB/SmolLM2-135M)');
    expect(importName([entry('my-adapter/adapter_config.json'), entry('my-adapter/adapter_model.bin')], 'adapter_config.json', 'tiny/llama')).toBe('my-adapter (tiny/llama)');
    expect(importName([entry('adapter_config.json'), entry('adapter_model.safetensors')], 'adapter_config.json', '')).toBe('adapter');
  });
  it('says which training settings it changed', () => {
    const before = defaultSettings();
    expect(settingsChangeNote(before, { ...before })).toMatch(/^The Training settings already matched the imported adapter/);
    expect(settingsChangeNote(before, { ...before, rank: 8, mode: 'lora' })).toBe(
      'The Training settings now follow the imported adapter, so that training continues it: Mode loramoe → lora, Rank (r) 4 → 8. "Start from the current adapter" is ticked.',
    );
  });
});
