/**
 * The WGSL sources, imported as text so one file serves the browser build, the Vitest suite and the
 * Node runner alike (Vite's `?raw` works in all three).
 */
import type { ShaderSource } from './pipelines';
import matmul from '../../shaders/matmul.wgsl?raw';

export const SHADERS = {
  matmul: { name: 'matmul', code: matmul },
} satisfies Record<string, ShaderSource>;
