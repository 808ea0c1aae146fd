/**
 * The WebGPU adapter for Node tests: the npm `webgpu` package (Dawn) on Chromium's SwiftShader
 * Vulkan driver (VK_ICD_FILENAMES, set in vite.config.ts). No adapter is a failure, never a skip:
 * a GPU test that silently skips tests nothing. A WebGPU error (validation, out of memory, internal)
 * during a test fails that test (gpu-errors.ts).
 */
import { describeAdapter, type GpuContext } from '../engine/gpu';
import { nodeGpu } from '../engine/node-gpu';
import { watchDevice } from './gpu-errors';
import { errorMessage } from '../util/errors';

let pending: Promise<GpuContext> | undefined;

export function testGpu(): Promise<GpuContext> {
  pending ??= (async () => {
    const ctx = await nodeGpu().catch((e: unknown) => {
      throw new Error(`No WebGPU adapter for the GPU tests: ${errorMessage(e)} (see README).`);
    });
    console.log(`[webgpu] tests run on: ${describeAdapter(ctx.adapter)}`);
    watchDevice(ctx.device);
    return ctx;
  })();
  return pending;
}

/**
 * Runs `fn` inside validation and out-of-memory error scopes and fails right there if WebGPU
 * reported an error (every test is scoped too; this names the call that caused it).
 */
export async function withValidation<T>(ctx: GpuContext, fn: () => T | Promise<T>): Promise<T> {
  ctx.device.pushErrorScope('validation');
  ctx.device.pushErrorScope('out-of-memory');
  // The scopes are popped whatever fn does, so a throwing fn leaves the scope stack balanced.
  const result = await Promise.resolve()
    .then(fn)
    .then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }));
  const oom = await ctx.device.popErrorScope();
  const invalid = await ctx.device.popErrorScope();
  if (!result.ok) throw result.error;
  if (invalid) throw new Error(`WebGPU validation error: ${invalid.message}`);
  if (oom) throw new Error(`WebGPU out of memory: ${oom.message}`);
  return result.value;
}
