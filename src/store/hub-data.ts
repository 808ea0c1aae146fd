/**
 * The Data panel's "From the Hub" section: the dataset being looked at (its files and columns), the
 * mapping being edited, the download in progress, the datasets mixed so far, the cached datasets,
 * and the access token. Nothing here is persisted: the token lives in this tab's memory only (never
 * in the URL, the settings, a run's record or an export); the mix itself is kept as the training
 * data (data-actions `uploadDataset`). Written only by ./hub-data-actions.ts.
 */
import { create } from 'zustand';
import type { ColumnMapping } from '../data/columns';
import type { CachedDataset, HubDataProgress, HubDatasetInfo } from '../io/hub-datasets';

/** One dataset of the mix: what was read and how. */
export interface HubMixPart {
  /** owner/name:config@split */
  label: string;
  layout: ColumnMapping['layout'];
  /** "types from column category" or "type world knowledge". */
  typeText: string;
  /** Rows asked for and rows read. */
  asked: number;
  records: Record<string, unknown>[];
}

export interface HubDataState {
  /** owner/name[:config][@split] as typed. */
  name: string;
  token: string;
  /** The row limit as typed (rowLimit reads it). */
  rowsText: string;
  busy: 'inspecting' | 'reading' | null;
  info: HubDatasetInfo | null;
  mapping: ColumnMapping | null;
  progress: HubDataProgress | null;
  error: string | null;
  notes: string[];
  parts: HubMixPart[];
  cached: CachedDataset[];
}

export const DEFAULT_HUB_DATA_ROWS = 1000;

/** The row limit typed, or null when it is not a whole number of at least 1. */
export function rowLimit(text: string): number | null {
  const n = Number(text.trim());
  return text.trim() !== '' && Number.isSafeInteger(n) && n >= 1 ? n : null;
}

/** The Hub data store. Written only by ./hub-data-actions.ts. */
export const useHubDataStore = create<HubDataState>(() => ({
  name: '',
  token: '',
  rowsText: String(DEFAULT_HUB_DATA_ROWS),
  busy: null,
  info: null,
  mapping: null,
  progress: null,
  error: null,
  notes: [],
  parts: [],
  cached: [],
}));
