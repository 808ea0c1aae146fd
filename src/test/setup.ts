/** Vitest setup file (vite.config.ts test.setupFiles): a WebGPU error during a test fails it (gpu-errors.ts). */
import { afterEach, beforeEach } from 'vitest';
import { beginGpuTest, endGpuTest } from './gpu-errors';

beforeEach(() => beginGpuTest());
afterEach(async () => endGpuTest());
