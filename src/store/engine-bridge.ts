/**
 * The page's side of the engine worker (the engine bridge, on the store floor): starts it and writes
 * its events to the stores (the only writer of the gpu, run, probe and chat stores, and of the
 * worker-derived parts of the model and dataset stores). Components call the actions (backbone,
 * data, run, model: ./backbone-actions.ts, ./data-actions.ts, ./run-actions.ts, ./model-actions.ts),
 * which talk to the worker through ./worker-link.ts; none of them waits on the GPU: a command's
 * promise settles when the worker answers. What survives a visit is ./run-persistence.ts's.
 */
import { downloadBlob } from '../io/download';
import * as persist from '../io/persist';
import type { DebugAction, WorkerEvent } from '../worker/protocol';
import { useChatStore } from './chat';
import { requestSummary } from './data-actions';
import { useDatasetStore } from './dataset';
import { useGpuStore } from './gpu';
import { useModelStore } from './model';
import { useProbeStore } from './probe';
import { probeWhenRunEnds } from './model-actions';
import { isTraining, MAX_RUN_EVENTS, useRunStore } from './run';
import { forgetSeenStep, newRunRecord, rememberSeenStep, resumeInterrupted, warmUp, watchRunsElsewhere } from './run-actions';
import { findRun, followRecord, keepStorage, type RunRecord, recordFromStores, refreshUsage, saveRecord, showProbeAndChat, updateRecord } from './run-library';
import { announceRecord, claimRun, connectOwnership, type OwnershipMessage, ownsRun, releaseOthers, releaseRun } from './run-ownership';
import { restoreOnce, saveRunNow, saveRunSoon } from './run-persistence';
import { useSettingsStore } from './settings';
import { useViewStore } from './view';
import { connectWorker, markReady, send, settleReply, workerStarted } from './worker-link';
import { errorMessage } from '../util/errors';

// ---- events -------------------------------------------------------------------------------------


