/**
 * Checkpoints cannot vanish, whatever the interleaving (an in-memory IndexedDB in Node): two writers
 * (two tabs, on one run or on two) save checkpoints and sweep orphans concurrently, with random
 * pauses between their steps; any save may crash before its transaction or just before it commits,
 * and a writer may die (its tab closed) at any point. A third reader samples the database
 * throughout. At every sample and at the end, every stored pointer names a stored checkpoint, and
 * each run's pointer holds a checkpoint some save of that run completed.
 */
import 'fake-indexeddb/auto';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { loadCheckpoint, loadCheckpointPointer, removeOrphanCheckpoints, saveCheckpoint, setCheckpointWriteHook } from './persist';

type Crash = 'none' | 'data' | 'commit';
type Op = { kind: 'save'; crash: Crash; pause: number } | { kind: 'sweep'; pause: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('save' as const), crash: fc.constantFrom<Crash>('none', 'none', 'data', 'commit'), pause: fc.nat(6) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sweep' as const), pause: fc.nat(6) }) },
);
const writer = fc.record({ ops: fc.array(op, { minLength: 1, maxLength: 6 }), diesAfter: fc.nat(6) });

/** Lets the other tasks (and IndexedDB's own scheduling) run `n` times. */
async function pause(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 0));
}

/** Every pointer and every stored checkpoint id, read in one transaction. */
function snapshot(): Promise<{ pointers: { key: string; id: string; runId: string; step: number }[]; stored: Set<string> }> {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open('loramoe-playground');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const d = open.result;
      const tx = d.transaction(['kv', 'checkpoints'], 'readonly');
      const kvKeys = tx.objectStore('kv').getAllKeys();
      const kvValues = tx.objectStore('kv').getAll();
      const cps = tx.objectStore('checkpoints').getAllKeys();
      tx.oncomplete = () => {
        const pointers: { key: string; id: string; runId: string; step: number }[] = [];
        kvKeys.result.forEach((k, i) => {
          const key = String(k);
          if (key !== 'checkpoint' && !key.startsWith('checkpoint:')) return;
          const v = kvValues.result[i] as { id: string; runId: string; step: number };
          pointers.push({ key, id: v.id, runId: v.runId, step: v.step });
        });
        d.close();
        resolve({ pointers, stored: new Set(cps.result.map(String)) });
      };
      tx.onerror = () => reject(tx.error);
    };
  });
}

async function expectNoDanglingPointer(): Promise<void> {
  const { pointers, stored } = await snapshot();
  for (const p of pointers) expect(stored.has(p.id), `pointer ${p.key} names ${p.id}, which is not stored`).toBe(true);
}

afterEach(() => setCheckpointWriteHook(null));

describe('checkpoints under two concurrent writers', () => {
  it('no interleaving of saves, crashes, closed tabs and sweeps leaves a pointer to a missing checkpoint', async () => {
    // The database exists (at its version) before the reader opens it.
    expect(await loadCheckpointPointer()).toBeNull();
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.tuple(writer, writer), fc.boolean(), async (writers, sameRun) => {
        round++;
        const runs = sameRun ? [`r${round}`, `r${round}`] : [`r${round}a`, `r${round}b`];
        // Each save has a step of its own, so the hook knows which save to crash where.
        let nextStep = 1;
        const crashes = new Map<number, Crash>();
        setCheckpointWriteHook((phase, step) => {
          if (crashes.get(step) === phase) throw new Error(`crash at ${phase} of step ${step}`);
        });
        const completed = new Map<string, Set<number>>(runs.map((r) => [r, new Set<number>()]));
        const alive = [true, true];
        let done = 0;

        const run = async (w: number): Promise<void> => {
          const { ops, diesAfter } = writers[w];
          for (let i = 0; i < ops.length && i < diesAfter + 1; i++) {
            const o = ops[i];
            await pause(o.pause);
            if (o.kind === 'sweep') {
              // The runs some tab holds: those of the writers still alive.
              const held = new Set(runs.filter((_, k) => alive[k]));
              await removeOrphanCheckpoints(held);
              continue;
            }
            const step = nextStep++;
            crashes.set(step, o.crash);
            try {
              await saveCheckpoint(new Uint8Array([w, step]).buffer, { runId: runs[w], step, totalSteps: 100, meta: null });
              completed.get(runs[w])!.add(step);
            } catch (e) {
              expect(String(e)).toContain('crash at');
              // A crash ends the writer: its tab is gone.
              break;
            }
          }
          alive[w] = false;
          done++;
        };
        const observe = async (): Promise<void> => {
          while (done < 2) {
            await expectNoDanglingPointer();
            await pause(1);
          }
        };
        await Promise.all([run(0), run(1), observe()]);
        await expectNoDanglingPointer();
        for (const r of new Set(runs)) {
          const cp = await loadCheckpoint(r);
          if (completed.get(r)!.size === 0) expect(cp).toBeNull();
          else expect(completed.get(r)!.has(cp!.pointer.step), `run ${r}'s pointer holds a completed save`).toBe(true);
        }
        const latest = await loadCheckpointPointer();
        if (latest) expect(completed.get(latest.runId)?.has(latest.step) ?? true).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});
