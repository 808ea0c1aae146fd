/**
 * Datasets as the worker parsed them (training data and probe questions), and the token-length
 * summary. Written only by ./data-actions.ts.
 */
import { create } from 'zustand';
import type { DatasetSummary } from '../data/summary';
import type { DatasetInfo, DatasetRole } from '../worker/protocol';

export interface DatasetState {
  train: DatasetInfo | null;
  probe: DatasetInfo | null;
  summary: DatasetSummary | null;
  loading: Partial<Record<DatasetRole, string>>;
  errors: Partial<Record<DatasetRole, string>>;
  /** Datasets restored from browser storage at startup. */
  restored: DatasetRole[];
}

/** The dataset store. Written only by ./data-actions.ts. */
export const useDatasetStore = create<DatasetState>(() => ({ train: null, probe: null, summary: null, loading: {}, errors: {}, restored: [] }));
