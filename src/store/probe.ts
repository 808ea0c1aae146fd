/**
 * Knowledge-probe results before and after training. Written only by ./probe.ts (this file): the
 * functions below, called by ./worker-events.ts (a score arrived, a backbone or run started), the
 * model actions (a probe asked) and the runs library (a run's saved results shown).
 */
import { create } from 'zustand';
import type { ProbeResult } from '../train/probe';

export interface ProbeState {
  before: ProbeResult | null;
  after: ProbeResult | null;
  running: 'before' | 'after' | null;
  error: string | null;
}

/** The probe store. Written only by ./probe.ts (the functions below). */
export const useProbeStore = create<ProbeState>(() => ({ before: null, after: null, running: null, error: null }));

/** A probe of `which` model is asked of the worker. */
export function probeStarted(which: 'before' | 'after'): void {
  useProbeStore.setState({ running: which, error: null });
}

/** The worker scored the probe on `which` model. */
export function probeScored(which: 'before' | 'after', result: ProbeResult): void {
  useProbeStore.setState({ [which]: result, error: null });
}

export function probeFailed(error: string): void {
  useProbeStore.setState({ error });
}

/** The probe asked is over (scored or failed). */
export function probeEnded(): void {
  useProbeStore.setState({ running: null });
}

/** A new backbone is loaded: no score is its own yet. */
export function probeBackboneChanged(): void {
  useProbeStore.setState({ before: null, after: null, error: null });
}

/** A new run started: it has no score of its own (the frozen backbone's stays). */
export function probeRunStarted(): void {
  useProbeStore.setState({ after: null });
}

/** The run on screen was cleared: its score and the last error go (the frozen backbone's stays). */
export function probeRunCleared(): void {
  useProbeStore.setState({ after: null, error: null });
}

/**
 * A run's saved results go on screen. `keepBefore`: the frozen backbone's score already on screen
 * stays (a resumed run); otherwise the run's replaces it (a run opened).
 */
export function probeShown(saved: { before: ProbeResult | null; after: ProbeResult | null }, keepBefore: boolean): void {
  useProbeStore.setState((p) => ({ before: keepBefore ? (p.before ?? saved.before) : saved.before, after: saved.after, error: null }));
}
