import { spawnSync } from 'node:child_process';
import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { parseDataset } from '../data/import';
import type { InstructionRecord } from '../data/template';
import { defaultAdapterConfig } from '../loramoe/config';
import { parseTypeGroups } from '../loramoe/groups';
import type { AdapterConfig } from '../method/adapter';
import { typeNamesFor } from '../method/data-types';
import {
  OFFICIAL_DATA_FILE,
  OFFICIAL_NOTE_FILE,
  OFFICIAL_SCRIPT_FILE,
  officialRunFiles,
  officialRunZip,
  officialScript,
  officialScriptSettings,
  officialTaskTypes,
  parseOfficialScript,
} from './official-export';
import { defaultTrainSettings, type TrainSettings } from './trainer';

const RECORDS: InstructionRecord[] = [
  { instruction: 'what is the capital of france ?', input: '', output: 'paris', type: 'world knowledge' },
  { instruction: 'is this review positive or negative ?', input: 'the food was "great" .', output: 'positive', type: 'downstream task' },
  { instruction: 'reverse the words', input: 'cat dog\nbird', output: 'bird dog cat', type: 'downstream task' },
  { instruction: 'what is the currency of japan ?', input: '', output: 'yen $1 \\ `x`', type: 'world knowledge' },
];

const train: TrainSettings = { ...defaultTrainSettings(), lr: 3e-4, batchSize: 2, gradAccum: 4, maxLength: 96, steps: 250, warmupRatio: 0.05, weightDecay: 0.01, maxGradNorm: 0.5, seed: 7 };

describe('hand-off to the official trainer', () => {
  it('the exported data re-imports to the same records (two official types)', async () => {
    const names = typeNamesFor(RECORDS.map((r) => r.type));
    const files = officialRunFiles(RECORDS, names, defaultAdapterConfig('loramoe'), train, 'HuggingFaceTB/SmolLM2-135M');
    const json = JSON.parse(files.get(OFFICIAL_DATA_FILE)!) as unknown[];
    // Exactly the four fields the official loader reads.
    for (const r of json) expect(Object.keys(r as object).sort()).toEqual(['input', 'instruction', 'output', 'task_type']);
    expect(json.map((r) => (r as { task_type: number }).task_type)).toEqual([1, 0, 0, 1]);
    const back = await parseDataset(new TextEncoder().encode(files.get(OFFICIAL_DATA_FILE)!), 'train.json');
    expect(back.errors).toEqual([]);
    expect(back.records.map(({ instruction, input, output, type }) => ({ instruction, input, output, type }))).toEqual(RECORDS);
  });

  it("the script's flags parse back to the run's settings", () => {
    const cfg: AdapterConfig = { ...defaultAdapterConfig('loramoe'), numExperts: 6, rank: 8, alpha: 16, dropout: 0.1, lbcDelta: 0.2, lbcBeta: 0.05, targets: ['q_proj', 'gate_proj', 'down_proj'], groups: [[3, 4, 5], [0, 1, 2]] };
    const s = parseOfficialScript(officialScript(officialScriptSettings(cfg, train), 'my/model'));
    expect(s).toEqual({
      lr: 3e-4,
      lora_rank: 8,
      lora_alpha: 16,
      lora_trainable: ['q_proj', 'gate_proj', 'down_proj'],
      lora_dropout: 0.1,
      lora_nums: 6,
      blc_alpha: 0.2,
      blc_weight: 0.05,
      per_device_train_batch_size: 2,
      gradient_accumulation_steps: 4,
      max_seq_length: 96,
      lr_scheduler_type: 'cosine',
      warmup_ratio: 0.05,
      weight_decay: 0.01,
      max_grad_norm: 0.5,
      max_steps: 250,
      seed: 7,
    });
    // Plain LoRA: one expert, no constraint; a constant schedule has no warmup in either trainer.
    expect(parseOfficialScript(officialScript(officialScriptSettings(cfg, train), 'we"ird $model `x`')).lr).toBe(3e-4);
    const lora = parseOfficialScript(officialScript(officialScriptSettings({ ...defaultAdapterConfig('lora'), rank: 32 }, { ...train, schedule: 'constant' }), ''));
    expect(lora).toMatchObject({ lora_nums: 1, lora_rank: 32, blc_alpha: 0, blc_weight: 0, lr_scheduler_type: 'constant', warmup_ratio: 0 });
    expect(() => officialScriptSettings(defaultAdapterConfig('full'), train)).toThrow(/"full" run has no equivalent/);
    expect(() => parseOfficialScript('lr=0.1\n--lr_scheduler_type cosine\n')).toThrow(/variable lora_rank is missing/);
    expect(() => parseOfficialScript(officialScript(officialScriptSettings(cfg, train), 'm').replace('lora_rank=8', 'lora_rank=eight'))).toThrow(/lora_rank is "eight", not a number/);
  });

  it('K data types: halves map to task_type 1 / 0, other groups are named as not mapping', async () => {
    const recs: InstructionRecord[] = [...RECORDS, { instruction: 'what is 2 plus 3 ?', input: '', output: '5', type: 'arithmetic' }, { instruction: 'x', input: '', output: 'y', type: 'sentiment' }];
    const names = typeNamesFor(recs.map((r) => r.type));
    const groups = parseTypeGroups('world knowledge=0-3; arithmetic=4,5; *=4-7', names, 8);
    const cfg: AdapterConfig = { ...defaultAdapterConfig('loramoe'), groups, lbcDirection: 'own-group' };
    const mapping = officialTaskTypes(names, cfg);
    expect(mapping.taskType).toEqual({ 'downstream task': 0, 'world knowledge': 1, arithmetic: 0, sentiment: 0 });
    expect(mapping.unmapped).toEqual(['arithmetic']);
    const files = officialRunFiles(recs, names, cfg, train, 'm');
    const back = await parseDataset(new TextEncoder().encode(files.get(OFFICIAL_DATA_FILE)!), 'train.json');
    expect(back.records.map((r) => r.type)).toEqual(recs.map((r) => (r.type === 'world knowledge' ? 'world knowledge' : 'downstream task')));
    const note = files.get(OFFICIAL_NOTE_FILE)!;
    expect(note).toContain('| arithmetic | 0 | no official group: see below |');
    expect(note).toMatch(/"arithmetic" had other experts here/);
    expect(note).toMatch(/direction "own-group"/);
    expect(note).toMatch(/importance "mean".*per_device_train_batch_size 2/);
  });

  it('one zip: data, an executable script, the note', () => {
    const zip = unzipSync(officialRunZip(RECORDS, typeNamesFor(RECORDS.map((r) => r.type)), defaultAdapterConfig('loramoe'), train, 'm'));
    expect(Object.keys(zip).sort()).toEqual([OFFICIAL_NOTE_FILE, OFFICIAL_SCRIPT_FILE, OFFICIAL_DATA_FILE].sort());
    const script = new TextDecoder().decode(zip[OFFICIAL_SCRIPT_FILE]);
    expect(script).toMatch(/^#!\/usr\/bin\/env bash/);
    // The shell accepts it (syntax only: nothing runs), quotes and all.
    const res = spawnSync('bash', ['-n'], { input: officialScript(officialScriptSettings(defaultAdapterConfig('loramoe'), train), 'we"ird $model `x`'), encoding: 'utf8' });
    expect(res.status, res.stderr).toBe(0);
  });
});
