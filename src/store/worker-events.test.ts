/**
 * The worker's events as the stores show them (worker-events.ts, the one place they are mapped):
 * a new run starts empty and owns the model, steps and routing arrive, a step never goes back, a
 * resumed run keeps what the page showed up to its checkpoint, the chat streams, a new backbone
 * leaves no run's scores or answer on screen, and the GPU's status and errors are shown. The line to
 * the worker, the record's timer and the run's lock are stand-ins here (no worker, no tabs).
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { defaultAdapterConfig } from '../loramoe/config';
import { parseModelConfig } from '../model/config';
import type { ProbeResult } from '../train/probe';
import type { RoutingSummary } from '../train/routing';
import type { StepMetrics } from '../train/trainer';
import type { MeasuredMemory, RunEvent, WorkerEvent } from '../worker/protocol';

vi.mock('./worker-link', () => ({
  send: vi.fn(),
  call: vi.fn(() => Promise.resolve()),
  markReady: vi.fn(),
  settleReply: vi.fn(),
  workerStarted: () => false,
  whenReady: () => Promise.resolve(),
}));
vi.mock('./run-persistence', async (importOriginal) => ({ ...(await importOriginal<typeof import('./run-persistence')>()), saveRunSoon: vi.fn(), saveRunNow: vi.fn(() => Promise.resolve()) }));
vi.mock('./run-ownership', async (importOriginal) => ({
  ...(await importOriginal<typeof import('./run-ownership')>()),
  claimRun: vi.fn(() => Promise.resolve(true)),
  releaseRun: vi.fn(() => Promise.resolve()),
  releaseOthers: vi.fn(),
  announceRecord: vi.fn(),
}));

const { applyWorkerEvent } = await import('./worker-events');
const { useRunStore } = await import('./run');
const { useProbeStore } = await import('./probe');
const { useChatStore } = await import('./chat');
const { useGpuStore } = await import('./gpu');
const { useModelStore } = await import('./model');
const { findRun } = await import('./run-library');

const memory: MeasuredMemory = { weights: 100, graph: 20, optimizer: 10, precision: 'f32' };
const metric = (step: number, loss: number): StepMetrics => ({ step, ce: loss, lbc: 0, loss, gradNorm: 1, lr: 1e-3, tokens: 10, tokensPerSecond: 100, skipped: false, epoch: 0 });
const probe = (accuracy: number): ProbeResult => ({ accuracy, meanLogLikelihood: -1, items: [], byType: {} });
const routing = (source: RoutingSummary['source']): RoutingSummary => ({
  types: ['world knowledge'],
  layers: 1,
  projections: ['gate_proj'],
  experts: 2,
  tokens: [4],
  mean: [[[[0.75, 0.25]]]],
  groupMean: [[0.75]],
  ownGroup: [],
  constraint: { direction: 'official', importance: 'mean', delta: 0.1, beta: 0.1 },
  source,
});
const event = (step: number, message: string): RunEvent => ({ kind: 'rollback', severity: 'warning', step, message, at: 1 });
const started = (runId: string, resumed: boolean, startStep = 0): WorkerEvent => ({
  type: 'runStarted',
  run: { runId, totalSteps: 10, startStep, typeNames: ['world knowledge'], groups: [{ name: 'A', experts: [0], types: ['world knowledge'] }], adapter: defaultAdapterConfig(), seqLen: 12, memory, resumed },
});
const tick = () => new Promise((r) => setTimeout(r, 0));

beforeEach(() => {
  useRunStore.setState({ runId: null, status: 'idle', step: 0, metrics: [], events: [], evalCurve: [], routing: null, routingSet: null, checkpoint: null, message: null, modelRun: null, busy: null, startup: null });
  useProbeStore.setState({ before: null, after: null, running: null, error: null });
  useChatStore.setState({ tokens: [], running: false, finishReason: null, error: null });
});

describe('worker events in the stores', () => {
  it('a new run starts empty, owns the model and its record, and takes its steps, routing, checkpoint and events', async () => {
    useRunStore.setState({ runId: 'old', metrics: [metric(1, 3)], events: [event(1, 'old news')], message: 'an old failure' });
    useProbeStore.setState({ before: probe(0.9), after: probe(0.4) });
    applyWorkerEvent(started('run-1', false));
    expect(useRunStore.getState()).toMatchObject({ runId: 'run-1', modelRun: 'run-1', status: 'running', step: 0, totalSteps: 10, seqLen: 12, metrics: [], events: [], message: null });
    // The frozen backbone's score stays; the run has none of its own yet.
    expect(useProbeStore.getState()).toMatchObject({ before: probe(0.9), after: null });
    expect(useModelStore.getState().memory).toEqual(memory);
    await tick();
    expect(findRun('run-1')).toMatchObject({ id: 'run-1', status: 'running', totalSteps: 10, origin: 'trained' });

    applyWorkerEvent({ type: 'metrics', points: [metric(1, 2), metric(2, 1.5)] });
    applyWorkerEvent({ type: 'routing', step: 2, summary: routing({ kind: 'routingSet', step: 2, types: [] }) });
    applyWorkerEvent({ type: 'routing', step: 2, summary: routing({ kind: 'window', fromStep: 1, toStep: 2 }) });
    applyWorkerEvent({ type: 'checkpoint', runId: 'run-1', step: 2, savedAt: 5, bytes: 64 });
    applyWorkerEvent({ type: 'checkpoint', runId: 'another', step: 9, savedAt: 6, bytes: 1 });
    applyWorkerEvent({ type: 'runEvent', event: event(2, 'rolled back to step 2') });
    const r = useRunStore.getState();
    expect(r.metrics.map((m) => m.step)).toEqual([1, 2]);
    expect(r.step).toBe(2);
    expect([r.routingSetStep, r.routingSet?.source?.kind, r.routingStep, r.routing?.source?.kind]).toEqual([2, 'routingSet', 2, 'window']);
    expect(r.checkpoint).toEqual({ step: 2, savedAt: 5, bytes: 64 });
    expect(r.events.map((e) => e.message)).toEqual(['rolled back to step 2']);
  });

  it("a status never takes the step back, and a failure without words says 'failed'", () => {
    applyWorkerEvent(started('run-2', false));
    applyWorkerEvent({ type: 'metrics', points: [metric(1, 2), metric(2, 1.5), metric(3, 1.2)] });
    applyWorkerEvent({ type: 'runStatus', status: 'paused', step: 1 });
    expect(useRunStore.getState()).toMatchObject({ status: 'paused', step: 3, message: null });
    applyWorkerEvent({ type: 'runStatus', status: 'error', step: 3 });
    expect(useRunStore.getState()).toMatchObject({ status: 'error', message: 'failed' });
  });

  it('a resumed run keeps the steps and events the page showed up to its checkpoint', () => {
    applyWorkerEvent(started('run-3', false));
    applyWorkerEvent({ type: 'metrics', points: [metric(1, 2), metric(2, 1.5), metric(3, 1.2), metric(4, 1)] });
    applyWorkerEvent({ type: 'runEvent', event: event(3, 'the device was lost') });
    applyWorkerEvent(started('run-3', true, 2));
    const r = useRunStore.getState();
    expect(r.metrics.map((m) => m.step)).toEqual([1, 2]);
    expect(r).toMatchObject({ step: 2, startStep: 2, status: 'running' });
    expect(r.events.map((e) => e.message)).toEqual(['the device was lost']);
  });

  it('streams a chat answer, and a new backbone leaves no run, score or answer of the old one', () => {
    applyWorkerEvent({ type: 'chatStart', reqId: 1, promptTokens: 7, groups: [], expertMask: [1] });
    applyWorkerEvent({ type: 'chatTokens', reqId: 1, tokens: [{ id: 4, text: 'pa' }] });
    applyWorkerEvent({ type: 'chatTokens', reqId: 1, tokens: [{ id: 5, text: 'ris' }] });
    applyWorkerEvent({ type: 'chatDone', reqId: 1, finishReason: 'eos', tokensPerSecond: 12 });
    expect(useChatStore.getState()).toMatchObject({ tokens: [{ id: 4, text: 'pa' }, { id: 5, text: 'ris' }], promptTokens: 7, expertMask: [1], running: false, finishReason: 'eos', tokensPerSecond: 12 });

    useRunStore.setState({ modelRun: 'run-1' });
    useProbeStore.setState({ before: probe(0.9), after: probe(0.8) });
    const config = parseModelConfig({ model_type: 'llama', hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, vocab_size: 32 }, 'tiny/config.json');
    const info = { ref: { kind: 'demo' as const }, name: 'tiny', config, parameters: 1000, vocabulary: 32, warnings: [], maxPositions: 64 };
    applyWorkerEvent({ type: 'backboneLoaded', info, memory });
    expect(useModelStore.getState()).toMatchObject({ status: 'ready', info, memory, error: null, progress: null });
    expect(useRunStore.getState().modelRun).toBeNull();
    expect(useProbeStore.getState()).toMatchObject({ before: null, after: null });
    expect(useChatStore.getState()).toMatchObject({ tokens: [], finishReason: null });
  });

  it('shows the GPU unavailable with its reason, and collects worker errors', () => {
    applyWorkerEvent({ type: 'unavailable', reason: 'this browser has no navigator.gpu' });
    applyWorkerEvent({ type: 'error', message: 'engine worker failed: out of memory' });
    expect(useGpuStore.getState()).toMatchObject({ status: 'unavailable', unavailableReason: 'this browser has no navigator.gpu', errors: ['engine worker failed: out of memory'] });
  });
});
