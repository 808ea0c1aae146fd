/**
 * The embedded default: the demo backbone's tokenizer and configuration, its pretraining corpus, and
 * the demo fine-tuning data, all generated from a seed.
 *
 *   pretraining corpus   every world fact as a closed-book question and answer
 *   probe                a quarter of the facts (stratified by relation), never in the fine-tuning data
 *   fine-tuning data     the other facts (data type "world knowledge") and a large volume of three
 *                        downstream tasks (data types "arithmetic", "word reversal", "sentiment")
 *   task evaluation      held-out examples of each task
 */
import { WORLD_KNOWLEDGE } from '../method/data-types';
import type { InstructionRecord } from '../data/template';
import { Rng } from '../util/random';
import { type Fact, RELATIONS, worldFacts } from './facts';
import { taskRecords, taskWords, TASK_TYPES } from './tasks';
import { wordLevelTokenizer } from './tokenizer';

export const DEMO_SEED = 1234;

export interface DemoDataOptions {
  seed: number;
  /** Fine-tuning examples of each downstream task. */
  tasksPerType: number;
  /** Held-out evaluation examples of each downstream task. */
  taskEvalPerType: number;
  /** Fraction of the facts held out as the knowledge probe. */
  probeFraction: number;
}

export const DEFAULT_DEMO_DATA: DemoDataOptions = { seed: DEMO_SEED, tasksPerType: 2000, taskEvalPerType: 100, probeFraction: 0.25 };

export interface DemoData {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  vocabSize: number;
  pretrain: InstructionRecord[];
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
  const facts = worldFacts();
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
  const words = new Set<string>(taskWords());
  for (const f of facts) for (const w of `${f.question} ${f.answer}`.split(' ')) words.add(w);
  const { tokenizerJson, tokenizerConfig, size } = wordLevelTokenizer(words);
  const train = shuffle([...known.map(factRecord), ...tasks], rng);
  return {
    tokenizerJson,
    tokenizerConfig,
    vocabSize: size,
    pretrain: facts.map(factRecord),
    probe: probe.map(factRecord),
    train,
    taskEval,
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
