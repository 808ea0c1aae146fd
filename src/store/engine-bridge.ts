/**
 * The page's side of the engine worker (the engine bridge, on the store floor): starts it, hands
 * each of its events to ./worker-events.ts (the one place where worker events become store
 * updates), follows the other tabs' runs and exposes the test hooks. Components call the actions
 * (backbone, data, run, model: ./backbone-actions.ts, ./data-actions.ts, ./run-actions.ts,
 * ./model-actions.ts), which talk to the worker through ./worker-link.ts; none of them waits on the
 * GPU: a command's promise settles when the worker answers. What survives a visit is
 * ./run-persistence.ts's. This module writes no store itself.
 */
import * as persist from '../io/persist';
import type { DebugAction, WorkerEvent } from '../worker/protocol';
import { resumeInterrupted, watchRunsElsewhere } from './run-actions';
import { followRecord, type LibraryEntry } from './run-library';
import { connectOwnership, type OwnershipMessage, ownsRun } from './run-ownership';
import { restoreOnce } from './run-persistence';
import { useSettingsStore } from './settings';
import { applyWorkerEvent } from './worker-events';
import { connectWorker, send, workerStarted } from './worker-link';
import { errorMessage } from '../util/errors';

export function startEngineWorker(): void {
  if (workerStarted()) return;
  if (!('gpu' in navigator) || !navigator.gpu) {
    applyWorkerEvent({ type: 'unavailable', reason: 'this browser has no navigator.gpu' });
    return;
  }
  const worker = new Worker(new URL('../worker/engine.worker.ts', import.meta.url), { type: 'module', name: 'engine' });
  connectWorker(worker);
  worker.onmessage = (e: MessageEvent<WorkerEvent>) => applyWorkerEvent(e.data);
  worker.onerror = (e) => applyWorkerEvent({ type: 'error', message: `engine worker failed: ${e.message}` });
  const testHooks = new URLSearchParams(location.search).has('test-hooks');
  if (testHooks) exposeTestHooks();
  // ?matmul=NAME forces one matmul kernel everywhere (tests, comparisons); the worker checks the name.
  send({ type: 'init', testHooks, matmul: new URLSearchParams(location.search).get('matmul') ?? undefined, weights: useSettingsStore.getState().values.weights });
  // The weight setting applies in the worker as soon as it changes (the worker stores the weights again when no run holds them).
  useSettingsStore.subscribe((s, prev) => {
    if (s.values.weights !== prev.values.weights) send({ type: 'setWeights', setting: s.values.weights });
  });
  connectOwnership(onOtherTab);
  void restoreOnce().then((p) => {
    watchRunsElsewhere();
    return p ? resumeInterrupted(p) : undefined;
  });
}

/** Another tab took, gave back or recorded a run: this tab's copy follows, and it waits on runs held elsewhere. */
function onOtherTab(m: OwnershipMessage): void {
  if (m.kind === 'owned') {
    watchRunsElsewhere();
    return;
  }
  if (ownsRun(m.runId) || !persist.persistenceAvailable()) return;
  persist.loadRunRecord<LibraryEntry>(m.runId).then(
    (rec) => rec && followRecord(rec),
    (e: unknown) => console.warn(`[runs] the record of run ${m.runId} could not be read: ${errorMessage(e)}`),
  );
}

/** What `?test-hooks` exposes to the reliability e2e tests (fault injection; nothing runs unless called). */
export interface TestHooks {
  loseDevice(): void;
  injectFault(target: 'gradient' | 'parameter'): void;
  failCheckpointWrite(fail: 'stall' | 'quota'): void;
}

declare global {
  interface Window {
    __loramoeTest?: TestHooks;
  }
}

function exposeTestHooks(): void {
  const debug = (action: DebugAction) => send({ type: 'debug', action });
  window.__loramoeTest = {
    loseDevice: () => debug({ kind: 'loseDevice' }),
    injectFault: (target) => debug({ kind: 'injectFault', target }),
    failCheckpointWrite: (fail) => debug({ kind: 'checkpointWrite', fail }),
  };
}