function onEvent(ev: WorkerEvent): void {
  switch (ev.type) {
    case 'ready':
      useGpuStore.setState({ status: 'ready', adapter: ev.adapter });
      send({ type: 'kernelCheck' });
      markReady();
      return;
    case 'unavailable':
      useGpuStore.setState({ status: 'unavailable', unavailableReason: ev.reason });
      return;
    case 'kernelCheck':
      useGpuStore.setState({ kernelCheck: ev.result });
      return;
    case 'error':
      useGpuStore.setState((s) => ({ errors: [...s.errors, ev.message] }));
      return;
    case 'reply':
      settleReply(ev.reqId, ev.ok, ev.error);
      return;
    case 'backboneProgress':
      useModelStore.setState((s) => ({
        progress: {
          phase: 'load',
          file: ev.file,
          fileLoaded: ev.loadedBytes,
          fileTotal: ev.loadedBytes,
          filesDone: ev.files,
          filesTotal: Math.max(ev.files, s.progress?.phase === 'load' ? s.progress.filesTotal : 4),
          loaded: (s.progress?.phase === 'load' ? s.progress.loaded : 0) + ev.loadedBytes,
          fromCache: false,
        },
      }));
      return;
    case 'backboneLoaded':
      useModelStore.setState({ status: 'ready', info: ev.info, memory: ev.memory, progress: null, error: null });
      useRunStore.setState({ modelRun: null });
      useProbeStore.setState({ before: null, after: null, error: null });
      useChatStore.setState({ tokens: [], finishReason: null });
      requestSummary();
      warmUp();
      return;
    case 'dataset':
      useDatasetStore.setState((s) => ({ [ev.info.role]: ev.info, errors: { ...s.errors, [ev.info.role]: undefined } }));
      if (ev.info.role === 'train') {
        requestSummary();
        warmUp();
      }
      return;
    case 'kernelChoices':
      useGpuStore.setState({ kernels: ev.report });
      return;
    case 'pipelinesReady':
      useGpuStore.setState({ warmup: { pipelines: ev.pipelines, ms: ev.ms } });
      return;
    case 'datasetSummary':
      useDatasetStore.setState({ summary: ev.summary });
      return;
    case 'runStarted': {
      const r = ev.run;
      const prev = useRunStore.getState();
      // A resumed run brings the series saved with its checkpoint (the page's own copy may lag behind it).
      const keep = r.resumed ? (r.metrics ?? (prev.runId === r.runId ? prev.metrics.filter((m) => m.step <= r.startStep) : [])) : [];
      useRunStore.setState({
        runId: r.runId,
        status: 'running',
        step: r.startStep,
        startStep: r.startStep,
        totalSteps: r.totalSteps,
        metrics: keep,
        routing: r.resumed ? (r.routing ?? prev.routing) : null,
        routingStep: r.resumed ? prev.routingStep : 0,
        routingSet: r.resumed ? (r.routingSet ?? prev.routingSet) : null,
        evalCurve: r.resumed && prev.runId === r.runId ? prev.evalCurve.filter((p) => p.step <= r.startStep) : [],
        routingSetStep: r.resumed ? (r.routingSet?.source?.kind === 'routingSet' ? r.routingSet.source.step : prev.routingSetStep) : 0,
        groups: r.groups,
        typeNames: r.typeNames,
        seqLen: r.seqLen,
        memory: r.memory,
        message: null,
        storageError: r.resumed ? prev.storageError : null,
        // A resumed run (a reload, a rollback, a new device) keeps what happened to it so far.
        events: r.resumed ? prev.events : [],
        resumable: null,
        busy: null,
        startedAt: performance.now(),
        checkpoint: r.resumed ? prev.checkpoint : null,
        modelRun: r.runId,
      });
      useModelStore.setState({ memory: r.memory });
      if (!r.resumed) {
        useRunStore.setState({ autoResumed: null });
        // What an earlier import changed in the settings is old news once a run starts.
        useViewStore.setState({ importNote: null });
      }
      const rec = findRun(r.runId);
      if (r.resumed && rec) {
        showProbeAndChat(rec);
        // A new start of the run: its step may go back to the checkpoint's (recordMayFollow).
        void updateRecord(r.runId, (latest) => ({ ...recordFromStores(latest), leg: (latest.leg ?? 0) + 1 })).then(
          () => announceRecord(r.runId),
          () => undefined /* shown in the runs panel */,
        );
      } else {
        // A new run starts with no probe result of its own (the frozen backbone's stays), its own
        // record, and this tab as its one owner.
        useProbeStore.setState({ after: null });
        releaseOthers(r.runId);
        void claimRun(r.runId);
        void saveRecord(newRunRecord(r.runId, r.totalSteps, r.adapter)).then(
          () => {
            announceRecord(r.runId);
            void keepStorage();
          },
          () => undefined /* shown in the runs panel */,
        );
      }
      saveRunSoon();
      return;
    }
    case 'startup':
      // The warm-up's compiles count only while a start waits for them; the first step's phase comes after runStarted.
      useRunStore.setState((s) => (s.busy === 'starting' || s.busy === 'restoring' || ev.progress.phase === 'firstStep' ? { startup: ev.progress } : {}));
      return;
    case 'runStatus': {
      const was = useRunStore.getState();
      useRunStore.setState((s) => ({
        status: ev.status,
        step: Math.max(s.step, ev.step),
        message: ev.message ?? (ev.status === 'error' ? 'failed' : null),
        startup: ev.status === 'running' || ev.status === 'starting' ? s.startup : null,
      }));
      // Where a run rests is recorded at once: whether a reload resumes it depends on it. A run
      // that stopped, finished or failed is given back once that is recorded.
      if (ev.status === 'stopped' || ev.status === 'done' || ev.status === 'error') {
        const runId = useRunStore.getState().runId;
        void saveRunNow().finally(() => runId && releaseRun(runId));
      } else saveRunSoon(ev.status === 'running' ? 1000 : 0);
      // A run that ends leaves a model to probe: the panel's "after" is scored without a click.
      if (was.runId && isTraining(was.status) && (ev.status === 'done' || ev.status === 'stopped')) {
        forgetSeenStep(was.runId);
        void probeWhenRunEnds(was.runId);
      }
      return;
    }
    case 'metrics':
      useRunStore.setState((s) => ({ metrics: [...s.metrics, ...ev.points], step: ev.points[ev.points.length - 1]?.step ?? s.step, startup: null }));
      rememberSeenStep(useRunStore.getState().runId, useRunStore.getState().step);
      saveRunSoon();
      return;
    case 'routing':
      if (ev.summary.source?.kind === 'routingSet') useRunStore.setState({ routingSet: ev.summary, routingSetStep: ev.step });
      else useRunStore.setState({ routing: ev.summary, routingStep: ev.step });
      saveRunSoon();
      return;
    case 'checkpoint':
      if (ev.runId === useRunStore.getState().runId) useRunStore.setState({ checkpoint: { step: ev.step, savedAt: ev.savedAt, bytes: ev.bytes } });
      saveRunSoon(0);
      return;
    case 'adapterKept': {
      void updateRecord(ev.runId, (latest) => ({ ...latest, adapter: { name: ev.name, step: ev.step, bytes: ev.bytes } })).then(
        () => {
          announceRecord(ev.runId);
          return refreshUsage();
        },
        () => undefined /* shown in the runs panel */,
      );
      return;
    }
    case 'storageError':
      useRunStore.setState({ storageError: ev.message });
      return;
    case 'evalPoint':
      if (ev.runId === useRunStore.getState().runId) useRunStore.setState((s) => ({ evalCurve: [...s.evalCurve.filter((p) => p.step < ev.point.step), ev.point] }));
      saveRunSoon(0);
      return;
    case 'runEvent':
      useRunStore.setState((s) => ({ events: [...s.events, ev.event].slice(-MAX_RUN_EVENTS) }));
      if (ev.event.severity !== 'info') console.warn(`[run] ${ev.event.message}`);
      saveRunSoon(0);
      return;
    case 'adapter':
      useRunStore.setState({ adapter: ev.state });
      useModelStore.setState({ memory: ev.memory });
      return;
    case 'probe':
      useProbeStore.setState({ [ev.which]: ev.result, error: null });
      saveRunSoon(0);
      return;
    case 'chatStart':
      useChatStore.setState({ tokens: [], groups: ev.groups, expertMask: ev.expertMask, promptTokens: ev.promptTokens, running: true, finishReason: null, error: null });
      return;
    case 'chatTokens':
      useChatStore.setState((s) => ({ tokens: [...s.tokens, ...ev.tokens] }));
      return;
    case 'chatDone':
      useChatStore.setState({ running: false, finishReason: ev.finishReason, tokensPerSecond: ev.tokensPerSecond });
      saveRunSoon(0);
      return;
    case 'adapterZip':
      downloadBlob(new Blob([ev.bytes], { type: 'application/zip' }), ev.name);
      return;
    default: {
      const never: never = ev;
      console.warn('unknown worker event', never);
    }
  }
}

export function startEngineWorker(): void {
  if (workerStarted()) return;
  if (!('gpu' in navigator) || !navigator.gpu) {
    useGpuStore.setState({ status: 'unavailable', unavailableReason: 'this browser has no navigator.gpu' });
    return;
  }
  const worker = new Worker(new URL('../worker/engine.worker.ts', import.meta.url), { type: 'module', name: 'engine' });
  connectWorker(worker);
  worker.onmessage = (e: MessageEvent<WorkerEvent>) => onEvent(e.data);
  worker.onerror = (e) => useGpuStore.setState((s) => ({ errors: [...s.errors, `engine worker failed: ${e.message}`] }));
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
  persist.loadRunRecord<RunRecord>(m.runId).then(
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

