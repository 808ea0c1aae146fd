/**
 * The method comparison in the playground: the five methods of src/train/comparison.ts trained one
 * after another in the worker on the loaded backbone and data, with the same seed, data order and
 * steps. Each is an ordinary run (in the runs library: open it, continue it, download its adapter)
 * that also scores the knowledge probe and the held-out task examples every `evalEvery` steps; this
 * store mirrors those scores into one set of curves and, at the end, one table.
 */
import { create } from 'zustand';
import { type CurvePoint, METHOD_KEYS, METHOD_NAMES, type MethodKey } from '../train/comparison';
import type { OwnGroupShare } from '../train/routing';
import { startRun, stopRun } from './run-actions';
import { useRunStore } from './run';
import { useLibraryStore } from './run-library';
import { useSettingsStore } from './settings';

export type MethodState = 'waiting' | 'running' | 'done' | 'stopped' | 'failed';

/** One finished run of a method, from one seed. */
export interface SeedRun {
  seed: number;
  runId: string;
  curve: CurvePoint[];
  finalLoss: number | null;
  ownGroup: OwnGroupShare[] | null;
}

export interface ComparedMethod {
  key: MethodKey;
  name: string;
  /** The run training now, or the last one. */
  runId: string | null;
  state: MethodState;
  /** Held-out scores from step 0 on (probe and task accuracy by samples seen) of the run training now, or the last one. */
  curve: CurvePoint[];
  /** Steps done over all of the method's seeds, for the progress bar. */
  step: number;
  /** The runs finished, one per seed (the table's and the bands' figures with two or more). */
  seedRuns: SeedRun[];
  finalLoss: number | null;
  /** Each data type's share of router weight on its own group, measured on the routing set at the end (LoRAMoE only). */
  ownGroup: OwnGroupShare[] | null;
}

export interface ComparisonForm {
  steps: number;
  /** Runs per method, from the settings' seed on (seed, seed + 1, ...). */
  seeds: number;
  /** Learning rate of LoRA and the LoRAMoE methods, and of full fine-tuning. */
  lrAdapter: number;
  lrFull: number;
}

export interface ComparisonState {
  id: string | null;
  status: 'idle' | 'running' | 'cancelling' | 'done' | 'cancelled' | 'failed';
  form: ComparisonForm;
  steps: number;
  /** The seeds every method runs from. */
  seeds: number[];
  evalEvery: number;
  methods: ComparedMethod[];
  /** performance.now() when the comparison started (for the ETA). */
  startedAt: number;
  error: string | null;
}

/**
 * The panel's starting values: a short comparison the demo finishes in a few minutes on a laptop
 * GPU. The README's table is the runner's longer `experiment` (src/train/comparison.ts's defaults).
 */
export const COMPARISON_FORM: ComparisonForm = { steps: 100, seeds: 1, lrAdapter: 5e-3, lrFull: 1e-3 };

/** Most seeds the panel runs per method. */
export const MAX_COMPARISON_SEEDS = 10;

/** The comparison store. Written only by ./comparison.ts (this file: the form, the sequence and its cancel). */
export const useComparisonStore = create<ComparisonState>(() => ({
  id: null,
  status: 'idle',
  form: COMPARISON_FORM,
  steps: 0,
  seeds: [],
  evalEvery: 0,
  methods: [],
  startedAt: 0,
  error: null,
}));

/** Held-out scores at least every tenth of the run: at least 10 points per curve after step 0. */
export function evalEveryFor(steps: number): number {
  return Math.max(1, Math.floor(steps / 10));
}

/** The share of the whole comparison done, 0..1 (steps done over every method's runs' steps, `seeds` runs each). */
export function comparisonProgress(s: { methods: readonly Pick<ComparedMethod, 'step'>[]; steps: number; seeds?: readonly number[] }): number {
  const runs = Math.max(1, s.seeds?.length ?? 1);
  if (s.methods.length === 0 || s.steps === 0) return 0;
  return s.methods.reduce((a, m) => a + Math.min(m.step, s.steps * runs), 0) / (s.methods.length * s.steps * runs);
}

const MODE: Record<MethodKey, 'full' | 'lora' | 'loramoe'> = { full: 'full', lora: 'lora', loramoe: 'loramoe', 'lbc-official': 'loramoe', 'lbc-own': 'loramoe' };

function setMethod(i: number, patch: Partial<ComparedMethod>): void {
  useComparisonStore.setState((s) => ({ methods: s.methods.map((m, j) => (j === i ? { ...m, ...patch } : m)) }));
}

export function setComparisonForm(patch: Partial<ComparisonForm>): void {
  useComparisonStore.setState((s) => ({ form: { ...s.form, ...patch } }));
}

/**
 * Waits for run `runId` to end (done, stopped or failed), mirroring its steps (after `stepsBefore`
 * of the method's earlier seeds) and scores into method i meanwhile.
 */
