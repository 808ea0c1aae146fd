/**
 * Hand a run to the official LoRAMoE trainer (PyTorch, DeepSpeed, several GPUs) when it outgrows the
 * browser: one zip with
 *   data/train.json     the run's records in the official format, a JSON list of
 *                       {"instruction", "input", "output", "task_type": 0|1}
 *   run_loramoe.sh      a launch script in the form of the official run_loramoe.sh, the run's
 *                       settings on its flags
 *   README.md           how to run it, the data-type mapping used, and what does not map
 *
 * The official code knows two data types: task_type 1 (world knowledge) boosts experts 0..N/2-1,
 * task_type 0 (downstream task) boosts N/2..N-1. A type whose expert group is one of those halves
 * gets that task_type; any other group has no official equivalent, and its records are written as
 * task_type 0 with a note saying so. Names of more than two types are kept in the mapping note only:
 * the official loader reads exactly the four fields.
 *
 * parseOfficialScript reads such a script back (its shell variables and --flags), so the test suite
 * can check that every mapped setting survives the round trip.
 */
import { type Zippable, zipSync } from 'fflate';
import type { InstructionRecord } from '../data/template';
import { type AdapterConfig, orderedTargets } from '../method/adapter';
import { WORLD_KNOWLEDGE } from '../method/data-types';
import type { TrainSettings } from './trainer';

export const OFFICIAL_DATA_FILE = 'data/train.json';
export const OFFICIAL_SCRIPT_FILE = 'run_loramoe.sh';
export const OFFICIAL_NOTE_FILE = 'README.md';

/** One official record: the four fields the official build_dataset.py reads. */
export interface OfficialRecord {
  instruction: string;
  input: string;
  output: string;
  task_type: 0 | 1;
}

export interface TaskTypeMapping {
  /** Data type name -> official task_type. */
  taskType: Record<string, 0 | 1>;
  /** Types whose expert group is neither official half (written as task_type 0). */
  unmapped: string[];
}

const sameSet = (a: readonly number[], b: readonly number[]) => a.length === b.length && [...a].sort((x, y) => x - y).every((v, i) => v === [...b].sort((x, y) => x - y)[i]);

/**
 * The official task_type of each data type, from the expert group it was steered to (LoRAMoE), or
 * from its name (plain LoRA and full fine-tuning have no groups: world knowledge is 1, the rest 0).
 */
export function officialTaskTypes(typeNames: readonly string[], cfg: Pick<AdapterConfig, 'mode' | 'numExperts' | 'groups'>): TaskTypeMapping {
  const taskType: Record<string, 0 | 1> = {};
  const unmapped: string[] = [];
  const N = cfg.numExperts;
  const half = N / 2;
  const first = Array.from({ length: half }, (_, i) => i);
  const second = Array.from({ length: half }, (_, i) => half + i);
  typeNames.forEach((name, t) => {
    if (cfg.mode !== 'loramoe' || N % 2 !== 0) {
      taskType[name] = name === WORLD_KNOWLEDGE ? 1 : 0;
      if (cfg.mode === 'loramoe') unmapped.push(name);
      return;
    }
    const g = cfg.groups[t] ?? [];
    if (sameSet(g, first)) taskType[name] = 1;
    else if (sameSet(g, second)) taskType[name] = 0;
    else {
      taskType[name] = 0;
      unmapped.push(name);
    }
  });
  return { taskType, unmapped };
}

export function officialRecords(records: readonly InstructionRecord[], mapping: TaskTypeMapping): OfficialRecord[] {
  return records.map((r, i) => {
    const t = mapping.taskType[r.type];
    if (t === undefined) throw new Error(`official export: record ${i} has data type "${r.type}", which the run does not know`);
    return { instruction: r.instruction, input: r.input, output: r.output, task_type: t };
  });
}

/** The launch script's settings, as the official script spells them. */
export interface OfficialScriptSettings {
  lr: number;
  lora_rank: number;
  lora_alpha: number;
  lora_trainable: string[];
  lora_dropout: number;
  lora_nums: number;
  blc_alpha: number;
  blc_weight: number;
  per_device_train_batch_size: number;
  gradient_accumulation_steps: number;
  max_seq_length: number;
  lr_scheduler_type: 'cosine' | 'constant';
  warmup_ratio: number;
  weight_decay: number;
  max_grad_norm: number;
  max_steps: number;
  seed: number;
}

