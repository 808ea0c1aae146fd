/**
 * What survives a reload, in IndexedDB (through `idb`): uploaded datasets (raw bytes and name),
 * settings, the runs library (one record per run, and its files: the adapter it ended with) and each
 * run's latest training checkpoint. Used by the page (datasets, settings, run records) and by the
 * engine worker (checkpoints, adapter files): IndexedDB works in both.
 *
 * Checkpoints cannot vanish: one transaction stores the bytes (with the run's metric series up to
 * that step, so a resumed run's series has no gap) under a new key, switches the pointers to it (the
 * run's own, `checkpoint:<run>`, and the library-wide `checkpoint`, which names the run trained
 * last) and deletes the checkpoint the run's pointer named before. A crash or a closed tab aborts
 * the whole transaction, so whatever the timing the stored pointers name stored checkpoints. A save
 * touches no other run's checkpoint; the startup sweep (removeOrphanCheckpoints) deletes only
 * checkpoints no pointer names, of runs no tab holds (./run-locks.ts). Every run keeps one
 * checkpoint until the run is deleted.
 *
 * Run records are written compare-and-set: a record carries the version it was read at, a write
 * whose version is not the stored one is refused (RecordConflictError), and the caller's rule may
 * refuse a record that would go backwards (RecordRefusedError); see saveRunRecord.
 *
 * A full storage quota is an error the caller must show (StorageFullError), never swallowed.
 */
import { type DBSchema, type IDBPDatabase, openDB } from 'idb';

const DB_NAME = 'loramoe-playground';
const DB_VERSION = 2;

export interface StoredDataset {
  role: 'train' | 'probe';
  name: string;
  bytes: ArrayBuffer;
  savedAt: number;
}

/** A checkpoint pointer: which stored checkpoint is a run's current one, with what the page shows about it. */
export interface CheckpointPointer<Meta = unknown> {
  id: string;
  /** The run the checkpoint belongs to. */
  runId: string;
  step: number;
  totalSteps: number;
  bytes: number;
  savedAt: number;
  meta: Meta;
}

/** A run in the library: its id, when it last changed, and whatever the page records about it. */
export interface StoredRun {
  id: string;
  updatedAt: number;
  /** How many times the record was written (absent: never, or by a version before compare-and-set, read as 0). */
  version?: number;
}

/** A record write based on a version that is no longer the stored one (another writer came first), or on a deleted record. */
export class RecordConflictError extends Error {
  constructor(
    readonly runId: string,
    readonly expected: number,
    /** The stored version; null when the record is no longer stored. */
    readonly found: number | null,
  ) {
    super(
      found === null
        ? `the record of run ${runId} is no longer stored (deleted): the write of version ${expected} was refused`
        : `the record of run ${runId} changed meanwhile (version ${found} is stored, the write was based on ${expected}): it was not overwritten`,
    );
    this.name = 'RecordConflictError';
  }
}

/** A record write the caller's rule refused (a step or a status going backwards). */
export class RecordRefusedError extends Error {
  constructor(
    readonly runId: string,
    reason: string,
  ) {
    super(`the record of run ${runId} was not written: ${reason}`);
    this.name = 'RecordRefusedError';
  }
}

/** A file a run keeps (the adapter it ended with, as the zip the page downloads). */
export interface StoredRunFile {
  runId: string;
  name: string;
  bytes: ArrayBuffer;
  /** The training step the file holds (0 for an imported adapter). */
  step: number;
  savedAt: number;
}

interface Schema extends DBSchema {
  datasets: { key: string; value: StoredDataset };
  kv: { key: string; value: unknown };
  checkpoints: { key: string; value: { id: string; runId?: string; bytes: ArrayBuffer; savedAt: number; extra?: unknown } };
  runs: { key: string; value: StoredRun };
  runFiles: { key: string; value: StoredRunFile };
}

/** The storage quota is full: the write did not happen. */
export class StorageFullError extends Error {
  constructor(what: string, cause?: unknown) {
    super(
      `Browser storage is full: the ${what} could not be saved. Free space (delete cached models in the backbone panel, ` +
        'or site data in the browser settings) and try again.',
    );
    this.name = 'StorageFullError';
    if (cause !== undefined) (this as { cause?: unknown }).cause = cause;
  }
}

/** True for the errors browsers raise when a write exceeds the quota. */
export function isQuotaError(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const name = (e as { name?: unknown }).name;
  const code = (e as { code?: unknown }).code;
  // QuotaExceededError (code 22); Firefox's old NS_ERROR_DOM_QUOTA_REACHED (code 1014).
  return name === 'QuotaExceededError' || name === 'NS_ERROR_DOM_QUOTA_REACHED' || code === 22 || code === 1014;
}

