/**
 * A run leaves out the samples whose answer the maximum length cuts away (Node, Dawn on SwiftShader):
 * they are counted and reported as a run event, never trained on and never drawn into the routing
 * set; the start posts its phases (tokenising, uploading, compiling, the first step) before the first
 * metrics. A dataset in which no sample keeps an answer is refused with the reason.
 */
import { describe, expect, it } from 'vitest';
import { hasAnswer, type EncodedSample } from '../data/template';
import { asFileEntries, tinyHfFiles } from '../test/hf-dir';
import { testGpu } from '../test/gpu';
import { tinyRunSettings } from '../test/run-settings';
import { runSpecOf } from '../train/run-settings';
import type { RunEvent, RunStatus, StartupPhase, WorkerEvent } from './protocol';
import { Session } from './session';

const WORDS = ['cat', 'dog', 'mat', 'sky', 'red', 'blue', 'big', 'small'];
/** 16 words: with its end-of-sequence token the prompt fills the maximum length of 16 (the tiny tokenizer adds no BOS). */
const LONG = Array.from({ length: 16 }, (_, i) => WORDS[i % WORDS.length]).join(' ');

/** 16 records of each of two types, and `long` more downstream-task records whose prompt alone is 17 tokens. */
function records(long: number): string {
  const out: string[] = [];
  for (let i = 0; i < 16; i++) {
    const w = WORDS[i % WORDS.length];
    out.push(JSON.stringify({ instruction: `what color is the ${w} ?`, input: '', output: WORDS[(i * 3 + 1) % WORDS.length], type: 'world knowledge' }));
    out.push(JSON.stringify({ instruction: `is the ${w} big ?`, input: '', output: i % 2 ? 'yes' : 'no', type: 'downstream task' }));
  }
  for (let i = 0; i < long; i++) out.push(JSON.stringify({ instruction: LONG, input: '', output: 'yes', type: 'downstream task' }));
  return out.join('\n');
}

const bytes = (text: string) => new TextEncoder().encode(text).buffer as ArrayBuffer;

describe('samples without an answer', () => {
  it('are left out of training and the routing set, with a run event; the start reports its phases', async () => {
    const hf = tinyHfFiles({ seed: 3 });
    const events: WorkerEvent[] = [];
    let status = 'idle' as RunStatus;
    const session = new Session(await testGpu(), (ev) => {
      events.push(ev);
      if (ev.type === 'runStatus') status = ev.status;
    });
    const files = asFileEntries(hf.files);
    await session.loadBackbone({ kind: 'files', ref: { kind: 'local', name: 'tiny' }, files });
    await session.loadDataset('train', 'long.jsonl', bytes(records(3)));
    await session.startRun(runSpecOf(tinyRunSettings({ steps: 2, seed: 5, checkpointEvery: 0, routingEvery: 2, maxLength: 16 })), false);
    const t0 = Date.now();
    while (status !== 'done' && status !== 'error') {
      if (Date.now() - t0 > 200_000) throw new Error(`timed out (status ${status})`);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(status).toBe('done');

    const left = events.flatMap((e): RunEvent[] => (e.type === 'runEvent' && e.event.kind === 'samplesLeftOut' ? [e.event] : []));
    expect(left).toHaveLength(1);
    expect(left[0].message).toMatch(/^3 of 35 samples are left out of training: their prompt alone fills the maximum length of 16 tokens/);
    // 35 records, 3 without an answer, 2 of each type's 16 answered ones held out for the routing set.
    const run = (session as unknown as { run: { trainer: { samples: readonly EncodedSample[] }; routingSet: { samples: readonly EncodedSample[] } } }).run;
    expect(run.trainer.samples).toHaveLength(35 - 3 - 4);
    expect(run.trainer.samples.every(hasAnswer)).toBe(true);
    expect(run.routingSet.samples).toHaveLength(4);
    expect(run.routingSet.samples.every(hasAnswer)).toBe(true);

    // The start's phases, in order, before the first metrics (compiling only if a kernel was new).
    const firstMetrics = events.findIndex((e) => e.type === 'metrics');
    const startup = events.flatMap((e, i) => (e.type === 'startup' ? [{ i, ...e.progress }] : []));
    expect(startup.every((p) => p.i < firstMetrics)).toBe(true);
    const phases: StartupPhase[] = [];
    for (const p of startup) if (p.phase !== 'compiling' && phases[phases.length - 1] !== p.phase) phases.push(p.phase);
    expect(phases).toEqual(['tokenising', 'uploading', 'firstStep']);
    const tokenising = startup.filter((p) => p.phase === 'tokenising');
    expect(tokenising[0]).toMatchObject({ done: 0, total: 35 });
    expect(tokenising[tokenising.length - 1]).toMatchObject({ done: 35, total: 35 });
    const compiled = startup.filter((p) => p.phase === 'compiling').map((p) => p.done);
    expect(compiled).toEqual(compiled.map((_, k) => k + 1));
    const started = events.findIndex((e) => e.type === 'runStarted');
    expect(startup[startup.length - 1]).toMatchObject({ phase: 'firstStep' });
    expect(startup[startup.length - 1].i).toBeGreaterThan(started);

    // A dataset in which every prompt fills the maximum length has nothing to train on.
    await session.loadDataset('train', 'all-long.jsonl', bytes(Array.from({ length: 4 }, () => JSON.stringify({ instruction: LONG, output: 'no' })).join('\n')));
    await expect(session.startRun(runSpecOf(tinyRunSettings({ steps: 2, maxLength: 16 })), false)).rejects.toThrow(/^no sample keeps an answer token: 4 of 4 samples are left out of training/);
  });
});
