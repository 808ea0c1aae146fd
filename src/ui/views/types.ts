/**
 * Data the view components receive. Views are pure: they get these values as props and never see
 * the model, the worker or the stores (the panels in src/ui/ wire stores to views).
 */
import type { Projection } from '../../loramoe/config';
import type { ProbeResult } from '../../train/probe';
import type { RoutingSummary } from '../../train/routing';
import type { StepMetrics } from '../../train/trainer';

export type { ProbeResult, Projection, RoutingSummary, StepMetrics };

/** One generated token in the chat, with its routing (absent when the adapter is off or unrouted). */
export interface ChatToken {
  id: number;
  text: string;
  /** Share of router weight per expert group (index = group), averaged over adapted projections. */
  groupShares?: number[];
  /** Router weights [N] per adapted projection, keyed `${layer}.${projection}`. */
  perLayer?: Record<string, number[]>;
}

export interface ExpertGroup {
  /** e.g. "world knowledge" */
  name: string;
  experts: number[];
  /** CSS colour used for this group in heatmaps, charts and the chat. */
  color: string;
}
