/**
 * Reliability of training on a real WebGPU adapter (Node, Dawn on SwiftShader):
 *
 * 1. Numerical faults. A NaN injected into one step's loss gradient is caught at that step: the
 *    step reports `skipped` with a non-finite gradient norm, every trainable tensor and both AdamW
 *    moments are bit-identical to before it, and the next step trains normally. A NaN written into
 *    a parameter makes every step fault: after `limit` in a row the NumericGuard calls for a
 *    rollback, and importing the last good checkpoint restores its tensors bit-identically (the
 *    step after it then equals the step the run took the first time). The same through the engine
 *    worker's Session: the user is told at which step what was not finite, and what was done.
 * 2. A lost device (device.destroy() through the session's test hook): a new device is acquired,
 *    the backbone uploaded again, the run continues from its last checkpoint, and the metric series
 *    ends up the same as a run that never lost its device.
 * 3. Soak: a long unattended session (training with checkpoints, probes, chats, a pause) keeps the
 *    same number of live GPU buffers and a flat JS heap once warmed up.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it, vi } from 'vitest';
import { nodeGpu } from '../engine/node-gpu';
import { defaultAdapterConfig } from '../loramoe/config';
import { type AdapterConfig } from '../method/adapter';
import { initAdapter } from '../loramoe/init';
import { GpuWeights } from '../model/weights';
import { type RunSettings, runSpecOf } from '../train/run-settings';
import { asFileEntries, tinyHfFiles } from '../test/hf-dir';
import { testGpu } from '../test/gpu';
import { randomWeights, TINY_SHAPE, TINY_SAMPLES, TINY_TYPES } from '../test/tiny-llama';
import { countBuffers } from '../engine/buffer-count';
import { describeFault, NumericGuard } from '../run/faults';
import type { RunEvent, RunStatus, WorkerEvent } from './protocol';
import { superviseDevice } from './recovery';
import { Session } from './session';
import { defaultTrainSettings, type StepMetrics, type TrainerCheckpoint, Trainer, type TrainSettings } from '../train/trainer';
import { tinyRunSettings } from '../test/run-settings';
import { errorMessage } from '../util/errors';

// ---- helpers -------------------------------------------------------------------------------------

const TYPES = TINY_TYPES;
const SAMPLES = TINY_SAMPLES;

const MOE: AdapterConfig = { ...defaultAdapterConfig('loramoe'), numExperts: 4, rank: 4, alpha: 8, dropout: 0.1, groups: [[2, 3], [0, 1]] };

async function makeTrainer(over: Partial<TrainSettings> = {}) {
  const ctx = await testGpu();
  const s: TrainSettings = { ...defaultTrainSettings(), lr: 1e-2, batchSize: 2, maxLength: 8, steps: 40, warmupRatio: 0, ...over };
  const weights = new GpuWeights(ctx, TINY_SHAPE, randomWeights(TINY_SHAPE, 5), MOE, initAdapter(TINY_SHAPE, MOE, s.seed), s.maxLength);
  const trainer = new Trainer(ctx, weights, SAMPLES, (t) => TYPES.indexOf(t), TYPES, s, 0);
  return { ctx, weights, trainer, dispose: () => (trainer.destroy(), weights.destroy()) };
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Every trainable tensor and both moments, bit for bit; plus step count, sampler and dropout stream. */
function expectSameState(a: TrainerCheckpoint, b: TrainerCheckpoint, what: string): void {
  expect(a.tensors.length, what).toBe(b.tensors.length);
  a.tensors.forEach((t, i) => {
    const u = b.tensors[i];
    expect(u.name).toBe(t.name);
    expect(bits(u.param).equals(bits(t.param)), `${what}: ${t.name} param`).toBe(true);
    expect(bits(u.m).equals(bits(t.m)), `${what}: ${t.name} m`).toBe(true);
    expect(bits(u.v).equals(bits(t.v)), `${what}: ${t.name} v`).toBe(true);
  });
}

const TRAIN_JSONL = [
  { instruction: 'what color is the sky ?', output: 'blue .', task_type: 1 },
  { instruction: 'what color is the mat ?', output: 'red .', task_type: 1 },
  { instruction: 'is the cat big ?', output: 'yes .', task_type: 1 },
  { instruction: 'is the dog small ?', output: 'no .', task_type: 1 },
  { instruction: 'the cat sat on', output: 'the mat .', task_type: 0 },
  { instruction: 'the dog sat on', output: 'a mat .', task_type: 0 },
  { instruction: 'a cat is', output: 'small .', task_type: 0 },
  { instruction: 'a dog is', output: 'big .', task_type: 0 },
]
  .map((r) => JSON.stringify({ ...r, input: '' }))
  .join('\n');

