/**
 * One owner per run: the tab that trains a run holds the Web Lock `loramoe-run:<runId>` (exclusive,
 * origin-wide, released by the browser when the tab closes or crashes). Locks work in a page and in
 * a worker alike, so the storage code can ask which runs some tab holds (heldRuns) before it
 * deletes a checkpoint, and the page takes (acquireRunLock) the lock of a run before it trains it.
 *
 * Where the browser has no Web Locks (and in Node), every acquire succeeds and no run is held:
 * nothing can be coordinated, and a single tab works as before.
 */

const PREFIX = 'loramoe-run:';

export function runLockName(runId: string): string {
  return `${PREFIX}${runId}`;
}

/** The lock manager in use: the browser's, or a stand-in a test sets (setLockManager). */
let manager: LockManager | null | undefined;

function locks(): LockManager | null {
  if (manager !== undefined) return manager;
  return typeof navigator !== 'undefined' && navigator.locks ? navigator.locks : null;
}

/** Test seam: a LockManager to use instead of the browser's (null: none; undefined: the browser's again). */
export function setLockManager(m: LockManager | null | undefined): void {
  manager = m;
}

export function locksAvailable(): boolean {
  return locks() !== null;
}

/** The ids of the runs some tab (this one included) holds the lock of. */
export async function heldRuns(): Promise<Set<string>> {
  const m = locks();
  const held = new Set<string>();
  if (!m) return held;
  const snapshot = await m.query();
  for (const l of snapshot.held ?? []) if (l.name?.startsWith(PREFIX)) held.add(l.name.slice(PREFIX.length));
  return held;
}

/** Gives a held run lock back; settles once the browser has released it (other tabs then see it free). */
export type ReleaseLock = () => Promise<void>;

/**
 * Takes run `runId`'s lock: at once or not at all (`wait: false`: null when another holder has it),
 * or once it is free (`wait: true`; `signal` gives up waiting, and the promise then settles null).
 * The lock stays held until the returned function is called, or the tab goes.
 */
export function acquireRunLock(runId: string, opts: { wait: boolean; signal?: AbortSignal }): Promise<ReleaseLock | null> {
  const m = locks();
  if (!m) return Promise.resolve(() => Promise.resolve());
  return new Promise<ReleaseLock | null>((resolve, reject) => {
    let letGo: () => void = () => undefined;
    const held = new Promise<void>((r) => (letGo = r));
    const options: LockOptions = opts.wait ? (opts.signal ? { signal: opts.signal } : {}) : { ifAvailable: true };
    // The request settles when its callback's promise does, i.e. when the lock is released.
    const request: Promise<unknown> = m.request(runLockName(runId), options, async (lock) => {
      if (!lock) {
        resolve(null);
        return;
      }
      resolve(() => {
        letGo();
        return request.then(
          () => undefined,
          () => undefined,
        );
      });
      await held;
    });
    request.catch((e: unknown) => {
      if (opts.signal?.aborted) resolve(null);
      else reject(e instanceof Error ? e : new Error(String(e)));
    });
  });
}
