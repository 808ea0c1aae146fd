/**
 * What the loaded model does on request: the knowledge probe, chat, the adapter as a download, the
 * hand-off to the official trainer, and importing an adapter (which gets its own entry in the runs
 * library).
 */
import { zipSync } from 'fflate';
import { entriesFromZip, type FileEntry, isZip } from '../io/browser-files';
import * as persist from '../io/persist';
import { runSpecOf } from '../train/run-settings';
import { chatAsked, chatCleared, chatEnded, chatFailed } from './chat';
import { probeEnded, probeFailed, probeStarted, useProbeStore } from './probe';
import { useDatasetStore } from './dataset';
import { useModelStore } from './model';
import { holdsModel, importedRunShown, runBusy, runIdle, runModelLoaded, showRunMessage, storageFailed, useRunStore } from './run';
import { newRunRecord } from './run-actions';
import { clearRunViews, findRun, openRun, refreshUsage, type LibraryEntry, saveRecord, showLibraryError } from './run-library';
import { setSettings, useSettingsStore } from './settings';
import { formatSetting, SETTINGS, type SettingKey, type Settings } from './settings-table';
import { setView } from './view';
import { call, type DistributiveOmit, type Requested, send } from './worker-link';
import { errorMessage } from '../util/errors';

/** `expertMask`: experts of the adapter switched off for 'after' (knockout). */
export async function runProbe(which: 'before' | 'after', expertMask: number[] = []): Promise<void> {
  probeStarted(which);
  try {
    await call({ type: 'runProbe', which, expertMask });
  } catch (e) {
    probeFailed(errorMessage(e));
  } finally {
    probeEnded();
  }
}

/** `expertMask`: experts switched off in every adapted layer (knockout), with the adapter on. */
export async function generate(prompt: string, useAdapter: boolean, expertMask: number[] = []): Promise<void> {
  const s = useSettingsStore.getState().values;
  const full = useRunStore.getState().adapter.cfg?.mode === 'full';
  const answeredBy = full ? 'fully fine-tuned weights' : useAdapter ? 'adapter on' : 'frozen backbone';
  chatAsked(prompt, answeredBy);
  try {
    await call({ type: 'generate', prompt, useAdapter, expertMask, sampling: { temperature: s.temperature, topK: s.topK, topP: s.topP, maxNewTokens: s.maxNewTokens, seed: s.seed } });
  } catch (e) {
    chatFailed(errorMessage(e));
  } finally {
    chatEnded();
  }
}

export const stopGenerate = () => send({ type: 'stopGenerate' });

/** Runs a worker command that produces a download (the worker answers with an 'adapterZip'). */
async function exportZip(cmd: DistributiveOmit<Requested, 'reqId'>): Promise<void> {
  runBusy('exporting');
  try {
    await call(cmd);
  } catch (e) {
    showRunMessage(errorMessage(e));
  } finally {
    runIdle();
  }
}

export const exportAdapter = () => exportZip({ type: 'exportAdapter' });

/** The training data and the form's settings as a zip for the official LoRAMoE trainer. */
export const exportOfficialRun = () => exportZip({ type: 'exportOfficial', spec: runSpecOf(useSettingsStore.getState().values) });

/** An adapter zip or folder: loaded onto the backbone for inspection, chat or further training. */
export async function importAdapter(entries: FileEntry[], name: string): Promise<void> {
  runBusy('importing');
  try {
    if (!isZip(entries) && entries.length === 0) throw new Error('no files');
    if (isZip(entries)) entriesFromZip(new Uint8Array(await entries[0].file.arrayBuffer()), entries[0].path); // fails fast on a bad zip
    await call({ type: 'importAdapter', name, files: entries });
    const a = useRunStore.getState().adapter;
    setView({ importNote: null });
    if (a.cfg && a.cfg.mode !== 'full' && a.cfg.mode !== 'none') {
      // The form follows the imported adapter, so "continue training" starts from its shape; the user is told what changed.
      const before = useSettingsStore.getState().values;
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
      setView({ continueAdapter: true, importNote: settingsChangeNote(before, useSettingsStore.getState().values) });
    }
    await recordImport(entries, importName(entries, name, a.baseModel ?? ''));
  } catch (e) {
    showRunMessage(errorMessage(e));
  } finally {
    runIdle();
  }
}

/** The training settings an import sets, in the Training panel's order. */
const IMPORTED_KEYS: SettingKey[] = ['mode', 'experts', 'rank', 'alpha', 'dropout', 'targets', 'lbcDelta', 'lbcBeta', 'lbcDirection', 'lbcImportance'];

/**
 * What an import changed in the training settings, as one sentence ("The Training settings now
 * follow the imported adapter: Rank (r) 4 → 8, Alpha 32 → 16."), or a sentence saying they already
 * matched.
 */
