/** Knowledge-probe results before and after training. Written only by the worker client. */
import { create } from 'zustand';
import type { ProbeResult } from '../train/probe';

export interface ProbeState {
  before: ProbeResult | null;
  after: ProbeResult | null;
  running: 'before' | 'after' | null;
  error: string | null;
}

export const useProbeStore = create<ProbeState>(() => ({ before: null, after: null, running: null, error: null }));
