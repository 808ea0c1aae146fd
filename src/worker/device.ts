/**
 * A lost GPU device, as the engine worker's session lives through it (./recovery.ts watches the
 * device and calls these): the run stops failing loudly while a new device is sought; on the new
 * device the backbone is uploaded again from its host copy and the run continues from its last
 * good state; when no device can be had, or moving onto it fails, the run ends in an error that
 * says why and what to do.
 */
import type { GpuContext } from '../engine/gpu';
import { initAdapter } from '../loramoe/init';
import { hasAdapter } from '../method/adapter';
import { goodStateName } from '../run/driver';
import { sessionTrainer } from './run';
import type { WorkerState } from './state';

/**
 * The device is lost (the worker saw device.lost): GPU work stops failing loudly until
 * replaceDevice. Returns the step the run had finished.
 */
export function deviceLost(s: WorkerState): number {
  s.recovering = true;
  return s.run?.trainer.stepsDone ?? 0;
}

/** No new device could be had: the run ends in an error the user can act on (reload and resume). */
export function deviceUnavailable(s: WorkerState, reason: string, error: string): void {
  s.recovering = false;
  const r = s.run;
  const step = r?.trainer.stepsDone ?? 0;
  const msg =
    `The GPU device was lost${r ? ` at step ${step}` : ''} (${reason}) and no new device could be acquired (${error}). ` +
    'Datasets, settings and the last checkpoint are kept in this browser: reload the page to resume.';
  r?.fail(msg);
  s.runEvent({ kind: 'deviceFailed', severity: 'error', step, message: msg });
}

/**
 * A new device was acquired but moving onto it failed (uploading the backbone again, rebuilding the
 * run): the run, if any, ends in an error that names the reason; `step` is where the device was lost.
 */
export function deviceReplacementFailed(s: WorkerState, reason: string, error: string, step: number): void {
  s.recovering = false;
  // The run could not be moved: it ends here (its status is the error below).
  s.dropRun();
  const msg =
    `The GPU device was lost${step > 0 ? ` at step ${step}` : ''} (${reason}); a new device was acquired, but the backbone and the run could not be moved onto it (${error}). ` +
    'Datasets, settings and the last checkpoint are kept in this browser: reload the page to resume.';
  s.post({ type: 'runStatus', status: 'error', step, message: msg });
  s.runEvent({ kind: 'deviceFailed', severity: 'error', step, message: msg });
}

/**
 * Moves everything onto a new device after the old one was lost: the backbone is uploaded again
 * from its host copy, and a run continues from its last good state (a checkpoint, or where it was
 * paused): a new Trainer over the same samples and settings imports it. A run that was training
 * goes on by itself; a paused one waits for Resume. Datasets, settings and the metric series up to
 * that state are untouched (the steps after it are computed again, identically).
 */
export async function replaceDevice(s: WorkerState, ctx: GpuContext, reason: string): Promise<void> {
  const run = s.run;
  const lostAt = run?.trainer.stepsDone ?? 0;
  s.recovering = true;
  s.ctx = ctx;
  // Work queued on the lost device may never settle: the queue starts afresh. The old objects
  // are dropped (their buffers went with the device; destroy() on them is harmless).
  s.restartQueue();
  s.chat.drop();
  run?.trainer.destroy();
  s.model.weights?.destroy();
  s.model.weights = null;
  const b = s.backbone;
  let restoredTo: number | null = null;
  try {
    if (!b) {
      s.runEvent({ kind: 'deviceLost', severity: 'warning', step: 0, message: `The GPU device was lost (${reason}); a new device was acquired. Nothing was loaded on it yet.` });
      return;
    }
    await s.serial(async () => {
      if (run) {
        // The same samples and settings on the new device; the run goes on from its last good state.
        const meta = run.meta;
        const set = hasAdapter(meta.adapter) ? initAdapter(b.config, meta.adapter, meta.train.seed) : null;
        const weights = s.model.rebuildWeights(meta.adapter, set, meta.weights);
        restoredTo = run.moveTo(sessionTrainer(s, weights, run.trainer.samples, meta.typeNames, meta.train));
      } else {
        const imp = s.model.imported;
        if (imp) s.model.rebuildWeights(imp.cfg, imp.set);
        else s.model.useFrozenBackbone();
      }
    });
  } finally {
    s.recovering = false;
  }
  if (run && restoredTo !== null) {
    const goodName = goodStateName(run.lastGood);
    const next = run.status === 'running' ? 'training goes on' : run.status === 'paused' ? 'press Resume to continue' : `the run stays ${run.status}`;
    const again = lostAt === restoredTo + 1 ? `Step ${lostAt} is` : `Steps ${restoredTo + 1}-${lostAt} are`;
    const redo = lostAt > restoredTo ? ` ${again} computed again (the same batches and dropout masks, so the same results).` : '';
    s.runEvent({
      kind: 'deviceLost',
      severity: 'warning',
      step: lostAt,
      toStep: restoredTo,
      message:
        `The GPU device was lost at step ${lostAt} (${reason}); resumed from ${goodName}: ` +
        `a new device was acquired and the backbone loaded again, ${next}. Datasets, settings and the metric series are kept.${redo}`,
    });
  } else {
    const what = s.model.adapter.origin === 'imported' ? ' with the imported adapter' : '';
    s.runEvent({ kind: 'deviceLost', severity: 'warning', step: 0, message: `The GPU device was lost (${reason}); a new device was acquired and the backbone loaded again${what}.` });
  }
  s.postAdapter();
  s.postStatus();
  if (run?.status === 'running') void run.loop();
}
