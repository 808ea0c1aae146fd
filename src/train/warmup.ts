/**
 * Pipeline warm-up: compile the kernels a training run will use before the user presses Train.
 * Every kernel variant is a pipeline the driver compiles on first use, and on a software adapter
 * that is most of the wait from Train to the first step (tools/bench/startup.ts: 31 pipelines,
 * 17-32 s of compiling on SwiftShader, against 2-3 s for the same start with them compiled).
 *
 * The warm-up builds, and never runs, a throwaway trainer on the run's own shapes (batch size,
 * padded length, adapter): building it creates every pipeline the real run's graph, optimizer and
 * evaluation will ask the cache for, and the cache keeps them. Nothing of the throwaway remains.
 * Its weights are a second copy of the backbone on the GPU for the moment it lives, so backbones
 * over WARMUP_MAX_WEIGHT_BYTES are not warmed (their compile time is small beside their step time).
 */
import type { EncodedSample } from '../data/template';
import type { GpuContext } from '../engine/gpu';
import { initAdapter } from '../loramoe/init';
import { type AdapterConfig, hasAdapter } from '../method/adapter';
import type { Backbone } from '../model/load';
import type { WeightPrecision } from '../model/tensor-plan';
import { GpuWeights } from '../model/weights';
import { Trainer, type TrainSettings } from './trainer';

/** Largest backbone (float32 bytes) warmed up: the warm-up holds a second copy while it builds. */
export const WARMUP_MAX_WEIGHT_BYTES = 256 * 2 ** 20;

export interface WarmupResult {
  /** Pipelines compiled by the warm-up (0 when every one was already there). */
  pipelines: number;
  ms: number;
}

/** null when the backbone is too large to warm (see WARMUP_MAX_WEIGHT_BYTES). */
export function warmTrainingPipelines(
  ctx: GpuContext,
  backbone: Backbone,
  cfg: AdapterConfig,
  settings: TrainSettings,
  samples: readonly EncodedSample[],
  typeNames: readonly string[],
  maxPositions: number,
  precision: WeightPrecision = 'f32',
): WarmupResult | null {
  let bytes = 0;
  for (const w of backbone.weights.values()) bytes += w.byteLength;
  if (bytes > WARMUP_MAX_WEIGHT_BYTES) return null;
  const before = ctx.pipelines.compiles.length;
  const t0 = performance.now();
  const weights = new GpuWeights(ctx, backbone.config, backbone.weights, cfg, hasAdapter(cfg) ? initAdapter(backbone.config, cfg, settings.seed) : null, maxPositions, precision);
  try {
    const trainer = new Trainer(ctx, weights, samples, (t) => typeNames.indexOf(t), typeNames, settings, backbone.tokenizer.padId);
    trainer.destroy();
  } finally {
    weights.destroy();
  }
  return { pipelines: ctx.pipelines.compiles.length - before, ms: performance.now() - t0 };
}
