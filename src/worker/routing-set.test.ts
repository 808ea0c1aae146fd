/**
 * The engine worker's Session measures routing on the run's routing set (Node, Dawn on SwiftShader):
 * at every routing window it posts a summary measured on the set (dropout off) whose token counts
 * are the set's real tokens, type by type, beside the training window's summary; the held-out
 * samples never appear in training (two windows of exactly one epoch each count every training
 * token and no held-out one).
 */
import { describe, expect, it } from 'vitest';
import { parseDataset, typeIndexMapping } from '../data/import';
import { encodeOfficial } from '../data/template';
import { MemorySource } from '../io/files';
import { loadBackbone } from '../model/load';
import type { RoutingSummary } from '../train/routing';
import { selectRoutingSet } from '../train/routing-set';
import { type RunSettings, runSpecOf } from '../train/run-settings';
import { asFileEntries, tinyHfFiles } from '../test/hf-dir';
import { testGpu } from '../test/gpu';
import type { RunStatus, WorkerEvent } from './protocol';
import { Session } from './session';
import { tinyRunSettings } from '../test/run-settings';

const WORDS = ['cat', 'dog', 'mat', 'sky', 'red', 'blue', 'big', 'small'];

/** 16 records of each of two types (2 of each held out), of different lengths. */
function records(): string {
  const out: string[] = [];
  for (let i = 0; i < 16; i++) {
    const w = WORDS[i % WORDS.length];
    const v = WORDS[(i * 3 + 1) % WORDS.length];
    out.push(JSON.stringify({ instruction: `what color is the ${w} ?`, input: '', output: i % 2 ? `${v} .` : v, type: 'world knowledge' }));
    out.push(JSON.stringify({ instruction: i % 3 ? `is the ${w} ${v} ?` : `the ${w} sat on the ${v}`, input: '', output: i % 2 ? 'yes .' : 'no', type: 'downstream task' }));
  }
  return out.join('\n');
}

const runSettings = (over: Partial<RunSettings>): RunSettings => tinyRunSettings({ steps: 14, seed: 5, checkpointEvery: 0, routingEvery: 7, ...over });

describe('routing set in the session', () => {
  it('posts a routing-set summary at every window whose tokens are the set\'s real tokens; the set is never trained on', async () => {
    const hf = tinyHfFiles({ seed: 3 });
    const text = records();
    const events: WorkerEvent[] = [];
    let status = 'idle' as RunStatus;
    const session = new Session(await testGpu(), (ev) => {
      events.push(ev);
      if (ev.type === 'runStatus') status = ev.status;
      if (ev.type === 'runStatus' && ev.message) console.log(`[routing set] ${ev.status}: ${ev.message}`);
    });
    const files = asFileEntries(hf.files);
    await session.loadBackbone({ kind: 'files', ref: { kind: 'local', name: 'tiny' }, files });
    await session.loadDataset('train', 'routing.jsonl', new TextEncoder().encode(text).buffer as ArrayBuffer);

    // What the set must be: the seeded draw over the records, encoded as the run encodes them.
    const parsed = await parseDataset(new TextEncoder().encode(text), 'routing.jsonl');
    const tok = (await loadBackbone(new MemorySource('tiny', hf.files))).tokenizer;
    const encoded = parsed.records.map((r) => encodeOfficial(tok, r, 16));
    const names = typeIndexMapping(parsed.records).names;
    const settings = runSettings({});
    const sel = selectRoutingSet(encoded.map((s) => s.type), names, settings.seed);
    expect(sel.heldOut.length).toBe(4);
    expect(sel.sampled).toEqual([]);
    const held = new Set(sel.heldOut);
    const setTokens = names.map((t) => sel.heldOut.filter((i) => encoded[i].type === t).reduce((a, i) => a + encoded[i].ids.length, 0));
    const trainTokens = names.map((t) => encoded.reduce((a, s, i) => a + (s.type === t && !held.has(i) ? s.ids.length : 0), 0));

    await session.startRun(runSpecOf(settings), false);
    const t0 = Date.now();
    while (status !== 'done' && status !== 'error') {
      if (Date.now() - t0 > 200_000) throw new Error(`timed out (status ${status})`);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(status).toBe('done');
    const routing = events.filter((e): e is Extract<WorkerEvent, { type: 'routing' }> => e.type === 'routing');
    const onSet = routing.filter((e) => e.summary.source?.kind === 'routingSet');
    const windows = routing.filter((e) => e.summary.source?.kind === 'window');
    console.log(`[routing set] types ${names.join(' / ')}: set tokens ${setTokens.join(' / ')}, training tokens per epoch ${trainTokens.join(' / ')}`);
    expect(onSet.map((e) => e.step)).toEqual([7, 14]);
    expect(windows.map((e) => e.step)).toEqual([7, 14]);
    for (const e of onSet) {
      const s: RoutingSummary = e.summary;
      expect(s.types).toEqual(names);
      expect(s.tokens).toEqual(setTokens);
      expect(s.ownGroup.map((o) => o.samples)).toEqual([2, 2]);
      expect(s.source).toEqual({ kind: 'routingSet', step: e.step, types: names.map((type) => ({ type, samples: 2, heldOut: true })) });
      for (const row of s.groupMean) expect(row.reduce((a, x) => a + x, 0)).toBeCloseTo(1, 4);
    }
    // The routing changes as the adapter trains.
    expect(onSet[1].summary.mean).not.toEqual(onSet[0].summary.mean);
    // 28 training samples in batches of 4: each window of 7 steps is exactly one epoch.
    for (const [k, e] of windows.entries()) {
      expect(e.summary.tokens).toEqual(trainTokens);
      expect(e.summary.source).toEqual({ kind: 'window', fromStep: 7 * k + 1, toStep: 7 * k + 7 });
    }
  }, 300_000);
});
