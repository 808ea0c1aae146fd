/// <reference lib="webworker" />
/**
 * The engine worker: owns the GPU device so that kernels, training and readbacks never block the
 * page. It answers the commands of ./protocol.ts.
 */
import { requestGpu, WebGpuUnavailableError, type GpuContext } from '../engine/gpu';
import { matmulSelfCheck } from '../engine/selfcheck';
import type { WorkerCommand, WorkerEvent } from './protocol';

declare const self: DedicatedWorkerGlobalScope;

let ctx: GpuContext | null = null;

function post(ev: WorkerEvent): void {
  self.postMessage(ev);
}

async function handle(cmd: WorkerCommand): Promise<void> {
  switch (cmd.type) {
    case 'init': {
      try {
        ctx = await requestGpu(navigator.gpu);
        ctx.device.lost.then((info) => post({ type: 'error', message: `GPU device lost: ${info.message || info.reason}` }));
        post({ type: 'ready', adapter: ctx.adapter });
      } catch (e) {
        post({ type: 'unavailable', reason: e instanceof WebGpuUnavailableError ? e.message : String(e) });
      }
      return;
    }
    case 'kernelCheck': {
      if (!ctx) {
        post({ type: 'error', message: 'kernel check requested before the GPU was initialised' });
        return;
      }
      post({ type: 'kernelCheck', result: await matmulSelfCheck(ctx) });
      return;
    }
  }
}

self.onmessage = (e: MessageEvent<WorkerCommand>) => {
  handle(e.data).catch((err: unknown) => post({ type: 'error', message: err instanceof Error ? err.message : String(err) }));
};