/** Runs a write; a quota error becomes a StorageFullError naming `what`, others pass through. */
export async function guardWrite<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isQuotaError(e)) throw new StorageFullError(what, e);
    throw e;
  }
}

let dbPromise: Promise<IDBPDatabase<Schema>> | null = null;

export function persistenceAvailable(): boolean {
  return typeof indexedDB !== 'undefined';
}

function db(): Promise<IDBPDatabase<Schema>> {
  if (!persistenceAvailable()) return Promise.reject(new Error('IndexedDB is not available in this browser'));
  dbPromise ??= openDB<Schema>(DB_NAME, DB_VERSION, {
    upgrade(d, oldVersion) {
      if (oldVersion < 1) {
        d.createObjectStore('datasets');
        d.createObjectStore('kv');
        d.createObjectStore('checkpoints');
      }
      // Version 2: the runs library.
      if (oldVersion < 2) {
        d.createObjectStore('runs');
        d.createObjectStore('runFiles');
      }
    },
    blocking() {
      // Another tab wants a newer version: let it.
      void dbPromise?.then((x) => x.close());
      dbPromise = null;
    },
  });
  return dbPromise;
}

// ---- datasets ---------------------------------------------------------------------------------------

export async function saveDataset(role: StoredDataset['role'], name: string, bytes: ArrayBuffer): Promise<void> {
  const d = await db();
  await guardWrite(`dataset ${name}`, () => d.put('datasets', { role, name, bytes, savedAt: Date.now() }, role).then(() => undefined));
}

export async function loadDataset(role: StoredDataset['role']): Promise<StoredDataset | null> {
  const d = await db();
  return (await d.get('datasets', role)) ?? null;
}

// ---- small values (settings, metric series) ---------------------------------------------------------

export async function saveValue(key: string, value: unknown, what = key): Promise<void> {
  const d = await db();
  await guardWrite(what, () => d.put('kv', value, key).then(() => undefined));
}

export async function deleteValue(key: string): Promise<void> {
  const d = await db();
  await d.delete('kv', key);
}

export async function loadValue<T>(key: string): Promise<T | null> {
  const d = await db();
  return ((await d.get('kv', key)) as T | undefined) ?? null;
}

// ---- the runs library -------------------------------------------------------------------------------

/**
 * Writes a run's record compare-and-set, in one transaction: `rec.version` must be the stored
 * record's version (0 for a record not stored yet), else RecordConflictError; `mayFollow(stored,
 * rec)` may refuse the write with a reason (RecordRefusedError). The record is stored with
 * version + 1, and returned as stored.
 */
export async function saveRunRecord<R extends StoredRun>(rec: R, mayFollow?: (stored: R, next: R) => string | null): Promise<R> {
  const d = await db();
  return guardWrite(`record of run ${rec.id}`, async () => {
    const tx = d.transaction('runs', 'readwrite');
    const stored = (await tx.store.get(rec.id)) as R | undefined;
    const expected = rec.version ?? 0;
    let refusal: Error | null = null;
    if (stored === undefined ? expected !== 0 : (stored.version ?? 0) !== expected) {
      refusal = new RecordConflictError(rec.id, expected, stored === undefined ? null : (stored.version ?? 0));
    } else if (stored !== undefined && mayFollow) {
      const why = mayFollow(stored, rec);
      if (why !== null) refusal = new RecordRefusedError(rec.id, why);
    }
    const next: R = { ...rec, version: expected + 1 };
    if (refusal === null) await tx.store.put(next, rec.id);
    await tx.done;
    if (refusal) throw refusal;
    return next;
  });
}

export async function loadRunRecord<R extends StoredRun>(id: string): Promise<R | null> {
  const d = await db();
  return ((await d.get('runs', id)) as R | undefined) ?? null;
}

/** Every run in the library, newest first. */
export async function loadRunRecords<R extends StoredRun>(): Promise<R[]> {
  const d = await db();
  return ((await d.getAll('runs')) as R[]).sort((a, b) => b.updatedAt - a.updatedAt);
}

const fileKey = (runId: string, kind: 'adapter') => `${runId}:${kind}`;

