/**
 * Numerical faults of a training run: what counts as one, how many in a row are tolerated, and the
 * words the user is told. No GPU here: the training loop (./driver.ts) feeds every step's metrics
 * to a NumericGuard and acts on its verdict (the driver rolls back);
 * src/worker/reliability.test.ts drives it with a real Trainer.
 *
 * - A step is faulty when its loss or its gradient norm is not finite (NaN or +-Inf). The gradient
 *   check runs on the GPU inside the step (shaders/optimizer.wgsl): AdamW leaves parameters and
 *   moments untouched for that step, so one bad batch costs one skipped step, nothing else.
 * - `limit` faulty steps in a row (the `faults` setting, default 3) mean the state itself is likely
 *   bad (a parameter went non-finite, moments blew up): the session rolls the run back to its last
 *   good checkpoint (parameters, AdamW moments, data order, dropout stream) and says so. Nothing is
 *   changed behind the user's back: no learning rate is lowered, no setting is touched.
 * - If the same checkpoint would be rolled back to a second time without a good checkpoint in
 *   between (the fault is reproducible from there: same batches, same masks), the run is rolled
 *   back and paused instead of looping.
 */
import type { StepMetrics } from '../train/trainer';

export const DEFAULT_FAULT_LIMIT = 3;

/** Which of a step's numbers were not finite. */
export interface NonFinite {
  loss: boolean;
  gradNorm: boolean;
}

export interface StepFault extends NonFinite {
  step: number;
  lossValue: number;
  gradNormValue: number;
  /** True when AdamW skipped the update (always, when the gradient norm is not finite). */
  skipped: boolean;
}

export type GuardVerdict =
  /** A finite step: any streak is over. */
  | { kind: 'ok' }
  /** A faulty step, `streak` in a row, fewer than the limit: the update was skipped, training goes on. */
  | { kind: 'fault'; fault: StepFault; streak: number }
  /** The limit was reached: roll back (the faults of the streak, oldest first). */
  | { kind: 'rollback'; faults: StepFault[] };

/** The non-finite parts of a step's metrics, or null for a healthy step. */
export function nonFiniteParts(m: StepMetrics): NonFinite | null {
  const loss = !Number.isFinite(m.loss) || !Number.isFinite(m.ce) || !Number.isFinite(m.lbc);
  const gradNorm = m.skipped || !Number.isFinite(m.gradNorm);
  return loss || gradNorm ? { loss, gradNorm } : null;
}

/** Counts faulty steps in a row. */
export class NumericGuard {
  private streak: StepFault[] = [];

  constructor(readonly limit: number = DEFAULT_FAULT_LIMIT) {
    if (!(Number.isInteger(limit) && limit >= 1)) throw new Error(`fault limit must be a positive integer, got ${limit}`);
  }

  /** Faulty steps in the current streak. */
  get streakLength(): number {
    return this.streak.length;
  }

  observe(m: StepMetrics): GuardVerdict {
    const bad = nonFiniteParts(m);
    if (!bad) {
      this.streak = [];
      return { kind: 'ok' };
    }
    const fault: StepFault = { step: m.step, ...bad, lossValue: m.loss, gradNormValue: m.gradNorm, skipped: m.skipped };
    this.streak.push(fault);
    if (this.streak.length >= this.limit) {
      const faults = this.streak;
      this.streak = [];
      return { kind: 'rollback', faults };
    }
    return { kind: 'fault', fault, streak: this.streak.length };
  }

  reset(): void {
    this.streak = [];
  }
}

const num = (v: number): string => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));

/** "the gradient norm (NaN) was", "the loss (+Inf) and the gradient norm (NaN) were". */
export function whatWasNonFinite(f: StepFault): string {
  const parts: string[] = [];
  if (f.loss) parts.push(`the loss (${num(f.lossValue)})`);
  if (f.gradNorm) parts.push(`the gradient norm (${num(f.gradNormValue)})`);
  return `${parts.join(' and ')} ${parts.length > 1 ? 'were' : 'was'}`;
}

export function describeFault(f: StepFault, streak: number, limit: number): string {
  const action = f.skipped ? 'the update was skipped (parameters and optimizer state unchanged)' : 'the update was applied (the gradients were finite)';
  const left = limit - streak;
  return `Step ${f.step}: ${whatWasNonFinite(f)} not finite; ${action}. ${streak} of ${limit} faulty steps in a row${left > 0 ? ` (${left} more and the run rolls back to its last good checkpoint)` : ''}.`;
}

/** `to`: the state rolled back to, e.g. "the checkpoint at step 10". */
export function describeRollback(faults: readonly StepFault[], to: string, paused: boolean): string {
  const first = faults[0].step;
  const last = faults[faults.length - 1].step;
  const range = first === last ? `step ${first}` : `steps ${first}-${last}`;
  const what = whatWasNonFinite(faults[faults.length - 1]);
  const base =
    `${faults.length} faulty steps in a row (${range}; at step ${last} ${what} not finite): ` +
    `the run was rolled back to ${to} (parameters, optimizer state, data order). No setting was changed.`;
  return paused
    ? `${base} The same fault came back after an earlier rollback to the same state, so the run is paused: ` +
        'start it again with a lower learning rate or gradient clipping (from its current adapter, to keep what was learnt), or resume it to try once more.'
    : `${base} Training goes on from there.`;
}
