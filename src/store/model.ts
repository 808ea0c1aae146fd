/**
 * The backbone: what the user picked, what its config says before loading, and what the worker
 * loaded. Written only by ./backbone-actions.ts.
 */
import { create } from 'zustand';
import type { CachedRepo, HubProgress } from '../io/hub';
import type { ModelConfig } from '../model/config';
import type { BackboneInfo, BackboneRef, MeasuredMemory } from '../worker/protocol';

export type SourceKind = 'demo' | 'hub' | 'local';

export interface BackbonePreview {
  ref: BackboneRef;
  config: ModelConfig | null;
  /** Why config.json could not be read or parsed. */
  error: string | null;
  /** Bytes of the weight files when known (local files, cache). */
  weightFileBytes: number | null;
  /** Files found (local folders). */
  files: string[];
}

/** A backbone's download from the Hub, or its load by the worker told in the download's fields. */
export interface LoadProgress extends HubProgress {
  phase: 'download' | 'load';
}

export interface ModelState {
  source: SourceKind;
  preview: BackbonePreview | null;
  status: 'idle' | 'inspecting' | 'downloading' | 'loading' | 'ready' | 'error';
  progress: LoadProgress | null;
  info: BackboneInfo | null;
  /** Bytes on the GPU as the worker measured them (weights; graph and optimizer once a run starts). */
  memory: MeasuredMemory | null;
  error: string | null;
  hubCache: CachedRepo[];
  /** Why the cache could not be listed or a cached model deleted (null when it could). */
  cacheError: string | null;
  /** Cache problems worth telling (a file downloaded but not cached). */
  cacheNotes: string[];
}

/** The model store. Written only by ./backbone-actions.ts. */
export const useModelStore = create<ModelState>(() => ({
  source: 'demo',
  preview: null,
  status: 'idle',
  progress: null,
  info: null,
  memory: null,
  error: null,
  hubCache: [],
  cacheError: null,
  cacheNotes: [],
}));
