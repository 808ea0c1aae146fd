/**
 * View state: choices that change what is shown, not what is computed. Written only by ./view.ts
 * (this file): the panels and actions change it through setView.
 */
import { create } from 'zustand';
import type { Projection } from '../method/shapes';

export interface ViewState {
  projection: Projection;
  useAdapterInChat: boolean;
  continueAdapter: boolean;
  chatPrompt: string;
  /** What the routing panel shows: the run's routing set (held out, dropout off) or the last training window. */
  routingView: 'routingSet' | 'window';
  /** Experts switched off (knockout) for the probe of the trained model, and for the chat: the group switches' state. */
  probeExpertsOff: number[];
  chatExpertsOff: number[];
  /** What importing an adapter changed in the training settings, said once beside the adapter (null: nothing to say). */
  importNote: string | null;
}

/** The view store. Written only by ./view.ts (setView). */
export const useViewStore = create<ViewState>(() => ({
  projection: 'gate_proj',
  useAdapterInChat: true,
  continueAdapter: false,
  chatPrompt: 'what is the capital of france ?',
  routingView: 'routingSet',
  probeExpertsOff: [],
  chatExpertsOff: [],
  importNote: null,
}));

export function setView(partial: Partial<ViewState>): void {
  useViewStore.setState(partial);
}