/** Keeps a run's adapter (the zip the page downloads), replacing the one it had. */
export async function saveRunAdapter(runId: string, name: string, bytes: ArrayBuffer, step: number): Promise<StoredRunFile> {
  const d = await db();
  const file: StoredRunFile = { runId, name, bytes, step, savedAt: Date.now() };
  await guardWrite(`adapter of run ${runId}`, () => d.put('runFiles', file, fileKey(runId, 'adapter')).then(() => undefined));
  return file;
}

export async function loadRunAdapter(runId: string): Promise<StoredRunFile | null> {
  const d = await db();
  return (await d.get('runFiles', fileKey(runId, 'adapter'))) ?? null;
}

/** Deletes a run: its record, its files and its checkpoint (and the library-wide pointer when it names the run). */
export async function deleteRun(runId: string): Promise<void> {
  const d = await db();
  const tx = d.transaction(['runs', 'runFiles', 'kv', 'checkpoints'], 'readwrite');
  await tx.objectStore('runs').delete(runId);
  await tx.objectStore('runFiles').delete(fileKey(runId, 'adapter'));
  const kv = tx.objectStore('kv');
  const own = (await kv.get(runPointerKey(runId))) as CheckpointPointer | undefined;
  if (own) await tx.objectStore('checkpoints').delete(own.id);
  await kv.delete(runPointerKey(runId));
  const latest = (await kv.get(POINTER)) as CheckpointPointer | undefined;
  if (latest && runOfPointer(latest) === runId) {
    await tx.objectStore('checkpoints').delete(latest.id);
    await kv.delete(POINTER);
  }
  await tx.done;
}

/** Bytes the library holds: every record's JSON length plus every stored file and checkpoint. */
export async function libraryBytes(): Promise<number> {
  const d = await db();
  let n = 0;
  for (const r of await d.getAll('runs')) n += JSON.stringify(r).length;
  for (const f of await d.getAll('runFiles')) n += f.bytes.byteLength;
  for (const c of await d.getAll('checkpoints')) n += c.bytes.byteLength;
  return n;
}

// ---- checkpoints ------------------------------------------------------------------------------------

const POINTER = 'checkpoint';

function newId(): string {
  const rnd = typeof crypto !== 'undefined' && 'randomUUID' in crypto ? crypto.randomUUID() : `${Math.random()}`.slice(2);
  return `ckpt-${Date.now()}-${rnd}`;
}

/**
 * Where a checkpoint write can be interrupted by a test (setCheckpointWriteHook): `data` before its
 * transaction begins (the hook may throw, as a full quota does, or never settle, as a tab closed
 * before the write); `commit` inside the transaction, once everything is put and before it commits
 * (a throw there aborts the transaction, as a crash or a closed tab does).
 */
export type CheckpointWritePhase = 'data' | 'commit';
export type CheckpointWriteHook = (phase: CheckpointWritePhase, step: number) => void | Promise<void>;

let writeHook: CheckpointWriteHook | null = null;

/**
 * Test hook (the reliability e2e, through the worker's `debug` command, and the interleaving
 * property test): called at each phase of every checkpoint write. At `commit` only a synchronous
 * throw counts (awaiting there would let the transaction commit). null removes it.
 */
export function setCheckpointWriteHook(hook: CheckpointWriteHook | null): void {
  writeHook = hook;
}

/** The key of a run's own checkpoint pointer. */
function runPointerKey(runId: string): string {
  return `${POINTER}:${runId}`;
}

/** Every checkpoint id some pointer names (the runs' own pointers and the library-wide one). */
async function namedCheckpointIds(kv: { getAllKeys(): Promise<string[]>; get(key: string): Promise<unknown> }): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const key of await kv.getAllKeys()) {
    if (key !== POINTER && !key.startsWith(`${POINTER}:`)) continue;
    const p = (await kv.get(key)) as CheckpointPointer | undefined;
    if (p) ids.add(p.id);
  }
  return ids;
}

/**
 * Stores a checkpoint of run `info.runId` and makes it that run's current one and the library's
 * latest, in one transaction: the bytes under a fresh key, both pointers, and the deletion of the
 * checkpoint the run's pointer named before (unless a pointer still names it). Either all of it is
 * stored or none of it. Other runs' checkpoints are never touched.
 */
