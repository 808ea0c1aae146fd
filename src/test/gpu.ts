/**
 * The WebGPU adapter for Node tests: the npm `webgpu` package (Dawn) on Chromium's SwiftShader
 * Vulkan driver (VK_ICD_FILENAMES, set in vite.config.ts). No adapter is a failure, never a skip:
 * a GPU test that silently skips tests nothing.
 */
import { describeAdapter, type GpuContext } from '../engine/gpu';
import { nodeGpu } from '../engine/node-gpu';

let pending: Promise<GpuContext> | undefined;

export function testGpu(): Promise<GpuContext> {
  pending ??= (async () => {
    const ctx = await nodeGpu().catch((e: unknown) => {
      throw new Error(`No WebGPU adapter for the GPU tests: ${e instanceof Error ? e.message : String(e)} (see README).`);
    });
    console.log(`[webgpu] tests run on: ${describeAdapter(ctx.adapter)}`);
    ctx.device.addEventListener('uncapturederror', (ev) => {
      console.error(`[webgpu] uncaptured error: ${(ev as GPUUncapturedErrorEvent).error.message}`);
    });
    return ctx;
  })();
  return pending;
}

/** Runs `fn` inside a validation error scope and fails if WebGPU reported an error. */
export async function withValidation<T>(ctx: GpuContext, fn: () => T | Promise<T>): Promise<T> {
  ctx.device.pushErrorScope('validation');
  const out = await fn();
  const err = await ctx.device.popErrorScope();
  if (err) throw new Error(`WebGPU validation error: ${err.message}`);
  return out;
}
