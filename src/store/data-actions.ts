/**
 * Dataset actions: training data and probe questions from a file or the demo, parsed by the worker
 * and kept in the browser; the fingerprint of the training data a new run records; the
 * token-length and unknown-token summary. The one writer of the dataset store (./dataset.ts): what
 * the worker says of a dataset (parsed, summarised) arrives through ./worker-events.ts as calls to
 * the functions at the end of this file.
 */
import type { DatasetSummary } from '../data/summary';
import type { FileEntry } from '../io/browser-files';
import * as persist from '../io/persist';
import type { DatasetInfo, DatasetRole } from '../worker/protocol';
import { useDatasetStore } from './dataset';
import { useModelStore } from './model';
import { storageFailed } from './run';
import { type DataFingerprint, keepStorage, sha256Hex } from './run-library';
import { useSettingsStore } from './settings';
import { call, send, workerStarted } from './worker-link';
import { errorMessage } from '../util/errors';

/** The fingerprint of the training data loaded now (set when it is loaded or restored). */
let fingerprint: DataFingerprint | null = null;

/** The fingerprint of the training data loaded now (null before any). */
export function trainFingerprint(): DataFingerprint | null {
  return fingerprint;
}

/** Name, size, record count and SHA-256 of a training file. */
export async function fingerprintOf(name: string, bytes: ArrayBuffer): Promise<DataFingerprint> {
  return { name, bytes: bytes.byteLength, records: useDatasetStore.getState().train?.counts.good ?? 0, sha256: await sha256Hex(bytes) };
}

/** Sends a dataset to the worker; its error is shown in the data or probe panel, and thrown. */
export async function sendDataset(role: DatasetRole, name: string, bytes: ArrayBuffer): Promise<void> {
  useDatasetStore.setState((s) => ({ loading: { ...s.loading, [role]: name }, errors: { ...s.errors, [role]: undefined } }));
  try {
    // The worker gets its own copy (transferred); the page keeps the original for storage.
    const copy = bytes.slice(0);
    await call({ type: 'loadDataset', role, name, bytes: copy }, [copy]);
  } catch (e) {
    useDatasetStore.setState((s) => ({ errors: { ...s.errors, [role]: errorMessage(e) } }));
    throw e;
  } finally {
    useDatasetStore.setState((s) => ({ loading: { ...s.loading, [role]: undefined } }));
  }
}

/** A dataset the user gave (picked, dropped, or the demo's): parsed by the worker, then kept in the browser. */
export async function uploadDataset(role: DatasetRole, name: string, bytes: ArrayBuffer): Promise<void> {
  try {
    await sendDataset(role, name, bytes);
  } catch {
    return;
  }
  useDatasetStore.setState((s) => ({ restored: s.restored.filter((r) => r !== role) }));
  if (role === 'train') fingerprint = await fingerprintOf(name, bytes);
  if (!persist.persistenceAvailable()) return;
  try {
    await persist.saveDataset(role, name, bytes);
    void keepStorage();
  } catch (e) {
    // The dataset stays loaded for this visit; the user is told it will not survive a reload.
    storageFailed(`${errorMessage(e)} The dataset ${name} is loaded for this visit but will not be there after a reload.`);
  }
}

/** A dataset file the user picked or dropped: read, then as uploadDataset. A file that cannot be read is reported in its panel. */
export async function uploadDatasetFile(role: DatasetRole, entry: FileEntry): Promise<void> {
  const name = entry.path.split('/').pop() ?? entry.path;
  let bytes: ArrayBuffer;
  try {
    bytes = await entry.file.arrayBuffer();
  } catch (e) {
    useDatasetStore.setState((s) => ({ errors: { ...s.errors, [role]: `${name} could not be read: ${errorMessage(e)}` } }));
    return;
  }
  await uploadDataset(role, name, bytes);
}

async function fetchBytes(path: string): Promise<ArrayBuffer> {
  const res = await fetch(new URL(path, document.baseURI));
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.arrayBuffer();
}

/** The demo training file's name, as the data panel shows it once loaded. */
export const DEMO_TRAIN_NAME = 'demo-train.jsonl';

export async function loadDemoData(): Promise<void> {
  try {
    await uploadDataset('train', DEMO_TRAIN_NAME, await fetchBytes(`data/${DEMO_TRAIN_NAME}`));
  } catch (e) {
    useDatasetStore.setState((s) => ({ errors: { ...s.errors, train: errorMessage(e) } }));
  }
}

export async function loadDemoProbe(): Promise<void> {
  try {
    await uploadDataset('probe', 'demo-probe.jsonl', await fetchBytes('data/demo-probe.jsonl'));
  } catch (e) {
    useDatasetStore.setState((s) => ({ errors: { ...s.errors, probe: errorMessage(e) } }));
  }
}

let summaryTimer: ReturnType<typeof setTimeout> | null = null;

/** Asks for the token-length summary (after the backbone, the dataset or the maximum length changed). */
export function requestSummary(): void {
  if (summaryTimer) clearTimeout(summaryTimer);
  summaryTimer = setTimeout(() => {
    if (!workerStarted() || !useModelStore.getState().info || !useDatasetStore.getState().train) return;
    send({ type: 'summarizeDataset', maxLength: useSettingsStore.getState().values.maxLength });
  }, 200);
}

/** A dataset stored by an earlier visit was loaded again (sendDataset): it is the data loaded now, and marked restored. */
export async function datasetRestored(role: DatasetRole, name: string, bytes: ArrayBuffer): Promise<void> {
  if (role === 'train') fingerprint = await fingerprintOf(name, bytes);
  useDatasetStore.setState((s) => ({ restored: [...s.restored, role] }));
}

// ---- what the worker says of the datasets (called by ./worker-events.ts) ------------------------

/** The worker parsed a dataset: it is the one loaded in its role, without an error. */
export function datasetParsed(info: DatasetInfo): void {
  useDatasetStore.setState((s) => ({ [info.role]: info, errors: { ...s.errors, [info.role]: undefined } }));
}

export function summaryArrived(summary: DatasetSummary): void {
  useDatasetStore.setState({ summary });
}
