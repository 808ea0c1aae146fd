/**
 * The training loop of the engine worker's run and what steers it: one serialised step at a time,
 * each step's metrics checked (./faults.ts), posted in batches with routing summaries and held-out
 * scores, checkpointed (./run-checkpoints.ts); pause, resume and stop take effect between steps.
 */
import type { GpuContext } from '../engine/gpu';
import { heldOutScore, knockoutScores } from '../train/comparison';
import { evaluate } from '../train/evaluate';
import type { RoutingSummary } from '../train/routing';
import { isRouted } from '../method/adapter';
import { persistenceAvailable } from '../io/persist';
import { describeFault } from './faults';
import { withDisplayGroups } from './groups';
import { CHECKPOINT_SECONDS, keepAdapter, remember, rollback, saveCheckpoint } from './run-checkpoints';
import { flushMetrics, type Run } from './run-state';
import type { Session } from './session';
import { errorMessage } from '../util/errors';

const sleep0 = () => new Promise<void>((r) => setTimeout(r, 0));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The training loop: one serialised step at a time until done, paused, stopped or failed. Each
 * step's metrics go through the run's NumericGuard: a faulty step is reported (its update was
 * skipped) and never checkpointed; `faultLimit` in a row roll the run back (see ./faults.ts).
 */
export async function loop(s: Session): Promise<void> {
  const r = s.run;
  if (!r || r.looping) return;
  r.looping = true;
  const ctx = s.ctx;
  try {
    // A run that scores held-out examples scores the model before its first step (the curves' origin).
    if (r.evalEvery > 0 && r.trainer.stepsDone === 0 && r.lastScored !== 0) await scoreHeldOut(s, r);
    while (r.status === 'running' && r.trainer.stepsDone < r.totalSteps && s.run === r) {
      const m = await s.serial(() => r.trainer.step());
      if (s.run !== r) return;
      r.pending.push(m);
      r.history.push(m);
      const step = m.step;
      const verdict = r.guard.observe(m);
      if (verdict.kind !== 'ok') {
        const fault = verdict.kind === 'fault' ? verdict.fault : verdict.faults[verdict.faults.length - 1];
        const streak = verdict.kind === 'fault' ? verdict.streak : verdict.faults.length;
        s.runEvent({ kind: 'nonFinite', severity: 'warning', step, nonFinite: { loss: fault.loss, gradNorm: fault.gradNorm }, message: describeFault(fault, streak, r.guard.limit) });
      }
      if (verdict.kind === 'rollback') {
        await rollback(s, r, verdict.faults);
        await sleep0();
        continue;
      }
      if (step % r.routingEvery === 0 || step === r.totalSteps) {
        flushMetrics(s, true);
        postRouting(s);
        await measureRoutingSet(s, r);
        if (s.run !== r) return;
      } else flushMetrics(s, false);
      if (r.evalEvery > 0 && verdict.kind === 'ok' && (step % r.evalEvery === 0 || step === r.totalSteps)) {
        flushMetrics(s, true);
        await scoreHeldOut(s, r);
        if (s.run !== r) return;
      }
      const late = performance.now() - r.lastCheckpointAt >= Math.max(CHECKPOINT_SECONDS * 1000, 10 * r.checkpointMs);
      const due = r.checkpointEvery > 0 && (step % r.checkpointEvery === 0 || step === r.totalSteps || r.checkpointDue || late);
      if (due && verdict.kind === 'fault') {
        // A state inside a fault streak is never stored: the checkpoint waits for the next good step.
        r.checkpointDue = true;
      } else if (due) {
        r.checkpointDue = false;
        flushMetrics(s, true);
        await saveCheckpoint(s, r);
      }
      await sleep0();
    }
    flushMetrics(s, true);
    if (s.run !== r) return;
    if (r.status === 'stopping') r.status = 'stopped';
    else if (r.trainer.stepsDone >= r.totalSteps) r.status = 'done';
    else if (r.status === 'pausing') r.status = 'paused';
    // Where the run rests, its routing is measured on the routing set (unless it just was).
    const measured = r.lastRoutingSet?.source?.kind === 'routingSet' ? r.lastRoutingSet.source.step : -1;
    if (r.guard.streakLength === 0 && r.trainer.stepsDone > 0 && measured !== r.trainer.stepsDone) await measureRoutingSet(s, r);
    if (s.run !== r) return;
    // Where the run rests is its checkpoint in the library (a paused or stopped run continues from
    // there after the browser is closed) and its good state in memory (a lost device costs no step).
    const resting = r.guard.streakLength === 0 && r.trainer.stepsDone > 0;
    if (resting && r.checkpointEvery > 0 && r.savedStep !== r.trainer.stepsDone && persistenceAvailable()) await saveCheckpoint(s, r);
    if (s.run !== r) return;
    if (r.guard.streakLength === 0 && r.lastGood?.cp.stepsDone !== r.trainer.stepsDone) await remember(s, r, 'rest');
    if (s.run !== r) return;
    if (resting && (r.status === 'stopped' || r.status === 'done')) await keepAdapter(s, r);
    if (s.run !== r) return;
    s.postStatus();
  } catch (e) {
    if (s.run !== r) return;
    // A lost device fails the step in flight: replaceDevice takes the run over, this is no error.
    if (await lostDevice(s, ctx)) return;
    flushMetrics(s, true);
    r.status = 'error';
    s.postStatus(errorMessage(e));
  } finally {
    r.looping = false;
  }
}

