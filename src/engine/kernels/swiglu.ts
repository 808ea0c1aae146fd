/**
 * Dispatchers for shaders/swiglu.wgsl: h = silu(g) * u over [M, F] and its backward.
 *
 *   swigluForwardOp   g, u [M, F] -> h [M, F]   (overwrite)
 *   swigluBackwardOp  dh, g, u [M, F] -> dg, du [M, F]   (both overwritten: activation gradients;
 *                     dg may be dh itself: backward_inplace writes dg over dh)
 *
 * Tensors may be larger than [M, F] (buffers sized for a larger batch); only the first M*F values
 * are read or written. Uniforms: n = M*F. Elementwise, so one invocation per value on a 1-D grid that folds into y past
 * 65535 workgroups.
 */
import type { GpuContext } from '../gpu';
import { ceilDiv, createOp, grid1d, type Op } from '../op';
import type { ShaderSource } from '../pipelines';
import code from '../../../shaders/swiglu.wgsl?raw';
import type { Tensor } from '../tensor';
import { checkSizes, distinctOutputs, needTensor } from './checks';

const SHADER: ShaderSource = { name: 'swiglu', code };

const WG = 256;

interface Dims {
  M: number;
  F: number;
  label?: string;
  /** Largest workgroup count per grid dimension (tests lower it to exercise the folded grid). */
  maxGridDim?: number;
}

export interface SwigluForwardArgs extends Dims {
  g: Tensor;
  u: Tensor;
  h: Tensor;
}

export interface SwigluBackwardArgs extends Dims {
  dh: Tensor;
  g: Tensor;
  u: Tensor;
  dg: Tensor;
  du: Tensor;
}

function checkDims(op: string, d: Dims): number {
  checkSizes(op, { M: d.M, F: d.F });
  return d.M * d.F;
}

const checkTensor = (op: string, role: string, t: Tensor, n: number, M: number, F: number) => needTensor(op, role, t, n, `[M=${M}, F=${F}]`);

function grid(ctx: GpuContext, n: number, maxGridDim: number | undefined): [number, number] {
  return grid1d(ceilDiv(n, WG), Math.min(maxGridDim ?? 65535, ctx.adapter.limits.maxComputeWorkgroupsPerDimension));
}

/** h = silu(g) * u, all [M, F]. h is overwritten. */
export function swigluForwardOp(ctx: GpuContext, args: SwigluForwardArgs): Op {
  const n = checkDims('swiglu forward', args);
  checkTensor('swiglu forward', 'g', args.g, n, args.M, args.F);
  checkTensor('swiglu forward', 'u', args.u, n, args.M, args.F);
  checkTensor('swiglu forward', 'h', args.h, n, args.M, args.F);
  distinctOutputs('swiglu forward', [args.h], [args.g, args.u]);
  return createOp(ctx, {
    label: args.label ?? `swiglu forward ${args.h.name}`,
    shader: SHADER,
    entryPoint: 'forward',
    constants: { WG },
    uniforms: [['n', 'u32', n]],
    bindings: { 1: args.g, 2: args.u, 3: args.h },
    workgroups: grid(ctx, n, args.maxGridDim),
  });
}

/** du = dh * silu(g); dg = dh * u * s * (1 + g * (1 - s)), s = sigmoid(g). dg, du overwritten (dg may be dh). */
export function swigluBackwardOp(ctx: GpuContext, args: SwigluBackwardArgs): Op {
  const n = checkDims('swiglu backward', args);
  checkTensor('swiglu backward', 'dh', args.dh, n, args.M, args.F);
  checkTensor('swiglu backward', 'g', args.g, n, args.M, args.F);
  checkTensor('swiglu backward', 'u', args.u, n, args.M, args.F);
  checkTensor('swiglu backward', 'dg', args.dg, n, args.M, args.F);
  checkTensor('swiglu backward', 'du', args.du, n, args.M, args.F);
  const inPlace = args.dg === args.dh;
  distinctOutputs('swiglu backward', [args.dg, args.du], inPlace ? [args.g, args.u] : [args.dh, args.g, args.u]);
  return createOp(ctx, {
    label: args.label ?? `swiglu backward ${args.dg.name}`,
    shader: SHADER,
    entryPoint: inPlace ? 'backward_inplace' : 'backward',
    constants: { WG },
    uniforms: [['n', 'u32', n]],
    bindings: inPlace ? { 1: args.g, 2: args.u, 5: args.dg, 6: args.du } : { 1: args.g, 2: args.u, 4: args.dh, 5: args.dg, 6: args.du },
    workgroups: grid(ctx, n, args.maxGridDim),
  });
}