export function settingsChangeNote(before: Settings, after: Settings): string {
  const changed = IMPORTED_KEYS.filter((k) => formatSetting(k, before[k] as never) !== formatSetting(k, after[k] as never)).map(
    (k) => `${SETTINGS[k].label} ${formatSetting(k, before[k] as never)} → ${formatSetting(k, after[k] as never)}`,
  );
  return changed.length === 0
    ? 'The Training settings already matched the imported adapter; "Start from the current adapter" is ticked.'
    : `The Training settings now follow the imported adapter, so that training continues it: ${changed.join(', ')}. "Start from the current adapter" is ticked.`;
}

/**
 * An imported adapter's name in the library: its folder's or zip's name (a lone adapter_config.json
 * or weights file says nothing) and the base model it was trained on, "my-adapter (SmolLM2-135M)".
 */
export function importName(entries: readonly FileEntry[], name: string, baseModel: string): string {
  const generic = /^adapter_(config\.json|model\.(safetensors|bin))$/;
  const folder = entries.map((e) => e.path.split('/')).find((parts) => parts.length > 1)?.[0];
  const own = !generic.test(name) ? name.replace(/\.zip$/i, '') : folder ?? 'adapter';
  return baseModel ? `${own} (${baseModel})` : own;
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
  const rec: LibraryEntry = {
    ...newRunRecord(id, 0, a.cfg),
    name,
    origin: 'imported',
    status: 'idle',
    groups: a.groups,
    typeNames: a.typeNames,
    probe: { before: useProbeStore.getState().before, after: null },
  };
  clearRunViews();
  importedRunShown(id, a.groups, a.typeNames);
  chatCleared('clear');
  if (persist.persistenceAvailable()) {
    try {
      const file = await persist.saveRunAdapter(id, isZip(entries) ? entries[0].path.split('/').pop()! : `${name.replace(/[^\w.-]+/g, '-')}.zip`, bytes, 0);
      rec.adapter = { name: file.name, step: 0, bytes: file.bytes.byteLength };
    } catch (e) {
      storageFailed(`The imported adapter is loaded but could not be kept in the runs library: ${errorMessage(e)}`);
    }
  }
  await saveRecord(rec).catch(() => undefined /* shown in the runs panel */);
  await refreshUsage();
}


/**
 * Opens a run of the library with its model: its curves, routing, probe results and chat replace
 * the views (run-library.ts openRun), and the adapter it keeps is loaded onto the backbone, so the
 * probe and chat answer with the run on screen. Where that cannot be (no adapter kept yet, full
 * fine-tuning, another backbone), the runs panel says so and the probe panel names the model it scores.
 */
export async function openRunWithModel(id: string): Promise<void> {
  const rec = findRun(id);
  if (!rec) return;
  if (!openRun(id)) return;
  const info = useModelStore.getState().info;
  const cannot = !rec.adapter
    ? 'it keeps no adapter yet (a run keeps its adapter once it stops or finishes)'
    : rec.adapterCfg?.mode === 'full'
      ? 'it trained every weight (full fine-tuning): continue it from its checkpoint to load them'
      : !info
        ? 'no backbone is loaded'
        : rec.backbone !== '' && rec.backbone !== info.name
          ? `it was trained on ${rec.backbone}, and ${info.name} is loaded`
          : null;
  if (cannot) {
    showLibraryError(`${rec.name} is on screen, but its model is not loaded: ${cannot}. The probe and chat answer with ${describeModel()}.`);
    return;
  }
  // The run's message went when it was put on screen (showRecord).
  runBusy('importing');
  try {
    const file = await persist.loadRunAdapter(id);
    if (!file) throw new Error('its adapter is no longer in this browser');
    await call({ type: 'importAdapter', name: file.name, files: [{ path: file.name, file: new Blob([file.bytes], { type: 'application/zip' }) }] });
    // The model now carries this run's adapter: probe results and chat are recorded with it.
    runModelLoaded(id, rec.origin, rec.name);
    setView({ importNote: null });
  } catch (e) {
    showLibraryError(`${rec.name} is on screen, but its adapter could not be loaded: ${errorMessage(e)}. The probe and chat answer with ${describeModel()}.`);
  } finally {
    runIdle();
  }
}

/** The model the probe and chat answer with, in words. */
function describeModel(): string {
  const r = useRunStore.getState();
  if (r.adapter.origin === 'none') return 'the frozen backbone';
  return `the adapter of ${findRun(r.modelRun)?.name ?? r.adapter.label}`;
}

/**
 * When a run ends (finished or stopped), the knowledge probe scores the model it leaves, and the
 * frozen backbone first where it was never scored, so "before → after" needs no click. Not for the
 * comparison's runs (they score their own held-out points) or when no probe questions are loaded.
 */
export async function probeWhenRunEnds(runId: string): Promise<void> {
  if (!useDatasetStore.getState().probe || useProbeStore.getState().running !== null) return;
  if (findRun(runId)?.comparison) return;
  if (!useProbeStore.getState().before) await runProbe('before');
  const r = useRunStore.getState();
  if (r.runId !== runId || r.modelRun !== runId || holdsModel(r.status)) return;
  await runProbe('after');
}
