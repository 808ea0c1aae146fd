/**
 * Watching the GPU device: when it is lost (a driver reset, a GPU process crash, the tab in the
 * background too long, or device.destroy() from the reliability test hook), a new device is
 * requested (a few tries, backing off) and the session moves onto it (Session.replaceDevice). The
 * engine worker uses this with navigator.gpu; src/worker/reliability.test.ts with Node's WebGPU.
 */
import type { GpuContext } from '../engine/gpu';
import type { Session } from './session';
import { errorMessage } from '../util/errors';

/** What supervising needs of the session (the engine worker's Session). */
export type SupervisedSession = Pick<Session, 'gpu' | 'deviceLost' | 'deviceUnavailable' | 'replaceDevice' | 'deviceReplacementFailed'>;

export interface SuperviseOptions {
  /** Requests a new device (requestGpu(navigator.gpu) in the worker). */
  acquire: () => Promise<GpuContext>;
  /** Called with each new context before the session moves onto it. */
  onContext?: (ctx: GpuContext) => void;
  /** Tries before giving up (default 3), waiting 0.5 s, 1 s, 2 s ... between them. */
  tries?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/**
 * Settles when `ctx`'s device is lost and the session has moved on (or given up). Never rejects: a
 * device that cannot be had, or a session that cannot be moved onto the new one, is reported to the
 * user through the session (the run's status and a run event, with the reason).
 */
export function superviseDevice(ctx: GpuContext, session: SupervisedSession, opts: SuperviseOptions): Promise<void> {
  return ctx.device.lost.then(async (info) => {
    if (session.gpu !== ctx) return;
    const reason = info.message ? `${info.reason ?? 'unknown'}: ${info.message}` : String(info.reason ?? 'unknown reason');
    const lostAt = session.deviceLost();
    const tries = opts.tries ?? 3;
    let next: GpuContext | null = null;
    let error = 'no attempt';
    for (let i = 0; i < tries && !next; i++) {
      try {
        next = await opts.acquire();
      } catch (e) {
        error = errorMessage(e);
        if (i + 1 < tries) await sleep(500 * 2 ** i);
      }
    }
    if (!next) {
      session.deviceUnavailable(reason, error);
      return;
    }
    try {
      opts.onContext?.(next);
      // The new device is watched before the session moves onto it: losing it mid-move is recovered too.
      void superviseDevice(next, session, opts);
      await session.replaceDevice(next, reason);
    } catch (e) {
      session.deviceReplacementFailed(reason, errorMessage(e), lostAt);
    }
  });
}