/** Where each of the run's settings lands in the official script. Full fine-tuning has no place. */
export function officialScriptSettings(cfg: AdapterConfig, train: TrainSettings): OfficialScriptSettings {
  if (cfg.mode !== 'loramoe' && cfg.mode !== 'lora') {
    throw new Error(`official export: the official LoRAMoE trainer trains adapters; a "${cfg.mode}" run has no equivalent there`);
  }
  // Plain LoRA is the official code with one expert: the router's softmax over one expert is 1.
  const moe = cfg.mode === 'loramoe';
  return {
    lr: train.lr,
    lora_rank: cfg.rank,
    lora_alpha: cfg.alpha,
    lora_trainable: orderedTargets(cfg),
    lora_dropout: cfg.dropout,
    lora_nums: moe ? cfg.numExperts : 1,
    blc_alpha: moe ? cfg.lbcDelta : 0,
    blc_weight: moe ? cfg.lbcBeta : 0,
    per_device_train_batch_size: train.batchSize,
    gradient_accumulation_steps: train.gradAccum,
    max_seq_length: train.maxLength,
    lr_scheduler_type: train.schedule,
    warmup_ratio: train.schedule === 'cosine' ? train.warmupRatio : 0,
    weight_decay: train.weightDecay,
    max_grad_norm: train.maxGradNorm > 0 ? train.maxGradNorm : 0,
    max_steps: train.steps,
    seed: train.seed,
  };
}

/** What the official trainer cannot reproduce of this run, one sentence each. */
export function unmappedSettings(cfg: AdapterConfig, train: TrainSettings, mapping: TaskTypeMapping): string[] {
  const notes: string[] = [];
  if (cfg.mode === 'loramoe') {
    if (cfg.lbcDirection !== 'official') {
      notes.push('Balancing constraint direction "own-group": the official code has only its released direction (boost 1 + blc_alpha on the own group). To keep the own-group push, flip the sign of blc_alpha in peft/tuners/lora.py (1 - blc_alpha on the own group, 1 + blc_alpha elsewhere).');
    }
    if (cfg.lbcImportance === 'mean' && train.batchSize > 1) {
      notes.push(`Balancing constraint importance "mean": the official code sums the router weights over every position of the padded batch. With per_device_train_batch_size ${train.batchSize} that differs (padding and length spread enter the constraint); with per_device_train_batch_size 1 it is the same loss.`);
    }
    if (cfg.lbcImportance === 'sum') {
      notes.push('Balancing constraint importance "sum": here the sum runs over real tokens only; the official code also sums padding positions (the same at per_device_train_batch_size 1).');
    }
    if (mapping.unmapped.length > 0) {
      notes.push(`Expert groups: the official code has two, experts 0..${cfg.numExperts / 2 - 1} for task_type 1 and ${cfg.numExperts / 2}..${cfg.numExperts - 1} for task_type 0. ${mapping.unmapped.map((t) => `"${t}"`).join(', ')} had other experts here and are written as task_type 0.`);
    }
  }
  if (train.steps > 0) notes.push(`Steps: the script sets --max_steps ${train.steps} (the official script trains one epoch instead: drop --max_steps and use --num_train_epochs 1 to do that).`);
  notes.push('Precision: the official script trains in bfloat16 with DeepSpeed ZeRO-3 on several GPUs; this run trained in float32, so losses agree only approximately.');
  notes.push('Not in the official code: checkpoint interval, fault limit and routing window of this playground (the official trainer saves every --save_steps).');
  return notes;
}

const q = (s: string) => `"${s.replace(/(["\\$`])/g, '\\$1')}"`;