function followRun(i: number, runId: string, stepsBefore: number): Promise<MethodState> {
  return new Promise((resolve) => {
    const check = (): boolean => {
      const r = useRunStore.getState();
      if (r.runId !== runId) {
        resolve('failed');
        return true;
      }
      setMethod(i, { step: stepsBefore + r.step, curve: r.evalCurve });
      const end: MethodState | null = r.status === 'done' ? 'done' : r.status === 'stopped' ? 'stopped' : r.status === 'error' ? 'failed' : null;
      if (end) resolve(end);
      return end !== null;
    };
    if (check()) return;
    const unsubscribe = useRunStore.subscribe(() => {
      if (check()) unsubscribe();
    });
  });
}

/**
 * Runs the comparison: the five methods one after another, each a run with the form's settings
 * (batch, maximum length, experts, rank, targets, constraint settings) but its own method, learning
 * rate and the comparison's steps, once per seed (the settings' seed, then the next ones: the same
 * seeds for every method, so they compare seed by seed). Stops at the first run that does not finish.
 */
export async function startComparison(): Promise<void> {
  const s = useComparisonStore.getState();
  if (s.status === 'running' || s.status === 'cancelling') return;
  const steps = Math.max(1, Math.floor(s.form.steps));
  const count = Math.min(MAX_COMPARISON_SEEDS, Math.max(1, Math.floor(s.form.seeds ?? 1)));
  const first = useSettingsStore.getState().values.seed;
  const seeds = Array.from({ length: count }, (_, k) => first + k);
  const evalEvery = evalEveryFor(steps);
  const id = `cmp-${Date.now().toString(36)}`;
  const n = new Set(useLibraryStore.getState().runs.flatMap((r) => (r.comparison ? [r.comparison.id] : []))).size + 1;
  useComparisonStore.setState({
    id,
    status: 'running',
    steps,
    seeds,
    evalEvery,
    startedAt: performance.now(),
    error: null,
    methods: METHOD_KEYS.map((key) => ({ key, name: METHOD_NAMES[key], runId: null, state: 'waiting', curve: [], step: 0, seedRuns: [], finalLoss: null, ownGroup: null })),
  });
  for (let i = 0; i < METHOD_KEYS.length; i++) {
    const key = METHOD_KEYS[i];
    for (const [k, seed] of seeds.entries()) {
      if (useComparisonStore.getState().status !== 'running') break;
      setMethod(i, { state: 'running' });
      const started = await startRun({
        // The methods are built from the form's LoRAMoE configuration (experts, rank, targets, constraint).
        settings: { steps, mode: 'loramoe', lr: key === 'full' ? s.form.lrFull : s.form.lrAdapter, seed },
        compared: { method: key, evalEvery },
        name: `Comparison ${n}: ${METHOD_NAMES[key]}${seeds.length > 1 ? ` (seed ${seed})` : ''}`,
        comparison: { id, method: key },
      });
      const runId = useRunStore.getState().runId;
      if (!started || !runId) {
        setMethod(i, { state: 'failed' });
        useComparisonStore.setState({ status: 'failed', error: `${METHOD_NAMES[key]} did not start: ${useRunStore.getState().message ?? 'unknown error'}` });
        return;
      }
      setMethod(i, { runId });
      // Cancel pressed while the run was starting: stop it now that it exists.
      if (useComparisonStore.getState().status === 'cancelling') stopRun();
      const end = await followRun(i, runId, k * steps);
      const r = useRunStore.getState();
      const last = r.metrics[r.metrics.length - 1];
      const run: SeedRun = { seed, runId, curve: r.evalCurve, finalLoss: last ? last.loss : null, ownGroup: r.routingSet && MODE[key] === 'loramoe' ? r.routingSet.ownGroup : null };
      const done = useComparisonStore.getState().methods[i].seedRuns;
      const more = end === 'done' && k < seeds.length - 1;
      setMethod(i, { state: more ? 'running' : end, curve: run.curve, step: k * steps + r.step, finalLoss: run.finalLoss, ownGroup: run.ownGroup, seedRuns: end === 'done' ? [...done, run] : done });
      if (end !== 'done') {
        const cancelled = useComparisonStore.getState().status === 'cancelling';
        useComparisonStore.setState({ status: cancelled ? 'cancelled' : 'failed', error: cancelled ? null : `${METHOD_NAMES[key]} ${end === 'stopped' ? 'was stopped' : `failed: ${r.message ?? 'unknown error'}`}` });
        return;
      }
    }
    if (useComparisonStore.getState().status !== 'running') break;
  }
  useComparisonStore.setState((c) => ({ status: c.status === 'cancelling' ? 'cancelled' : 'done' }));
}

/** Cancels the comparison: the method training now stops (its run stays in the library), and no other starts. */
export function cancelComparison(): void {
  if (useComparisonStore.getState().status !== 'running') return;
  useComparisonStore.setState({ status: 'cancelling' });
  // A run that is still starting is stopped by startComparison once it exists.
  if (useComparisonStore.getState().methods.some((m) => m.state === 'running' && m.runId !== null)) stopRun();
}

