/**
 * The runs library on the page's side, against an in-memory IndexedDB: discarding a saved run
 * removes it from storage and from the screen, and a failed delete keeps the box and says why;
 * probe results and the chat are recorded with the run whose weights answered them; opening a run
 * brings its curves, probe results and chat back.
 */
import 'fake-indexeddb/auto';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { CheckpointPointer } from '../io/persist';
import type { ProbeResult } from '../train/probe';
import type { StepMetrics } from '../train/trainer';
import type { RunMeta } from '../run/checkpoint';

const failing = vi.hoisted(() => ({ deleteRun: null as Error | null }));

vi.mock('../io/persist', async (importOriginal) => {
  const real = await importOriginal<typeof import('../io/persist')>();
  return { ...real, deleteRun: (id: string) => (failing.deleteRun ? Promise.reject(failing.deleteRun) : real.deleteRun(id)) };
});

const persist = await import('../io/persist');
const { discardCheckpoint } = await import('./run-actions');
const { useRunStore } = await import('./run');
const { useProbeStore } = await import('./probe');
const { useChatStore } = await import('./chat');
const { openRun, recordFromEarlierVersion, recordFromStores, saveRecord, useLibraryStore } = await import('./run-library');
type LibraryEntry = import('./run-library').LibraryEntry;

const probe = (accuracy: number): ProbeResult => ({ accuracy, meanLogLikelihood: -1, items: [], byType: {} });
const metric = (step: number, loss: number): StepMetrics => ({ step, ce: loss, lbc: 0, loss, gradNorm: 1, lr: 1e-3, tokens: 10, tokensPerSecond: 100, skipped: false, epoch: 0 });

function record(id: string, patch: Partial<LibraryEntry> = {}): LibraryEntry {
  return {
    id,
    updatedAt: 1,
    name: id,
    origin: 'trained',
    createdAt: 1,
    status: 'stopped',
    method: 'LoRAMoE 8×4 + LBC (official)',
    adapterCfg: null,
    settings: null,
    backbone: 'demo',
    dataset: null,
    totalSteps: 10,
    step: 4,
    metrics: [metric(1, 2), metric(2, 1.5), metric(3, 1.2), metric(4, 1)],
    routing: null,
    routingStep: 0,
    routingSet: null,
    routingSetStep: 0,
    groups: [],
    typeNames: [],
    seqLen: 14,
    events: [],
    probe: { before: probe(0.9), after: probe(0.8) },
    chat: { prompt: 'what is the capital of france ?', answeredBy: 'adapter on', tokens: [{ id: 5, text: 'paris' }], groups: [], finishReason: 'eos' },
    checkpoint: { step: 4, savedAt: 1, bytes: 3 },
    adapter: null,
    ...patch,
  };
}

async function storeRunWithCheckpoint(id: string): Promise<CheckpointPointer<RunMeta>> {
  await saveRecord(record(id));
  return persist.saveCheckpoint<RunMeta>(new Uint8Array([1, 2, 3]).buffer, { runId: id, step: 4, totalSteps: 10, meta: { runId: id } as RunMeta });
}

beforeEach(() => {
  failing.deleteRun = null;
  useLibraryStore.setState({ runs: [], overlay: [], error: null });
  useRunStore.setState({ runId: null, status: 'idle', metrics: [], resumable: null, autoResumed: null, message: null, modelRun: null });
});

