/**
 * Dispatcher for shaders/matmul_tiled.wgsl: C = alpha * op(A) · op(B) + beta * C, batched, through
 * workgroup memory. Reached through `matmulOp` (./matmul.ts), which checks the operands and picks
 * the kernel; this file holds the tile parameters of each named variant and builds the op.
 */
import type { AdapterSummary, GpuContext } from '../gpu';
import type { TiledMatmul } from '../kernel-choices';
import { ceilDiv, createOp, type Op } from '../op';
import code from '../../../shaders/matmul_tiled.wgsl?raw';
import type { Tensor } from '../tensor';
import type { RefMatmulArgs } from '../../reference/matmul';
import { matmulShader } from './matmul-shader';

const SHADER = matmulShader('matmul_tiled', code, false);

interface TiledParams {
  /** Invocations per workgroup along columns (x) and rows (y). */
  wgX: number;
  wgY: number;
  /** Rows and columns of C per invocation: 4 or 8 each. */
  tm: 4 | 8;
  tn: 4 | 8;
  /** Depth of one K step held in workgroup memory (a multiple of 4). */
  tk: number;
}

/**
 * The variants. 64x64 with 4x4 per invocation (256 invocations) is the common hardware choice
 * (TensorFlow.js's packed matmul tiles the same way); 128x64 halves the B traffic per output for
 * tall products; 64x64 with 8x8 per invocation (64 invocations) trades occupancy for registers;
 * 32x32 with a deeper K step suits products whose C is small.
 */
const TILED_PARAMS: Record<TiledMatmul, TiledParams> = {
  'tiled-64x64': { wgX: 16, wgY: 16, tm: 4, tn: 4, tk: 16 },
  'tiled-128x64': { wgX: 16, wgY: 16, tm: 8, tn: 4, tk: 16 },
  'tiled-64x64-8x8': { wgX: 8, wgY: 8, tm: 8, tn: 8, tk: 16 },
  'tiled-32x32': { wgX: 8, wgY: 8, tm: 4, tn: 4, tk: 32 },
};

/** Rows and columns of C one workgroup of `name` computes. */
export function tiledTile(name: TiledMatmul): { rows: number; cols: number } {
  const p = TILED_PARAMS[name];
  return { rows: p.wgY * p.tm, cols: p.wgX * p.tn };
}

/** Bytes of workgroup memory one workgroup of `name` uses: a TK-deep slice of A's and of B's tile. */
export function tiledWorkgroupBytes(name: TiledMatmul): number {
  const { rows, cols } = tiledTile(name);
  return TILED_PARAMS[name].tk * (rows + cols) * 4;
}

/** Whether the adapter's limits allow the variant (invocations and workgroup memory per workgroup). */
export function tiledMatmulFits(adapter: AdapterSummary, name: TiledMatmul): boolean {
  const p = TILED_PARAMS[name];
  return p.wgX * p.wgY <= adapter.limits.maxComputeInvocationsPerWorkgroup && tiledWorkgroupBytes(name) <= adapter.limits.maxComputeWorkgroupStorageSize;
}

/** matmulOp's product with every default resolved (the reference's M, N, K, transA, transB, alpha, beta). */
export interface TiledMatmulSpec extends Required<RefMatmulArgs> {
  label: string;
  variant: TiledMatmul;
  /** vec4 loads (the entry point `main_vec4`): only where matmulVec4Fits holds and A and B hold a vec4. */
  vec4: boolean;
  a: Tensor;
  b: Tensor;
  c: Tensor;
  batch: number;
  strideA: number;
  strideB: number;
  strideC: number;
}

export function tiledMatmulOp(ctx: GpuContext, s: TiledMatmulSpec): Op {
  if (!tiledMatmulFits(ctx.adapter, s.variant)) {
    throw new Error(`${s.label}: the adapter's limits do not allow ${s.variant} (${tiledWorkgroupBytes(s.variant)} bytes of workgroup memory)`);
  }
  const p = TILED_PARAMS[s.variant];
  const { rows, cols } = tiledTile(s.variant);
  return createOp(ctx, {
    label: s.label,
    shader: SHADER,
    entryPoint: s.vec4 ? 'main_vec4' : 'main',
    constants: { TRANS_A: s.transA, TRANS_B: s.transB, WG_X: p.wgX, WG_Y: p.wgY, TM: p.tm, TN: p.tn, TK: p.tk },
    uniforms: [
      ['M', 'u32', s.M], ['N', 'u32', s.N], ['K', 'u32', s.K], ['batch', 'u32', s.batch],
      ['strideA', 'u32', s.strideA], ['strideB', 'u32', s.strideB], ['strideC', 'u32', s.strideC],
      ['alpha', 'f32', s.alpha], ['beta', 'f32', s.beta],
    ],
    bindings: { 1: s.a, 2: s.b, 3: s.c },
    workgroups: [ceilDiv(s.N, cols), ceilDiv(s.M, rows), s.batch],
  });
}
