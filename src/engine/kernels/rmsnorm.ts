/**
 * Dispatchers for shaders/rmsnorm.wgsl (Hugging Face LlamaRMSNorm in float32):
 *
 *   rmsnormForwardOp        x [M, C], w [C] -> y [M, C] (overwrite), rstd [M] (overwrite, saved for backward)
 *   rmsnormBackwardInputOp  dy, x [M, C], w [C], rstd [M] -> dx [M, C] (overwrite)
 *   rmsnormBackwardWeightOp dy, x [M, C], rstd [M] -> dw [C] (accumulate: dw += sum_m dy * xhat)
 *
 * Uniforms: M, C, eps (eps only matters to forward). forward and backward_input run one workgroup
 * per row (grid folded into y past 65535 rows); backward_weight one invocation per column.
 * Tensors may be larger than the shape (buffers sized for a bigger batch); only the first M rows
 * are touched.
 */
import type { GpuContext } from '../gpu';
import { ceilDiv, createOp, grid1d, type Op } from '../op';
import type { ShaderSource } from '../pipelines';
import code from '../../../shaders/rmsnorm.wgsl?raw';
import type { Tensor } from '../tensor';

const SHADER: ShaderSource = { name: 'rmsnorm', code };

/** Workgroup size: a power of two (the shader's tree reduction needs one). */
const WG = 64;

interface Dims {
  M: number;
  C: number;
  label?: string;
  /** Largest workgroup count per grid dimension (tests lower it to exercise the folded grid). */
  maxGridDim?: number;
}

export interface RmsnormForwardArgs extends Dims {
  x: Tensor;
  w: Tensor;
  y: Tensor;
  rstd: Tensor;
  /** Hugging Face's rms_norm_eps. */
  eps: number;
}

export interface RmsnormBackwardInputArgs extends Dims {
  dy: Tensor;
  x: Tensor;
  w: Tensor;
  rstd: Tensor;
  dx: Tensor;
}

export interface RmsnormBackwardWeightArgs extends Dims {
  dy: Tensor;
  x: Tensor;
  rstd: Tensor;
  dw: Tensor;
}

function checkDims(op: string, d: Dims): void {
  for (const [k, v] of [['M', d.M], ['C', d.C]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`${op}: ${k} must be a non-negative integer, got ${v}`);
  }
}

function need(op: string, role: string, t: Tensor, n: number, shape: string): void {
  if (t.dtype !== 'f32') throw new Error(`${op}: ${role} ${t.name} must be f32, got ${t.dtype}`);
  if (t.size < n) throw new Error(`${op}: ${role} ${t.name} has ${t.size} values, needs ${shape} = ${n}`);
}

function distinct(op: string, outs: Tensor[], ins: Tensor[]): void {
  const all = [...outs, ...ins];
  outs.forEach((o, i) => {
    all.forEach((t, j) => {
      if (j !== i && t.buffer === o.buffer) throw new Error(`${op}: output ${o.name} shares its buffer with ${t.name}`);
    });
  });
}

function gridLimit(ctx: GpuContext, d: Dims): number {
  return Math.min(d.maxGridDim ?? 65535, ctx.adapter.limits.maxComputeWorkgroupsPerDimension);
}

/** y = w * x * rstd per row; saves rstd [M]. eps must be >= 0 (finite). */
export function rmsnormForwardOp(ctx: GpuContext, args: RmsnormForwardArgs): Op {
  const op = 'rmsnorm forward';
  checkDims(op, args);
  const { M, C } = args;
  if (!(args.eps >= 0)) throw new Error(`${op}: eps must be >= 0, got ${args.eps}`);
  need(op, 'x', args.x, M * C, `[M=${M}, C=${C}]`);
  need(op, 'w', args.w, C, `[C=${C}]`);
  need(op, 'y', args.y, M * C, `[M=${M}, C=${C}]`);
  need(op, 'rstd', args.rstd, M, `[M=${M}]`);
  distinct(op, [args.y, args.rstd], [args.x, args.w]);
  return createOp(ctx, {
    label: args.label ?? `${op} ${args.y.name}`,
    shader: SHADER,
    entryPoint: 'forward',
    constants: { WG },
    uniforms: [['M', 'u32', M], ['C', 'u32', C], ['eps', 'f32', args.eps]],
    bindings: { 1: args.x, 2: args.w, 3: args.y, 4: args.rstd },
    workgroups: grid1d(M, gridLimit(ctx, args)),
  });
}

/** dx = rstd * (w*dy - xhat * mean_c(w*dy*xhat)), overwriting dx. */
export function rmsnormBackwardInputOp(ctx: GpuContext, args: RmsnormBackwardInputArgs): Op {
  const op = 'rmsnorm backward_input';
  checkDims(op, args);
  const { M, C } = args;
  need(op, 'dy', args.dy, M * C, `[M=${M}, C=${C}]`);
  need(op, 'x', args.x, M * C, `[M=${M}, C=${C}]`);
  need(op, 'w', args.w, C, `[C=${C}]`);
  need(op, 'rstd', args.rstd, M, `[M=${M}]`);
  need(op, 'dx', args.dx, M * C, `[M=${M}, C=${C}]`);
  distinct(op, [args.dx], [args.dy, args.x, args.w, args.rstd]);
  return createOp(ctx, {
    label: args.label ?? `${op} ${args.dx.name}`,
    shader: SHADER,
    entryPoint: 'backward_input',
    constants: { WG },
    uniforms: [['M', 'u32', M], ['C', 'u32', C], ['eps', 'f32', 0]],
    bindings: { 1: args.x, 2: args.w, 5: args.dy, 6: args.rstd, 7: args.dx },
    workgroups: grid1d(M, gridLimit(ctx, args)),
  });
}

/** dw[c] += sum_m dy[m, c] * x[m, c] * rstd[m] (accumulates: zero dw first for a fresh gradient). */
export function rmsnormBackwardWeightOp(ctx: GpuContext, args: RmsnormBackwardWeightArgs): Op {
  const op = 'rmsnorm backward_weight';
  checkDims(op, args);
  const { M, C } = args;
  need(op, 'dy', args.dy, M * C, `[M=${M}, C=${C}]`);
  need(op, 'x', args.x, M * C, `[M=${M}, C=${C}]`);
  need(op, 'rstd', args.rstd, M, `[M=${M}]`);
  need(op, 'dw', args.dw, C, `[C=${C}]`);
  distinct(op, [args.dw], [args.dy, args.x, args.rstd]);
  return createOp(ctx, {
    label: args.label ?? `${op} ${args.dw.name}`,
    shader: SHADER,
    entryPoint: 'backward_weight',
    constants: { WG },
    uniforms: [['M', 'u32', M], ['C', 'u32', C], ['eps', 'f32', 0]],
    bindings: { 1: args.x, 5: args.dy, 6: args.rstd, 8: args.dw },
    workgroups: grid1d(ceilDiv(C, WG), gridLimit(ctx, args)),
  });
}
