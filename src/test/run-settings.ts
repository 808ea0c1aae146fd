/**
 * A small LoRAMoE run on the tiny test backbone, every field written out (the page's own defaults
 * are the settings store's): what the worker tests start their sessions with.
 */
import type { RunSettings } from '../train/run-settings';

export function tinyRunSettings(over: Partial<RunSettings> = {}): RunSettings {
  return {
    mode: 'loramoe',
    experts: 4,
    rank: 2,
    alpha: 4,
    dropout: 0.05,
    targets: ['gate_proj', 'up_proj', 'down_proj'],
    lbcDelta: 0.1,
    lbcBeta: 0.1,
    lbcDirection: 'official',
    lbcImportance: 'mean',
    groups: '',
    lr: 1e-2,
    schedule: 'constant',
    warmup: 0,
    weightDecay: 0,
    batch: 4,
    accum: 1,
    maxLength: 16,
    steps: 100,
    clip: 1,
    seed: 1,
    checkpointEvery: 10,
    faultLimit: 3,
    routingEvery: 1,
    ...over,
  };
}
