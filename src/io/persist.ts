/**
 * What survives a reload, in IndexedDB (through `idb`): uploaded datasets (raw bytes and name),
 * settings, the run's metric series, and the latest training checkpoint. Used by the page (datasets,
 * settings, metrics) and by the engine worker (checkpoints): IndexedDB works in both.
 *
 * Checkpoints are written so a half-written one is never loaded: the bytes (with the run's metric
 * series up to that step, so a resumed run's series has no gap) go under a new key in one transaction; a second transaction switches the `checkpoint` pointer to it and deletes the
 * previous checkpoint. A crash between the two leaves the old pointer (and an orphan that the next
 * save or startup removes); a reader only ever follows the pointer.
 *
 * A full storage quota is an error the caller must show (StorageFullError), never swallowed.
 */
import { type DBSchema, type IDBPDatabase, openDB } from 'idb';

const DB_NAME = 'loramoe-playground';
const DB_VERSION = 1;

export interface StoredDataset {
  role: 'train' | 'probe';
  name: string;
  bytes: ArrayBuffer;
  savedAt: number;
}

/** The checkpoint pointer: which stored checkpoint is current, with what the page shows about it. */
export interface CheckpointPointer<Meta = unknown> {
  id: string;
  step: number;
  totalSteps: number;
  bytes: number;
  savedAt: number;
  meta: Meta;
}

interface Schema extends DBSchema {
  datasets: { key: string; value: StoredDataset };
  kv: { key: string; value: unknown };
  checkpoints: { key: string; value: { id: string; bytes: ArrayBuffer; savedAt: number; extra?: unknown } };
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
    upgrade(d) {
      d.createObjectStore('datasets');
      d.createObjectStore('kv');
      d.createObjectStore('checkpoints');
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

export async function loadValue<T>(key: string): Promise<T | null> {
  const d = await db();
  return ((await d.get('kv', key)) as T | undefined) ?? null;
}

// ---- checkpoints ------------------------------------------------------------------------------------

const POINTER = 'checkpoint';

function newId(): string {
  const rnd = typeof crypto !== 'undefined' && 'randomUUID' in crypto ? crypto.randomUUID() : `${Math.random()}`.slice(2);
  return `ckpt-${Date.now()}-${rnd}`;
}

/**
 * Where a checkpoint write can be interrupted by a test (setCheckpointWriteHook): `data` before the
 * bytes are put, `pointer` after they are committed and before the pointer switches to them.
 */
export type CheckpointWritePhase = 'data' | 'pointer';
export type CheckpointWriteHook = (phase: CheckpointWritePhase, step: number) => void | Promise<void>;

let writeHook: CheckpointWriteHook | null = null;

/**
 * Test hook (the reliability e2e, through the worker's `debug` command): called at each phase of
 * every checkpoint write; it may throw (a quota error at `data`) or never settle (a tab closed
 * between the data put and the pointer switch). null removes it.
 */
export function setCheckpointWriteHook(hook: CheckpointWriteHook | null): void {
  writeHook = hook;
}

/**
 * Stores a checkpoint and makes it the current one. The bytes are written first under a fresh key;
 * only when that transaction has committed does a second one switch the pointer (and drop the
 * previous checkpoint and any orphan).
 */
export async function saveCheckpoint<Meta>(bytes: ArrayBuffer, info: Omit<CheckpointPointer<Meta>, 'id' | 'bytes' | 'savedAt'>, extra?: unknown): Promise<CheckpointPointer<Meta>> {
  const d = await db();
  const id = newId();
  const savedAt = Date.now();
  await guardWrite(`checkpoint of step ${info.step}`, async () => {
    await writeHook?.('data', info.step);
    const tx = d.transaction('checkpoints', 'readwrite');
    await tx.store.put({ id, bytes, savedAt, extra }, id);
    await tx.done;
  });
  const pointer: CheckpointPointer<Meta> = { ...info, id, bytes: bytes.byteLength, savedAt };
  await guardWrite(`checkpoint of step ${info.step}`, async () => {
    await writeHook?.('pointer', info.step);
    const tx = d.transaction(['kv', 'checkpoints'], 'readwrite');
    const kv = tx.objectStore('kv');
    const cps = tx.objectStore('checkpoints');
    await kv.put(pointer, POINTER);
    for (const key of await cps.getAllKeys()) if (key !== id) await cps.delete(key);
    await tx.done;
  });
  return pointer;
}

export async function loadCheckpointPointer<Meta>(): Promise<CheckpointPointer<Meta> | null> {
  const d = await db();
  return ((await d.get('kv', POINTER)) as CheckpointPointer<Meta> | undefined) ?? null;
}

/** The current checkpoint's pointer, bytes and extra data, read in one transaction (never a half-switched pair). */
export async function loadCheckpoint<Meta>(): Promise<{ pointer: CheckpointPointer<Meta>; bytes: ArrayBuffer; extra: unknown } | null> {
  const d = await db();
  const tx = d.transaction(['kv', 'checkpoints'], 'readonly');
  const pointer = (await tx.objectStore('kv').get(POINTER)) as CheckpointPointer<Meta> | undefined;
  if (!pointer) return null;
  const rec = await tx.objectStore('checkpoints').get(pointer.id);
  await tx.done;
  if (!rec) throw new Error(`the checkpoint pointer names ${pointer.id}, which is not stored`);
  return { pointer, bytes: rec.bytes, extra: rec.extra };
}

export async function deleteCheckpoints(): Promise<void> {
  const d = await db();
  const tx = d.transaction(['kv', 'checkpoints'], 'readwrite');
  await tx.objectStore('kv').delete(POINTER);
  await tx.objectStore('checkpoints').clear();
  await tx.done;
}

/** Removes checkpoints the pointer does not name (left by a save interrupted between its two steps). */
export async function removeOrphanCheckpoints(): Promise<number> {
  const d = await db();
  const tx = d.transaction(['kv', 'checkpoints'], 'readwrite');
  const pointer = (await tx.objectStore('kv').get(POINTER)) as CheckpointPointer | undefined;
  let removed = 0;
  for (const key of await tx.objectStore('checkpoints').getAllKeys()) {
    if (key !== pointer?.id) {
      await tx.objectStore('checkpoints').delete(key);
      removed++;
    }
  }
  await tx.done;
  return removed;
}
