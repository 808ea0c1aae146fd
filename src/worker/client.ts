/** The page's side of the engine worker: starts it, sends commands, writes its events to the stores. */
import { useGpuStore } from '../store/gpu';
import type { WorkerCommand, WorkerEvent } from './protocol';

let worker: Worker | null = null;

function onEvent(ev: WorkerEvent): void {
  switch (ev.type) {
    case 'ready':
      useGpuStore.setState({ status: 'ready', adapter: ev.adapter });
      send({ type: 'kernelCheck' });
      return;
    case 'unavailable':
      useGpuStore.setState({ status: 'unavailable', unavailableReason: ev.reason });
      return;
    case 'kernelCheck':
      useGpuStore.setState({ kernelCheck: ev.result });
      return;
    case 'error':
      useGpuStore.setState((s) => ({ errors: [...s.errors, ev.message] }));
      return;
  }
}

export function send(cmd: WorkerCommand): void {
  if (!worker) throw new Error('engine worker not started');
  worker.postMessage(cmd);
}

export function startEngineWorker(): void {
  if (worker) return;
  if (!('gpu' in navigator)) {
    useGpuStore.setState({ status: 'unavailable', unavailableReason: 'this browser has no navigator.gpu' });
    return;
  }
  worker = new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module', name: 'engine' });
  worker.onmessage = (e: MessageEvent<WorkerEvent>) => onEvent(e.data);
  worker.onerror = (e) => useGpuStore.setState((s) => ({ errors: [...s.errors, `engine worker failed: ${e.message}`] }));
  send({ type: 'init' });
}
