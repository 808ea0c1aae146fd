/**
 * Data the view components receive. Views are pure: they get these values as props and never see
 * the model, the worker or the stores (the panels in src/ui/ wire stores to views).
 */
import type { Projection } from '../../method/shapes';
import type { ChatToken } from '../../model/generate';
import type { ProbeResult } from '../../train/probe';
import type { RoutingSummary } from '../../train/routing';
import type { StepMetrics } from '../../train/trainer';

export type { ChatToken, ProbeResult, Projection, RoutingSummary, StepMetrics };

export interface ExpertGroup {
  /** e.g. "world knowledge" */
  name: string;
  experts: number[];
  /** CSS colour used for this group in heatmaps, charts and the chat. */
  color: string;
  /** The data types steered to this group, when known (their "own group"). */
  types?: string[];
}