export async function saveCheckpoint<Meta>(bytes: ArrayBuffer, info: Omit<CheckpointPointer<Meta>, 'id' | 'bytes' | 'savedAt'>, extra?: unknown): Promise<CheckpointPointer<Meta>> {
  const d = await db();
  const id = newId();
  const savedAt = Date.now();
  const pointer: CheckpointPointer<Meta> = { ...info, id, bytes: bytes.byteLength, savedAt };
  await guardWrite(`checkpoint of step ${info.step}`, async () => {
    await writeHook?.('data', info.step);
    const tx = d.transaction(['kv', 'checkpoints'], 'readwrite');
    const kv = tx.objectStore('kv');
    const cps = tx.objectStore('checkpoints');
    try {
      // What the run's pointer named before (a database of version 1 names it in the latest pointer only).
      const own = (await kv.get(runPointerKey(info.runId))) as CheckpointPointer | undefined;
      const latest = (await kv.get(POINTER)) as CheckpointPointer | undefined;
      const replaced = new Set<string>();
      if (own) replaced.add(own.id);
      if (latest && runOfPointer(latest) === info.runId) replaced.add(latest.id);
      await cps.put({ id, runId: info.runId, bytes, savedAt, extra }, id);
      await kv.put(pointer, POINTER);
      await kv.put(pointer, runPointerKey(info.runId));
      const named = await namedCheckpointIds(kv);
      for (const old of replaced) if (!named.has(old)) await cps.delete(old);
      void writeHook?.('commit', info.step);
    } catch (e) {
      // Nothing of a failed save is kept: the transaction goes whole or not at all.
      try {
        tx.abort();
      } catch {
        // Already aborted by the failed request.
      }
      await tx.done.catch(() => undefined);
      throw e;
    }
    await tx.done;
  });
  return pointer;
}

/** The run a pointer belongs to (a pointer of version 1 names it only in its metadata). */
function runOfPointer(p: CheckpointPointer): string | undefined {
  return p.runId ?? (p.meta as { runId?: string } | undefined)?.runId;
}

/**
 * The key of run `runId`'s pointer, or of the library's latest when no run is named. A database of
 * version 1 has only the latest pointer: it stands for its run.
 */
async function pointerKeyOf(kv: { get(key: string): Promise<unknown> }, runId: string | undefined): Promise<string> {
  if (runId === undefined) return POINTER;
  if ((await kv.get(runPointerKey(runId))) !== undefined) return runPointerKey(runId);
  const latest = (await kv.get(POINTER)) as CheckpointPointer | undefined;
  return latest && runOfPointer(latest) === runId ? POINTER : runPointerKey(runId);
}

/** The pointer of run `runId`'s checkpoint, or of the library's latest when no run is named. */
export async function loadCheckpointPointer<Meta>(runId?: string): Promise<CheckpointPointer<Meta> | null> {
  const d = await db();
  const tx = d.transaction('kv', 'readonly');
  const p = (await tx.store.get(await pointerKeyOf(tx.store, runId))) as CheckpointPointer<Meta> | undefined;
  await tx.done;
  return p ?? null;
}

/** A checkpoint's pointer, bytes and extra data (run `runId`'s, or the latest), read in one transaction (never a half-switched pair). */
export async function loadCheckpoint<Meta>(runId?: string): Promise<{ pointer: CheckpointPointer<Meta>; bytes: ArrayBuffer; extra: unknown } | null> {
  const d = await db();
  const tx = d.transaction(['kv', 'checkpoints'], 'readonly');
  const kv = tx.objectStore('kv');
  const pointer = (await kv.get(await pointerKeyOf(kv, runId))) as CheckpointPointer<Meta> | undefined;
  if (!pointer) return null;
  const rec = await tx.objectStore('checkpoints').get(pointer.id);
  await tx.done;
  if (!rec) throw new Error(`the checkpoint pointer names ${pointer.id}, which is not stored`);
  return { pointer, bytes: rec.bytes, extra: rec.extra };
}

/**
 * Removes checkpoints no pointer names (left by versions that wrote a checkpoint in two steps, or by
 * a run deleted while its save was under way), except those of the runs in `held`: a run some tab
 * holds (./run-locks.ts heldRuns) is that tab's business. Returns how many were removed.
 */
export async function removeOrphanCheckpoints(held: ReadonlySet<string> = new Set()): Promise<number> {
  const d = await db();
  const tx = d.transaction(['kv', 'checkpoints'], 'readwrite');
  const named = await namedCheckpointIds(tx.objectStore('kv'));
  const cps = tx.objectStore('checkpoints');
  let removed = 0;
  for (const key of await cps.getAllKeys()) {
    if (named.has(key)) continue;
    const runId = (await cps.get(key))?.runId;
    if (runId === undefined || !held.has(runId)) {
      await tx.objectStore('checkpoints').delete(key);
      removed++;
    }
  }
  await tx.done;
  return removed;
}
