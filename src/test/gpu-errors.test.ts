/** A WebGPU error during a GPU test fails the test (gpu-errors.ts, installed by setup.ts). */
import { beforeAll, describe, expect, it } from 'vitest';
import { testGpu, withValidation } from './gpu';
import { endGpuTest } from './gpu-errors';

/** A buffer WebGPU refuses: MAP_READ may only be combined with COPY_DST. */
const invalidBuffer = (device: GPUDevice) => device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });

describe('WebGPU errors fail GPU tests', () => {
  beforeAll(async () => {
    await testGpu();
  });

  it("the test's own scopes catch a validation error, and the end-of-test check reports it", async () => {
    const { device } = await testGpu();
    invalidBuffer(device).destroy();
    // What setup.ts's afterEach runs: here it must throw (it pops the scopes, so the real one passes).
    await expect(endGpuTest()).rejects.toThrow(/WebGPU reported 1 error\(s\) during this test:\nvalidation: /);
  });

  it('withValidation names the call that caused the error, and leaves the scopes balanced when its function throws', async () => {
    const ctx = await testGpu();
    await expect(withValidation(ctx, () => invalidBuffer(ctx.device).destroy())).rejects.toThrow(/WebGPU validation error/);
    await expect(
      withValidation(ctx, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
  });
});
