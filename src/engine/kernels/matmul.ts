/** Dispatcher for shaders/matmul.wgsl: C = alpha * op(A) · op(B) + beta * C, batched. */
import type { GpuContext } from '../gpu';
import { ceilDiv, createOp, type Op } from '../op';
import type { ShaderSource } from '../pipelines';
import code from '../../../shaders/matmul.wgsl?raw';
import type { Tensor } from '../tensor';

export interface MatmulArgs {
  a: Tensor;
  b: Tensor;
  c: Tensor;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  /** 0 overwrites C, 1 accumulates into it (gradients). */
  beta?: number;
  batch?: number;
  /** Elements between consecutive batch entries; 0 broadcasts the operand. Defaults: packed. */
  strideA?: number;
  strideB?: number;
  strideC?: number;
  label?: string;
}

const SHADER: ShaderSource = { name: 'matmul', code };

const WG = 8;
const BLOCK = 4;

export function matmulOp(ctx: GpuContext, args: MatmulArgs): Op {
  const { M, N, K } = args;
  const batch = args.batch ?? 1;
  const strideA = args.strideA ?? M * K;
  const strideB = args.strideB ?? K * N;
  const strideC = args.strideC ?? M * N;
  const need = (t: Tensor, stride: number, per: number, what: string) => {
    const n = (batch - 1) * stride + per;
    if (t.size < n) throw new Error(`matmul ${args.label ?? ''}: ${what} ${t.name} has ${t.size} values, needs ${n}`);
  };
  need(args.a, strideA, M * K, 'A');
  need(args.b, strideB, K * N, 'B');
  need(args.c, strideC, M * N, 'C');
  return createOp(ctx, {
    label: args.label ?? `matmul ${args.c.name}`,
    shader: SHADER,
    entryPoint: 'main',
    constants: { TRANS_A: args.transA ?? false, TRANS_B: args.transB ?? false, WG_X: WG, WG_Y: WG },
    uniforms: [
      ['M', 'u32', M], ['N', 'u32', N], ['K', 'u32', K], ['batch', 'u32', batch],
      ['strideA', 'u32', strideA], ['strideB', 'u32', strideB], ['strideC', 'u32', strideC],
      ['alpha', 'f32', args.alpha ?? 1], ['beta', 'f32', args.beta ?? 0],
    ],
    bindings: { 1: args.a, 2: args.b, 3: args.c },
    workgroups: [ceilDiv(N, WG * BLOCK), ceilDiv(M, WG * BLOCK), batch],
  });
}
