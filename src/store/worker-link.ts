/**
 * The page's line to the engine worker: the worker itself, `send` for commands without an answer,
 * `call` for commands the worker answers (the promise settles with its reply), and the moment it is
 * ready. The bridge (./engine-bridge.ts) starts the worker and reads its events; the action modules
 * (./backbone-actions.ts, ./data-actions.ts, ./run-actions.ts, ./model-actions.ts) send through here.
 */
import type { WorkerCommand } from '../worker/protocol';

let worker: Worker | null = null;
let nextReq = 1;
const pending = new Map<number, { resolve(): void; reject(e: Error): void }>();
let readyResolve: (() => void) | null = null;
const ready = new Promise<void>((r) => (readyResolve = r));

/** The worker to talk to (set once, when the bridge starts it). */
export function connectWorker(w: Worker): void {
  worker = w;
}

export function workerStarted(): boolean {
  return worker !== null;
}

/** The worker said it is ready: calls waiting for it go out. */
export function markReady(): void {
  readyResolve?.();
}

/** Settles until the worker is ready. */
export function whenReady(): Promise<void> {
  return ready;
}

/** The worker's answer to a call. */
export function settleReply(reqId: number, ok: boolean, error?: string): void {
  const p = pending.get(reqId);
  pending.delete(reqId);
  if (ok) p?.resolve();
  else p?.reject(new Error(error ?? 'failed'));
}

export function send(cmd: WorkerCommand, transfer: Transferable[] = []): void {
  if (!worker) throw new Error('engine worker not started');
  worker.postMessage(cmd, transfer);
}

export type Requested = Extract<WorkerCommand, { reqId: number }>;
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Sends a command with a reqId; settles when the worker replies. */
export async function call(cmd: DistributiveOmit<Requested, 'reqId'>, transfer: Transferable[] = []): Promise<void> {
  await ready;
  const reqId = nextReq++;
  return new Promise<void>((resolve, reject) => {
    pending.set(reqId, { resolve, reject });
    send({ ...cmd, reqId } as Requested, transfer);
  });
}
