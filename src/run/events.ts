/**
 * The words a run is told in, shared by the driver (./driver.ts), the engine worker's messages
 * (src/worker/protocol.ts re-exports them unchanged) and the runner: where a backbone came from,
 * an expert group as shown, a run's status and the things that happen to it.
 */

/** Where a backbone came from, as remembered by checkpoints and shown to the user. */
export type BackboneRef = { kind: 'demo' } | { kind: 'hub'; repo: string } | { kind: 'local'; name: string };

/** The name a backbone goes by in messages, adapter files and the official hand-off. */
export function backboneName(ref: BackboneRef): string {
  switch (ref.kind) {
    case 'demo':
      return 'loramoe-playground/demo';
    case 'hub':
      return ref.repo;
    case 'local':
      return ref.name;
  }
}

/** An expert group as shown: the experts a set of data types is steered to. */
export interface DisplayGroup {
  name: string;
  experts: number[];
  /** Data types steered to these experts. */
  types: string[];
}

export type RunStatus = 'idle' | 'starting' | 'running' | 'pausing' | 'paused' | 'stopping' | 'stopped' | 'done' | 'error';

/**
 * Something that happened to a run that the user must be told about, with the step it happened at:
 * a step with a non-finite loss or gradient norm (skipped), a state with a non-finite value not kept
 * as a checkpoint, samples left out of training (their answer cut away by the maximum length), a rollback to the last good checkpoint, a lost GPU device and the recovery from it. Shown in the run panel and kept with the run's series.
 */
export interface RunEvent {
  kind: 'nonFinite' | 'checkpointRefused' | 'rollback' | 'deviceLost' | 'deviceFailed' | 'samplesLeftOut' | 'testHook';
  severity: 'info' | 'warning' | 'error';
  /** The run's step when it happened (steps done; 0 before the first). */
  step: number;
  /** For rollbacks and recoveries: the checkpoint step the run continues from. */
  toStep?: number;
  /** For nonFinite and rollback: which numbers were not finite. */
  nonFinite?: { loss: boolean; gradNorm: boolean };
  message: string;
  /** Date.now() when it happened. */
  at: number;
}
