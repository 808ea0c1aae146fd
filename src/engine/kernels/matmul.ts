/** Dispatcher for shaders/matmul.wgsl: C = alpha * op(A) · op(B) + beta * C, batched. */
import type { GpuContext } from '../gpu';
import { matmulShapeClass, TILED_MATMULS, type MatmulForce, type TiledMatmul } from '../kernel-choices';
import { ceilDiv, createOp, type Op, type UniformField } from '../op';
import code from '../../../shaders/matmul.wgsl?raw';
import f16wCode from '../../../shaders/matmul_f16w.wgsl?raw';
import type { RefMatmulArgs } from '../../reference/matmul';
import type { Tensor } from '../tensor';
import { matmulShader } from './matmul-shader';
import { tiledMatmulOp } from './matmul-tiled';

/**
 * Kernel variants (entry points of shaders/matmul.wgsl):
 * - `vec4`: 8x8 outputs per thread, vec4 loads, no bounds checks in the k loop. Needs every
 *   operand's contiguous dimension and batch stride to be a multiple of 4 (see matmulVec4Fits).
 * - `ragged`: the same 8x8 blocking with scalar loads at any offset: no bounds checks in the
 *   k loop's steps of 4, a scalar tail for K % 4; any shape and alignment.
 * - `scalar`: 4x4 outputs per thread, every load bounds checked; any shape and alignment (the
 *   plain reference kernel: tests and benchmarks force it, `auto` never picks it).
 * - the workgroup-memory tiled kernels of shaders/matmul_tiled.wgsl (`tiled-64x64`, ...; see
 *   ./matmul-tiled.ts): any shape, vec4 loads where matmulVec4Fits holds; the model's three layouts
 *   (a tiled variant asked for with both operands transposed runs the fixed kernel).
 * - `auto` (default): the device's choice for the product's shape class (`ctx.kernels`, set by the
 *   autotuner or a setting; ../kernel-choices.ts), else chooseMatmulVariant (the fixed choice).
 *
 * A B operand of dtype f16 (a frozen weight stored in half precision) always takes
 * shaders/matmul_f16w.wgsl, whatever the variant: it is the one kernel that reads packed halves.
 */
export type MatmulVariant = 'auto' | 'vec4' | 'ragged' | 'scalar' | TiledMatmul;

/** The reference's product (M, N, K, transA, transB, alpha, beta: beta 0 overwrites C, 1 accumulates into it) on tensors, batched. */
export interface MatmulArgs extends RefMatmulArgs {
  a: Tensor;
  b: Tensor;
  c: Tensor;
  batch?: number;
  /** Elements between consecutive batch entries; 0 broadcasts the operand. Defaults: packed. */
  strideA?: number;
  strideB?: number;
  strideC?: number;
  label?: string;
  /** Forces a kernel variant (tests, benchmarks); default `auto`. */
  variant?: MatmulVariant;
}

// The f32 and f16-weight kernels share their body (shaders/matmul_blocked.wgsl); see ./matmul-shader.ts.
const SHADER = matmulShader('matmul', code, true);
const SHADER_F16W = matmulShader('matmul_f16w', f16wCode, true);

/**
 * Process-wide default for MatmulArgs.variant, 'auto' normally. Benchmarks set it to force one
 * kernel everywhere (tools/bench/profile-step.ts compares against the scalar kernel this way);
 * a forced 'vec4' still throws on shapes it cannot run.
 */
export const matmulDefaults: { variant: MatmulVariant } = { variant: 'auto' };

/** Threads per workgroup along x (columns) and y (rows), every variant. */
const WG = 8;
/** Outputs per thread along each axis. */
const BLOCK = { vec4: 8, ragged: 8, scalar: 4 } as const;

/** Entry point of each variant in shaders/matmul.wgsl. */
const ENTRY_POINT = { vec4: 'main_vec4', ragged: 'main_ragged', scalar: 'main' } as const;

type Shape = Pick<MatmulArgs, 'M' | 'N' | 'K' | 'transA' | 'transB'> & { batch: number; strideA: number; strideB: number; strideC: number };

/**
 * Whether the vec4 kernel can run this shape: it reads A and B as vec4s along their contiguous
 * dimension (A: K, or M when transA; B: N, or K when transB), so those and the batch strides of
 * A and B must be multiples of 4. The k loop steps by 4 wherever it walks a contiguous dimension,
 * which the same condition covers; K may be ragged only in the weight-gradient layout
 * (transA, !transB), whose k runs across rows. C is written with scalar, bounds-checked stores.
 */
export function matmulVec4Fits(s: Shape): boolean {
  const contigA = s.transA ? s.M : s.K;
  const contigB = s.transB ? s.K : s.N;
  const strided = s.batch > 1;
  return (
    contigA % 4 === 0 &&
    contigB % 4 === 0 &&
    (!strided || (s.strideA % 4 === 0 && s.strideB % 4 === 0))
  );
}

/**
 * Shape-dependent kernel choice (the one place it is made). The vec4 kernel wherever it fits:
 * measured on SwiftShader it is 5-10x faster than the scalar one on the model's shapes, from the
 * big training products down to a single row (M = 1, decode: the clamped rows are redundant work,
 * yet still about 4x faster than the scalar kernel's bounds-checked loads). Everything else takes
 * the ragged kernel, the same blocking with unaligned scalar loads (measured 1.1-1.45x the time of
 * vec4 on the same shapes padded to multiples of 4, 8-10x faster than scalar): the vocabulary is
 * arbitrary (841 in the demo, 151936 in Qwen2), and so is experts·rank (3 experts of rank 5).
 */
