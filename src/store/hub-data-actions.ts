/**
 * The "From the Hub" actions: look a dataset up (its Parquet files and columns), read the rows asked
 * for with the mapping chosen (progress, cancel, the cache), and load the mix of every dataset read
 * so far as the training data (one JSON Lines file, checked by the worker's importer like any file).
 * The one writer of the Hub data store (./hub-data.ts), the section's fields included.
 */
import { type ColumnMapping, DEFAULT_DATASET_TYPE, detectMapping, mappingProblem, mixJsonl, rowRecord } from '../data/columns';
import { datasetRefText, deleteCachedDataset, inspectHubDataset, listCachedDatasets, parseDatasetRef, readHubDatasetRows } from '../io/hub-datasets';
import { downloadBlob } from '../io/download';
import { uploadDataset } from './data-actions';
import { useDatasetStore } from './dataset';
import { type HubMixPart, rowLimit, useHubDataStore } from './hub-data';
import { errorMessage } from '../util/errors';

let controller: AbortController | null = null;

const options = () => ({
  token: useHubDataStore.getState().token,
  onCacheError: (m: string) => useHubDataStore.setState((s) => ({ notes: [...s.notes, m] })),
});

/** Lists the dataset's Parquet files and reads the first one's columns; proposes a mapping. */
export async function inspectHubData(): Promise<void> {
  const { name } = useHubDataStore.getState();
  useHubDataStore.setState({ busy: 'inspecting', error: null, notes: [], info: null, mapping: null });
  controller = new AbortController();
  try {
    const info = await inspectHubDataset(parseDatasetRef(name), { ...options(), signal: controller.signal });
    const mapping: ColumnMapping = detectMapping(info.columns) ?? { layout: 'custom', instruction: '', output: '', type: { name: DEFAULT_DATASET_TYPE } };
    useHubDataStore.setState({ info, mapping });
  } catch (e) {
    useHubDataStore.setState({ error: controller.signal.aborted ? 'Cancelled.' : errorMessage(e) });
  } finally {
    controller = null;
    useHubDataStore.setState({ busy: null });
    await refreshHubDataCache();
  }
}

/** The dataset's name as typed: what was looked up for another name goes. */
export function setHubDataName(name: string): void {
  useHubDataStore.setState({ name, info: null, mapping: null, error: null });
}

/** The access token as typed (kept in this tab's memory only). */
export function setHubToken(token: string): void {
  useHubDataStore.setState({ token });
}

/** The row limit as typed (rowLimit reads it). */
export function setHubRows(rowsText: string): void {
  useHubDataStore.setState({ rowsText });
}

export function setHubMapping(mapping: ColumnMapping): void {
  useHubDataStore.setState({ mapping });
}

/** Reads the rows with the mapping and adds the dataset to the mix, which becomes the training data. */
export async function addHubData(): Promise<void> {
  const { info, mapping, rowsText } = useHubDataStore.getState();
  const rows = rowLimit(rowsText);
  if (!info || !mapping || rows === null) return;
  const problem = mappingProblem(mapping, info.columns);
  if (problem) {
    useHubDataStore.setState({ error: `${info.repo}: ${problem}` });
    return;
  }
  useHubDataStore.setState({ busy: 'reading', error: null, notes: [], progress: null });
  controller = new AbortController();
  try {
    const read = await readHubDatasetRows(info, mapping, rows, { ...options(), signal: controller.signal, onProgress: (progress) => useHubDataStore.setState({ progress }) });
    const part: HubMixPart = {
      label: datasetRefText(info),
      layout: mapping.layout,
      typeText: 'column' in mapping.type ? `types from column "${mapping.type.column}"` : `type "${mapping.type.name}"`,
      asked: rows,
      records: read.map((r) => rowRecord(r, mapping)),
    };
    const parts = [...currentParts(), part];
    // The mix is kept only once the importer took it (its refusal shows in the Data panel).
    if (await loadMix(parts)) useHubDataStore.setState({ parts });
  } catch (e) {
    // Nothing is lost: the mix and the training data stay as they were.
    useHubDataStore.setState({ error: controller.signal.aborted ? 'Cancelled: nothing was added; the training data is as it was.' : errorMessage(e) });
  } finally {
    controller = null;
    useHubDataStore.setState({ busy: null, progress: null });
    await refreshHubDataCache();
  }
}

/** The mix, while it is the training data (a file or the demo loaded since replaces it). */
export function currentParts(): HubMixPart[] {
  const { parts } = useHubDataStore.getState();
  return parts.length > 0 && useDatasetStore.getState().train?.name === mixName(parts) ? parts : [];
}

export function cancelHubData(): void {
  controller?.abort();
}

/** Takes a dataset out of the mix (the rest is loaded again; the last one out leaves the training data as it is). */
export async function removeHubPart(index: number): Promise<void> {
  const parts = currentParts().filter((_, i) => i !== index);
  useHubDataStore.setState({ parts });
  if (parts.length > 0) await loadMix(parts);
}

/** The file name of a mix: the dataset's name, or "hub-mix" with the count. */
export function mixName(parts: readonly HubMixPart[]): string {
  return parts.length === 1 ? `${parts[0].label.replace(/[/:@]/g, '_')}.jsonl` : `hub-mix-${parts.length}-datasets.jsonl`;
}

/** Loads the mix as the training data; false when the importer refused it. */
async function loadMix(parts: readonly HubMixPart[]): Promise<boolean> {
  const { text } = mixJsonl(parts.map((p) => ({ label: p.label, records: p.records })));
  await uploadDataset('train', mixName(parts), new TextEncoder().encode(text).buffer as ArrayBuffer);
  return useDatasetStore.getState().errors.train === undefined;
}

/** Saves the mix as the JSON Lines file it was loaded as (for the runner's --data, or to keep). */
export function downloadMix(): void {
  const parts = currentParts();
  if (parts.length === 0) return;
  const { text } = mixJsonl(parts.map((p) => ({ label: p.label, records: p.records })));
  downloadBlob(new Blob([text], { type: 'application/x-ndjson' }), mixName(parts));
}

/** The first and last line of each dataset in the mix's file (problems are reported by line). */
export function mixLines(parts: readonly HubMixPart[]): { first: number; last: number }[] {
  return mixJsonl(parts.map((p) => ({ label: p.label, records: p.records }))).lines;
}

export async function refreshHubDataCache(): Promise<void> {
  try {
    useHubDataStore.setState({ cached: await listCachedDatasets() });
  } catch (e) {
    useHubDataStore.setState({ notes: [`The datasets cached in this browser could not be listed: ${errorMessage(e)}`] });
  }
}

export async function deleteHubDataCache(repo: string): Promise<void> {
  try {
    await deleteCachedDataset(repo);
  } catch (e) {
    useHubDataStore.setState({ error: `${repo} could not be deleted from the cache: ${errorMessage(e)}` });
  }
  await refreshHubDataCache();
}
