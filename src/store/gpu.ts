/** GPU status as the worker reports it. Written only by ./worker-events.ts (the worker's events). */
import { create } from 'zustand';
import type { KernelReport } from '../engine/autotune';
import type { AdapterSummary } from '../engine/gpu';
import type { KernelCheckResult } from '../worker/protocol';

export type GpuStatus = 'pending' | 'ready' | 'unavailable';

export interface GpuState {
  status: GpuStatus;
  adapter: AdapterSummary | null;
  unavailableReason: string | null;
  kernelCheck: KernelCheckResult | null;
  /** The last warm-up: pipelines compiled ahead of Train and how long that took. */
  warmup: { pipelines: number; ms: number } | null;
  /** The matmul kernels chosen for the loaded backbone (tuned, cached or forced). */
  kernels: KernelReport | null;
  errors: string[];
}

/** The GPU store. Written only by ./worker-events.ts. */
export const useGpuStore = create<GpuState>(() => ({
  status: 'pending',
  adapter: null,
  unavailableReason: null,
  kernelCheck: null,
  warmup: null,
  kernels: null,
  errors: [],
}));
