/**
 * The runner's matmul kernel choices (src/engine/autotune.ts): tunings kept in one JSON file, an
 * object from adapter key to tuning, next to the other caches of the user
 * (`$LORAMOE_KERNEL_CACHE`, else `~/.cache/loramoe-playground/kernel-tuning.json`).
 *
 *   --matmul cached   (default) the file's tuning of this adapter where there is one, else the fixed kernel
 *   --matmul tune     time the candidates (about 2 s per call, going on from the file's tuning) and save
 *   --matmul NAME     force one kernel on every matmul (fixed, tiled-64x64, ..., vec4, ragged, scalar)
 *
 * The runner does not tune unasked: a command that tuned on every first use would take seconds
 * longer on a software adapter, where the fixed kernel wins anyway.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { adapterKey, autotuneReport, choicesOf, modelMatmulShapes, TUNING_VERSION, type KernelReport, type MatmulTuning, type TuningStore } from '../engine/autotune';
import type { GpuContext } from '../engine/gpu';
import { describeKernelChoices, isMatmulForce, MATMUL_FORCES } from '../engine/kernel-choices';
import type { LlamaShape } from '../method/shapes';

export function kernelCachePath(): string {
  return process.env.LORAMOE_KERNEL_CACHE ?? join(homedir(), '.cache', 'loramoe-playground', 'kernel-tuning.json');
}

async function readAll(path: string): Promise<Record<string, MatmulTuning>> {
  try {
    const v: unknown = JSON.parse(await readFile(path, 'utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, MatmulTuning>) : {};
  } catch {
    return {};
  }
}

/** Tunings in a JSON file; written whole to a temporary file and renamed, so a reader never sees half of it. */
export function fileTuningStore(path = kernelCachePath()): TuningStore {
  return {
    load: async (key) => (await readAll(path))[key] ?? null,
    save: async (key, t) => {
      const all = await readAll(path);
      all[key] = t;
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(all, null, 1));
      await rename(tmp, path);
    },
  };
}

/** Applies --matmul (see above) to the runner's device for this model; returns a line for the log. */
export async function runnerKernels(ctx: GpuContext, config: LlamaShape, flag: string | undefined, store: TuningStore = fileTuningStore()): Promise<string> {
  const mode = flag ?? 'cached';
  if (mode === 'cached') {
    const t = await store.load(adapterKey(ctx.adapter)).catch(() => null);
    ctx.kernels = choicesOf(t && t.version === TUNING_VERSION ? t : null);
    return `matmul kernels: ${describeKernelChoices(ctx.kernels)}${t ? ' (tuned earlier on this adapter)' : ''}`;
  }
  if (mode === 'tune') {
    const shapes = modelMatmulShapes(config, 256, { experts: 8, rank: 4, targets: ['gate_proj', 'up_proj', 'down_proj'] });
    // Asked for: timed on a software adapter too.
    const r: KernelReport = await autotuneReport(ctx, shapes, store, { tuneSoftware: true });
    const pending = r.tuning?.pending.length ? `; ${r.tuning.pending.length} classes still to time (run --matmul tune again)` : '';
    return `matmul kernels: ${describeKernelChoices(ctx.kernels)} (${r.source}${r.error ? `: ${r.error}` : ''}${pending})`;
  }
  if (!isMatmulForce(mode)) throw new Error(`--matmul must be cached, tune or one of ${MATMUL_FORCES.join(', ')}; got "${mode}"`);
  ctx.kernels = { matmul: {}, force: mode };
  return `matmul kernels: forced ${mode}`;
}
