/**
 * One owner per run, the page's side. The tab that trains a run holds its Web Lock
 * (../io/run-locks.ts) from its start (or resume, or continue) until it stops, finishes or fails
 * and that status is recorded; only the owner writes the run's record and checkpoints. Other tabs
 * show the run read-only. A BroadcastChannel tells them when a tab takes or gives back a run and
 * when it recorded one, so they refresh what they show.
 *
 * A tab that shows a run held elsewhere waits for its lock (awaitRun). The browser grants a waiting
 * request to one tab at a time, so when the owner closes or crashes, exactly one waiting tab gets
 * the lock; it resumes the run when its record still says it was training (no clean stop), and
 * otherwise gives the lock back at once.
 */
import { create } from 'zustand';
import { acquireRunLock, heldRuns, type ReleaseLock } from '../io/run-locks';
import { errorMessage } from '../util/errors';

export interface OwnershipState {
  /** Runs another tab of this browser holds (trains, or keeps paused). */
  elsewhere: string[];
}

/** The ownership store. Written only by ./run-ownership.ts (this file: refreshHeld). */
export const useOwnershipStore = create<OwnershipState>(() => ({ elsewhere: [] }));

/** What a tab tells the others: it took a run, gave it back, or wrote its record. */
export interface OwnershipMessage {
  kind: 'owned' | 'released' | 'record';
  runId: string;
}

const CHANNEL = 'loramoe-runs';

/** The runs this tab holds the lock of, with the function that gives each back. */
const owned = new Map<string, ReleaseLock>();
/** The runs this tab waits for (one request each). */
const waiting = new Set<string>();
let channel: BroadcastChannel | null = null;

function announce(kind: OwnershipMessage['kind'], runId: string): void {
  channel?.postMessage({ kind, runId } satisfies OwnershipMessage);
}

export function ownsRun(runId: string): boolean {
  return owned.has(runId);
}

export function heldElsewhere(runId: string | null): boolean {
  return runId !== null && useOwnershipStore.getState().elsewhere.includes(runId);
}

/** Reads which runs other tabs hold (the browser's lock table, less this tab's own). */
export async function refreshHeld(): Promise<Set<string>> {
  const held = await heldRuns();
  const elsewhere = [...held].filter((id) => !owned.has(id)).sort();
  if (elsewhere.join() !== useOwnershipStore.getState().elsewhere.join()) useOwnershipStore.setState({ elsewhere });
  return new Set(elsewhere);
}

/** Takes run `runId` for this tab if no other tab holds it; false when one does. */
export async function claimRun(runId: string): Promise<boolean> {
  if (owned.has(runId)) return true;
  const release = await acquireRunLock(runId, { wait: false });
  if (!release) {
    await refreshHeld();
    return false;
  }
  owned.set(runId, release);
  announce('owned', runId);
  return true;
}

/** Gives run `runId` back (after its stop, end or failure is recorded); settles once the other tabs are told. */
export async function releaseRun(runId: string): Promise<void> {
  const release = owned.get(runId);
  if (!release) return;
  owned.delete(runId);
  await release();
  announce('released', runId);
}

/** Gives back every run this tab holds but `keep`. */
export function releaseOthers(keep: string): void {
  for (const id of [...owned.keys()]) if (id !== keep) void releaseRun(id);
}

/** Tells the other tabs that run `runId`'s record was written. */
export function announceRecord(runId: string): void {
  announce('record', runId);
}

/**
 * Waits for run `runId`'s lock (its owner stopping, or its tab closing). Once granted, `decide`
 * says whether this tab keeps it (true: it takes the run over) or gives it back at once.
 */
export function awaitRun(runId: string, decide: () => Promise<boolean>): void {
  if (waiting.has(runId) || owned.has(runId)) return;
  waiting.add(runId);
  void acquireRunLock(runId, { wait: true }).then(async (release) => {
    waiting.delete(runId);
    if (!release) return;
    owned.set(runId, release);
    let keep = false;
    try {
      keep = await decide();
    } catch (e) {
      console.warn(`[runs] taking over run ${runId} failed: ${errorMessage(e)}`);
    }
    if (keep) announce('owned', runId);
    else await releaseRun(runId);
    await refreshHeld();
  });
}

/** Listens to the other tabs; `onMessage` hears each message once the held runs are read again. */
export function connectOwnership(onMessage: (m: OwnershipMessage) => void): void {
  if (channel || typeof BroadcastChannel === 'undefined') return;
  channel = new BroadcastChannel(CHANNEL);
  channel.onmessage = (e: MessageEvent<OwnershipMessage>) => {
    const m = e.data;
    if (typeof m !== 'object' || m === null || typeof m.runId !== 'string') return;
    void refreshHeld().then(() => onMessage(m));
  };
}