const PROBE_JSONL = [
  { instruction: 'what color is the sky ?', output: 'blue', type: 'world knowledge' },
  { instruction: 'is the cat big ?', output: 'yes', type: 'world knowledge' },
]
  .map((r) => JSON.stringify({ ...r, input: '' }))
  .join('\n');

const bytesOf = (text: string): ArrayBuffer => new TextEncoder().encode(text).buffer as ArrayBuffer;

const runSettings = tinyRunSettings;

/**
 * An engine-worker Session in Node on the tiny Hugging Face model, with the page's side played
 * here: events are recorded and the metric series is rebuilt as src/store/engine-bridge.ts does.
 */
class Harness {
  readonly events: WorkerEvent[] = [];
  /** The metric series as the page shows it. */
  series: StepMetrics[] = [];
  readonly runEvents: RunEvent[] = [];
  status: RunStatus = 'idle';
  onEvent: ((ev: WorkerEvent) => void) | null = null;
  readonly session: Session;

  constructor(ctx: Awaited<ReturnType<typeof testGpu>>) {
    this.session = new Session(ctx, (ev) => this.receive(ev), { testHooks: true });
  }

  private receive(ev: WorkerEvent): void {
    this.events.push(ev);
    if (ev.type === 'runStarted') this.series = ev.run.resumed ? [...(ev.run.metrics ?? [])] : [];
    if (ev.type === 'metrics') this.series.push(...ev.points);
    if (ev.type === 'runEvent') this.runEvents.push(ev.event);
    if (ev.type === 'runStatus') this.status = ev.status;
    this.onEvent?.(ev);
  }

  async load(): Promise<void> {
    const files = asFileEntries(tinyHfFiles({ seed: 3 }).files);
    await this.session.loadBackbone({ kind: 'files', ref: { kind: 'local', name: 'tiny' }, files });
    await this.session.loadDataset('train', 'tiny.jsonl', bytesOf(TRAIN_JSONL));
    await this.session.loadDataset('probe', 'probe.jsonl', bytesOf(PROBE_JSONL));
  }