export function chooseMatmulVariant(s: Shape): 'vec4' | 'ragged' {
  return matmulVec4Fits(s) ? 'vec4' : 'ragged';
}

/**
 * The entry point of shaders/matmul_f16w.wgsl for a product with an f16 B: the vec-load kernels
 * for the model's two weight layouts where their alignment holds (A's rows and, for the forward,
 * B's rows in whole vec4s / four-half words; for the input gradient, B's rows in whole eight-half
 * words), else the any-shape kernel.
 */
export function f16wEntryPoint(s: Shape): 'main_nt4' | 'main_nn8' | 'main_ragged' {
  if (s.transA || s.K % 4 !== 0) return 'main_ragged';
  const strided = s.batch > 1;
  if (s.transB) return !strided || (s.strideA % 4 === 0 && s.strideB % 4 === 0) ? 'main_nt4' : 'main_ragged';
  return s.N % 8 === 0 && (!strided || (s.strideA % 4 === 0 && s.strideB % 8 === 0)) ? 'main_nn8' : 'main_ragged';
}

function isTiled(v: MatmulVariant): v is TiledMatmul {
  return (TILED_MATMULS as readonly string[]).includes(v);
}

/**
 * The kernel an `auto` matmul takes on this device: a forced kernel (vec4 only where it fits, the
 * ragged kernel elsewhere, so a forced choice runs every shape), else the tuned choice of the
 * shape's class, else the fixed choice.
 */
function deviceChoice(ctx: GpuContext, shape: Shape, fixed: 'vec4' | 'ragged'): Exclude<MatmulVariant, 'auto'> {
  const k = ctx.kernels;
  const choice: MatmulForce = k?.force ?? k?.matmul[matmulShapeClass(shape)] ?? 'fixed';
  if (choice === 'fixed' || choice === 'vec4') return fixed;
  return choice;
}

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
  const shape: Shape = { M, N, K, transA: args.transA, transB: args.transB, batch, strideA, strideB, strideC };
  if (args.a.dtype !== 'f32' || args.c.dtype !== 'f32') {
    throw new Error(`matmul ${args.label ?? ''}: A (${args.a.name}) and C (${args.c.name}) must be f32, got ${args.a.dtype} and ${args.c.dtype}`);
  }
  const uniforms: UniformField[] = [
    ['M', 'u32', M], ['N', 'u32', N], ['K', 'u32', K], ['batch', 'u32', batch],
    ['strideA', 'u32', strideA], ['strideB', 'u32', strideB], ['strideC', 'u32', strideC],
    ['alpha', 'f32', args.alpha ?? 1], ['beta', 'f32', args.beta ?? 0],
  ];
  if (args.b.dtype === 'f16') {
    return createOp(ctx, {
      label: args.label ?? `matmul ${args.c.name}`,
      shader: SHADER_F16W,
      // The vec-load bindings need at least one vec4 of A and one eight-half word of B.
      entryPoint: args.a.size >= 4 && args.b.size >= 8 ? f16wEntryPoint(shape) : 'main_ragged',
      constants: { TRANS_A: args.transA ?? false, TRANS_B: args.transB ?? false, WG_X: WG, WG_Y: WG },
      uniforms,
      bindings: { 1: args.a, 2: args.b, 3: args.c },
      workgroups: [ceilDiv(N, WG * 8), ceilDiv(M, WG * 8), batch],
    });
  }
  if (args.b.dtype !== 'f32') throw new Error(`matmul ${args.label ?? ''}: B (${args.b.name}) must be f32 or f16, got ${args.b.dtype}`);
  // A vec4 binding needs at least one vec4 in the buffer (only a tiny operand lacks one).
  const bindable = args.a.size >= 4 && args.b.size >= 4;
  const requested = args.variant ?? matmulDefaults.variant;
  const fixed = bindable ? chooseMatmulVariant(shape) : 'ragged';
  const chosen = requested === 'auto' ? deviceChoice(ctx, shape, fixed) : requested;
  // The tiled kernels serve the model's three layouts (nt, nn, tn); both operands transposed never
  // occurs in the model and takes the fixed kernel.
  const variant = isTiled(chosen) && args.transA && args.transB ? fixed : chosen;
  if (isTiled(variant)) {
    return tiledMatmulOp(ctx, {
      label: args.label ?? `matmul ${args.c.name}`,
      variant,
      vec4: fixed === 'vec4',
      a: args.a, b: args.b, c: args.c, M, N, K,
      transA: args.transA ?? false, transB: args.transB ?? false,
      batch, strideA, strideB, strideC, alpha: args.alpha ?? 1, beta: args.beta ?? 0,
    });
  }
  if (variant === 'vec4' && !(bindable && matmulVec4Fits(shape))) {
    throw new Error(
      `matmul ${args.label ?? ''}: the vec4 variant needs the contiguous dimensions and batch strides of A and B to be multiples of 4 ` +
        `(M=${M} N=${N} K=${K} transA=${!!args.transA} transB=${!!args.transB} strides ${strideA}/${strideB})`,
    );
  }
  const block = BLOCK[variant];
  return createOp(ctx, {
    label: args.label ?? `matmul ${args.c.name}`,
    shader: SHADER,
    entryPoint: ENTRY_POINT[variant],
    constants: { TRANS_A: args.transA ?? false, TRANS_B: args.transB ?? false, WG_X: WG, WG_Y: WG },
    uniforms,
    bindings: { 1: args.a, 2: args.b, 3: args.c },
    workgroups: [ceilDiv(N, WG * block), ceilDiv(M, WG * block), batch],
  });
}
