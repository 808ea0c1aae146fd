/**
 * Dispatcher for shaders/loramoe.wgsl: the LoRAMoE router, the expert down-projections with
 * per-expert dropout, and their backward passes. The dense products of the layer are matmulOp:
 *
 * forward  1. y = x · W0ᵀ                          matmulOp (transB)
 *          2. w = softmax(x · Wrᵀ)                 routerForwardOp        (skipped in plain-LoRA mode;
 *                                                  setExpertMask knocks experts out at inference)
 *          3. h, g = expert down-proj, gated       expertDownForwardOp
 *          4. y += g · Bcatᵀ                       matmulOp (transB, beta 1)
 * backward a. dG = dY · Bcat; dBcat += dYᵀ · g     matmulOp, matmulOp (transA, beta 1)
 *          b. dh, dw                               gateBackwardOp
 *          c. dw += LBC gradient                   lbcBackwardOp (kernels/lbc.ts)
 *          d. dlogits                              routerBackwardOp       (skipped in plain-LoRA mode)
 *          e. dWr += dlogitsᵀ · x; dx = dY · W0; dx += dlogits · Wr      matmulOp x3
 *          f. dx += through the experts            expertDownBackwardInputOp
 *          g. dA += ...                            expertDownBackwardWeightOp
 * Shapes and letters: see the header of shaders/loramoe.wgsl and src/reference/loramoe.ts.
 *
 * Dropout: the three dropout ops of one layer must get the same p, seed and stream (the backward
 * regenerates the forward's mask). `setDropout` rewrites seed (and optionally p) in prepared ops
 * between steps; `stream` is fixed per adapted layer so layers draw independent masks.
 */
import type { GpuContext } from '../gpu';
import { ceilDiv, createOp, grid1d, type Op, setUniforms, type UniformField } from '../op';
import type { ShaderSource } from '../pipelines';
import type { Tensor } from '../tensor';
import { dropoutScale, dropoutThreshold } from '../../reference/dropout';
import { checkExpertMask, type ExpertMask, MASK_FIELDS, maskWords } from '../../method/expert-mask';
import code from '../../../shaders/loramoe.wgsl?raw';

const SHADER: ShaderSource = { name: 'loramoe', code };

/** Invocations per workgroup of every entry point (1-D grids). */
const WG = 64;

/** Rows (m) and columns (k) per block of the register-blocked expert kernels (see the shader header). */
const BLOCK = 8;

/**
 * Rank rows per block of expert_down_forward and expert_down_backward_weight (the shader's CHUNK):
 * 4 when a whole expert fits in 4, else 8. A block covers the rank rows of one expert only, so its
 * dropout bits are hashed once per chunk: rank 4 takes one chunk of 4 (no lanes wasted on clamped
 * rows), rank 5-8 one chunk of 8, rank 16 two.
 */
export function expertChunk(R: number): 4 | 8 {
  return R <= 4 ? 4 : 8;
}

interface DropoutParams {
  /** Drop probability in [0, 1); 0 (default) keeps everything: eval and inference. */
  p?: number;
  /** u32, changes every step. Default 0. */
  seed?: number;
  /** u32, fixed per adapted layer. Default 0. */
  stream?: number;
}

/** The expert ops' sizes: M rows of K input features, N experts of rank R. */
interface ExpertDims extends DropoutParams {
  M: number;
  K: number;
  N: number;
  R: number;
  label?: string;
}

interface Dims {
  M: number;
  K?: number;
  N: number;
  R?: number;
  scale?: number;
}

/** Ops built by this module that carry a dropout mask (the only ones setDropout may touch). */
const dropoutOps = new WeakSet<Op>();

