/**
 * TensorFlow.js's WebGPU backend on the project's own GPUDevice, for the benchmark pages: both
 * sides then use one adapter, one queue and the same limits, and `device.queue.onSubmittedWorkDone()`
 * waits for the work of both. WebGPUBackend takes a device in its constructor; importing the package
 * registered a 'webgpu' factory that would request a second device, so it is replaced (the kernels
 * stay registered by backend name).
 */
import * as tf from '@tensorflow/tfjs-core';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { GpuContext } from '../../src/engine/gpu';

export interface TfOnDevice {
  backend: WebGPUBackend;
  /** Submits the command encoder TF.js keeps open (a readback would otherwise do it). */
  flush: () => void;
}

export async function tfjsOnDevice(ctx: GpuContext): Promise<TfOnDevice> {
  tf.removeBackend('webgpu');
  const backend = new WebGPUBackend(ctx.device, ctx.device.adapterInfo);
  tf.registerBackend('webgpu', () => backend, 10);
  if (!(await tf.setBackend('webgpu')) || tf.backend() !== backend) throw new Error('could not make TF.js use the shared WebGPU backend');
  // Every TF.js op on the GPU, even on small inputs (the default forwards those to the CPU).
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  return {
    backend,
    flush: () => {
      backend.endComputePassEncoder();
      backend.ensureCommandEncoderReady();
      backend.submitQueue();
    },
  };
}
