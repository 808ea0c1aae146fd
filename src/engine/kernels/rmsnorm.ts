/**
 * Dispatchers for shaders/rmsnorm.wgsl (Hugging Face LlamaRMSNorm in float32):
 *
 *   rmsnormForwardOp        x [M, C], w [C] -> y [M, C] (overwrite), rstd [M] (overwrite, saved for backward)
 *   rmsnormBackwardInputOp  dy, x [M, C], w [C], rstd [M] -> dx [M, C] (overwrite)
 *   rmsnormBackwardWeightOp dy, x [M, C], rstd [M] -> dw [C] (accumulate: dw += sum_m dy * xhat)
 *
 * Uniforms: M, C, eps (eps only matters to forward). forward and backward_input run one invocation
 * per row (`rows` variant) or one workgroup per row (`workgroup`), chosen by chooseRmsnormVariant
 * (grid folded into y past 65535 workgroups); backward_weight one invocation per column.
 * Tensors may be larger than the shape (buffers sized for a bigger batch); only the first M rows
 * are touched.
 */
import type { GpuContext } from '../gpu';
import { ceilDiv, createOp, grid1d, type Op } from '../op';
import type { ShaderSource } from '../pipelines';
import code from '../../../shaders/rmsnorm.wgsl?raw';
import type { Tensor } from '../tensor';
import { checkSizes, distinctOutputs, needTensor } from './checks';

const SHADER: ShaderSource = { name: 'rmsnorm', code };

/** Workgroup size: a power of two (the shader's tree reduction needs one). */
const WG = 64;

/**
 * `rows`: one invocation per row (entry points forward_rows, backward_input_rows). `workgroup`: one
 * workgroup per row with a tree reduction (forward, backward_input). `auto` (default):
 * chooseRmsnormVariant.
 */
export type RmsnormVariant = 'auto' | 'rows' | 'workgroup';

/**
 * Process-wide default for the `variant` argument, 'auto' normally. Benchmarks set it to force one
 * variant everywhere (tools/bench/profile-step.ts compares against the workgroup kernels this way).
 */
export const rmsnormDefaults: { variant: RmsnormVariant } = { variant: 'auto' };

/** Row length up to which chooseRmsnormVariant picks the rows variant. */
export const RMSNORM_ROWS_MAX_C = 1024;

/**
 * Shape-dependent choice (made here only). A row of at most 1024 values is a short serial loop
 * for one invocation; a workgroup per row spends its time in the reduction's barriers instead
 * (log2(WG) + 2 of them, each a context switch per 4-lane subgroup on software adapters: ~60 us
 * per row on SwiftShader, against ~1 us of arithmetic at C = 96) and leaves threads idle when C
 * is near WG. Training has M = B*T rows, enough invocations for any device; a single row
 * (generation) is one short loop either way. Past 1024 values (wide models) the workgroup spreads
 * a row's reads over WG threads.
 */
export function chooseRmsnormVariant(C: number): Exclude<RmsnormVariant, 'auto'> {
  return C <= RMSNORM_ROWS_MAX_C ? 'rows' : 'workgroup';
}

function rowGrid(ctx: GpuContext, d: Dims & { variant?: RmsnormVariant }): { entry: 'rows' | 'workgroup'; workgroups: [number, number] } {
  const requested = d.variant ?? rmsnormDefaults.variant;
  const v = requested === 'auto' ? chooseRmsnormVariant(d.C) : requested;
  const count = v === 'rows' ? ceilDiv(d.M, WG) : d.M;
  return { entry: v, workgroups: grid1d(count, gridLimit(ctx, d)) };
}

interface Dims {
  M: number;
  C: number;
  label?: string;
  /** Largest workgroup count per grid dimension (tests lower it to exercise the folded grid). */
  maxGridDim?: number;
}

interface Variant {
  /** Forces a kernel variant (tests, benchmarks); default `auto`. */
  variant?: RmsnormVariant;
}

export interface RmsnormForwardArgs extends Dims, Variant {
  x: Tensor;
  w: Tensor;
  y: Tensor;
  rstd: Tensor;
  /** Hugging Face's rms_norm_eps. */
  eps: number;
}

