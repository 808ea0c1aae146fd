/**
 * What the loaded model does on request: the knowledge probe, chat, the adapter as a download, the
 * hand-off to the official trainer, and importing an adapter (which gets its own entry in the runs
 * library).
 */
import { zipSync } from 'fflate';
import { entriesFromZip, type FileEntry, isZip } from '../io/browser-files';
import * as persist from '../io/persist';
import { runSpecOf } from '../train/run-settings';
import { useChatStore } from './chat';
import { useProbeStore } from './probe';
import { useRunStore } from './run';
import { newRunRecord } from './run-actions';
import { clearRunViews, refreshUsage, type RunRecord, saveRecord } from './run-library';
import { setSettings, useSettingsStore } from './settings';
import { useViewStore } from './view';
import { call, type DistributiveOmit, errorText, type Requested, send } from './worker-link';

/** `expertMask`: experts of the adapter switched off for 'after' (knockout). */
export async function runProbe(which: 'before' | 'after', expertMask: number[] = []): Promise<void> {
  useProbeStore.setState({ running: which, error: null });
  try {
    await call({ type: 'runProbe', which, expertMask });
  } catch (e) {
    useProbeStore.setState({ error: errorText(e) });
  } finally {
    useProbeStore.setState({ running: null });
  }
}

/** `expertMask`: experts switched off in every adapted layer (knockout), with the adapter on. */
export async function generate(prompt: string, useAdapter: boolean, expertMask: number[] = []): Promise<void> {
  const s = useSettingsStore.getState().values;
  const full = useRunStore.getState().adapter.cfg?.mode === 'full';
  const answeredBy = full ? 'fully fine-tuned weights' : useAdapter ? 'adapter on' : 'frozen backbone';
  useChatStore.setState({ running: true, error: null, prompt, answeredBy, tokens: [], finishReason: null });
  try {
    await call({ type: 'generate', prompt, useAdapter, expertMask, sampling: { temperature: s.temperature, topK: s.topK, topP: s.topP, maxNewTokens: s.maxNewTokens, seed: s.seed } });
  } catch (e) {
    useChatStore.setState({ error: errorText(e) });
  } finally {
    useChatStore.setState({ running: false });
  }
}

export const stopGenerate = () => send({ type: 'stopGenerate' });

/** Runs a worker command that produces a download (the worker answers with an 'adapterZip'). */
async function exportZip(cmd: DistributiveOmit<Requested, 'reqId'>): Promise<void> {
  useRunStore.setState({ busy: 'exporting', message: null });
  try {
    await call(cmd);
  } catch (e) {
    useRunStore.setState({ message: errorText(e) });
  } finally {
    useRunStore.setState({ busy: null });
  }
}

export const exportAdapter = () => exportZip({ type: 'exportAdapter' });

/** The training data and the form's settings as a zip for the official LoRAMoE trainer. */
export const exportOfficialRun = () => exportZip({ type: 'exportOfficial', spec: runSpecOf(useSettingsStore.getState().values) });

/** An adapter zip or folder: loaded onto the backbone for inspection, chat or further training. */
export async function importAdapter(entries: FileEntry[], name: string): Promise<void> {
  useRunStore.setState({ busy: 'importing', message: null });
  try {
    if (!isZip(entries) && entries.length === 0) throw new Error('no files');
    if (isZip(entries)) entriesFromZip(new Uint8Array(await entries[0].file.arrayBuffer()), entries[0].path); // fails fast on a bad zip
    await call({ type: 'importAdapter', name, files: entries });
    const a = useRunStore.getState().adapter;
    if (a.cfg && a.cfg.mode !== 'full' && a.cfg.mode !== 'none') {
      // The form follows the imported adapter, so "continue training" starts from its shape.
      setSettings({
        mode: a.cfg.mode,
        experts: a.cfg.mode === 'loramoe' ? a.cfg.numExperts : useSettingsStore.getState().values.experts,
        rank: a.cfg.rank,
        alpha: a.cfg.alpha,
        dropout: a.cfg.dropout,
        targets: [...a.cfg.targets],
        lbcDelta: a.cfg.lbcDelta,
        lbcBeta: a.cfg.lbcBeta,
        lbcDirection: a.cfg.lbcDirection,
        lbcImportance: a.cfg.lbcImportance,
      });
      useViewStore.setState({ continueAdapter: true });
    }
    await recordImport(entries, name);
  } catch (e) {
    useRunStore.setState({ message: errorText(e) });
  } finally {
    useRunStore.setState({ busy: null });
  }
}

/**
 * An imported adapter gets its own entry in the runs library (its file kept, so it downloads again
 * after the browser is reopened) and the views switch to it; every other run stays as it was.
 */
async function recordImport(entries: FileEntry[], name: string): Promise<void> {
  const a = useRunStore.getState().adapter;
  const bytes = isZip(entries)
    ? await entries[0].file.arrayBuffer()
    : (zipSync(Object.fromEntries(await Promise.all(entries.map(async (e) => [e.path, new Uint8Array(await e.file.arrayBuffer())] as const))), { level: 6 }).buffer as ArrayBuffer);
  const id = `import-${Date.now().toString(36)}`;
  const rec: RunRecord = {
    ...newRunRecord(id, 0, a.cfg),
    name: `Imported: ${name}`,
    origin: 'imported',
    status: 'idle',
    groups: a.groups,
    typeNames: a.typeNames,
    probe: { before: useProbeStore.getState().before, after: null },
  };
  clearRunViews();
  useRunStore.setState({ runId: id, modelRun: id, groups: a.groups, typeNames: a.typeNames });
  useChatStore.setState({ tokens: [], finishReason: null, prompt: '' });
  if (persist.persistenceAvailable()) {
    try {
      const file = await persist.saveRunAdapter(id, isZip(entries) ? name : `${name}.zip`, bytes, 0);
      rec.adapter = { name: file.name, step: 0, bytes: file.bytes.byteLength };
    } catch (e) {
      useRunStore.setState({ storageError: `The imported adapter is loaded but could not be kept in the runs library: ${errorText(e)}` });
    }
  }
  await saveRecord(rec).catch(() => undefined /* shown in the runs panel */);
  await refreshUsage();
}

