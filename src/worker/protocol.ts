/**
 * Messages between the page and the engine worker, which owns the GPU device. Commands go to the
 * worker, events come back; both are discriminated unions so each side handles every case.
 */
import type { AdapterSummary } from '../engine/gpu';

export type WorkerCommand = { type: 'init' } | { type: 'kernelCheck' };

export interface KernelCheckResult {
  kernel: string;
  shape: string;
  maxAbsError: number;
  tolerance: number;
  passed: boolean;
  millis: number;
}

export type WorkerEvent =
  | { type: 'ready'; adapter: AdapterSummary }
  | { type: 'unavailable'; reason: string }
  | { type: 'kernelCheck'; result: KernelCheckResult }
  | { type: 'error'; message: string };
