import { errorMessage } from '../util/errors';
/**
 * WebGPU errors fail GPU tests. The test device (src/test/gpu.ts) registers here; around every test
 * (src/test/setup.ts, a Vitest setup file) the device gets a validation, an out-of-memory and an
 * internal error scope, and after the test its submitted work is waited for, the scopes are popped
 * and any error they caught, or any uncaptured error the device reported meanwhile, fails the test.
 * No imports: files without a GPU test load this and pay nothing.
 */
const FILTERS: GPUErrorFilter[] = ['validation', 'out-of-memory', 'internal'];

let device: GPUDevice | null = null;
/** Uncaptured errors since the last check (errors outside any scope: hooks, a device made mid-test). */
const uncaptured: string[] = [];
/** Whether the running test began with scopes pushed (the device existed when it began). */
let scoped = false;

/** The test device: its uncaptured errors are recorded and fail the test that is running. */
export function watchDevice(d: GPUDevice): void {
  device = d;
  d.addEventListener('uncapturederror', (ev) => {
    const message = (ev as GPUUncapturedErrorEvent).error.message;
    uncaptured.push(message);
    console.error(`[webgpu] uncaptured error: ${message}`);
  });
}

export function beginGpuTest(): void {
  scoped = false;
  if (!device) return;
  for (const f of FILTERS) device.pushErrorScope(f);
  scoped = true;
}

/** Throws when WebGPU reported an error during the test. */
export async function endGpuTest(): Promise<void> {
  if (!device) return;
  const errors: string[] = [];
  await device.queue.onSubmittedWorkDone();
  if (scoped) {
    scoped = false;
    for (const f of [...FILTERS].reverse()) {
      try {
        const e = await device.popErrorScope();
        if (e) errors.push(`${f}: ${e.message}`);
      } catch (e) {
        errors.push(`the test left its error scopes unbalanced (${errorMessage(e)})`);
        break;
      }
    }
  }
  errors.push(...uncaptured.splice(0).map((m) => `uncaptured: ${m}`));
  if (errors.length > 0) throw new Error(`WebGPU reported ${errors.length} error(s) during this test:\n${errors.join('\n')}`);
}
