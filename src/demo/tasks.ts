/**
 * Downstream tasks for the demo's fine-tuning data: three instruction tasks, each its own data
 * type, generated from a seed. They share the backbone's question-and-answer format (and a few
 * words), which is what lets fine-tuning on a lot of them overwrite knowledge stored in the same
 * weights.
 */
import type { InstructionRecord } from '../data/template';
import { Rng } from '../util/random';

export const TASK_TYPES = ['arithmetic', 'word reversal', 'sentiment'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

const NOUNS = ['cat', 'dog', 'bird', 'fish', 'tree', 'house', 'car', 'boat', 'river', 'stone', 'cloud', 'apple', 'chair', 'lamp', 'book', 'door', 'horse', 'road', 'star', 'ship'];
const TOPICS = ['food', 'movie', 'service', 'hotel', 'game', 'song', 'room', 'staff', 'show', 'trip', 'coffee', 'bread'];
const POSITIVE = ['great', 'good', 'lovely', 'excellent', 'wonderful', 'nice', 'superb', 'pleasant'];
const NEGATIVE = ['bad', 'awful', 'terrible', 'poor', 'boring', 'horrible', 'dull', 'rude'];
const INTENSIFIERS = ['', 'very ', 'really ', 'quite '];

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

export function taskRecord(type: TaskType, rng: Rng): InstructionRecord {
  switch (type) {
    case 'arithmetic': {
      const a = rng.int(50);
      const b = rng.int(50);
      if (rng.next() < 0.5) return { instruction: `what is ${a} plus ${b} ?`, input: '', output: String(a + b), type };
      const [x, y] = a >= b ? [a, b] : [b, a];
      return { instruction: `what is ${x} minus ${y} ?`, input: '', output: String(x - y), type };
    }
    case 'word reversal': {
      const n = 3 + rng.int(3);
      const words = Array.from({ length: n }, () => pick(rng, NOUNS));
      return { instruction: 'reverse the words', input: words.join(' '), output: [...words].reverse().join(' '), type };
    }
    case 'sentiment': {
      const positive = rng.next() < 0.5;
      const adj = pick(rng, positive ? POSITIVE : NEGATIVE);
      const text = `the ${pick(rng, TOPICS)} was ${pick(rng, INTENSIFIERS)}${adj} .`;
      return { instruction: 'is this review positive or negative ?', input: text, output: positive ? 'positive' : 'negative', type };
    }
  }
}

/** `perType` records of each task type, interleaved, from `seed`. */
export function taskRecords(perType: number, seed: number): InstructionRecord[] {
  const rng = new Rng(seed);
  const out: InstructionRecord[] = [];
  for (let i = 0; i < perType; i++) for (const t of TASK_TYPES) out.push(taskRecord(t, rng));
  return out;
}

/** Every word the task generators can produce (for the tokenizer's vocabulary). */
export function taskWords(): string[] {
  const words = new Set<string>(['what', 'is', 'plus', 'minus', '?', 'reverse', 'the', 'words', 'this', 'review', 'positive', 'or', 'negative', 'was', '.']);
  for (let n = 0; n <= 98; n++) words.add(String(n));
  for (const w of [...NOUNS, ...TOPICS, ...POSITIVE, ...NEGATIVE, ...INTENSIFIERS.map((s) => s.trim()).filter((s) => s)]) words.add(w);
  return [...words];
}
