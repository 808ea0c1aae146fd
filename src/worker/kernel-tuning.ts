/**
 * The worker's side of the matmul autotuner (src/engine/autotune.ts): on each backbone load, the
 * device's kernel choices come from the tuning stored for this adapter in IndexedDB (the `kv`
 * store, one entry per adapter identity), and the classes the backbone brings that it lacks are
 * timed within the budget and stored. A kernel forced by the page (`?matmul=NAME`) skips all of it.
 */
import { autotuneReport, modelMatmulShapes, type KernelReport, type MatmulTuning, type TuningStore } from '../engine/autotune';
import type { GpuContext } from '../engine/gpu';
import { isMatmulForce } from '../engine/kernel-choices';
import { loadValue, persistenceAvailable, saveValue } from '../io/persist';
import type { LlamaShape } from '../method/shapes';

const KEY_PREFIX = 'kernel-tuning:';

/** Tunings in IndexedDB's key-value store, under "kernel-tuning:" + the adapter's key. */
export function indexedDbTuningStore(): TuningStore | null {
  if (!persistenceAvailable()) return null;
  return {
    load: (key) => loadValue<MatmulTuning>(KEY_PREFIX + key),
    save: (key, t) => saveValue(KEY_PREFIX + key, t, 'kernel tuning'),
  };
}

/** Applies a forced kernel named by the page (null or '' for none); an unknown name is refused. */
export function forceMatmul(ctx: GpuContext, name: string | null | undefined): void {
  if (!name) return;
  if (!isMatmulForce(name)) throw new Error(`unknown matmul kernel "${name}"`);
  ctx.kernels = { matmul: ctx.kernels?.matmul ?? {}, force: name };
}

/**
 * Tokens per step the tuner times the model at: the training shapes' rows (batch x sequence) are
 * not known at load, 256 is the size class of a typical step (the decode step's single row is timed
 * as its own class).
 */
const TUNE_ROWS = 256;

/** The tuning for a freshly loaded backbone (LoRAMoE 8 x 4 on gate/up/down stands for the adapters' thin products). */
export function tuneForBackbone(ctx: GpuContext, config: LlamaShape, store: TuningStore | null = indexedDbTuningStore()): Promise<KernelReport> {
  const shapes = modelMatmulShapes(config, TUNE_ROWS, { experts: 8, rank: 4, targets: ['gate_proj', 'up_proj', 'down_proj'] });
  return autotuneReport(ctx, shapes, store);
}
