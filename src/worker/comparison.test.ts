/**
 * The method comparison's runs in the worker (Node, Dawn on SwiftShader): a run with `evalEvery`
 * scores the probe and the held-out task examples before its first step and every evalEvery steps;
 * every compared method holds out the same examples and trains on the same samples in the same
 * order; LoRA gets rank N x R; and before training every method scores what the backbone scores.
 */
import { describe, expect, it } from 'vitest';
import type { EncodedSample } from '../data/template';
import type { AdapterConfig } from '../method/adapter';
import { asFileEntries, tinyHfFiles } from '../test/hf-dir';
import { testGpu } from '../test/gpu';
import { tinyRunSettings } from '../test/run-settings';
import { runSpecOf } from '../train/run-settings';
import type { CurvePoint, MethodKey } from '../train/comparison';
import type { RunStatus, WorkerEvent } from './protocol';
import { Session } from './session';

const WORDS = ['cat', 'dog', 'mat', 'sky', 'red', 'blue', 'big', 'small'];

function train(): string {
  const out: string[] = [];
  for (let i = 0; i < 16; i++) {
    const w = WORDS[i % WORDS.length];
    out.push(JSON.stringify({ instruction: `what color is the ${w} ?`, input: '', output: WORDS[(i * 3 + 1) % WORDS.length], type: 'world knowledge' }));
    out.push(JSON.stringify({ instruction: `is the ${w} big ?`, input: '', output: i % 2 ? 'yes' : 'no', type: 'sizes' }));
  }
  return out.join('\n');
}

const probe = () => WORDS.map((w, i) => JSON.stringify({ instruction: `where is the ${w} ?`, input: '', output: WORDS[(i + 2) % WORDS.length], type: 'world knowledge' })).join('\n');
const bytes = (text: string) => new TextEncoder().encode(text).buffer as ArrayBuffer;

interface RunView {
  trainer: { samples: readonly EncodedSample[] };
  meta: { adapter: AdapterConfig };
  evalTasks: { instruction: string }[];
}

describe('the comparison runs', () => {
  it('score held-out examples every evalEvery steps, on the same held-out set and training order for every method', async () => {
    const hf = tinyHfFiles({ seed: 4 });
    const events: WorkerEvent[] = [];
    let status: RunStatus | null;
    const session = new Session(await testGpu(), (ev) => {
      events.push(ev);
      if (ev.type === 'runStatus') status = ev.status;
    });
    const files = asFileEntries(hf.files);
    await session.loadBackbone({ kind: 'files', ref: { kind: 'local', name: 'tiny' }, files });
    await session.loadDataset('train', 'train.jsonl', bytes(train()));
    const settings = runSpecOf(tinyRunSettings({ steps: 4, seed: 7, checkpointEvery: 0, routingEvery: 4 }));
    await expect(session.startRun({ ...settings, method: 'lora', evalEvery: 2 }, false)).rejects.toThrow(/load probe questions first/);
    await session.loadDataset('probe', 'probe.jsonl', bytes(probe()));

    const runs = new Map<MethodKey, { view: RunView; points: CurvePoint[]; samples: number[][] }>();
    for (const method of ['lora', 'loramoe', 'full'] as const) {
      events.length = 0;
      status = null;
      await session.startRun({ ...settings, method, evalEvery: 2 }, false);
      const view = (session as unknown as { run: RunView }).run;
      const samples = view.trainer.samples.map((s) => s.ids);
      while (status !== 'done' && status !== 'error') await new Promise((r) => setTimeout(r, 10));
      expect(status).toBe('done');
      const points = events.flatMap((e) => (e.type === 'evalPoint' ? [e.point] : []));
      runs.set(method, { view, points, samples });
    }

    for (const [method, r] of runs) {
      // Before the first step and at steps 2 and 4; samples seen = step x batch 4 x accumulation 1.
      expect(r.points.map((p) => [p.step, p.samples]), method).toEqual([
        [0, 0],
        [2, 8],
        [4, 16],
      ]);
      for (const p of r.points) {
        expect(p.probe).toBeGreaterThanOrEqual(0);
        expect(p.probe).toBeLessThanOrEqual(1);
        expect(Object.keys(p.tasks)).toEqual(['sizes']);
        expect(Number.isFinite(p.probeLogLikelihood)).toBe(true);
      }
      // The held-out task examples: the routing set's 'sizes' samples (2 of 16), never world knowledge.
      expect(r.view.evalTasks).toHaveLength(2);
    }
    const lora = runs.get('lora')!;
    const moe = runs.get('loramoe')!;
    const full = runs.get('full')!;
    expect(lora.view.meta.adapter).toMatchObject({ mode: 'lora', numExperts: 1, rank: 4 * 2, alpha: 4 * 4 });
    expect(moe.view.meta.adapter).toMatchObject({ mode: 'loramoe', numExperts: 4, rank: 2, lbcBeta: 0 });
    expect(full.view.meta.adapter.mode).toBe('full');
    // The same held-out examples and the same training samples in the same order.
    expect(lora.view.evalTasks.map((r) => r.instruction)).toEqual(moe.view.evalTasks.map((r) => r.instruction));
    expect(full.view.evalTasks.map((r) => r.instruction)).toEqual(moe.view.evalTasks.map((r) => r.instruction));
    expect(lora.samples).toEqual(moe.samples);
    expect(full.samples).toEqual(moe.samples);
    // At the last point only, the LoRAMoE run is also scored with each expert group off (the specialisation table).
    expect(moe.points.map((p) => p.knockout?.map((k) => [k.group, k.experts]) ?? null)).toEqual([null, null, [['world knowledge', [0, 1]], ['sizes', [2, 3]]]]);
    for (const k of moe.points[2].knockout!) expect(Object.keys(k.tasks)).toEqual(['sizes']);
    expect(lora.points.every((p) => p.knockout === undefined) && full.points.every((p) => p.knockout === undefined)).toBe(true);
    // Before training, an adapter whose B is zero changes nothing: every method scores the backbone's score.
    const zero = moe.points[0];
    for (const r of [lora, full]) {
      expect(r.points[0].probe).toBe(zero.probe);
      expect(r.points[0].probeLogLikelihood).toBeCloseTo(zero.probeLogLikelihood, 4);
    }
  });
});