export interface RmsnormBackwardInputArgs extends Dims, Variant {
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

const checkDims = (op: string, d: Dims) => checkSizes(op, { M: d.M, C: d.C });

function gridLimit(ctx: GpuContext, d: Dims): number {
  return Math.min(d.maxGridDim ?? 65535, ctx.adapter.limits.maxComputeWorkgroupsPerDimension);
}

/** y = w * x * rstd per row; saves rstd [M]. eps must be >= 0 (finite). */
export function rmsnormForwardOp(ctx: GpuContext, args: RmsnormForwardArgs): Op {
  const op = 'rmsnorm forward';
  checkDims(op, args);
  const { M, C } = args;
  if (!(args.eps >= 0)) throw new Error(`${op}: eps must be >= 0, got ${args.eps}`);
  needTensor(op, 'x', args.x, M * C, `[M=${M}, C=${C}]`);
  needTensor(op, 'w', args.w, C, `[C=${C}]`);
  needTensor(op, 'y', args.y, M * C, `[M=${M}, C=${C}]`);
  needTensor(op, 'rstd', args.rstd, M, `[M=${M}]`);
  distinctOutputs(op, [args.y, args.rstd], [args.x, args.w]);
  const g = rowGrid(ctx, args);
  return createOp(ctx, {
    label: args.label ?? `${op} ${args.y.name}`,
    shader: SHADER,
    entryPoint: g.entry === 'rows' ? 'forward_rows' : 'forward',
    constants: { WG },
    uniforms: [['M', 'u32', M], ['C', 'u32', C], ['eps', 'f32', args.eps]],
    bindings: { 1: args.x, 2: args.w, 3: args.y, 4: args.rstd },
    workgroups: g.workgroups,
  });
}

/** dx = rstd * (w*dy - xhat * mean_c(w*dy*xhat)), overwriting dx. */
export function rmsnormBackwardInputOp(ctx: GpuContext, args: RmsnormBackwardInputArgs): Op {
  const op = 'rmsnorm backward_input';
  checkDims(op, args);
  const { M, C } = args;
  needTensor(op, 'dy', args.dy, M * C, `[M=${M}, C=${C}]`);
  needTensor(op, 'x', args.x, M * C, `[M=${M}, C=${C}]`);
  needTensor(op, 'w', args.w, C, `[C=${C}]`);
  needTensor(op, 'rstd', args.rstd, M, `[M=${M}]`);
  needTensor(op, 'dx', args.dx, M * C, `[M=${M}, C=${C}]`);
  distinctOutputs(op, [args.dx], [args.dy, args.x, args.w, args.rstd]);
  const g = rowGrid(ctx, args);
  return createOp(ctx, {
    label: args.label ?? `${op} ${args.dx.name}`,
    shader: SHADER,
    entryPoint: g.entry === 'rows' ? 'backward_input_rows' : 'backward_input',
    constants: { WG },
    uniforms: [['M', 'u32', M], ['C', 'u32', C], ['eps', 'f32', 0]],
    bindings: { 1: args.x, 2: args.w, 5: args.dy, 6: args.rstd, 7: args.dx },
    workgroups: g.workgroups,
  });
}

/** dw[c] += sum_m dy[m, c] * x[m, c] * rstd[m] (accumulates: zero dw first for a fresh gradient). */
export function rmsnormBackwardWeightOp(ctx: GpuContext, args: RmsnormBackwardWeightArgs): Op {
  const op = 'rmsnorm backward_weight';
  checkDims(op, args);
  const { M, C } = args;
  needTensor(op, 'dy', args.dy, M * C, `[M=${M}, C=${C}]`);
  needTensor(op, 'x', args.x, M * C, `[M=${M}, C=${C}]`);
  needTensor(op, 'rstd', args.rstd, M, `[M=${M}]`);
  needTensor(op, 'dw', args.dw, C, `[C=${C}]`);
  distinctOutputs(op, [args.dw], [args.dy, args.x, args.rstd]);
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