/** A launch script in the form of the official run_loramoe.sh, with this run's settings. */
export function officialScript(s: OfficialScriptSettings, baseModel: string): string {
  const model = baseModel.trim() === '' ? '/path/to/base-model' : baseModel;
  return `#!/usr/bin/env bash
# Launch the official LoRAMoE trainer (run_loramoe.py of the official repository) on this run's
# data and settings. Run it from a checkout of the official repository, with its environment; see
# README.md beside this script for what does not map.
set -euo pipefail

lr=${s.lr}
lora_rank=${s.lora_rank}
lora_alpha=${s.lora_alpha}
lora_trainable=${q(s.lora_trainable.join(','))}
lora_dropout=${s.lora_dropout}
lora_nums=${s.lora_nums}
blc_alpha=${s.blc_alpha}
blc_weight=${s.blc_weight}

pretrained_model=${q(model)}
tokenizer_path=${q(model)}
dataset_dir="$(dirname "$0")/data"
validation_file="$(dirname "$0")/data/train.json"

per_device_train_batch_size=${s.per_device_train_batch_size}
per_device_eval_batch_size=1
gradient_accumulation_steps=${s.gradient_accumulation_steps}
max_seq_length=${s.max_seq_length}
output_dir="$(dirname "$0")/output"
exp_name=playground_run

deepspeed_config_file=ds_zero3_offload.json
nproc_per_node=\${NPROC_PER_NODE:-1}

torchrun --nnodes 1 --nproc_per_node \${nproc_per_node} --node_rank 0 --master_port 29502 \\
    run_loramoe.py \\
    --deepspeed \${deepspeed_config_file} \\
    --model_name_or_path \${pretrained_model} \\
    --tokenizer_name_or_path \${tokenizer_path} \\
    --dataset_dir \${dataset_dir} \\
    --per_device_train_batch_size \${per_device_train_batch_size} \\
    --per_device_eval_batch_size \${per_device_eval_batch_size} \\
    --do_train \\
    --seed ${s.seed} \\
    --bf16 \\
    --max_steps ${s.max_steps} \\
    --lr_scheduler_type ${s.lr_scheduler_type} \\
    --learning_rate \${lr} \\
    --warmup_ratio ${s.warmup_ratio} \\
    --weight_decay ${s.weight_decay} \\
    --max_grad_norm ${s.max_grad_norm} \\
    --logging_strategy steps \\
    --logging_steps 10 \\
    --save_strategy steps \\
    --save_total_limit 5 \\
    --save_steps 5000 \\
    --gradient_accumulation_steps \${gradient_accumulation_steps} \\
    --preprocessing_num_workers 8 \\
    --max_seq_length \${max_seq_length} \\
    --output_dir \${output_dir}/\${exp_name} \\
    --ddp_timeout 30000 \\
    --logging_first_step True \\
    --lora_rank \${lora_rank} \\
    --lora_alpha \${lora_alpha} \\
    --lora_nums \${lora_nums} \\
    --blc_alpha \${blc_alpha} \\
    --blc_weight \${blc_weight} \\
    --trainable \${lora_trainable} \\
    --lora_dropout \${lora_dropout} \\
    --torch_dtype bfloat16 \\
    --validation_file \${validation_file} \\
    --load_in_kbits 16 \\
    --ddp_find_unused_parameters False \\
    --overwrite_output_dir
`;
}

/**
 * Reads a launch script written by officialScript back into its settings: the shell variables, then
 * the --flags (a flag whose value is ${var} takes the variable's value). Throws naming a setting
 * that is missing or not a number.
 */
