/**
 * Fault injection for the reliability tests (src/worker/reliability.test.ts, e2e/reliability.spec.ts):
 * lose the GPU device, write a NaN into a parameter or the next step's gradient, make the next
 * checkpoint write fail or stall. Honoured only when the session was made with `testHooks`
 * (the page opened with ?test-hooks); each hook is announced as a run event.
 */
import { setCheckpointWriteHook } from '../io/persist';
import type { DebugAction } from './protocol';
import type { WorkerState } from './state';

export async function debugAction(s: WorkerState, a: DebugAction): Promise<void> {
  if (!s.options.testHooks) throw new Error('test hooks are off (open the page with ?test-hooks)');
  const step = s.run?.trainer.stepsDone ?? 0;
  switch (a.kind) {
    case 'loseDevice':
      s.runEvent({ kind: 'testHook', severity: 'info', step, message: `Test hook: device.destroy() at step ${step}.` });
      s.ctx.device.destroy();
      return;
    case 'injectFault': {
      const r = s.run;
      if (!r) throw new Error('no run to inject a fault into');
      if (a.target === 'gradient') r.trainer.injectGradientNaN();
      else {
        await s.serial(async () => {
          const p = r.trainer.graph.params[0];
          s.ctx.device.queue.writeBuffer(p.param.buffer, 0, new Float32Array([NaN]));
        });
      }
      const what = a.target === 'gradient' ? "a NaN is written into the next step's gradient" : `a NaN was written into ${r.trainer.graph.params[0].name}`;
      s.runEvent({ kind: 'testHook', severity: 'info', step, message: `Test hook: ${what} (after step ${step}).` });
      return;
    }
    case 'checkpointWrite':
      setCheckpointWriteHook(async (phase, at) => {
        if (a.fail === 'quota' && phase === 'data') {
          setCheckpointWriteHook(null);
          throw new DOMException('test hook: the storage quota is full', 'QuotaExceededError');
        }
        if (a.fail === 'stall' && phase === 'data') {
          setCheckpointWriteHook(null);
          s.runEvent({ kind: 'testHook', severity: 'info', step: at, message: `Test hook: the checkpoint of step ${at} stalls before its transaction.` });
          await new Promise<never>(() => undefined);
        }
      });
      return;
    default: {
      const never: never = a;
      throw new Error(`unknown debug action ${JSON.stringify(never)}`);
    }
  }
}
