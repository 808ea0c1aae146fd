/**
 * The embedded default: the demo backbone's tokenizer and configuration, its pretraining corpus, and
 * the demo fine-tuning data, all generated from a seed.
 *
 *   pretraining corpus   every world fact as a question and answer (several times) and as a plain
 *                        sentence; plain sentences that use the tasks' vocabulary; a small share of
 *                        task examples in the fine-tuning format (weak task ability, as a base LLM has)
 *   probe                a quarter of the facts (stratified by relation): in pretraining, never in
 *                        the fine-tuning data
 *   fine-tuning data     the other facts (data type "world knowledge") and many examples of each
 *                        downstream task (one data type per task)
 *   task evaluation      held-out examples of each task (new draws from the same generators)
 */
import { WORLD_KNOWLEDGE } from '../method/data-types';
import type { InstructionRecord } from '../data/template';
import { Rng } from '../util/random';
import { type Fact, RELATIONS, worldFacts } from './facts';
import { ALL_TASK_TYPES, taskRecords, taskWords, TASK_TYPES, vocabularySentences } from './tasks';
import { wordLevelTokenizer } from './tokenizer';

export const DEMO_SEED = 1234;

/**
 * Longest document in tokens (with <s> and the closing </s>s). Facts whose question and answer are
 * longer (long country and currency names: "what is the currency of bosnia and herzegovina ?
 * bosnia and herzegovina convertible mark") are left out of the demo, so pretraining and
 * fine-tuning batches stay short: a step's cost grows with the padded length.
 */
export const DEMO_MAX_TOKENS = 14;

const words = (text: string) => text.split(' ').length;
/** Tokens of a fact as a question and answer: <s> question </s> answer </s> (the word-level tokenizer: one token a word). */
export const factTokens = (f: Fact) => words(f.question) + words(f.answer) + 3;

export interface DemoDataOptions {
  seed: number;
  /** Fine-tuning examples of each downstream task. */
  tasksPerType: number;
  /** Held-out evaluation examples of each downstream task. */
  taskEvalPerType: number;
  /** Fraction of the facts held out as the knowledge probe. */
  probeFraction: number;
  /** Times each fact's question and answer occurs in the pretraining corpus (its sentence: once). */
  pretrainFactRepeats: number;
  /** Plain sentences with the tasks' vocabulary in the pretraining corpus. */
  pretrainSentences: number;
  /** Task examples in the fine-tuning format in the pretraining corpus, per task. */
  pretrainTasksPerType: number;
}

export const DEFAULT_DEMO_DATA: DemoDataOptions = {
  seed: DEMO_SEED,
  tasksPerType: 2000,
  taskEvalPerType: 50,
  probeFraction: 0.25,
  pretrainFactRepeats: 6,
  pretrainSentences: 800,
  pretrainTasksPerType: 30,
};

/**
 * One pretraining document: a question and answer (the loss on the answer, as in fine-tuning) or a
 * plain sentence (the loss on every token after <s>, as in language-model pretraining).
 */
export type PretrainItem = { kind: 'qa'; record: InstructionRecord } | { kind: 'text'; text: string; type: string };

export interface DemoData {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  vocabSize: number;
  pretrain: PretrainItem[];
  probe: InstructionRecord[];
  train: InstructionRecord[];
  taskEval: InstructionRecord[];
}

function factRecord(f: Fact): InstructionRecord {
  return { instruction: f.question, input: '', output: f.answer, type: WORLD_KNOWLEDGE };
}

function shuffle<T>(xs: T[], rng: Rng): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

export function buildDemoData(opts: DemoDataOptions = DEFAULT_DEMO_DATA): DemoData {
  const rng = new Rng(opts.seed);
  const facts = worldFacts().filter((f) => factTokens(f) <= DEMO_MAX_TOKENS);
  const probe: Fact[] = [];
  const known: Fact[] = [];
  for (const relation of RELATIONS) {
    const rel = shuffle(facts.filter((f) => f.relation === relation), rng);
    const k = Math.round(rel.length * opts.probeFraction);
    probe.push(...rel.slice(0, k));
    known.push(...rel.slice(k));
  }
  const tasks = taskRecords(opts.tasksPerType, opts.seed + 1);
  const taskEval = taskRecords(opts.taskEvalPerType, opts.seed + 2);
  const pretrainTasks = taskRecords(opts.pretrainTasksPerType, opts.seed + 3, ALL_TASK_TYPES);
  const sentences = vocabularySentences(opts.pretrainSentences, opts.seed + 4);
  const vocabulary = new Set<string>(taskWords());
  for (const f of facts) for (const w of `${f.question} ${f.answer} ${f.statement}`.split(' ')) vocabulary.add(w);
  const { tokenizerJson, tokenizerConfig, size } = wordLevelTokenizer(vocabulary);
  const train = shuffle([...known.map(factRecord), ...tasks], rng);
  const pretrain: PretrainItem[] = [];
  for (let i = 0; i < opts.pretrainFactRepeats; i++) for (const f of facts) pretrain.push({ kind: 'qa', record: factRecord(f) });
  for (const f of facts) if (words(f.statement) + 2 <= DEMO_MAX_TOKENS) pretrain.push({ kind: 'text', text: f.statement, type: WORLD_KNOWLEDGE });
  for (const text of sentences) pretrain.push({ kind: 'text', text, type: 'text' });
  for (const record of pretrainTasks) pretrain.push({ kind: 'qa', record });
  return {
    tokenizerJson,
    tokenizerConfig,
    vocabSize: size,
    pretrain,
    probe: probe.map(factRecord),
    train,
    taskEval,
  };
}

const jsonl = (records: readonly object[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';
const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

/** The text files `demo-build` writes: the backbone's (beside model.safetensors) and the data's. */
export function demoTextFiles(data: DemoData, configJson: Record<string, unknown>): { model: Record<string, string>; data: Record<string, string> } {
  return {
    model: { 'config.json': json(configJson), 'tokenizer.json': json(data.tokenizerJson), 'tokenizer_config.json': json(data.tokenizerConfig) },
    data: { 'demo-train.jsonl': jsonl(data.train), 'demo-probe.jsonl': jsonl(data.probe), 'demo-task-eval.jsonl': jsonl(data.taskEval) },
  };
}

/** config.json of the demo backbone: a small Llama with grouped key/value heads. */
export function demoConfigJson(vocabSize: number, size: { hidden: number; layers: number; ffn: number; heads: number; kvHeads: number }): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: size.hidden,
    intermediate_size: size.ffn,
    num_hidden_layers: size.layers,
    num_attention_heads: size.heads,
    num_key_value_heads: size.kvHeads,
    hidden_act: 'silu',
    max_position_embeddings: 64,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    vocab_size: vocabSize,
    tie_word_embeddings: true,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 3,
    torch_dtype: 'float32',
  };
}

export { TASK_TYPES };
