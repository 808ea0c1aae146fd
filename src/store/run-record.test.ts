/**
 * Records never go backwards (an in-memory IndexedDB in Node): two tabs write one run's record
 * concurrently from their own, possibly stale, view of it (training steps, a stop, a continue that
 * starts the run again from an earlier checkpoint), each write compare-and-set on the version with
 * one retry from the stored record, as updateRecord does. A reader samples the stored record
 * throughout: its version only grows; within one start of the run (a leg) its step never goes back
 * and once stopped it never trains again; a later start is never replaced by an earlier one.
 */
import 'fake-indexeddb/auto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadRunRecord, RecordConflictError, RecordRefusedError, saveRunRecord } from '../io/persist';
import type { RunStatus } from '../worker/protocol';
import { recordMayFollow, type LibraryEntry } from './run-library';
import { noRunViews } from './run';

function record(id: string, patch: Partial<LibraryEntry>): LibraryEntry {
  return {
    id,
    updatedAt: 1,
    name: id,
    origin: 'trained',
    createdAt: 1,
    status: 'running',
    method: 'LoRAMoE',
    adapterCfg: null,
    settings: null,
    backbone: 'demo',
    dataset: null,
    totalSteps: 100,
    ...noRunViews(),
    seqLen: 8,
    probe: { before: null, after: null },
    chat: null,
    checkpoint: null,
    adapter: null,
    ...patch,
  };
}

describe('recordMayFollow', () => {
  const stored = record('x', { step: 20, status: 'stopped', leg: 1 });
  it('refuses a step or a status going back within one start, and an earlier start', () => {
    expect(recordMayFollow(stored, { ...stored, step: 10 })).toBe('its step 10 is behind the stored step 20');
    expect(recordMayFollow(stored, { ...stored, status: 'running' })).toBe('the run is stopped; only continuing it trains it again');
    expect(recordMayFollow(stored, { ...stored, leg: 0, step: 30 })).toBe('it is of start 0 of the run, and the stored record of start 1');
  });
  it('lets a run go on, and a new start go back to its checkpoint', () => {
    expect(recordMayFollow(record('x', { step: 20 }), record('x', { step: 21, status: 'stopped' }))).toBeNull();
    expect(recordMayFollow(stored, { ...stored, leg: 2, step: 10, status: 'running' })).toBeNull();
    expect(recordMayFollow(stored, { ...stored, name: 'renamed' })).toBeNull();
  });
});

type Op = { kind: 'train'; steps: number } | { kind: 'stop' } | { kind: 'continue'; back: number };
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('train' as const), steps: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('stop' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('continue' as const), back: fc.nat(8) }) },
);
const tab = fc.record({ ops: fc.array(op, { minLength: 1, maxLength: 8 }), pauses: fc.array(fc.nat(4), { minLength: 8, maxLength: 8 }) });

async function pause(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 0));
}

const trains = (s: RunStatus) => s === 'running' || s === 'paused' || s === 'starting' || s === 'pausing' || s === 'stopping';

describe('one run record under two concurrent writers', () => {
  it('never goes backwards in version, step within a start, status after a stop, or start', async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.tuple(tab, tab), async (tabs) => {
        const id = `run-${++round}`;
        await saveRunRecord(record(id, { leg: 0 }));
        let done = 0;
        const samples: LibraryEntry[] = [];

        const write = async (view: LibraryEntry): Promise<LibraryEntry> => {
          let base = view;
          for (let attempt = 0; attempt < 2; attempt++) {
            try {
              return await saveRunRecord({ ...base, leg: view.leg, step: view.step, status: view.status, version: base.version }, recordMayFollow);
            } catch (e) {
              if (e instanceof RecordRefusedError) return (await loadRunRecord<LibraryEntry>(id))!;
              if (!(e instanceof RecordConflictError)) throw e;
              base = (await loadRunRecord<LibraryEntry>(id))!;
            }
          }
          return (await loadRunRecord<LibraryEntry>(id))!;
        };

        const run = async (t: number): Promise<void> => {
          // This tab's view: what it read last, changed by what it did since.
          let view = (await loadRunRecord<LibraryEntry>(id))!;
          for (let i = 0; i < tabs[t].ops.length; i++) {
            await pause(tabs[t].pauses[i]);
            const o = tabs[t].ops[i];
            if (o.kind === 'train') view = { ...view, step: view.step + o.steps, status: 'running' };
            else if (o.kind === 'stop') view = { ...view, status: 'stopped' };
            else view = { ...view, leg: (view.leg ?? 0) + 1, step: Math.max(0, view.step - o.back), status: 'running' };
            // A refused write: the tab goes on from the stored record, as the page does once it reads it again.
            view = await write(view);
          }
          done++;
        };
        const observe = async (): Promise<void> => {
          while (done < 2) {
            samples.push((await loadRunRecord<LibraryEntry>(id))!);
            await pause(1);
          }
          samples.push((await loadRunRecord<LibraryEntry>(id))!);
        };
        await Promise.all([run(0), run(1), observe()]);

        for (let i = 1; i < samples.length; i++) {
          const [a, b] = [samples[i - 1], samples[i]];
          expect(b.version!).toBeGreaterThanOrEqual(a.version!);
          expect(b.leg ?? 0).toBeGreaterThanOrEqual(a.leg ?? 0);
          if ((b.leg ?? 0) === (a.leg ?? 0)) {
            expect(b.step, `step ${a.step} → ${b.step} within start ${a.leg}`).toBeGreaterThanOrEqual(a.step);
            if (a.status === 'stopped') expect(trains(b.status), `stopped → ${b.status} within start ${a.leg}`).toBe(false);
          }
        }
      }),
      { numRuns: 60 },
    );
  });
});
