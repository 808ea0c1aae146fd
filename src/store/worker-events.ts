/**
 * The one place where the engine worker's events become store updates. Each event is handed to the
 * writer of the stores it changes (the gpu store is written here; the run, probe and chat stores by
 * their own modules' functions; the model and dataset stores by ./backbone-actions.ts and
 * ./data-actions.ts), and starts what follows from it: the run's record in the library, the
 * run's ownership, the probe when a run ends, a warm-up after a new backbone or dataset. The
 * engine bridge (./engine-bridge.ts) feeds it every message of the worker, and the page's own
 * reports about the worker (no WebGPU, the worker failed) in the same shape.
 */
import { downloadBlob } from '../io/download';
import type { WorkerEvent } from '../worker/protocol';
import { backboneLoaded, backboneLoadProgressed, gpuMemoryMeasured } from './backbone-actions';
import { chatAnswerDone, chatAnswerStarted, chatCleared, chatTokensArrived } from './chat';
import { datasetParsed, requestSummary, summaryArrived } from './data-actions';
import { useGpuStore } from './gpu';
import { probeWhenRunEnds } from './model-actions';
import { probeBackboneChanged, probeRunStarted, probeScored } from './probe';
import {
  adapterChanged,
  backboneReplaced,
  checkpointStored,
  evalPointArrived,
  isTraining,
  metricsArrived,
  routingMeasured,
  runEventHappened,
  runStarted,
  runStatusChanged,
  type StartedRun,
  startupProgressed,
  storageFailed,
  useRunStore,
} from './run';
import { forgetSeenStep, newRunRecord, rememberSeenStep, warmUp } from './run-actions';
import { findRun, keepStorage, recordFromStores, refreshUsage, saveRecord, showProbeAndChat, updateRecord } from './run-library';
import { announceRecord, claimRun, releaseOthers, releaseRun } from './run-ownership';
import { saveRunNow, saveRunSoon } from './run-persistence';
import { setView } from './view';
import { markReady, send, settleReply } from './worker-link';

/** Applies one event of the engine worker to the stores (and starts what follows from it). */
export function applyWorkerEvent(ev: WorkerEvent): void {
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
      backboneLoadProgressed(ev.file, ev.loadedBytes, ev.files);
      return;
    case 'backboneLoaded':
      backboneLoaded(ev.info, ev.memory);
      backboneReplaced();
      probeBackboneChanged();
      chatCleared('keep');
      requestSummary();
      warmUp();
      return;
    case 'dataset':
      datasetParsed(ev.info);
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
      summaryArrived(ev.summary);
      return;
    case 'runStarted':
      onRunStarted(ev.run);
      return;
    case 'startup':
      startupProgressed(ev.progress);
      return;
    case 'runStatus': {
      const was = useRunStore.getState();
      runStatusChanged(ev.status, ev.step, ev.message);
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
      metricsArrived(ev.points);
      rememberSeenStep(useRunStore.getState().runId, useRunStore.getState().step);
      saveRunSoon();
      return;
    case 'routing':
      routingMeasured(ev.step, ev.summary);
      saveRunSoon();
      return;
    case 'checkpoint':
      checkpointStored(ev.runId, { step: ev.step, savedAt: ev.savedAt, bytes: ev.bytes });
      saveRunSoon(0);
      return;
    case 'adapterKept':
      void updateRecord(ev.runId, (latest) => ({ ...latest, adapter: { name: ev.name, step: ev.step, bytes: ev.bytes } })).then(
        () => {
          announceRecord(ev.runId);
          return refreshUsage();
        },
        () => undefined /* shown in the runs panel */,
      );
      return;
    case 'storageError':
      storageFailed(ev.message);
      return;
    case 'evalPoint':
      evalPointArrived(ev.runId, ev.point);
      saveRunSoon(0);
      return;
    case 'runEvent':
      runEventHappened(ev.event);
      if (ev.event.severity !== 'info') console.warn(`[run] ${ev.event.message}`);
      saveRunSoon(0);
      return;
    case 'adapter':
      adapterChanged(ev.state);
      gpuMemoryMeasured(ev.memory);
      return;
    case 'probe':
      probeScored(ev.which, ev.result);
      saveRunSoon(0);
      return;
    case 'chatStart':
      chatAnswerStarted(ev);
      return;
    case 'chatTokens':
      chatTokensArrived(ev.tokens);
      return;
    case 'chatDone':
      chatAnswerDone(ev.finishReason, ev.tokensPerSecond);
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

/**
 * A run started: the run views show it, and the library records it. A new run gets its own record
 * and this tab as its one owner; a resumed one gets its probe results and chat back and a new start
 * (leg) in its record.
 */
function onRunStarted(r: StartedRun): void {
  runStarted(r);
  gpuMemoryMeasured(r.memory);
  // What an earlier import changed in the settings is old news once a new run starts.
  if (!r.resumed) setView({ importNote: null });
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
    probeRunStarted();
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
}
