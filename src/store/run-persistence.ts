/**
 * What the page keeps between visits: the settings (when the link carries none), the record of the
 * run on screen in the runs library (./run-library.ts), written as its events arrive (never the
 * record of a run another tab holds: ./run-ownership.ts), and at startup the library, the latest
 * checkpoint's pointer and the datasets brought back.
 */
import * as persist from '../io/persist';
import type { CheckpointPointer } from '../io/persist';
import type { RunMeta } from '../run/checkpoint';
import { datasetRestored, requestSummary, sendDataset } from './data-actions';
import { isTraining, offerResume, showCheckpoint, storageFailed, useRunStore } from './run';
import { findRun, recordFromEarlierVersion, recordFromStores, refreshLibrary, saveRecord, showRecord, updateRecord, useLibraryStore } from './run-library';
import { announceRecord, claimRun, heldElsewhere, refreshHeld } from './run-ownership';
import { setSettings, useSettingsStore } from './settings';
import { sanitizeSettings } from './settings-table';
import { whenReady } from './worker-link';
import { errorMessage } from '../util/errors';

/** Where versions before the runs library kept the one run they knew. */
const EARLIER_RUN_KEY = 'run';

/** Settles when what an earlier visit stored is back (datasets sent to the worker). */
let restored: Promise<void> = Promise.resolve();

export function whenRestored(): Promise<void> {
  return restored;
}

/** Restores what an earlier visit stored (once, at startup); see restoreFromStorage. */
export function restoreOnce(): Promise<CheckpointPointer<RunMeta> | null> {
  const interrupted = restoreFromStorage();
  restored = interrupted.then(() => undefined);
  return interrupted;
}

let saveTimer: ReturnType<typeof setTimeout> | null = null;

/** Records the run on screen in the library, after `delay` ms (events come in bursts). */
export function saveRunSoon(delay = 1000): void {
  if (saveTimer) clearTimeout(saveTimer);
  saveTimer = setTimeout(() => {
    saveTimer = null;
    void saveRunNow();
  }, delay);
}

/**
 * Records the run on screen now (a pending saveRunSoon is folded in), unless another tab holds it:
 * that tab writes its record. Tells the other tabs once written; a failure is the run's storage error.
 */
export async function saveRunNow(): Promise<void> {
  if (saveTimer) {
    clearTimeout(saveTimer);
    saveTimer = null;
  }
  const id = useRunStore.getState().runId;
  if (!id || heldElsewhere(id)) return;
  try {
    // The stores may have moved on to the next run (the comparison starts one as the last ends) by the time the write runs.
    const rec = await updateRecord(id, (latest) => (useRunStore.getState().runId === id ? recordFromStores(latest) : latest));
    if (rec) announceRecord(id);
  } catch (e) {
    storageFailed(`The run could not be recorded: ${errorMessage(e)}`);
  }
}

let settingsTimer: ReturnType<typeof setTimeout> | null = null;

/** The checkpoint pointer's run (pointers of older versions carry it only in their metadata). */
export const pointerRun = (p: CheckpointPointer<RunMeta>): string => p.runId ?? p.meta.runId;

/**
 * Restores what an earlier visit stored: settings (when the URL has none), the runs library (the
 * run trained last comes back on screen), the latest checkpoint's pointer and the datasets. Returns
 * the pointer of a run the reload interrupted (its record says it was training), which then resumes
 * by itself.
 */
export async function restoreFromStorage(): Promise<CheckpointPointer<RunMeta> | null> {
  if (!persist.persistenceAvailable()) {
    await refreshLibrary();
    return null;
  }
  let interrupted: CheckpointPointer<RunMeta> | null = null;
  try {
    const fromUrl = useSettingsStore.getState().fromUrl;
    const saved = await persist.loadValue<unknown>('settings');
    if (saved && !fromUrl) setSettings(sanitizeSettings(saved));
    useSettingsStore.subscribe((s, prev) => {
      if (s.values === prev.values) return;
      if (settingsTimer) clearTimeout(settingsTimer);
      settingsTimer = setTimeout(() => persist.saveValue('settings', s.values, 'settings').catch((e: unknown) => storageFailed(errorMessage(e))), 500);
      if (s.values.maxLength !== prev.values.maxLength) requestSummary();
    });
    await refreshLibrary();
    // A run kept by a version before the library joins it (once).
    const earlier = recordFromEarlierVersion(await persist.loadValue<unknown>(EARLIER_RUN_KEY), Date.now());
    if (earlier && !findRun(earlier.id)) await saveRecord(earlier);
    if (earlier) await persist.deleteValue(EARLIER_RUN_KEY);
    // Checkpoints of runs another tab holds are that tab's, written or not yet named.
    const held = await refreshHeld();
    const removed = await persist.removeOrphanCheckpoints(held);
    if (removed > 0) console.info(`[storage] removed ${removed} checkpoint(s) no pointer names`);
    const pointer = await persist.loadCheckpointPointer<RunMeta>();
    const last = pointer ? findRun(pointerRun(pointer)) : null;
    const shown = last ?? useLibraryStore.getState().runs.find((r) => r.origin === 'trained') ?? null;
    if (shown) showRecord(shown);
    if (pointer && pointer.step < pointer.totalSteps) {
      const runId = pointerRun(pointer);
      showCheckpoint({ step: pointer.step, savedAt: pointer.savedAt, bytes: pointer.bytes });
      // A run another tab holds is shown read-only; one whose tab went while training resumes here
      // (the lock makes this tab the only one that does).
      // The resume box stays offered should the resume fail.
      if (!held.has(runId)) {
        if (last && isTraining(last.status) && (await claimRun(runId))) interrupted = pointer;
        if (!heldElsewhere(runId)) offerResume(pointer);
      }
    }
    await whenReady();
    for (const role of ['train', 'probe'] as const) {
      const d = await persist.loadDataset(role);
      if (!d) continue;
      try {
        await sendDataset(role, d.name, d.bytes);
      } catch (e) {
        // Shown in the data panel (sendDataset set the error); the dataset is not marked restored.
        console.warn(`[storage] the stored ${role} dataset ${d.name} could not be loaded: ${errorMessage(e)}`);
        continue;
      }
      await datasetRestored(role, d.name, d.bytes);
    }
  } catch (e) {
    storageFailed(`Stored data could not be read: ${errorMessage(e)}`);
  }
  return interrupted;
}

