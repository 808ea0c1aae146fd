/**
 * Dispatchers for shaders/rope.wgsl (rotary position embedding, Hugging Face's rotate_half
 * convention):
 *
 *   ropeForwardOp   x [M, nHeads*D] -> out [M, nHeads*D]   out = rope(x) (overwrite)
 *   ropeBackwardOp  dy [M, nHeads*D] -> dx [M, nHeads*D]   dx = R^T dy (overwrite)
 * Passing the same tensor as x and out (dy and dx) rotates it in place (the *_inplace entry points).
 *
 * cos, sin: [maxPos, D/2] float32 tables from ropeTables (src/reference/rope.ts), uploaded once.
 * Row m has position pos0 + (m % T). Uniforms: M, nHeads, D, T, pos0, maxPos.
 *
 * pos0 can change without rebuilding the op (a KV-cache decode step: T = 1, M = B, pos0 = cache
 * length): `op.setPos0(n)` writes the uniform with queue.writeBuffer, which takes effect for the
 * next queue.submit. All dispatches of the op in one submission see the same pos0.
 */
import type { GpuContext } from '../gpu';
import { ceilDiv, createOp, grid1d, type Op, setUniforms } from '../op';
import type { ShaderSource } from '../pipelines';
import code from '../../../shaders/rope.wgsl?raw';
import type { Tensor } from '../tensor';
import { checkSizes } from './checks';

const SHADER: ShaderSource = { name: 'rope', code };

const WG = 64;

interface RopeCommon {
  cos: Tensor;
  sin: Tensor;
  /** Rows (tokens), B*T. */
  M: number;
  /** Heads in this tensor: H for queries, KVH for keys. */
  nHeads: number;
  /** Head dim (even). */
  D: number;
  /** Sequence length: row m has position pos0 + (m % T). M must be a multiple of T. */
  T: number;
  /** Position of each sequence's first row (default 0). */
  pos0?: number;
  /** Rows of the cos/sin tables. */
  maxPos: number;
  label?: string;
  /** Largest workgroup count per grid dimension (tests lower it to exercise the folded grid). */
  maxGridDim?: number;
}

export interface RopeForwardArgs extends RopeCommon {
  x: Tensor;
  out: Tensor;
}

export interface RopeBackwardArgs extends RopeCommon {
  dy: Tensor;
  dx: Tensor;
}

export interface RopeOp extends Op {
  /** Sets pos0 for the next submissions (validated against maxPos). */
  setPos0(pos0: number): void;
}

function ropeOp(ctx: GpuContext, op: string, entryPoint: string, a: RopeCommon, src: Tensor, dst: Tensor, names: [string, string]): RopeOp {
  const { M, nHeads, D, T, maxPos } = a;
  checkSizes(op, { M, nHeads, D, T, maxPos });
  if (D === 0 || D % 2 !== 0) throw new Error(`${op}: head dim D must be positive and even, got ${D}`);
  if (T === 0) throw new Error(`${op}: T must be at least 1`);
  if (M % T !== 0) throw new Error(`${op}: M=${M} rows must be a multiple of T=${T} (M = B*T)`);
  const half = D / 2;
  const width = nHeads * D;
  const need = (role: string, t: Tensor, n: number, shape: string) => {
    if (t.dtype !== 'f32') throw new Error(`${op}: ${role} ${t.name} must be f32, got ${t.dtype}`);
    if (t.size < n) throw new Error(`${op}: ${role} ${t.name} has ${t.size} values, needs ${shape} = ${n}`);
  };
  need(names[0], src, M * width, `[M=${M}, nHeads*D=${width}]`);
  need(names[1], dst, M * width, `[M=${M}, nHeads*D=${width}]`);
  need('cos', a.cos, maxPos * half, `[maxPos=${maxPos}, D/2=${half}]`);
  need('sin', a.sin, maxPos * half, `[maxPos=${maxPos}, D/2=${half}]`);
  const inPlace = src === dst;
  for (const t of inPlace ? [a.cos, a.sin] : [src, a.cos, a.sin]) {
    if (t.buffer === dst.buffer) throw new Error(`${op}: ${names[1]} ${dst.name} shares its buffer with ${t.name} (pass the same tensor as ${names[0]} and ${names[1]} to rotate in place)`);
  }
  // Rows use positions pos0 .. pos0 + min(T, M) - 1.
  const checkPos0 = (pos0: number) => {
    if (!Number.isInteger(pos0) || pos0 < 0) throw new Error(`${op}: pos0 must be a non-negative integer, got ${pos0}`);
    const last = pos0 + Math.min(T, M);
    if (M > 0 && last > maxPos) throw new Error(`${op}: positions up to ${last - 1} (pos0=${pos0}, T=${T}) are past the cos/sin tables (maxPos=${maxPos})`);
  };
  const pos0 = a.pos0 ?? 0;
  checkPos0(pos0);
  const pairs = M * nHeads * half;
  const base = createOp(ctx, {
    label: a.label ?? `${op} ${dst.name}`,
    shader: SHADER,
    entryPoint: inPlace ? `${entryPoint}_inplace` : entryPoint,
    constants: { WG },
    uniforms: [['M', 'u32', M], ['nHeads', 'u32', nHeads], ['D', 'u32', D], ['T', 'u32', T], ['pos0', 'u32', pos0], ['maxPos', 'u32', maxPos]],
    bindings: inPlace ? { 2: a.cos, 3: a.sin, 4: dst } : { 1: src, 2: a.cos, 3: a.sin, 4: dst },
    workgroups: grid1d(ceilDiv(pairs, WG), Math.min(a.maxGridDim ?? 65535, ctx.adapter.limits.maxComputeWorkgroupsPerDimension)),
  });
  return {
    ...base,
    setPos0(p: number) {
      checkPos0(p);
      setUniforms(ctx, base, { pos0: p });
    },
  };
}

/** out = rope(x) at positions pos0 + (m % T); x [M, nHeads*D] itself when out is x. */
export function ropeForwardOp(ctx: GpuContext, args: RopeForwardArgs): RopeOp {
  return ropeOp(ctx, 'rope forward', 'forward', args, args.x, args.out, ['x', 'out']);
}

/** dx = R^T dy (the rotation by minus the angle); dx overwritten. */
export function ropeBackwardOp(ctx: GpuContext, args: RopeBackwardArgs): RopeOp {
  return ropeOp(ctx, 'rope backward', 'backward', args, args.dy, args.dx, ['dy', 'dx']);
}