/** True when `ctx`'s device is lost or being replaced (waits briefly for device.lost to settle). */
async function lostDevice(s: Session, ctx: GpuContext): Promise<boolean> {
  if (s.recovering || ctx !== s.ctx) return true;
  return Promise.race([ctx.device.lost.then(() => true), sleep(1000).then(() => false)]);
}

/** Posts the training window's routing summary (the steps since the last one) and starts the next window. */
function postRouting(s: Session): void {
  const r = s.run;
  const stats = r?.trainer.routing;
  if (!r || !stats) return;
  const fresh: RoutingSummary = { ...withDisplayGroups(stats.summary(), r.groups), source: { kind: 'window', fromStep: r.windowFrom, toStep: r.trainer.stepsDone } };
  stats.reset();
  r.windowFrom = r.trainer.stepsDone + 1;
  // A small batch may hold no sample of some type in a window: that type keeps its last values.
  const prev = r.lastRouting;
  const keep = (t: number) => prev !== null && !(fresh.tokens[t] > 0) && prev.tokens[t] > 0;
  const summary: RoutingSummary = prev
    ? {
        ...fresh,
        tokens: fresh.tokens.map((n, t) => (keep(t) ? prev.tokens[t] : n)),
        mean: fresh.mean.map((m, t) => (keep(t) ? prev.mean[t] : m)),
        groupMean: fresh.groupMean.map((g, t) => (keep(t) ? prev.groupMean[t] : g)),
      }
    : fresh;
  r.lastRouting = summary;
  s.post({ type: 'routing', step: r.trainer.stepsDone, summary });
}

/** Scores the knowledge probe and the held-out task examples with the current weights (a run with evalEvery). */
async function scoreHeldOut(s: Session, r: Run): Promise<void> {
  const probe = s.datasets.get('probe');
  if (!probe || s.run !== r) return;
  const step = r.trainer.stepsDone;
  const tok = s.requireBackbone().tokenizer;
  const score = await s.serial(() => heldOutScore(s.ctx, r.trainer.weights, tok, probe.records, r.evalTasks, { maxLength: s.maxPositions }));
  // At the end, a LoRAMoE run is also scored with each expert group off: the specialisation table.
  const knockout =
    step === r.totalSteps && isRouted(r.meta.adapter) ? await s.serial(() => knockoutScores(s.ctx, r.trainer.weights, tok, probe.records, r.evalTasks, r.meta.typeNames, { maxLength: s.maxPositions })) : null;
  if (s.run !== r) return;
  r.lastScored = step;
  const t = r.meta.train;
  s.post({ type: 'evalPoint', runId: r.id, point: { step, samples: step * t.batchSize * t.gradAccum, ...score, ...(knockout ? { knockout } : {}) } });
}

/**
 * Measures routing on the run's routing set with the current weights, dropout off (evaluate(),
 * in batches of at most ROUTING_SET_BATCH_ROWS token rows), and posts it as the primary summary.
 */
async function measureRoutingSet(s: Session, r: Run): Promise<void> {
  const set = r.routingSet;
  if (!set || s.run !== r || !isRouted(r.meta.adapter)) return;
  const step = r.trainer.stepsDone;
  const padId = s.requireBackbone().tokenizer.padId;
  const res = await s.serial(() => evaluate(s.ctx, r.trainer.weights, set.samples, r.trainer.typeIndex, r.meta.typeNames, { batchSize: set.batch, padId }));
  if (s.run !== r || !res.routing) return;
  const summary: RoutingSummary = { ...withDisplayGroups(res.routing, r.groups), source: { kind: 'routingSet', step, types: set.types } };
  r.lastRoutingSet = summary;
  s.post({ type: 'routing', step, summary });
}

export function pause(s: Session): void {
  const r = s.run;
  if (r && r.status === 'running') {
    r.status = r.looping ? 'pausing' : 'paused';
    s.postStatus();
  }
}

export function resume(s: Session): void {
  const r = s.run;
  if (r && (r.status === 'paused' || r.status === 'pausing')) {
    r.status = 'running';
    s.postStatus();
    void loop(s);
  }
}

export function stop(s: Session): void {
  const r = s.run;
  if (!r || r.status === 'done' || r.status === 'stopped' || r.status === 'stopping') return;
  // A step in flight finishes first (its metrics are posted), then the loop reports 'stopped'.
  r.status = r.looping ? 'stopping' : 'stopped';
  s.postStatus();
}