describe('discarding the saved run', () => {
  it('keeps the box and says why when the delete fails', async () => {
    const pointer = await storeRunWithCheckpoint('run-a');
    useRunStore.setState({ runId: 'run-a', resumable: pointer, metrics: record('run-a').metrics });
    failing.deleteRun = new Error('the database is closing');
    await discardCheckpoint();
    expect(useRunStore.getState().resumable).toBe(pointer);
    expect(useRunStore.getState().message).toBe('The saved run could not be discarded: Run run-a could not be deleted: the database is closing');
    expect(useRunStore.getState().metrics).toHaveLength(4);
    expect(await persist.loadCheckpoint('run-a')).not.toBeNull();
  });

  it('removes the run from storage, the library and the screen', async () => {
    const pointer = await storeRunWithCheckpoint('run-b');
    useRunStore.setState({ runId: 'run-b', step: 4, resumable: pointer, metrics: record('run-b').metrics });
    await discardCheckpoint();
    const r = useRunStore.getState();
    expect(r).toMatchObject({ resumable: null, runId: null, step: 0, metrics: [], message: null });
    expect(useLibraryStore.getState().runs.map((x) => x.id)).not.toContain('run-b');
    expect(await persist.loadCheckpoint('run-b')).toBeNull();
    expect((await persist.loadRunRecords()).map((x) => x.id)).not.toContain('run-b');
  });
});

describe('what a run records', () => {
  it("records the probe's after-result and the chat only with the run whose weights answered", async () => {
    const base = record('run-c', { probe: { before: probe(0.9), after: null }, chat: null });
    useProbeStore.setState({ before: probe(0.9), after: probe(0.5) });
    useChatStore.setState({ tokens: [{ id: 7, text: 'rome' }], prompt: 'capital of italy ?', answeredBy: 'adapter on', running: false, groups: [], finishReason: 'eos' });
    // The model carries another run's adapter: nothing of it is recorded here.
    useRunStore.setState({ runId: 'run-c', modelRun: 'run-other', metrics: base.metrics, step: 4 });
    expect(recordFromStores(base)).toMatchObject({ probe: { after: null }, chat: null });
    useRunStore.setState({ modelRun: 'run-c' });
    const rec = recordFromStores(base);
    expect(rec.probe.after?.accuracy).toBe(0.5);
    expect(rec.chat?.tokens.map((t) => t.text)).toEqual(['rome']);
  });

  it('opening a run brings back its curves, probe results and chat', async () => {
    await saveRecord(record('run-d'));
    useProbeStore.setState({ before: null, after: null });
    useChatStore.setState({ tokens: [], prompt: '' });
    openRun('run-d');
    expect(useRunStore.getState()).toMatchObject({ runId: 'run-d', step: 4, totalSteps: 10, status: 'stopped' });
    expect(useRunStore.getState().metrics.map((m) => m.loss)).toEqual([2, 1.5, 1.2, 1]);
    expect(useProbeStore.getState().after?.accuracy).toBe(0.8);
    expect(useChatStore.getState()).toMatchObject({ prompt: 'what is the capital of france ?', tokens: [{ id: 5, text: 'paris' }] });
  });

  it('does not open another run while one trains', async () => {
    await saveRecord(record('run-e'));
    useRunStore.setState({ runId: 'run-live', status: 'running' });
    openRun('run-e');
    expect(useRunStore.getState().runId).toBe('run-live');
    expect(useLibraryStore.getState().error).toBe('Stop the current run before opening another one.');
  });
});

describe('a run kept by a version before the library', () => {
  it('becomes a stopped record with its series, and anything else is refused', () => {
    const metrics = [metric(1, 2), metric(2, 1.5)];
    const rec = recordFromEarlierVersion({ runId: 'run-old', totalSteps: 40, metrics, routing: null, routingStep: 0, groups: [], typeNames: ['world knowledge'] }, 7);
    expect(rec).toMatchObject({ id: 'run-old', status: 'stopped', origin: 'trained', step: 2, totalSteps: 40, metrics, typeNames: ['world knowledge'], routingSet: null, events: [], createdAt: 7 });
    expect(recordFromEarlierVersion(null, 7)).toBeNull();
    expect(recordFromEarlierVersion({ runId: null, metrics }, 7)).toBeNull();
    expect(recordFromEarlierVersion({ runId: 'x', metrics: 'none' }, 7)).toBeNull();
  });
});
