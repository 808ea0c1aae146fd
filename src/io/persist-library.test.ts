/**
 * The runs library in IndexedDB (an in-memory IndexedDB in Node): each run keeps one checkpoint
 * under its own pointer beside the library-wide latest one, an interrupted save leaves nothing, the
 * orphan sweep spares the runs a tab holds, records are written compare-and-set, and deleting a run
 * removes its record, adapter and checkpoint.
 */
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  deleteRun,
  deleteValue,
  libraryBytes,
  loadCheckpoint,
  loadCheckpointPointer,
  loadRunAdapter,
  loadRunRecords,
  RecordConflictError,
  removeOrphanCheckpoints,
  saveCheckpoint,
  saveRunAdapter,
  saveRunRecord,
  saveValue,
  setCheckpointWriteHook,
} from './persist';

const bytes = (...v: number[]) => new Uint8Array(v).buffer;
const info = (runId: string, step: number) => ({ runId, step, totalSteps: 10, meta: { runId } });

afterEach(() => setCheckpointWriteHook(null));

describe('runs library storage', () => {
  it('keeps one checkpoint per run; the latest pointer names the run saved last', async () => {
    await saveCheckpoint(bytes(1), info('a', 2));
    await saveCheckpoint(bytes(2, 2), info('a', 4));
    await saveCheckpoint(bytes(3, 3, 3), info('b', 1));
    const a = await loadCheckpoint<{ runId: string }>('a');
    expect(a?.pointer.step).toBe(4);
    expect(new Uint8Array(a!.bytes)).toEqual(new Uint8Array([2, 2]));
    expect((await loadCheckpoint('b'))?.pointer.step).toBe(1);
    expect((await loadCheckpointPointer())?.runId).toBe('b');
    // a's first checkpoint went when its second was saved: nothing is left unnamed.
    expect(await removeOrphanCheckpoints()).toBe(0);
    expect(await libraryBytes()).toBe(2 + 3);
  });

  it('a save interrupted before it commits leaves the pointers and the stored checkpoints as they were', async () => {
    const before = await libraryBytes();
    setCheckpointWriteHook((phase) => {
      if (phase === 'commit') throw new Error('tab closed');
    });
    await expect(saveCheckpoint(bytes(9, 9, 9, 9), info('a', 6))).rejects.toThrow('tab closed');
    setCheckpointWriteHook(null);
    expect((await loadCheckpoint('a'))?.pointer.step).toBe(4);
    expect((await loadCheckpointPointer())?.runId).toBe('b');
    expect(await libraryBytes()).toBe(before);
    expect(await removeOrphanCheckpoints()).toBe(0);
  });

  it('the orphan sweep leaves the checkpoints of a run a tab holds', async () => {
    // An orphan of run h: its pointer is gone, as a version that wrote in two steps could leave it.
    await saveCheckpoint(bytes(4, 4), info('h', 1));
    await deleteValue('checkpoint:h');
    await saveCheckpoint(bytes(3, 3, 3), info('b', 2));
    expect(await removeOrphanCheckpoints(new Set(['h']))).toBe(0);
    expect(await removeOrphanCheckpoints(new Set(['other']))).toBe(1);
    expect(await removeOrphanCheckpoints()).toBe(0);
  });

  it('writes records compare-and-set on their version, and a rule may refuse one', async () => {
    type Rec = { id: string; updatedAt: number; version?: number; step: number };
    const first = await saveRunRecord<Rec>({ id: 'cas', updatedAt: 1, step: 1 });
    expect(first.version).toBe(1);
    const second = await saveRunRecord<Rec>({ ...first, step: 2 });
    expect(second.version).toBe(2);
    // A writer still holding version 1 is refused, and the stored record stays.
    await expect(saveRunRecord<Rec>({ ...first, step: 5 })).rejects.toThrow(/version 2 is stored, the write was based on 1/);
    await expect(saveRunRecord<Rec>({ id: 'cas', updatedAt: 1, step: 9 })).rejects.toThrow(RecordConflictError);
    const backwards = (stored: Rec, next: Rec) => (next.step < stored.step ? 'the step goes back' : null);
    await expect(saveRunRecord<Rec>({ ...second, step: 1 }, backwards)).rejects.toThrow('the record of run cas was not written: the step goes back');
    expect((await loadRunRecords<Rec>()).find((r) => r.id === 'cas')).toEqual(second);
    // A deleted record does not come back through a late write.
    await deleteRun('cas');
    await expect(saveRunRecord<Rec>(second)).rejects.toThrow(/no longer stored/);
  });

  it('keeps records and adapters, lists runs newest first, and deletes a run with everything it keeps', async () => {
    await saveRunRecord({ id: 'a', updatedAt: 100, name: 'first' });
    await saveRunRecord({ id: 'b', updatedAt: 200, name: 'second' });
    await deleteRun('h');
    await saveRunAdapter('a', 'loramoe-adapter-step4.zip', bytes(7, 7, 7), 4);
    expect((await loadRunRecords<{ id: string; updatedAt: number; name: string }>()).map((r) => r.name)).toEqual(['second', 'first']);
    const file = await loadRunAdapter('a');
    expect(file?.name).toBe('loramoe-adapter-step4.zip');
    expect(file?.step).toBe(4);
    expect(new Uint8Array(file!.bytes)).toEqual(new Uint8Array([7, 7, 7]));

    await deleteRun('b');
    // b was the latest: the library-wide pointer goes with it; a keeps its own.
    expect(await loadCheckpointPointer()).toBeNull();
    expect(await loadCheckpoint('b')).toBeNull();
    expect((await loadCheckpoint('a'))?.pointer.step).toBe(4);
    expect((await loadRunRecords()).map((r) => r.id)).toEqual(['a']);

    await deleteRun('a');
    expect(await loadRunAdapter('a')).toBeNull();
    expect(await loadCheckpoint('a')).toBeNull();
    expect(await loadRunRecords()).toEqual([]);
    expect(await libraryBytes()).toBe(0);
  });

  it('reads a database of version 1, whose one pointer names its run only in its metadata', async () => {
    const p = await saveCheckpoint(bytes(5, 5), info('old', 3));
    // As version 1 wrote it: the latest pointer alone, without runId.
    await deleteValue('checkpoint:old');
    await saveValue('checkpoint', { ...p, runId: undefined });
    expect((await loadCheckpointPointer('old'))?.step).toBe(3);
    expect(new Uint8Array((await loadCheckpoint('old'))!.bytes)).toEqual(new Uint8Array([5, 5]));
    expect(await loadCheckpoint('another')).toBeNull();
    expect(await removeOrphanCheckpoints()).toBe(0);
    await deleteRun('old');
    expect(await loadCheckpointPointer()).toBeNull();
    expect(await libraryBytes()).toBe(0);
  });
});