function checkDims(op: string, d: Dims & DropoutParams): void {
  for (const k of ['M', 'K', 'N', 'R'] as const) {
    const v = d[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new Error(`loramoe ${op}: ${k} must be a positive integer, got ${v}`);
  }
  if (d.scale !== undefined && !Number.isFinite(d.scale)) throw new Error(`loramoe ${op}: scale must be finite, got ${d.scale}`);
  // dropoutThreshold / dropoutScale validate p; the uniform packer validates seed and stream as u32.
  if (d.p !== undefined) dropoutThreshold(d.p);
}

function uniforms(d: Dims & DropoutParams, mask: ExpertMask = []): UniformField[] {
  const p = d.p ?? 0;
  const words = maskWords(mask);
  return [
    ['M', 'u32', d.M], ['K', 'u32', d.K ?? 0], ['N', 'u32', d.N], ['R', 'u32', d.R ?? 0],
    ['scale', 'f32', d.scale ?? 0],
    ['seed', 'u32', d.seed ?? 0], ['threshold', 'u32', dropoutThreshold(p)], ['invKeep', 'f32', dropoutScale(p)],
    ['stream', 'u32', d.stream ?? 0],
    ...MASK_FIELDS.map((f, i): UniformField => [f, 'u32', words[i]]),
  ];
}

/** Throws unless `t` is an f32 tensor with at least n values. */
function need(op: string, role: string, t: Tensor, n: number, formula: string): void {
  if (t.dtype !== 'f32') throw new Error(`loramoe ${op}: ${role} (${t.name}) must be f32, got ${t.dtype}`);
  if (t.size < n) throw new Error(`loramoe ${op}: ${role} (${t.name}) has ${t.size} values, needs ${formula} = ${n}`);
}

/** A buffer written by a dispatch may not also be bound elsewhere in it (a WebGPU validation error). */
function distinct(op: string, written: Record<string, Tensor>, read: Record<string, Tensor>): void {
  const all = [...Object.entries(written), ...Object.entries(read)];
  for (const [wn, wt] of Object.entries(written)) {
    for (const [rn, rt] of all) {
      if (rn !== wn && rt.buffer === wt.buffer) throw new Error(`loramoe ${op}: ${wn} and ${rn} are the same tensor (${wt.name}); ${wn} is written`);
    }
  }
}

/**
 * 4-byte buffers bound where plain-LoRA mode has no tensor (w, dw): the shader declares the bindings
 * but never touches them when ROUTED is false. Separate read and write placeholders, so one dispatch
 * never binds the same buffer read-only and writable.
 */
const placeholders = new WeakMap<GpuContext, { read: GPUBuffer; write: GPUBuffer }>();
function placeholder(ctx: GpuContext, kind: 'read' | 'write'): GPUBuffer {
  let p = placeholders.get(ctx);
  if (!p) {
    const make = (label: string) =>
      ctx.device.createBuffer({ label, size: 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    p = { read: make('loramoe:placeholder-read'), write: make('loramoe:placeholder-write') };
    placeholders.set(ctx, p);
  }
  return p[kind];
}

function grid(count: number): [number, number] {
  return grid1d(ceilDiv(count, WG));
}

function routedMode(op: string, routed: boolean | undefined, N: number): boolean {
  const r = routed ?? true;
  if (!r && N !== 1) throw new Error(`loramoe ${op}: plain-LoRA mode (routed: false) needs N = 1, got N = ${N}`);
  return r;
}

// ---- forward ---------------------------------------------------------------------------------------

export interface RouterForwardArgs {
  /** [M, K] */
  x: Tensor;
  /** [N, K] */
  wr: Tensor;
  /** [M, N] output (overwrite) */
  w: Tensor;
  M: number;
  K: number;
  N: number;
  /** Experts knocked out (weight 0, the others renormalised); default none. setExpertMask changes it. */
  mask?: ExpertMask;
  /**
   * Which entry point: `vec4` (K % 4 == 0: eight experts at a time, vec4 reads), `scalar` (any K),
   * `auto` (default: vec4 where K allows). Both give the same bits.
   */
  variant?: 'auto' | 'scalar' | 'vec4';
  label?: string;
}

/** Router ops built by this module (the only ones setExpertMask may touch), with their expert count. */
const routerOps = new WeakMap<Op, number>();

/** w[m, :] = softmax(x[m] · Wrᵀ) over the experts not in `mask` (0 for those) (overwrite). One invocation per row. */
export function routerForwardOp(ctx: GpuContext, a: RouterForwardArgs): Op {
  const op = 'router_forward';
  checkDims(op, a);
  const { M, K, N } = a;
  const mask = checkExpertMask(a.mask ?? [], N);
  need(op, 'x', a.x, M * K, 'M*K');
  need(op, 'Wr', a.wr, N * K, 'N*K');
  need(op, 'w', a.w, M * N, 'M*N');
  distinct(op, { w: a.w }, { x: a.x, Wr: a.wr });
  const variant = a.variant ?? 'auto';
  if (variant === 'vec4' && K % 4 !== 0) throw new Error(`${op}: the vec4 variant needs K % 4 == 0, got K = ${K}`);
  const vec4 = variant === 'vec4' || (variant === 'auto' && K % 4 === 0);
  const o = createOp(ctx, {
    label: a.label ?? `${op} ${a.w.name}`,
    shader: SHADER,
    entryPoint: vec4 ? 'router_forward_vec4' : op,
    constants: { WG },
    uniforms: uniforms({ M, K, N }, mask),
    bindings: { 1: a.x, 2: a.wr, 3: a.w },
    workgroups: grid(M),
  });
  routerOps.set(o, N);
  return o;
}

/**
 * Rewrites the expert knockout of prepared router ops (every adapted projection's, so the whole
 * model runs with the same experts off); [] turns every expert back on. Checked against each op's
 * expert count: all experts off is refused.
 */
export function setExpertMask(ctx: GpuContext, ops: readonly Op[], mask: ExpertMask): void {
  const values: Record<string, number> = {};
  const words = maskWords(mask);
  MASK_FIELDS.forEach((f, i) => (values[f] = words[i]));
  for (const o of ops) {
    const N = routerOps.get(o);
    if (N === undefined || !o.uniformBuffer) throw new Error(`setExpertMask: ${o.label} is not a loramoe router op`);
    checkExpertMask(mask, N);
  }
  for (const o of ops) setUniforms(ctx, o, values);
}

export interface ExpertDownForwardArgs extends ExpertDims {
  /** [M, K] */
  x: Tensor;
  /** [N*R, K] stacked A_i */
  a: Tensor;
  /** [M, N] router weights; omit in plain-LoRA mode */
  w?: Tensor;
  /** [M, N*R] output (overwrite) */
  h: Tensor;
  /** [M, N*R] output (overwrite): scale * w * h */
  g: Tensor;
  /** alpha / r */
  scale: number;
  /** false: plain LoRA (N = 1, w ≡ 1). Default true. */
  routed?: boolean;
}

/**
 * h[m, j] = sum_k A[j, k] x[m, k] keep(m, i(j), k) / (1 - p);  g[m, j] = scale * w[m, i(j)] * h[m, j]
 * (both overwrite). One invocation per block of 8 rows × one expert's chunk of expertChunk(R) rank rows.
 */
export function expertDownForwardOp(ctx: GpuContext, a: ExpertDownForwardArgs): Op {
  const op = 'expert_down_forward';
  checkDims(op, a);
  const { M, K, N, R } = a;
  const routed = routedMode(op, a.routed, N);
  need(op, 'x', a.x, M * K, 'M*K');
  need(op, 'A', a.a, N * R * K, 'N*R*K');
  need(op, 'h', a.h, M * N * R, 'M*N*R');
  need(op, 'g', a.g, M * N * R, 'M*N*R');
  const read: Record<string, Tensor> = { x: a.x, A: a.a };
  if (routed) {
    if (!a.w) throw new Error(`loramoe ${op}: routed mode needs the router weights w [M, N]`);
    need(op, 'w', a.w, M * N, 'M*N');
    read.w = a.w;
  }
  distinct(op, { h: a.h, g: a.g }, read);
  const chunk = expertChunk(R);
  const o = createOp(ctx, {
    label: a.label ?? `${op} ${a.h.name}`,
    shader: SHADER,
    entryPoint: op,
    constants: { WG, ROUTED: routed, CHUNK: chunk },
    uniforms: uniforms(a),
    bindings: { 1: a.x, 2: a.a, 3: routed && a.w ? a.w : placeholder(ctx, 'read'), 4: a.h, 5: a.g },
    workgroups: grid(ceilDiv(M, BLOCK) * N * ceilDiv(R, chunk)),
  });
  dropoutOps.add(o);
  return o;
}

// ---- backward --------------------------------------------------------------------------------------

export interface GateBackwardArgs {
  /** [M, N*R] dLoss/dg */
  dG: Tensor;
  /** [M, N*R] saved h */
  h: Tensor;
  /** [M, N] saved router weights; omit in plain-LoRA mode */
  w?: Tensor;
  /** [M, N*R] output (overwrite) */
  dh: Tensor;
  /** [M, N] output (overwrite); omit in plain-LoRA mode */
  dw?: Tensor;
  M: number;
  N: number;
  R: number;
  scale: number;
  routed?: boolean;
  label?: string;
}

/**
 * dh[m, j] = scale * w[m, i(j)] * dG[m, j];  dw[m, i] = scale * sum_r dG[m, i*R+r] * h[m, i*R+r]
 * (both overwrite; dw only when routed). One invocation per (row, expert).
 */
export function gateBackwardOp(ctx: GpuContext, a: GateBackwardArgs): Op {
  const op = 'gate_backward';
  checkDims(op, a);
  const { M, N, R } = a;
  const routed = routedMode(op, a.routed, N);
  need(op, 'dG', a.dG, M * N * R, 'M*N*R');
  need(op, 'h', a.h, M * N * R, 'M*N*R');
  need(op, 'dh', a.dh, M * N * R, 'M*N*R');
  const read: Record<string, Tensor> = { dG: a.dG, h: a.h };
  const written: Record<string, Tensor> = { dh: a.dh };
  if (routed) {
    if (!a.w || !a.dw) throw new Error(`loramoe ${op}: routed mode needs w and dw [M, N]`);
    need(op, 'w', a.w, M * N, 'M*N');
    need(op, 'dw', a.dw, M * N, 'M*N');
    read.w = a.w;
    written.dw = a.dw;
  }
  distinct(op, written, read);
  return createOp(ctx, {
    label: a.label ?? `${op} ${a.dh.name}`,
    shader: SHADER,
    entryPoint: op,
    constants: { WG, ROUTED: routed },
    uniforms: uniforms(a),
    bindings: {
      1: a.dG,
      2: a.h,
      3: routed && a.w ? a.w : placeholder(ctx, 'read'),
      4: a.dh,
      5: routed && a.dw ? a.dw : placeholder(ctx, 'write'),
    },
    workgroups: grid(M * N),
  });
}

export interface RouterBackwardArgs {
  /** [M, N] saved router weights */
  w: Tensor;
  /** [M, N] dLoss/dw (gate part plus LBC) */
  dw: Tensor;
  /** [M, N] output (overwrite) */
  dLogits: Tensor;
  M: number;
  N: number;
  label?: string;
}

/** dlogits[m, i] = w[m, i] * (dw[m, i] - sum_k w[m, k] dw[m, k]) (overwrite). One invocation per (row, expert). */
export function routerBackwardOp(ctx: GpuContext, a: RouterBackwardArgs): Op {
  const op = 'router_backward';
  checkDims(op, a);
  const { M, N } = a;
  need(op, 'w', a.w, M * N, 'M*N');
  need(op, 'dw', a.dw, M * N, 'M*N');
  need(op, 'dLogits', a.dLogits, M * N, 'M*N');
  distinct(op, { dLogits: a.dLogits }, { w: a.w, dw: a.dw });
  return createOp(ctx, {
    label: a.label ?? `${op} ${a.dLogits.name}`,
    shader: SHADER,
    entryPoint: op,
    constants: { WG },
    uniforms: uniforms({ M, N }),
    bindings: { 1: a.w, 2: a.dw, 3: a.dLogits },
    workgroups: grid(M * N),
  });
}

export interface ExpertDownBackwardInputArgs extends ExpertDims {
  /** [M, N*R] dLoss/dh */
  dh: Tensor;
  /** [N*R, K] */
  a: Tensor;
  /** [M, K] accumulated into */
  dx: Tensor;
}

/**
 * dx[m, k] += sum_j dh[m, j] * A[j, k] * keep(m, i(j), k) / (1 - p) (accumulate; same dropout
 * parameters as the forward). One invocation per block of 8 rows × 8 input features.
 */
export function expertDownBackwardInputOp(ctx: GpuContext, a: ExpertDownBackwardInputArgs): Op {
  const op = 'expert_down_backward_input';
  checkDims(op, a);
  const { M, K, N, R } = a;
  need(op, 'dh', a.dh, M * N * R, 'M*N*R');
  need(op, 'A', a.a, N * R * K, 'N*R*K');
  need(op, 'dx', a.dx, M * K, 'M*K');
  distinct(op, { dx: a.dx }, { dh: a.dh, A: a.a });
  const o = createOp(ctx, {
    label: a.label ?? `${op} ${a.dx.name}`,
    shader: SHADER,
    entryPoint: op,
    constants: { WG },
    uniforms: uniforms(a),
    bindings: { 1: a.dh, 2: a.a, 3: a.dx },
    workgroups: grid(ceilDiv(M, BLOCK) * ceilDiv(K, BLOCK)),
  });
  dropoutOps.add(o);
  return o;
}

export interface ExpertDownBackwardWeightArgs extends ExpertDims {
  /** [M, N*R] dLoss/dh */
  dh: Tensor;
  /** [M, K] layer input */
  x: Tensor;
  /** [N*R, K] accumulated into (parameter gradient) */
  dA: Tensor;
}

/**
 * dA[j, k] += sum_m dh[m, j] * x[m, k] * keep(m, i(j), k) / (1 - p) (accumulate; same dropout
 * parameters as the forward). One invocation per chunk of expertChunk(R) rank rows of one expert ×
 * 8 input features.
 */
export function expertDownBackwardWeightOp(ctx: GpuContext, a: ExpertDownBackwardWeightArgs): Op {
  const op = 'expert_down_backward_weight';
  checkDims(op, a);
  const { M, K, N, R } = a;
  need(op, 'dh', a.dh, M * N * R, 'M*N*R');
  need(op, 'x', a.x, M * K, 'M*K');
  need(op, 'dA', a.dA, N * R * K, 'N*R*K');
  distinct(op, { dA: a.dA }, { dh: a.dh, x: a.x });
  const chunk = expertChunk(R);
  const o = createOp(ctx, {
    label: a.label ?? `${op} ${a.dA.name}`,
    shader: SHADER,
    entryPoint: op,
    constants: { WG, CHUNK: chunk },
    uniforms: uniforms(a),
    bindings: { 1: a.dh, 2: a.x, 3: a.dA },
    workgroups: grid(N * ceilDiv(R, chunk) * ceilDiv(K, BLOCK)),
  });
  dropoutOps.add(o);
  return o;
}

/**
 * Rewrites the dropout seed (and, when given, the probability) of prepared dropout ops: call once
 * per step with a fresh seed, before submitting that step. Pass every dropout op of a layer (its
 * forward and both backward ops) so they agree; p = 0 turns dropout off (evaluation).
 */
export function setDropout(ctx: GpuContext, ops: readonly Op[], params: { seed: number; p?: number }): void {
  if (!Number.isInteger(params.seed) || params.seed < 0 || params.seed > 0xffffffff) {
    throw new Error(`setDropout: seed must be a u32, got ${params.seed}`);
  }
  const values: Record<string, number> = { seed: params.seed };
  if (params.p !== undefined) {
    values.threshold = dropoutThreshold(params.p);
    values.invKeep = dropoutScale(params.p);
  }
  for (const o of ops) {
    if (!dropoutOps.has(o) || !o.uniformBuffer) throw new Error(`setDropout: ${o.label} is not a loramoe dropout op`);
    setUniforms(ctx, o, values);
  }
}
