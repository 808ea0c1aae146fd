/**
 * Device acquisition. The engine asks the adapter for the largest storage buffers it offers (model
 * weights and activations routinely exceed WebGPU's 128 MiB default binding limit) and records what
 * it got, so the UI and the tests can say which adapter ran the work.
 */
import type { KernelChoices } from './kernel-choices';
import { PipelineCache } from './pipelines';

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxStorageBuffersPerShaderStage: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
  };
}

export interface GpuContext {
  device: GPUDevice;
  adapter: AdapterSummary;
  pipelines: PipelineCache;
  /**
   * The kernel variants `auto` ops take on this device (./kernel-choices.ts): set by the autotuner
   * or a setting; absent, every op takes the fixed choice.
   */
  kernels?: KernelChoices;
}

export class WebGpuUnavailableError extends Error {
  constructor(reason: string) {
    super(`WebGPU is unavailable: ${reason}`);
    this.name = 'WebGpuUnavailableError';
  }
}

/** Storage buffers one kernel binds at most (the attention backward binds the most). */
const STORAGE_BUFFERS_NEEDED = 8;

function summarizeAdapter(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info;
  const l = adapter.limits;
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    features: [...adapter.features].map(String).sort(),
    limits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    },
  };
}

export function describeAdapter(a: AdapterSummary): string {
  const name = [a.vendor, a.architecture, a.device, a.description].filter((s) => s.length > 0).join(' / ');
  return `${name || 'unnamed adapter'} (max storage binding ${(a.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB)`;
}

/**
 * Requests an adapter and a device from `gpu` (`navigator.gpu` in a browser, the `webgpu` package's
 * GPU object in Node). Throws WebGpuUnavailableError when there is none: callers must not fall back
 * silently, the whole product runs on the GPU.
 */
export async function requestGpu(gpu: GPU | undefined, options: GPURequestAdapterOptions = {}): Promise<GpuContext> {
  if (!gpu) throw new WebGpuUnavailableError('this environment has no navigator.gpu');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance', ...options });
  if (!adapter) throw new WebGpuUnavailableError('requestAdapter() returned no adapter');
  const l = adapter.limits;
  if (l.maxStorageBuffersPerShaderStage < STORAGE_BUFFERS_NEEDED) {
    throw new WebGpuUnavailableError(
      `the adapter offers ${l.maxStorageBuffersPerShaderStage} storage buffers per shader stage, ${STORAGE_BUFFERS_NEEDED} are needed`,
    );
  }
  const wanted: GPUFeatureName[] = ['shader-f16', 'timestamp-query', 'subgroups'];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    },
  });
  return { device, adapter: summarizeAdapter(adapter), pipelines: new PipelineCache(device) };
}
