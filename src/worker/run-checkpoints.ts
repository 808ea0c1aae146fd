/**
 * A run's good states: kept in memory (what a rollback or a lost device goes back to) and written
 * to IndexedDB as checkpoints (what a reload resumes from), the rollback to the last one after a
 * fault streak (./faults.ts), and the adapter a stopped or finished run keeps in the library.
 */
import { persistenceAvailable, saveCheckpoint as storeCheckpoint, saveRunAdapter, StorageFullError } from '../io/persist';
import type { TrainerCheckpoint } from '../train/trainer';
import { adapterZip } from './adapter-files';
import { encodeCheckpoint, type RunMeta } from './checkpoint';
import { describeRollback, type StepFault } from './faults';
import { type CheckpointExtra, flushMetrics, type GoodState, goodStateName, postRunStarted, type Run } from './run-state';
import type { Session } from './session';
import { errorMessage } from '../util/errors';

/**
 * Seconds of training a reload may cost at most: besides every `checkpointEvery` steps, a checkpoint
 * is written once this much time has passed since the last one (or ten times as long as writing the
 * last one took, so checkpoints never take more than a tenth of the run's time).
 */
export const CHECKPOINT_SECONDS = 5;

/** "param of L0 gate_proj router" for the first non-finite value of a checkpoint, or null. */
function firstNonFinite(cp: TrainerCheckpoint): string | null {
  for (const t of cp.tensors) {
    for (const [part, data] of [['parameter', t.param], ['first moment', t.m], ['second moment', t.v]] as const) {
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i])) return `${data[i]} in the ${part} of ${t.name}`;
      }
    }
  }
  return null;
}

/**
 * Keeps the trainer's current state as the run's good state (in memory), unless it holds a
 * non-finite value: an update can overflow a parameter while its step looked healthy (the fault
 * shows only at the next step), and such a state must never become a checkpoint.
 */
export async function remember(s: Session, r: Run, origin: GoodState['origin']): Promise<TrainerCheckpoint | null> {
  const cp = await s.serial(() => r.trainer.exportCheckpoint());
  if (s.run !== r) return null;
  const bad = firstNonFinite(cp);
  if (bad) {
    const prev = r.lastGood ? goodStateName(r.lastGood) : 'none';
    s.runEvent({
      kind: 'checkpointRefused',
      severity: 'warning',
      step: cp.stepsDone,
      message: `The state at step ${cp.stepsDone} holds a non-finite value (${bad}): it was not kept as a checkpoint; the last good one stays (${prev}).`,
    });
    return null;
  }
  r.lastGood = { cp, metrics: r.history.filter((m) => m.step <= cp.stepsDone), origin };
  // A newer good state: a later rollback goes there, and may do so again.
  if (r.rolledBackTo !== null && cp.stepsDone > r.rolledBackTo) r.rolledBackTo = null;
  return cp;
}

/** A checkpoint: the good state in memory, and in IndexedDB when the browser has it. */
export async function saveCheckpoint(s: Session, r: Run): Promise<void> {
  const began = performance.now();
  r.lastCheckpointAt = began;
  const cp = await remember(s, r, 'checkpoint');
  if (!cp) return;
  if (!persistenceAvailable()) {
    if (!s.toldNoStorage) {
      s.toldNoStorage = true;
      s.post({ type: 'storageError', message: 'This browser offers no storage (IndexedDB): checkpoints are kept in memory only, and a reload loses the run.' });
    }
    return;
  }
  try {
    const meta: RunMeta = { ...r.meta, savedAt: Date.now() };
    const bytes = encodeCheckpoint(meta, cp);
    const extra: CheckpointExtra = { metrics: r.lastGood!.metrics, routing: r.lastRouting, routingSet: r.lastRoutingSet };
    const pointer = await storeCheckpoint(bytes.buffer, { runId: r.id, step: cp.stepsDone, totalSteps: r.totalSteps, meta }, extra);
    r.savedStep = cp.stepsDone;
    r.lastCheckpointAt = performance.now();
    r.checkpointMs = r.lastCheckpointAt - began;
    s.post({ type: 'checkpoint', runId: r.id, step: pointer.step, savedAt: pointer.savedAt, bytes: pointer.bytes });
  } catch (e) {
    // Training goes on; the user is told the checkpoint is missing and why.
    if (e instanceof StorageFullError) s.post({ type: 'storageError', message: e.message });
    else s.post({ type: 'storageError', message: `The checkpoint could not be saved: ${errorMessage(e)}` });
  }
}

/**
 * `faultLimit` faulty steps in a row: the trainer goes back to the run's last good state
 * (parameters, AdamW moments, step count, data order, dropout stream) and the page gets the series
 * up to it. A second rollback to the same state pauses the run (the fault is reproducible).
 */
export async function rollback(s: Session, r: Run, faults: StepFault[]): Promise<void> {
  const good = r.lastGood;
  if (!good) throw new Error(`${faults.length} faulty steps in a row and no good state to roll back to`);
  const toStep = good.cp.stepsDone;
  const again = r.rolledBackTo === toStep;
  await s.serial(async () => r.trainer.importCheckpoint(good.cp));
  if (s.run !== r) return;
  r.trainer.routing?.reset();
  r.windowFrom = toStep + 1;
  r.rolledBackTo = toStep;
  r.checkpointDue = false;
  flushMetrics(s, true);
  r.history = good.metrics.slice();
  r.pending = [];
  if (again && r.status === 'running') r.status = 'paused';
  postRunStarted(s, r, true);
  s.runEvent({
    kind: 'rollback',
    severity: again ? 'error' : 'warning',
    step: faults[faults.length - 1].step,
    toStep,
    nonFinite: { loss: faults.some((f) => f.loss), gradNorm: faults.some((f) => f.gradNorm) },
    message: describeRollback(faults, goodStateName(good), again),
  });
}

/**
 * A run that stopped or finished keeps its adapter in the library: the zip Download gives, stored
 * with the run, so it can be downloaded after the browser is closed and opened again.
 */
export async function keepAdapter(s: Session, r: Run): Promise<void> {
  if (!persistenceAvailable() || s.run !== r) return;
  try {
    const zip = await adapterZip(s);
    const file = await saveRunAdapter(r.id, zip.name, zip.bytes.buffer, r.trainer.stepsDone);
    s.post({ type: 'adapterKept', runId: r.id, name: file.name, step: file.step, bytes: file.bytes.byteLength });
  } catch (e) {
    s.post({ type: 'storageError', message: e instanceof StorageFullError ? e.message : `The adapter of run ${r.id} could not be kept in the library: ${errorMessage(e)}` });
  }
}