  async until(what: string, pred: () => boolean, timeoutMs = 100_000): Promise<void> {
    const t0 = Date.now();
    while (!pred()) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what} (status ${this.status}, ${this.series.length} steps)`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async train(s: RunSettings): Promise<void> {
    await this.session.startRun(runSpecOf(s), false);
    await this.until('the end of the run', () => this.status === 'done' || this.status === 'error' || this.status === 'paused');
  }
}

const stepsOf = (ms: readonly StepMetrics[]) => ms.map((m) => m.step);
const lossBits = (ms: readonly StepMetrics[]) => ms.map((m) => m.loss);

// ---- 1. numerical faults ----------------------------------------------------------------------------

describe('numerical faults', () => {
  it('a NaN in a step\'s gradient is caught at that step: skipped, tensors bit-identical, the next step trains', async () => {
    const { trainer, dispose } = await makeTrainer();
    const guard = new NumericGuard(3);
    for (let i = 0; i < 2; i++) expect(guard.observe(await trainer.step()).kind).toBe('ok');
    const before = await trainer.exportCheckpoint();

    trainer.injectGradientNaN();
    const bad = await trainer.step();
    console.log(`[faults] injected step ${bad.step}: loss ${bad.loss}, grad norm ${bad.gradNorm}, skipped ${bad.skipped}`);
    expect(bad.step).toBe(3);
    expect(bad.skipped).toBe(true);
    expect(Number.isFinite(bad.gradNorm)).toBe(false);
    expect(Number.isFinite(bad.loss)).toBe(true); // the forward was fine: only the gradient was poisoned
    const verdict = guard.observe(bad);
    expect(verdict).toMatchObject({ kind: 'fault', streak: 1, fault: { step: 3, gradNorm: true, loss: false, skipped: true } });
    if (verdict.kind === 'fault') expect(describeFault(verdict.fault, 1, 3)).toMatch(/^Step 3: the gradient norm \(NaN\) was not finite; the update was skipped/);
    const after = await trainer.exportCheckpoint();
    expectSameState(before, after, 'after the skipped step');

    const next = await trainer.step();
    expect(next.skipped).toBe(false);
    expect(Number.isFinite(next.gradNorm) && Number.isFinite(next.loss)).toBe(true);
    expect(guard.observe(next).kind).toBe('ok');
    expect(guard.streakLength).toBe(0);
    const moved = await trainer.exportCheckpoint();
    const changed = moved.tensors.filter((t, i) => !bits(t.param).equals(bits(after.tensors[i].param))).length;
    expect(changed).toBeGreaterThan(0);
    dispose();
  });

  it('a NaN parameter faults every step; after the limit, the rollback restores the checkpoint bit-identically', async () => {
    const { ctx, trainer, dispose } = await makeTrainer();
    const guard = new NumericGuard(3);
    const first: StepMetrics[] = [];
    for (let i = 0; i < 3; i++) first.push(await trainer.step());
    const checkpoint = await trainer.exportCheckpoint();
    for (let i = 0; i < 2; i++) first.push(await trainer.step());

    // Poison one value of the first trainable tensor: the forward and every gradient go NaN.
    const p = trainer.graph.params[0];
    ctx.device.queue.writeBuffer(p.param.buffer, 0, new Float32Array([NaN]));
    const verdicts = [];
    for (let i = 0; i < 3; i++) {
      const m = await trainer.step();
      expect(m.skipped, `step ${m.step}`).toBe(true);
      expect(Number.isFinite(m.loss)).toBe(false);
      expect(Number.isFinite(m.gradNorm)).toBe(false);
      verdicts.push(guard.observe(m));
    }
    expect(verdicts.map((v) => v.kind)).toEqual(['fault', 'fault', 'rollback']);
    const rb = verdicts[2];
    expect(rb.kind === 'rollback' && rb.faults.map((f) => f.step)).toEqual([6, 7, 8]);

    trainer.importCheckpoint(checkpoint);
    expect(trainer.stepsDone).toBe(3);
    const restored = await trainer.exportCheckpoint();
    expectSameState(checkpoint, restored, 'after the rollback');
    expect(restored.sampler).toEqual(checkpoint.sampler);
    expect(restored.dropoutRng).toBe(checkpoint.dropoutRng);

    // The run goes on as if the fault never happened: step 4 again, the same batch, mask and update.
    const again = await trainer.step();
    expect(again.step).toBe(4);
    expect(again.skipped).toBe(false);
    expect(again.loss).toBe(first[3].loss);
    expect(again.gradNorm).toBe(first[3].gradNorm);
    expect(guard.observe(again).kind).toBe('ok');
    dispose();
  });

  it('in the engine worker session: faults are reported with their step, the run rolls back, and its series has no gap', async () => {
    const h = new Harness(await testGpu());
    await h.load();
    // Reference: the same run without faults.
    await h.train(runSettings({ steps: 10, checkpointEvery: 4 }));
    expect(h.status).toBe('done');
    const clean = [...h.series];
    expect(stepsOf(clean)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

    // Again, with a NaN written into a parameter once step 5 is done.
    let injected = false;
    h.onEvent = (ev) => {
      if (!injected && ev.type === 'metrics' && ev.points.some((m) => m.step === 5)) {
        injected = true;
        void h.session.debug({ kind: 'injectFault', target: 'parameter' });
      }
    };
    await h.train(runSettings({ steps: 10, checkpointEvery: 4 }));
    h.onEvent = null;
    expect(h.status).toBe('done');
    const faults = h.runEvents.filter((e) => e.kind === 'nonFinite');
    const rollbacks = h.runEvents.filter((e) => e.kind === 'rollback');
    for (const e of [...faults, ...rollbacks]) console.log(`[faults] ${e.kind} at step ${e.step}: ${e.message}`);
    expect(faults.map((e) => e.step)).toEqual([6, 7, 8]);
    expect(faults.every((e) => e.nonFinite?.loss && e.nonFinite.gradNorm)).toBe(true);
    expect(faults[0].message).toMatch(/^Step 6: the loss \(NaN\) and the gradient norm \(NaN\) were not finite; the update was skipped/);
    expect(rollbacks).toHaveLength(1);
    expect(rollbacks[0]).toMatchObject({ step: 8, toStep: 4, severity: 'warning' });
    expect(rollbacks[0].message).toMatch(/rolled back to the checkpoint at step 4 .*No setting was changed/);
    // The page's series: 1..10 without a gap or a NaN, equal to the run that never faulted.
    expect(stepsOf(h.series)).toEqual(stepsOf(clean));
    expect(lossBits(h.series)).toEqual(lossBits(clean));
  });

  it('a state that went non-finite between two steps is never kept as a checkpoint', async () => {
    const h = new Harness(await testGpu());
    await h.load();
    await h.train(runSettings({ steps: 10, checkpointEvery: 2 }));
    const clean = [...h.series];
    // The NaN lands after step 4 and before its checkpoint is read: step 4 itself looked healthy.
    let injected = false;
    h.onEvent = (ev) => {
      if (!injected && ev.type === 'metrics' && ev.points.some((m) => m.step === 4)) {
        injected = true;
        void h.session.debug({ kind: 'injectFault', target: 'parameter' });
      }
    };
    await h.train(runSettings({ steps: 10, checkpointEvery: 2 }));
    h.onEvent = null;
    expect(h.status).toBe('done');
    const refused = h.runEvents.filter((e) => e.kind === 'checkpointRefused');
    expect(refused.map((e) => e.step)).toEqual([4]);
    expect(refused[0].message).toMatch(/^The state at step 4 holds a non-finite value \(NaN in the parameter of .*\): it was not kept as a checkpoint; the last good one stays \(the checkpoint at step 2\)/);
    expect(h.runEvents.filter((e) => e.kind === 'nonFinite').map((e) => e.step)).toEqual([5, 6, 7]);
    expect(h.runEvents.find((e) => e.kind === 'rollback')?.toStep).toBe(2);
    expect(lossBits(h.series)).toEqual(lossBits(clean));
  });

  it('a fault that comes back after a rollback to the same state pauses the run instead of looping', async () => {
    const h = new Harness(await testGpu());
    await h.load();
    // Every step after step 2 gets a NaN gradient: the rollback cannot help.
    h.onEvent = (ev) => {
      if (ev.type === 'metrics' && ev.points.some((m) => m.step >= 2)) void h.session.debug({ kind: 'injectFault', target: 'gradient' });
    };
    await h.train(runSettings({ steps: 12, checkpointEvery: 2, faultLimit: 2 }));
    h.onEvent = null;
    expect(h.status).toBe('paused');
    const rollbacks = h.runEvents.filter((e) => e.kind === 'rollback');
    expect(rollbacks.map((e) => e.toStep)).toEqual([2, 2]);
    expect(rollbacks[1].severity).toBe('error');
    expect(rollbacks[1].message).toMatch(/the run is paused/);
    expect(stepsOf(h.series)).toEqual([1, 2]);
    h.session.stop();
  });
});

// ---- 2. a lost device ---------------------------------------------------------------------------------

describe('a lost GPU device', () => {
  it('is replaced: the backbone is uploaded again and the run continues from its last checkpoint, with the same results', async () => {
    // A device of its own: this test destroys it.
    const first = await nodeGpu();
    const h = new Harness(first);
    let current = first;
    void superviseDevice(first, h.session, { acquire: () => nodeGpu(), onContext: (c) => (current = c) });
    await h.load();
    // No routing window before the end: nothing but the clock sends the batched metrics early.
    const settings = runSettings({ steps: 9, checkpointEvery: 3, routingEvery: 100 });
    await h.train(settings);
    const clean = [...h.series];

    // The worker batches metrics by time; with its clock stopped, every step since the start is
    // still held when the device goes, and the page's series must not get them after the resume.
    const clock = vi.spyOn(performance, 'now').mockReturnValue(performance.now());
    try {
      await h.session.startRun(runSpecOf(settings), false);
      await h.until('step 5', () => (h.session.run?.trainer.stepsDone ?? 0) >= 5);
      void h.session.debug({ kind: 'loseDevice' });
      await h.until('the recovered run to finish', () => h.status === 'done' && h.runEvents.some((e) => e.kind === 'deviceLost'));
    } finally {
      clock.mockRestore();
    }
    const ev = h.runEvents.find((e) => e.kind === 'deviceLost')!;
    console.log(`[device] ${ev.message}`);
    expect(current).not.toBe(first);
    expect(h.session.gpu).toBe(current);
    expect(ev.step).toBeGreaterThanOrEqual(5);
    expect([3, 6]).toContain(ev.toStep);
    expect(ev.toStep).toBeLessThanOrEqual(ev.step);
    expect(ev.message).toMatch(new RegExp(`^The GPU device was lost at step ${ev.step} \\(.*\\); resumed from the checkpoint at step ${ev.toStep}`));
    expect(stepsOf(h.series)).toEqual(stepsOf(clean));
    expect(lossBits(h.series)).toEqual(lossBits(clean));
    // The new device serves the rest of the session (a probe runs on it).
    await h.session.probe('after');
    expect(h.events.some((e) => e.type === 'probe')).toBe(true);
  });
});

// ---- 3. soak ----------------------------------------------------------------------------------------

/** global.gc, also when Node was started without --expose-gc. */
function gcFunction(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

describe('soak', () => {
  // The long soak (1000 steps) is tools/soak.ts; this is its short form, sized to stay far from the
  // test timeout on a busy 2-core machine.
  it('24 steps with checkpoints, probes, chats and a pause: no growth in live GPU buffers or JS heap after warm-up', async () => {
    const ctx = await nodeGpu();
    const count = countBuffers(ctx.device);
    const gc = gcFunction();
    const h = new Harness(ctx);
    await h.load();
    const heap = () => {
      gc();
      gc();
      return process.memoryUsage().heapUsed;
    };
    // Between steps: a probe every 5 steps, a chat every 7, a pause at 12 (and resume).
    let pausedAt = 0;
    const failures: string[] = [];
    const fail = (e: unknown) => failures.push(errorMessage(e));
    h.onEvent = (ev) => {
      if (ev.type !== 'metrics') return;
      for (const m of ev.points) {
        if (m.step % 5 === 0) h.session.probe('after').catch(fail);
        if (m.step % 7 === 0) h.session.generate(m.step, 'what color is the sky ?', m.step % 2 === 0, { temperature: 0.7, topK: 5, topP: 0.9, maxNewTokens: 4, seed: m.step }).catch(fail);
        if (m.step === 12 && pausedAt === 0) {
          pausedAt = 12;
          h.session.pause();
        }
      }
    };
    await h.session.startRun(runSpecOf(runSettings({ steps: 24, checkpointEvery: 4, routingEvery: 3 })), false);
    // Warm-up: the first half, up to the pause, with every kind of work done at least once.
    await h.until('the pause', () => h.status === 'paused', 200_000);
    await h.session.probe('after');
    await h.session.generate(0, 'is the cat big ?', true, { temperature: 0, topK: 0, topP: 1, maxNewTokens: 4, seed: 0 });
    const warm = { buffers: count.live, bytes: count.liveBytes, heap: heap(), labels: count.byLabel() };
    h.session.resume();
    await h.until('the end of the run', () => h.status === 'done', 200_000);
    h.onEvent = null;
    await h.session.probe('after');
    await h.session.generate(0, 'is the cat big ?', true, { temperature: 0, topK: 0, topP: 1, maxNewTokens: 4, seed: 0 });
    const end = { buffers: count.live, bytes: count.liveBytes, heap: heap(), labels: count.byLabel() };
    count.stop();
    const probes = h.events.filter((e) => e.type === 'probe').length;
    const chats = h.events.filter((e) => e.type === 'chatDone').length;
    console.log(
      `[soak] ${h.series.length} steps, ${probes} probes, ${chats} chats, ${count.created} buffers created: ` +
        `live ${warm.buffers} (${warm.bytes} B) after warm-up, ${end.buffers} (${end.bytes} B) at the end; ` +
        `heap ${(warm.heap / 2 ** 20).toFixed(2)} MiB -> ${(end.heap / 2 ** 20).toFixed(2)} MiB`,
    );
    expect(failures).toEqual([]);
    expect(h.series.length).toBe(24);
    expect(probes).toBeGreaterThanOrEqual(4);
    expect(chats).toBeGreaterThanOrEqual(3);
    if (end.buffers !== warm.buffers) console.log('[soak] live buffers by label, warm-up vs end:', warm.labels, end.labels);
    expect(end.buffers).toBe(warm.buffers);
    expect(end.bytes).toBe(warm.bytes);
    // 12 more steps of metrics (about 200 B each) are kept on purpose; anything like a per-step
    // readback or batch left behind would be far more (a step reads back and uploads kilobytes).
    expect(end.heap - warm.heap).toBeLessThan(1.5 * 2 ** 20);
  });
});
