/**
 * The demo's data and tokenizer come from a seed: rebuilding gives the shipped files byte for byte.
 * The corpus has what the demo's story needs: every probe fact in pretraining and never in the
 * fine-tuning data, every word in plain sentences, short documents, one-token task answers.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../data/tokenizer';
import { WORLD_KNOWLEDGE } from '../method/data-types';
import { buildDemoData, DEMO_MAX_TOKENS, demoConfigJson, demoTextFiles } from './build';
import { DEMO_SIZE, encodePretrainItem } from './pretrain';
import { ALL_TASK_TYPES, TASK_TYPES } from './tasks';

describe('demo data', () => {
  const data = buildDemoData();
  const tok = loadTokenizer(data.tokenizerJson, data.tokenizerConfig);

  it('rebuilds the shipped data and tokenizer byte for byte', async () => {
    const files = demoTextFiles(data, demoConfigJson(data.vocabSize, DEMO_SIZE));
    for (const [name, text] of Object.entries(files.data)) expect(await readFile(join('public/data', name), 'utf8'), name).toBe(text);
    for (const [name, text] of Object.entries(files.model)) expect(await readFile(join('public/models/demo', name), 'utf8'), name).toBe(text);
    expect(JSON.stringify(buildDemoData())).toBe(JSON.stringify(data));
  });

  it('holds the probe facts out of fine-tuning but not out of pretraining', () => {
    const pretrained = new Set(data.pretrain.flatMap((p) => (p.kind === 'qa' ? [p.record.instruction] : [])));
    const tuned = new Set(data.train.map((r) => r.instruction));
    expect(data.probe.length).toBeGreaterThan(150);
    for (const r of data.probe) {
      expect(pretrained.has(r.instruction)).toBe(true);
      expect(tuned.has(r.instruction)).toBe(false);
    }
    expect(data.train.filter((r) => r.type === WORLD_KNOWLEDGE).length).toBeGreaterThan(3 * data.probe.length - 10);
  });

  it('puts every word in plain sentences, keeps documents short and task answers one token', () => {
    const inSentences = new Set<number>();
    for (const p of data.pretrain) {
      const s = encodePretrainItem(tok, p, DEMO_MAX_TOKENS);
      expect(s.ids.length).toBeLessThanOrEqual(DEMO_MAX_TOKENS);
      expect(s.ids).not.toContain(0);
      if (p.kind === 'text') for (const id of s.ids) inSentences.add(id);
    }
    // Every word of the vocabulary but the special tokens and the facts' question words occurs in a
    // sentence (fact sentences say "the capital of x is y ."; the questions' "what", "which", ... are
    // in the questions).
    const questionOnly = new Set(['which', 'language', 'spoken', 'continent', 'in', '?', 'what', 'kind', 'thing', 'or']);
    const vocab = (data.tokenizerJson.model as { vocab: Record<string, number> }).vocab;
    const absent = Object.entries(vocab).filter(([w, id]) => id > 3 && !inSentences.has(id) && !questionOnly.has(w)).map(([w]) => w);
    expect(absent).toEqual([]);
    // Pretraining holds a small share of formatted task examples; fine-tuning and evaluation are the tasks.
    const pretrainTasks = data.pretrain.filter((p) => p.kind === 'qa' && p.record.type !== WORLD_KNOWLEDGE).length;
    expect(pretrainTasks / data.pretrain.length).toBeLessThan(0.05);
    expect(new Set(data.pretrain.flatMap((p) => (p.kind === 'qa' && p.record.type !== WORLD_KNOWLEDGE ? [p.record.type] : [])))).toEqual(new Set(ALL_TASK_TYPES));
    expect([...new Set(data.taskEval.map((r) => r.type))].sort()).toEqual([...TASK_TYPES].sort());
    for (const r of [...data.train, ...data.taskEval]) if (r.type !== WORLD_KNOWLEDGE) expect(tok.encode(r.output, false)).toHaveLength(1);
  });
});
