/**
 * A small LoRAMoE run on the tiny test backbone: the official adapter defaults at 4 experts of
 * rank 2, every training field written out (the page's own defaults are the settings store's):
 * what the worker tests start their sessions with.
 */
import { defaultAdapterConfig } from '../loramoe/config';
import type { RunSettings } from '../train/run-settings';

export function tinyRunSettings(over: Partial<RunSettings> = {}): RunSettings {
  const { dropout, targets, lbcDelta, lbcBeta, lbcDirection, lbcImportance } = defaultAdapterConfig('loramoe');
  return {
    ...{ mode: 'loramoe', experts: 4, rank: 2, alpha: 4, groups: '' },
    ...{ dropout, targets, lbcDelta, lbcBeta, lbcDirection, lbcImportance },
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
