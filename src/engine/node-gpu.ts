/**
 * WebGPU in Node (runner and tests): the npm `webgpu` package (Dawn). Without a GPU it runs on a
 * Vulkan driver such as Chromium's SwiftShader (VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json).
 */
import { create, globals } from 'webgpu';
import { requestGpu, type GpuContext } from './gpu';

/** Dawn's GPU object must stay reachable: if it is garbage-collected, its devices die under running work. */
let instance: GPU | null = null;

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export async function nodeGpu(): Promise<GpuContext> {
  if (!instance) {
    Object.assign(globalThis, globals);
    instance = create([]) as unknown as GPU;
  }
  try {
    return await requestGpu(instance);
  } catch (e) {
    throw new Error(
      `No WebGPU adapter in Node (${e instanceof Error ? e.message : String(e)}). With no GPU, install Debian's chromium and ` +
        `libvulkan1 and set VK_ICD_FILENAMES=${SWIFTSHADER_ICD}.`,
    );
  }
}
