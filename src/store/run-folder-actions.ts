/**
 * A run moves between this page and the terminal as a run folder (src/run/run-folder.ts): Export
 * gives a run of the library as a zip of its folder (checkpoint, series, the training data and its
 * SHA-256), which the runner continues (`train --resume ZIP`); Import takes a folder the runner
 * wrote (or such a zip) into the library, where Continue goes on with it. The folder's data must
 * be, byte for byte, the data it was trained on: a folder that carries it is checked and loaded; a
 * runner's folder names it by path and hash, and the training data loaded here is checked instead.
 */
import { entriesFromZip, type FileEntry, isZip } from '../io/browser-files';
import { downloadBlob } from '../io/download';
import * as persist from '../io/persist';
import { backboneName } from '../run/events';
import { displayGroups } from '../run/groups';
import { checkDataHash, exportStoredRun, type ReadFolder, readRunFolder, storeImportedRun, stripTopFolder } from '../run/run-folder';
import { errorMessage } from '../util/errors';
import { uploadDataset } from './data-actions';
import { useDatasetStore } from './dataset';
import { holdsModel, runBusy, runIdle, useRunStore } from './run';
import { newRunRecord } from './run-actions';
import { heldElsewhere } from './run-ownership';
import { type DataFingerprint, findRun, type LibraryEntry, saveRecord, sha256Hex, showLibraryError, updateRecord } from './run-library';

/** Downloads run `id` as a run folder's zip (the runner continues it: `train --resume ZIP`). */
export async function exportRunFolder(id: string): Promise<void> {
  try {
    const zip = await exportStoredRun(id);
    downloadBlob(new Blob([zip.bytes], { type: 'application/zip' }), zip.name);
    showLibraryError(null);
  } catch (e) {
    showLibraryError(`The run folder could not be exported: ${errorMessage(e)}`);
  }
}

/** The entries of a picked or dropped folder, or of a zip, by their paths inside the run folder. */
async function folderFiles(entries: FileEntry[]): Promise<Map<string, Uint8Array<ArrayBuffer>>> {
  const list = isZip(entries) ? entriesFromZip(new Uint8Array(await entries[0].file.arrayBuffer()), entries[0].path) : entries;
  return stripTopFolder(new Map(await Promise.all(list.map(async (e) => [e.path, new Uint8Array(await e.file.arrayBuffer())] as const))));
}

/**
 * Makes the run's training data the data loaded here, under the name the run recorded (the worker
 * continues a run only on the dataset it names), after checking its SHA-256.
 */
async function loadRunData(read: ReadFolder, folder: string): Promise<DataFingerprint> {
  const { setup, meta } = read;
  let bytes: Uint8Array<ArrayBuffer>;
  if (read.data) {
    bytes = read.data.bytes;
    await checkDataHash(`${folder}/${setup.data}`, bytes, setup.dataSha256);
  } else {
    const kept = persist.persistenceAvailable() ? await persist.loadDataset('train') : null;
    const hash = setup.dataSha256 ? `SHA-256 ${setup.dataSha256}` : `${meta.dataset.bytes} bytes`;
    if (!kept) throw new Error(`${folder}: its data (${setup.data}) is not in the folder: load that file (${meta.dataset.name}, ${hash}) in the Data panel, then import the folder again`);
    bytes = new Uint8Array(kept.bytes);
    if (setup.dataSha256) await checkDataHash(`the training data loaded here (${kept.name})`, bytes, setup.dataSha256);
    else if (kept.bytes.byteLength !== meta.dataset.bytes || kept.name !== meta.dataset.name) {
      throw new Error(`${folder}: the run was trained on ${meta.dataset.name} (${meta.dataset.bytes} bytes), the training data loaded here is ${kept.name} (${kept.bytes.byteLength} bytes)`);
    }
    if (kept.name === meta.dataset.name && useDatasetStore.getState().train?.name === meta.dataset.name) return fingerprint(meta.dataset.name, bytes);
  }
  await uploadDataset('train', meta.dataset.name, bytes.slice().buffer);
  const loaded = useDatasetStore.getState();
  if (loaded.train?.name !== meta.dataset.name) throw new Error(`${folder}: its data ${meta.dataset.name} could not be loaded: ${loaded.errors.train ?? 'see the Data panel'}`);
  return fingerprint(meta.dataset.name, bytes);
}

async function fingerprint(name: string, bytes: Uint8Array<ArrayBuffer>): Promise<DataFingerprint> {
  return { name, bytes: bytes.byteLength, records: useDatasetStore.getState().train?.counts.good ?? 0, sha256: await sha256Hex(bytes) };
}

/**
 * A run folder (picked files, a dropped folder, or a zip) into the library: its data checked and
 * loaded, its checkpoint kept under the run's id, its record listed, paused at its step, for
 * Continue. `name` is what was picked or dropped (errors name it).
 */
export async function importRunFolder(entries: FileEntry[], name: string): Promise<void> {
  if (holdsModel(useRunStore.getState().status)) {
    showLibraryError('Stop the current run before importing a run folder.');
    return;
  }
  runBusy('importing');
  try {
    if (!persist.persistenceAvailable()) throw new Error('this browser offers no storage (IndexedDB) to keep the run in');
    // Errors name the folder, the zip, or (files picked one by one) the files.
    const folder = isZip(entries) ? name.replace(/\.zip$/i, '') : entries.some((e) => e.path.includes('/')) ? name : 'the picked files';
    const read = readRunFolder(await folderFiles(entries), folder);
    const { meta } = read;
    if (heldElsewhere(meta.runId)) throw new Error(`${meta.runId} is training in another tab of this browser: stop it there first`);
    const dataset = await loadRunData(read, folder);
    await storeImportedRun(read);
    const pointer = await persist.loadCheckpointPointer(meta.runId);
    const checkpoint = pointer ? { step: pointer.step, savedAt: pointer.savedAt, bytes: pointer.bytes } : null;
    const moved = (r: LibraryEntry, leg: number): LibraryEntry => ({
      ...r,
      updatedAt: Date.now(),
      status: 'paused',
      leg,
      step: read.step,
      metrics: read.metrics,
      checkpoint,
      dataset,
    });
    if (findRun(meta.runId)) {
      // A new start of the run: its step may be behind what this browser recorded before it moved.
      await updateRecord(meta.runId, (r) => moved(r, (r.leg ?? 0) + 1));
    } else {
      const base = newRunRecord(meta.runId, meta.totalSteps, meta.adapter);
      await saveRecord(
        moved({
          ...base,
          name: `${meta.runId} (moved here)`,
          settings: null,
          backbone: backboneName(meta.backbone),
          groups: displayGroups(meta.adapter, meta.typeNames),
          typeNames: [...meta.typeNames],
          seqLen: meta.train.maxLength,
          probe: { before: null, after: null },
        }, 0),
      );
    }
    showLibraryError(null);
  } catch (e) {
    showLibraryError(`The run folder could not be imported: ${errorMessage(e)}`);
  } finally {
    runIdle();
  }
}
