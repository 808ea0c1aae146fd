/**
 * The demo's downstream tasks and the plain text that puts their vocabulary in the pretraining
 * corpus, generated from a seed.
 *
 * Every task answers with one word, so that a small frozen backbone with rank-4 adapters can learn it
 * in a few hundred steps, and every task draws on something the backbone met in pretraining (a word's
 * meaning, its category, its opposite, a sum), as instruction tuning of a real LLM does. The tasks
 * share the backbone's question-and-answer format (several the "what is the ... of ... ?" pattern of
 * the knowledge questions), which is what lets fine-tuning on a lot of them overwrite knowledge
 * stored in the same weights.
 */
import type { InstructionRecord } from '../data/template';
import { Rng } from '../util/random';

export const ALL_TASK_TYPES = ['arithmetic', 'sentiment', 'opposites', 'category', 'last word'] as const;
export type TaskType = (typeof ALL_TASK_TYPES)[number];
/**
 * The downstream tasks of the demo's fine-tuning data. Arithmetic and last word stay in pretraining
 * (a few formatted examples) but not in fine-tuning: within the experiment's budget neither full
 * fine-tuning nor the adapters learnt them (docs/demo.md, "The forgetting experiment").
 */
export const TASK_TYPES: readonly TaskType[] = ['sentiment', 'opposites', 'category'];

export const CATEGORIES: Record<string, readonly string[]> = {
  animal: ['cat', 'dog', 'bird', 'fish', 'horse', 'cow', 'sheep', 'mouse', 'lion', 'bear'],
  fruit: ['apple', 'banana', 'pear', 'grape', 'lemon', 'cherry', 'plum', 'peach', 'mango', 'melon'],
  vehicle: ['car', 'boat', 'ship', 'bus', 'train', 'bike', 'truck', 'plane', 'taxi', 'tram'],
  furniture: ['chair', 'table', 'bed', 'lamp', 'desk', 'sofa', 'shelf', 'bench', 'stool', 'cupboard'],
  tool: ['hammer', 'axe', 'knife', 'spoon', 'drill', 'brush', 'rope', 'ladder', 'shovel', 'needle'],
};
const NOUNS = Object.values(CATEGORIES).flat();

export const OPPOSITES: readonly (readonly [string, string])[] = [
  ['hot', 'cold'], ['big', 'small'], ['fast', 'slow'], ['old', 'new'], ['happy', 'sad'], ['light', 'dark'],
  ['high', 'low'], ['long', 'short'], ['hard', 'soft'], ['rich', 'poor'], ['early', 'late'], ['wet', 'dry'],
  ['full', 'empty'], ['loud', 'quiet'], ['strong', 'weak'], ['thick', 'thin'], ['clean', 'dirty'], ['cheap', 'expensive'],
];
const OPPOSITE = new Map<string, string>(OPPOSITES.flatMap(([a, b]) => [[a, b], [b, a]]));
const ADJECTIVES = [...OPPOSITE.keys()];

const TOPICS = ['food', 'movie', 'service', 'hotel', 'game', 'song', 'room', 'staff', 'show', 'trip', 'coffee', 'bread'];
const POSITIVE = ['great', 'good', 'lovely', 'excellent', 'wonderful', 'nice', 'superb', 'pleasant'];
const NEGATIVE = ['bad', 'awful', 'terrible', 'horrible', 'boring', 'dull', 'rude', 'nasty'];
const INTENSIFIERS = ['', 'very ', 'really ', 'quite '];
const PEOPLE = ['he', 'she', 'we', 'they', 'i'];

/** Operands of the arithmetic task: 0..9, so every result (0..18) is one token. */
const MAX_OPERAND = 9;
/** Numbers of the counting sentences. */
const MAX_COUNT = 20;

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

const CATEGORY_OF = new Map<string, string>(Object.entries(CATEGORIES).flatMap(([c, ws]) => ws.map((w) => [w, c] as [string, string])));
const article = (w: string) => (/^[aeiou]/.test(w) ? 'an' : 'a');

export function taskRecord(type: TaskType, rng: Rng): InstructionRecord {
  switch (type) {
    case 'arithmetic': {
      const a = rng.int(MAX_OPERAND + 1);
      const b = rng.int(MAX_OPERAND + 1);
      if (rng.next() < 0.5) return { instruction: `what is ${a} plus ${b} ?`, input: '', output: String(a + b), type };
      const [x, y] = a >= b ? [a, b] : [b, a];
      return { instruction: `what is ${x} minus ${y} ?`, input: '', output: String(x - y), type };
    }
    case 'sentiment': {
      const positive = rng.next() < 0.5;
      const adj = pick(rng, positive ? POSITIVE : NEGATIVE);
      const text = `the ${pick(rng, TOPICS)} was ${pick(rng, INTENSIFIERS)}${adj} .`;
      return { instruction: 'positive or negative ?', input: text, output: positive ? 'positive' : 'negative', type };
    }
    case 'opposites': {
      const w = pick(rng, ADJECTIVES);
      return { instruction: `what is the opposite of ${w} ?`, input: '', output: OPPOSITE.get(w)!, type };
    }
    case 'category': {
      const w = pick(rng, NOUNS);
      return { instruction: `what kind of thing is ${article(w)} ${w} ?`, input: '', output: CATEGORY_OF.get(w)!, type };
    }
    case 'last word': {
      const n = 3 + rng.int(2);
      const words = Array.from({ length: n }, () => pick(rng, NOUNS));
      return { instruction: 'what is the last word ?', input: words.join(' '), output: words[n - 1], type };
    }
  }
}

