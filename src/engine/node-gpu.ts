/**
 * WebGPU in Node (runner and tests): the npm `webgpu` package (Dawn). The installed Vulkan drivers
 * are tried first; when they give no adapter and VK_ICD_FILENAMES is unset, Chromium's SwiftShader
 * (a software Vulkan driver shipped with Debian's chromium) is tried, so the runner also works on
 * machines without a GPU.
 */
import { existsSync } from 'node:fs';
import { create, globals } from 'webgpu';
import { requestGpu, type GpuContext } from './gpu';
import { errorMessage } from '../util/errors';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** Dawn's GPU objects must stay reachable: if one is garbage-collected, its devices die under running work. */
const instances: GPU[] = [];

function newInstance(): GPU {
  Object.assign(globalThis, globals);
  const gpu = create([]) as unknown as GPU;
  instances.push(gpu);
  return gpu;
}

export async function nodeGpu(): Promise<GpuContext> {
  try {
    // The newest instance is the one that found an adapter (after a fallback, the first did not).
    return await requestGpu(instances[instances.length - 1] ?? newInstance());
  } catch (first) {
    const canFallBack = !process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD);
    if (canFallBack) {
      // The Vulkan loader reads the variable when a new instance is created.
      process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
      try {
        return await requestGpu(newInstance());
      } catch {
        // fall through to the explanation below
      }
    }
    throw new Error(
      `No WebGPU adapter in Node (${errorMessage(first)}). With no GPU, install Debian's chromium and ` +
        `libvulkan1 and set VK_ICD_FILENAMES=${SWIFTSHADER_ICD}.`,
      { cause: first },
    );
  }
}