export function parseOfficialScript(text: string): OfficialScriptSettings {
  const vars = new Map<string, string>();
  for (const m of text.matchAll(/^([a-z_]+)=("(?:[^"\\]|\\.)*"|\S*)\s*$/gm)) {
    const raw = m[2];
    vars.set(m[1], raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw);
  }
  const flags = new Map<string, string>();
  for (const m of text.matchAll(/--([a-z_]+)\s+([^\s\\]+)/g)) {
    const v = m[2];
    const ref = /^\$\{([a-z_]+)\}$/.exec(v);
    flags.set(m[1], ref ? (vars.get(ref[1]) ?? v) : v);
  }
  const get = (name: string, from: 'var' | 'flag'): string => {
    const v = from === 'var' ? vars.get(name) : flags.get(name);
    if (v === undefined) throw new Error(`launch script: ${from === 'var' ? `variable ${name}` : `--${name}`} is missing`);
    return v;
  };
  const num = (name: string, from: 'var' | 'flag'): number => {
    const v = get(name, from);
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new Error(`launch script: ${name} is "${v}", not a number`);
    return n;
  };
  const schedule = get('lr_scheduler_type', 'flag');
  if (schedule !== 'cosine' && schedule !== 'constant') throw new Error(`launch script: --lr_scheduler_type ${schedule} is not cosine or constant`);
  return {
    lr: num('lr', 'var'),
    lora_rank: num('lora_rank', 'var'),
    lora_alpha: num('lora_alpha', 'var'),
    lora_trainable: get('lora_trainable', 'var').split(','),
    lora_dropout: num('lora_dropout', 'var'),
    lora_nums: num('lora_nums', 'var'),
    blc_alpha: num('blc_alpha', 'var'),
    blc_weight: num('blc_weight', 'var'),
    per_device_train_batch_size: num('per_device_train_batch_size', 'var'),
    gradient_accumulation_steps: num('gradient_accumulation_steps', 'var'),
    max_seq_length: num('max_seq_length', 'var'),
    lr_scheduler_type: schedule,
    warmup_ratio: num('warmup_ratio', 'flag'),
    weight_decay: num('weight_decay', 'flag'),
    max_grad_norm: num('max_grad_norm', 'flag'),
    max_steps: num('max_steps', 'flag'),
    seed: num('seed', 'flag'),
  };
}

function noteText(mapping: TaskTypeMapping, notes: readonly string[], records: number): string {
  const rows = Object.entries(mapping.taskType).map(([name, t]) => `| ${name} | ${t} |${mapping.unmapped.includes(name) ? ' no official group: see below |' : ' |'}`);
  return `# This run, for the official LoRAMoE trainer

1. Clone the official LoRAMoE repository and install its environment.
2. Copy this folder into it and run \`bash run_loramoe.sh\` (set \`NPROC_PER_NODE\` to the number of
   GPUs; \`pretrained_model\` in the script names the backbone this run used: point it at a local
   copy if it is not a Hub name).
3. Bring the result back: the playground (Files, "Import adapter") and the runner
   (\`--adapter DIR\`) open the trainer's \`adapter_model.bin\` with its \`adapter_config.json\`, to
   inspect routing, probe knowledge and chat.

\`data/train.json\`: ${records} records in the official format. Data types to \`task_type\`:

| data type | task_type | |
| --- | --- | --- |
${rows.join('\n')}

## What does not map

${notes.map((n) => `- ${n}`).join('\n')}
`;
}

/** The three files of the hand-off, by path in the zip. */
export function officialRunFiles(
  records: readonly InstructionRecord[],
  typeNames: readonly string[],
  cfg: AdapterConfig,
  train: TrainSettings,
  baseModel: string,
): Map<string, string> {
  const mapping = officialTaskTypes(typeNames, cfg);
  const script = officialScript(officialScriptSettings(cfg, train), baseModel);
  return new Map([
    [OFFICIAL_DATA_FILE, JSON.stringify(officialRecords(records, mapping), null, 1) + '\n'],
    [OFFICIAL_SCRIPT_FILE, script],
    [OFFICIAL_NOTE_FILE, noteText(mapping, unmappedSettings(cfg, train, mapping), records.length)],
  ]);
}

/** officialRunFiles as one zip (the script executable). */
export function officialRunZip(...args: Parameters<typeof officialRunFiles>): Uint8Array {
  const files = officialRunFiles(...args);
  const enc = new TextEncoder();
  const entries: Zippable = {};
  for (const [path, text] of files) {
    // Unix mode in the high 16 bits of the external attributes: 0755 for the script.
    entries[path] = path === OFFICIAL_SCRIPT_FILE ? [enc.encode(text), { os: 3, attrs: (0o100755 << 16) >>> 0 }] : enc.encode(text);
  }
  return zipSync(entries, { level: 6 });
}
