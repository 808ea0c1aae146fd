/**
 * The comparison's sequence against stand-in runs: the five methods start one after another with the
 * comparison's methods, each waits for its run to end, and Cancel (also while a run is starting)
 * stops the run and starts no other.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { StartRequest } from './run-actions';

const runs = vi.hoisted(() => ({
  started: [] as StartRequest[],
  stops: 0,
  /** Resolves the pending start (the worker's reply). */
  release: null as null | (() => void),
}));

vi.mock('./run-actions', async () => {
  const { useRunStore } = await import('./run');
  return {
    startRun: (req: StartRequest) =>
      new Promise<boolean>((resolve) => {
        runs.started.push(req);
        runs.release = () => {
          useRunStore.setState({ runId: `run-${runs.started.length}`, status: 'running', step: 0, evalCurve: [], metrics: [] });
          resolve(true);
        };
      }),
    stopRun: () => {
      runs.stops++;
    },
  };
});

const { cancelComparison, startComparison, useComparisonStore } = await import('./comparison');
const { useRunStore } = await import('./run');
const { useSettingsStore } = await import('./settings');

const tick = () => new Promise((r) => setTimeout(r, 0));

beforeEach(() => {
  runs.started = [];
  runs.stops = 0;
  runs.release = null;
  useComparisonStore.setState({ status: 'idle', methods: [], form: { steps: 20, seeds: 1, lrAdapter: 5e-3, lrFull: 1e-3 } });
  useRunStore.setState({ runId: null, status: 'idle' });
});

describe('the comparison sequence', () => {
  it('runs the five methods one after another with their options, and ends done', async () => {
    const done = startComparison();
    for (let i = 0; i < 5; i++) {
      await tick();
      runs.release!();
      await tick();
      const point = { step: 0, samples: 0, probe: 0.5, probeLogLikelihood: -1, tasks: {}, taskMean: 0 };
      useRunStore.setState({ evalCurve: [point], step: 20, status: 'done' });
    }
    await done;
    expect(runs.started.map((r) => r.compared)).toEqual(['full', 'lora', 'loramoe', 'lbc-official', 'lbc-own'].map((method) => ({ method, evalEvery: 2 })));
    expect(runs.started.map((r) => r.settings?.lr)).toEqual([1e-3, 5e-3, 5e-3, 5e-3, 5e-3]);
    expect(runs.started.every((r) => r.settings?.steps === 20 && r.settings.mode === 'loramoe')).toBe(true);
    const c = useComparisonStore.getState();
    expect(c.status).toBe('done');
    expect(c.methods.map((m) => [m.state, m.curve.length, m.runId])).toEqual([1, 2, 3, 4, 5].map((n) => ['done', 1, `run-${n}`]));
  });

  it('with two seeds, runs each method from the settings\' seed and the next, and keeps both runs', async () => {
    useComparisonStore.setState({ form: { steps: 20, seeds: 2, lrAdapter: 5e-3, lrFull: 1e-3 } });
    const seed = useSettingsStore.getState().values.seed;
    const done = startComparison();
    for (let i = 0; i < 10; i++) {
      await tick();
      runs.release!();
      await tick();
      const point = { step: 20, samples: 80, probe: i % 2 === 0 ? 0.5 : 0.75, probeLogLikelihood: -1, tasks: {}, taskMean: 0 };
      useRunStore.setState({ evalCurve: [point], step: 20, status: 'done' });
    }
    await done;
    expect(runs.started.map((r) => [r.compared?.method, r.settings?.seed])).toEqual(
      ['full', 'lora', 'loramoe', 'lbc-official', 'lbc-own'].flatMap((method) => [
        [method, seed],
        [method, seed + 1],
      ]),
    );
    expect(runs.started[1].name).toMatch(/: full fine-tuning \(seed \d+\)$/);
    const c = useComparisonStore.getState();
    expect(c.status).toBe('done');
    expect(c.seeds).toEqual([seed, seed + 1]);
    expect(c.methods.map((m) => [m.state, m.step, m.seedRuns.map((r) => [r.seed, r.runId, r.curve[0].probe])])).toEqual(
      [0, 1, 2, 3, 4].map((i) => [
        'done',
        40,
        [
          [seed, `run-${2 * i + 1}`, 0.5],
          [seed + 1, `run-${2 * i + 2}`, 0.75],
        ],
      ]),
    );
  });

  it('a Cancel pressed while a run starts stops that run once it exists, and starts no other', async () => {
    const done = startComparison();
    await tick();
    cancelComparison();
    expect(useComparisonStore.getState().status).toBe('cancelling');
    // No run to stop yet (a stop now would reach the previous run, or none).
    expect(runs.stops).toBe(0);
    runs.release!();
    await tick();
    // The run exists now: it was told to stop.
    expect(runs.stops).toBe(1);
    useRunStore.setState({ status: 'stopped', step: 1 });
    await done;
    const c = useComparisonStore.getState();
    expect(c.status).toBe('cancelled');
    expect(c.methods.map((m) => m.state)).toEqual(['stopped', 'waiting', 'waiting', 'waiting', 'waiting']);
    expect(runs.started).toHaveLength(1);
  });
});
