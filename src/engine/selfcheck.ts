/**
 * A kernel check the page runs on the user's adapter: a ragged matmul on the GPU compared with the
 * float64 reference. It tells the user (and the e2e test) that the adapter computes correctly, not
 * only that it exists.
 */
import { matmul } from '../reference/matmul';
import { Rng } from '../util/random';
import type { GpuContext } from './gpu';
import { matmulOp } from './kernels/matmul';
import { destroyOps, runOps } from './op';
import { createTensor, readTensor } from './tensor';

export interface SelfCheckResult {
  kernel: string;
  shape: string;
  maxAbsError: number;
  tolerance: number;
  passed: boolean;
  millis: number;
}

export async function matmulSelfCheck(ctx: GpuContext, M = 45, N = 70, K = 33): Promise<SelfCheckResult> {
  const rng = new Rng(2024);
  const a = rng.f32Array(M * K);
  const w = rng.f32Array(N * K);
  const tA = createTensor(ctx, 'check.x', [M, K], 'f32', a);
  const tW = createTensor(ctx, 'check.w', [N, K], 'f32', w);
  const tC = createTensor(ctx, 'check.y', [M, N]);
  const op = matmulOp(ctx, { a: tA, b: tW, c: tC, M, N, K, transB: true });
  const t0 = performance.now();
  runOps(ctx, [op]);
  const got = await readTensor(ctx, tC);
  const millis = performance.now() - t0;
  const want = matmul(a, w, { M, N, K, transB: true });
  let maxAbsError = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    maxAbsError = Number.isNaN(d) ? Infinity : Math.max(maxAbsError, d);
  }
  // |x|, |w| < 1: a float32 dot of K terms errs by at most about 2·K·2^-24·K.
  const tolerance = 2 * K * K * 2 ** -24;
  destroyOps([op]);
  for (const t of [tA, tW, tC]) t.destroy();
  return { kernel: 'matmul y = x·Wᵀ', shape: `${M}×${K} · (${N}×${K})ᵀ`, maxAbsError, tolerance, passed: maxAbsError <= tolerance, millis };
}
