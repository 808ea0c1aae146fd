/**
 * The WebGPU adapter for Node tests: the npm `webgpu` package (Dawn) on Chromium's SwiftShader
 * Vulkan driver (VK_ICD_FILENAMES, set in vite.config.ts). No adapter is a failure, never a skip:
 * a GPU test that silently skips tests nothing.
 */
import { create, globals } from 'webgpu';
import { describeAdapter, requestGpu, type GpuContext } from '../engine/gpu';

let pending: Promise<GpuContext> | undefined;
// Dawn's GPU object must stay reachable: if it is collected, its devices die under running tests.
export let keepAlive: unknown;

export function testGpu(): Promise<GpuContext> {
  pending ??= (async () => {
    Object.assign(globalThis, globals);
    const gpu = create([]) as unknown as GPU;
    keepAlive = gpu;
    const ctx = await requestGpu(gpu).catch((e: unknown) => {
      throw new Error(
        `No WebGPU adapter for the GPU tests (${String(e)}). Install Debian's chromium and libvulkan1 ` +
          `and point VK_ICD_FILENAMES at /usr/lib/chromium/vk_swiftshader_icd.json (see README).`,
      );
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
