/** Dispatcher for shaders/bias.wgsl: y += b broadcast over rows, and db += column sums of dy. */
import type { GpuContext } from '../gpu';
import { ceilDiv, createOp, grid1d, type Op } from '../op';
import type { ShaderSource } from '../pipelines';
import type { Tensor } from '../tensor';
import code from '../../../shaders/bias.wgsl?raw';

const SHADER: ShaderSource = { name: 'bias', code };
const WG = 64;

function need(op: string, role: string, t: Tensor, n: number, shape: string): void {
  if (t.size < n) throw new Error(`${op}: ${role} ${t.name} has ${t.size} values, needs ${shape} = ${n}`);
}

/** y[m, o] += b[o]; y [M, O], b [O]. */
export function biasForwardOp(ctx: GpuContext, a: { y: Tensor; b: Tensor; M: number; O: number; label?: string }): Op {
  need('bias forward', 'y', a.y, a.M * a.O, '[M, O]');
  need('bias forward', 'b', a.b, a.O, '[O]');
  return createOp(ctx, {
    label: a.label ?? `bias ${a.y.name}`,
    shader: SHADER,
    entryPoint: 'forward',
    constants: { WG },
    uniforms: [['M', 'u32', a.M], ['O', 'u32', a.O]],
    bindings: { 1: a.b, 2: a.y },
    workgroups: grid1d(ceilDiv(a.M * a.O, WG)),
  });
}

/** db[o] += sum_m dy[m, o] (parameter gradient, accumulates). */
export function biasBackwardOp(ctx: GpuContext, a: { dy: Tensor; db: Tensor; M: number; O: number; label?: string }): Op {
  need('bias backward', 'dy', a.dy, a.M * a.O, '[M, O]');
  need('bias backward', 'db', a.db, a.O, '[O]');
  return createOp(ctx, {
    label: a.label ?? `bias grad ${a.db.name}`,
    shader: SHADER,
    entryPoint: 'backward_weight',
    constants: { WG },
    uniforms: [['M', 'u32', a.M], ['O', 'u32', a.O]],
    bindings: { 3: a.dy, 4: a.db },
    workgroups: [ceilDiv(a.O, WG)],
  });
}
