/**
 * Dispatchers for shaders/elementwise.wgsl, the residual-stream and gradient-buffer helpers:
 *
 *   addOp         out = a + b      (three distinct tensors)
 *   accumulateOp  y  += alpha * x  (in place on y)
 *   fillOp        y   = value
 *   scaleOp       y  *= alpha
 *   copyOp        y   = x
 *
 * `n` (the element count) defaults to the output tensor's size; every tensor must hold at least n
 * values. Any n works: the 1-D grid folds into y past 65535 workgroups.
 */
import type { GpuContext } from '../gpu';
import { ceilDiv, createOp, grid1d, type Op, type UniformField } from '../op';
import type { ShaderSource } from '../pipelines';
import code from '../../../shaders/elementwise.wgsl?raw';
import type { Tensor } from '../tensor';

const SHADER: ShaderSource = { name: 'elementwise', code };

const WG = 256;

interface Common {
  /** Elements to process; defaults to the output's size. */
  n?: number;
  label?: string;
  /** Largest workgroup count per grid dimension (tests lower it to exercise the folded grid). */
  maxGridDim?: number;
}

export interface AddArgs extends Common {
  a: Tensor;
  b: Tensor;
  out: Tensor;
}
export interface AccumulateArgs extends Common {
  x: Tensor;
  y: Tensor;
  alpha?: number;
}
export interface FillArgs extends Common {
  y: Tensor;
  value: number;
}
export interface ScaleArgs extends Common {
  y: Tensor;
  alpha: number;
}
export interface CopyArgs extends Common {
  x: Tensor;
  y: Tensor;
}

function elementCount(op: string, out: Tensor, n: number | undefined): number {
  const count = n ?? out.size;
  if (!Number.isInteger(count) || count < 0) throw new Error(`${op}: n must be a non-negative integer, got ${count}`);
  return count;
}

function needSize(op: string, role: string, t: Tensor, n: number): void {
  if (t.dtype !== 'f32') throw new Error(`${op}: ${role} ${t.name} must be f32, got ${t.dtype}`);
  if (t.size < n) throw new Error(`${op}: ${role} ${t.name} has ${t.size} values, needs ${n}`);
}

function distinct(op: string, out: Tensor, inputs: Tensor[]): void {
  for (const t of inputs) {
    if (t.buffer === out.buffer) {
      throw new Error(`${op}: ${t.name} is both an input and the output; a buffer cannot be bound read-only and read-write in one dispatch`);
    }
  }
}

function elementwiseOp(
  ctx: GpuContext,
  entryPoint: string,
  label: string,
  n: number,
  alpha: number,
  value: number,
  bindings: Record<number, Tensor>,
  maxGridDim: number | undefined,
): Op {
  const uniforms: UniformField[] = [
    ['n', 'u32', n],
    ['alpha', 'f32', alpha],
    ['value', 'f32', value],
  ];
  const limit = Math.min(maxGridDim ?? 65535, ctx.adapter.limits.maxComputeWorkgroupsPerDimension);
  return createOp(ctx, {
    label,
    shader: SHADER,
    entryPoint,
    constants: { WG },
    uniforms,
    bindings,
    workgroups: grid1d(ceilDiv(n, WG), limit),
  });
}

/** out[i] = a[i] + b[i] for i < n. out must be a third tensor (use accumulateOp for in place). */
export function addOp(ctx: GpuContext, args: AddArgs): Op {
  const n = elementCount('add', args.out, args.n);
  needSize('add', 'a', args.a, n);
  needSize('add', 'b', args.b, n);
  needSize('add', 'out', args.out, n);
  distinct('add', args.out, [args.a, args.b]);
  return elementwiseOp(ctx, 'add', args.label ?? `add ${args.out.name}`, n, 1, 0, { 1: args.a, 2: args.b, 3: args.out }, args.maxGridDim);
}

/** y[i] += alpha * x[i] for i < n (alpha defaults to 1). */
export function accumulateOp(ctx: GpuContext, args: AccumulateArgs): Op {
  const n = elementCount('accumulate', args.y, args.n);
  needSize('accumulate', 'x', args.x, n);
  needSize('accumulate', 'y', args.y, n);
  distinct('accumulate', args.y, [args.x]);
  return elementwiseOp(ctx, 'accumulate', args.label ?? `accumulate ${args.y.name}`, n, args.alpha ?? 1, 0, { 1: args.x, 3: args.y }, args.maxGridDim);
}

/** y[i] = value for i < n (value is rounded to float32). */
export function fillOp(ctx: GpuContext, args: FillArgs): Op {
  const n = elementCount('fill', args.y, args.n);
  needSize('fill', 'y', args.y, n);
  return elementwiseOp(ctx, 'fill', args.label ?? `fill ${args.y.name}`, n, 1, args.value, { 3: args.y }, args.maxGridDim);
}

/** y[i] *= alpha for i < n. */
export function scaleOp(ctx: GpuContext, args: ScaleArgs): Op {
  const n = elementCount('scale', args.y, args.n);
  needSize('scale', 'y', args.y, n);
  return elementwiseOp(ctx, 'scale', args.label ?? `scale ${args.y.name}`, n, args.alpha, 0, { 3: args.y }, args.maxGridDim);
}

/** y[i] = x[i] for i < n. */
export function copyOp(ctx: GpuContext, args: CopyArgs): Op {
  const n = elementCount('copy', args.y, args.n);
  needSize('copy', 'x', args.x, n);
  needSize('copy', 'y', args.y, n);
  distinct('copy', args.y, [args.x]);
  return elementwiseOp(ctx, 'copy', args.label ?? `copy ${args.y.name}`, n, 1, 0, { 1: args.x, 3: args.y }, args.maxGridDim);
}