/** `perType` records of each of `types`, interleaved, from `seed`. */
export function taskRecords(perType: number, seed: number, types: readonly TaskType[] = TASK_TYPES): InstructionRecord[] {
  const rng = new Rng(seed);
  const out: InstructionRecord[] = [];
  for (let i = 0; i < perType; i++) for (const t of types) out.push(taskRecord(t, rng));
  return out;
}

/**
 * One sentence of plain text that uses the tasks' vocabulary in a natural context (not in the tasks'
 * question format): what numbers add up to and how they count, what reviewers say, what things are
 * and what they do, which words are opposites.
 */
export function vocabularySentence(rng: Rng): string {
  switch (rng.int(9)) {
    case 0: {
      const a = rng.int(MAX_OPERAND + 1);
      const b = rng.int(MAX_OPERAND + 1);
      return rng.next() < 0.5 ? `${a} plus ${b} is ${a + b} .` : `${a + b} minus ${b} is ${a} .`;
    }
    case 1: {
      const start = rng.int(MAX_COUNT - 2);
      const n = 4 + rng.int(Math.min(6, MAX_COUNT - start - 2));
      return `${Array.from({ length: n }, (_, i) => start + i).join(' ')} .`;
    }
    case 2: {
      const positive = rng.next() < 0.5;
      const adj = `${pick(rng, INTENSIFIERS)}${pick(rng, positive ? POSITIVE : NEGATIVE)}`;
      const topic = pick(rng, TOPICS);
      return positive ? `${pick(rng, PEOPLE)} liked the ${topic} , it was ${adj} .` : `${pick(rng, PEOPLE)} did not like the ${topic} , it was ${adj} .`;
    }
    case 3: {
      const positive = rng.next() < 0.5;
      return `${pick(rng, positive ? POSITIVE : NEGATIVE)} is a ${positive ? 'positive' : 'negative'} word .`;
    }
    case 4: {
      const w = pick(rng, NOUNS);
      const c = CATEGORY_OF.get(w)!;
      return `${article(w)} ${w} is ${c === 'furniture' ? c : `${article(c)} ${c}`} .`;
    }
    case 5: {
      const w = pick(rng, NOUNS);
      const c = CATEGORY_OF.get(w)!;
      const verb: Record<string, string[]> = {
        animal: ['saw a', 'fed the', 'heard the'],
        fruit: ['ate a', 'bought a', 'picked a'],
        vehicle: ['took the', 'drove the', 'waited for the'],
        furniture: ['sat on the', 'moved the', 'cleaned the'],
        tool: ['used the', 'found the', 'sold the'],
      };
      return `${pick(rng, PEOPLE)} ${pick(rng, verb[c])} ${w} .`;
    }
    case 6: {
      const [a, b] = pick(rng, OPPOSITES);
      return rng.next() < 0.5 ? `${a} is the opposite of ${b} .` : `${b} is the opposite of ${a} .`;
    }
    case 7: {
      const a = pick(rng, ADJECTIVES);
      return `the ${pick(rng, NOUNS)} was not ${a} , it was ${OPPOSITE.get(a)} .`;
    }
    default: {
      const n = 3 + rng.int(2);
      const words = Array.from({ length: n }, () => pick(rng, NOUNS));
      return `${words.join(' ')} : the last word is ${words[n - 1]} .`;
    }
  }
}

export function vocabularySentences(n: number, seed: number): string[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => vocabularySentence(rng));
}

/** Every word the task generators and the vocabulary sentences can produce (for the tokenizer). */
export function taskWords(): string[] {
  const words = new Set<string>([
    ...'what is plus minus ? the of opposite kind thing a an last word positive or negative was . , : liked did not like it'.split(' '),
    ...Object.keys(CATEGORIES),
    ...'saw fed heard ate bought picked took drove waited for sat on moved cleaned used found sold'.split(' '),
  ]);
  for (let n = 0; n <= Math.max(2 * MAX_OPERAND, MAX_COUNT); n++) words.add(String(n));
  for (const w of [...NOUNS, ...ADJECTIVES, ...TOPICS, ...POSITIVE, ...NEGATIVE, ...PEOPLE, ...INTENSIFIERS.map((s) => s.trim()).filter((s) => s)]) words.add(w);
  return [...words];
}
