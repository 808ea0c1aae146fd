/**
 * Dispatcher for shaders/attention.wgsl: causal self-attention with grouped key/value heads.
 *
 *   Q [B, Tq, H*D], K and V [B, Tk, KVH*D] (Tk = key capacity), O [B, Tq, H*D], L [B, H, Tq].
 *   Query t attends keys 0 .. pos0 + t; head h reads key/value head h / (H / KVH).
 *
 * Forward saves L (the row log-sum-exp) instead of the probabilities; the backward recomputes
 * P = exp(S - L). Backward order: delta (Dlt = dO · O), then query (dQ) and keyvalue (dK, dV), the
 * latter two independent of each other. All outputs are overwritten (activation gradients).
 *
 * Each of forward, query and keyvalue comes in three variants (entry points of the shader), chosen
 * per op by chooseAttentionVariant from the shape; every dispatcher takes `variant` to force one
 * (tests cover all paths).
 */
import type { GpuContext } from '../gpu';
import { createOp, grid1d, ceilDiv, type Op, type OpSpec, setUniforms, type UniformField } from '../op';
import type { ShaderSource } from '../pipelines';
import code from '../../../shaders/attention.wgsl?raw';
import type { RefAttentionDims } from '../../reference/attention';
import type { Tensor } from '../tensor';

const SHADER: ShaderSource = { name: 'attention', code };

/** Threads per workgroup (a power of two: the forward's reductions halve it). */
const WG = 64;

/**
 * Longest causal row (pos0 + Tq keys) the forward accepts: the workgroup variant's scores sit in
 * workgroup memory, MAX_KEYS * 4 bytes (MAX_KEYS = the key capacity rounded up to a power of two,
 * at most 2048: 8 KiB) plus WG * 4 bytes of reduction scratch, inside WebGPU's default 16 KiB. The rows variant has no such limit, but the same bound applies to both so that
 * the choice of variant never changes what a caller may ask for.
 */
export const ATTENTION_MAX_KEYS = 2048;

/**
 * `workgroup`: one workgroup per row (the entry points forward, backward_query, backward_keyvalue).
 * `rows`: one invocation per row (forward_rows, backward_query_rows, backward_keyvalue_rows).
 * `blocked`: one invocation per block of up to 4 rows sharing a key/value head (forward_blocked,
 * backward_query_blocked, backward_keyvalue_blocked; block shape from chooseAttentionBlock).
 * rows and blocked need D % 4 == 0 and D <= ATTENTION_ROWS_MAX_D. `auto` (default):
 * chooseAttentionVariant.
 */
export type AttentionVariant = 'auto' | 'rows' | 'blocked' | 'workgroup';

/**
 * Process-wide default for the `variant` argument of the dispatchers, 'auto' normally. Benchmarks
 * set it to force one variant everywhere (tools/bench/profile-step.ts compares against the
 * workgroup kernels this way).
 */
export const attentionDefaults: { variant: AttentionVariant } = { variant: 'auto' };

/** Longest head the rows variant holds in registers (the shader's Head: 32 vec4s). */
const ATTENTION_ROWS_MAX_D = 128;

/** Key capacity up to which chooseAttentionVariant picks the rows or blocked variant. */
export const ATTENTION_ROWS_MAX_KEYS = 256;

/** Key capacity from which chooseAttentionVariant prefers blocked to rows (see there). */
const ATTENTION_BLOCKED_MIN_KEYS = 64;

/** Whether the rows and blocked variants can run heads of size D (they read them as vec4s into registers). */
export function attentionRowsFit(D: number): boolean {
  return D % 4 === 0 && D <= ATTENTION_ROWS_MAX_D;
}

/**
 * Shape-dependent choice between the variants, made here only. The choice depends on the key
 * capacity Tk, not on pos0, so a KV-cache forward keeps its variant when setPos0 moves it.
 *
 * - blocked or rows when Tk <= ATTENTION_ROWS_MAX_KEYS (256) and the head fits (attentionRowsFit): a row of
 *   at most a few hundred keys is a short serial loop for one invocation, while a 64-thread
 *   workgroup per row leaves most threads idle (keys < 64 in the score phase, D < 64 in the
 *   output phase) and pays for its barriers; on SwiftShader each barrier is a context switch per
 *   4-lane subgroup, 0.1 to 0.3 ms per workgroup (the more workgroup memory, the more), which made
 *   attention the biggest cost of a small model's training step (31x faster with rows at T = 20).
 *   Blocked when Tk >= ATTENTION_BLOCKED_MIN_KEYS (64): each K/V (or Q/dO) row an invocation
 *   loads serves up to 8 rows instead of 1, and loads dominate on SwiftShader. Measured (CPU
 *   time, SwiftShader, one sequence) blocked vs rows: T = 256, H = 9 / KVH = 3 / D = 64: forward
 *   181 -> 59 ms, backward_query 187 -> 73, backward_keyvalue 209 -> 91; D = 24, H = 4 / KVH = 2:
 *   T = 256 about 1.3-1.7x, T = 128 1.5x (forward, query), T = 64 about even. Rows below 64 keys:
 *   at T = 32 blocked was slower (0.4-0.5 vs 0.3 ms: 16 invocations in one workgroup, one CPU
 *   thread, and blocks of 8 tokens mask up to 7 keys of rows that average 16).
 * - workgroup otherwise: long rows (long contexts, large KV caches) spread their keys over a
 *   workgroup instead of serialising thousands of keys in one invocation; and heads that are not
 *   a multiple of 4 or larger than 128.
 */
export function chooseAttentionVariant(dims: Pick<AttentionDims, 'Tk' | 'D'>): Exclude<AttentionVariant, 'auto'> {
  if (dims.Tk > ATTENTION_ROWS_MAX_KEYS || !attentionRowsFit(dims.D)) return 'workgroup';
  return dims.Tk >= ATTENTION_BLOCKED_MIN_KEYS ? 'blocked' : 'rows';
}

/**
 * Most rows one blocked invocation holds: two halves of 4 in the shader (a Rows of four heads, the
 * per-row scalars a vec4). 8 measured faster than 4 at D = 24 and in backward_query at D = 64.
 */
const ATTENTION_BLOCK_ROWS = 8;

/**
 * Block shape of forward_blocked / backward_query_blocked: rowsT consecutive tokens times rowsH
 * consecutive query heads of one key/value group (rowsH divides G = H / KVH), rowsT * rowsH <= 8.
 * Tokens first (min(Tq, 8)): training has Tq = T >= 8 and blocks of 8 tokens of one head. With
 * fewer queries (a KV-cache decode step, Tq = 1) the rest of the block is filled with heads of the
 * group, which read the same keys: the largest divisor of G that fits (Tq = 1: G itself up to 8).
 */
export function chooseAttentionBlock(dims: Pick<AttentionDims, 'Tq' | 'H' | 'KVH'>): { rowsH: number; rowsT: number } {
  const rowsT = Math.min(dims.Tq, ATTENTION_BLOCK_ROWS);
  const G = dims.H / dims.KVH;
  let rowsH = 1;
  for (let r = 2; r * rowsT <= ATTENTION_BLOCK_ROWS; r++) if (G % r === 0) rowsH = r;
  return { rowsH, rowsT };
}

/**
 * Threads per workgroup of the blocked kernels: a block carries up to 8 rows' work, so there are
 * 8x fewer invocations than rows (T = 256, H = 9: 288 forward blocks, 96 key blocks for KVH = 3);
 * small workgroups keep enough of them to spread over the CPU threads of a software adapter and to
 * balance the causal rows' unequal lengths.
 */
const WG_BLOCKED = 16;

function resolveVariant(what: string, d: Resolved, requested: AttentionVariant = attentionDefaults.variant): Exclude<AttentionVariant, 'auto'> {
  const v = requested === 'auto' ? chooseAttentionVariant(d) : requested;
  if ((v === 'rows' || v === 'blocked') && !attentionRowsFit(d.D)) {
    throw new Error(`${what}: the ${v} variant needs D % 4 == 0 and D <= ${ATTENTION_ROWS_MAX_D}, got D=${d.D}`);
  }
  return v;
}

/** Entry point, pipeline constants and grid of a query-row kernel (forward, backward_query). */
type Kernel = Pick<OpSpec, 'entryPoint' | 'constants' | 'workgroups'>;

function queryRowKernel(entry: 'forward' | 'backward_query', variant: Exclude<AttentionVariant, 'auto'>, d: Resolved, workgroupConstants: Record<string, number>): Kernel {
  const rows = d.B * d.H * d.Tq; // query rows (b, h, t)
  if (variant === 'rows') {
    return { entryPoint: `${entry}_rows`, constants: { WG, HEAD_D4: d.D / 4 }, workgroups: grid1d(ceilDiv(rows, WG)) }; // one invocation per row
  }
  if (variant === 'blocked') {
    const { rowsH, rowsT } = chooseAttentionBlock(d);
    const blocks = d.B * (d.H / rowsH) * ceilDiv(d.Tq, rowsT); // one invocation per block
    return {
      entryPoint: `${entry}_blocked`,
      constants: { WG: WG_BLOCKED, HEAD_D4: d.D / 4, ROWS_H: rowsH, ROWS_T: rowsT },
      workgroups: grid1d(ceilDiv(blocks, WG_BLOCKED)),
    };
  }
  return { entryPoint: entry, constants: workgroupConstants, workgroups: grid1d(rows) }; // one workgroup per row
}

/** Workgroup-memory row length for the workgroup forward: the capacity rounded up to a power of two. */
function maxKeysFor(Tk: number): number {
  let n = WG;
  while (n < Tk && n < ATTENTION_MAX_KEYS) n *= 2;
  return n;
}

/** The kernels take the reference's dimensions (src/reference/attention.ts: B, Tq, Tk, pos0, H, KVH, D, scale). */
export type AttentionDims = RefAttentionDims;

/** Dimensions with pos0 and scale filled in. */
type Resolved = Required<AttentionDims>;

function resolve(dims: AttentionDims, what: string): Resolved {
  const pos0 = dims.pos0 ?? 0;
  const scale = dims.scale ?? 1 / Math.sqrt(dims.D);
  for (const [name, value] of [['B', dims.B], ['Tq', dims.Tq], ['Tk', dims.Tk], ['H', dims.H], ['KVH', dims.KVH], ['D', dims.D]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`${what}: ${name} must be a positive integer, got ${value}`);
  }
  if (!Number.isInteger(pos0) || pos0 < 0) throw new Error(`${what}: pos0 must be a non-negative integer, got ${pos0}`);
  if (!Number.isFinite(scale)) throw new Error(`${what}: scale must be finite, got ${scale}`);
  if (dims.H % dims.KVH !== 0) throw new Error(`${what}: H=${dims.H} query heads must be a multiple of KVH=${dims.KVH} key/value heads`);
  if (pos0 + dims.Tq > dims.Tk) {
    throw new Error(`${what}: queries reach position pos0 + Tq - 1 = ${pos0 + dims.Tq - 1} but K/V hold only Tk=${dims.Tk} rows`);
  }
  return { B: dims.B, Tq: dims.Tq, Tk: dims.Tk, pos0, H: dims.H, KVH: dims.KVH, D: dims.D, scale };
}

function uniforms(d: Resolved): UniformField[] {
  return [
    ['B', 'u32', d.B], ['Tq', 'u32', d.Tq], ['Tk', 'u32', d.Tk], ['pos0', 'u32', d.pos0],
    ['H', 'u32', d.H], ['KVH', 'u32', d.KVH], ['D', 'u32', d.D], ['scale', 'f32', d.scale],
  ];
}

/** Throws unless `t` holds at least `n` values (`shape` names the expected layout). */
function need(what: string, role: string, t: Tensor, n: number, shape: string): void {
  if (t.size < n) throw new Error(`${what}: ${role} ${t.name} has ${t.size} values, needs ${n} (${shape})`);
}

function sizes(d: Resolved) {
  return {
    q: [d.B * d.Tq * d.H * d.D, `[B, Tq, H*D] = [${d.B}, ${d.Tq}, ${d.H * d.D}]`] as const,
    kv: [d.B * d.Tk * d.KVH * d.D, `[B, Tk, KVH*D] = [${d.B}, ${d.Tk}, ${d.KVH * d.D}]`] as const,
    row: [d.B * d.H * d.Tq, `[B, H, Tq] = [${d.B}, ${d.H}, ${d.Tq}]`] as const,
  };
}

/** Backward supports training shapes only: every sequence from position 0, as many keys as queries. */
function resolveBackward(dims: AttentionDims, what: string): Resolved {
  const d = resolve(dims, what);
  if (d.pos0 !== 0 || d.Tq !== d.Tk) {
    throw new Error(`${what}: the backward supports training shapes only (pos0 = 0 and Tq = Tk), got pos0=${d.pos0} Tq=${d.Tq} Tk=${d.Tk}`);
  }
  return d;
}

export interface AttentionForwardArgs {
  /** [B, Tq, H*D] */
  q: Tensor;
  /** [B, Tk, KVH*D] */
  k: Tensor;
  /** [B, Tk, KVH*D] */
  v: Tensor;
  /** [B, Tq, H*D], overwritten */
  o: Tensor;
  /** [B, H, Tq] row log-sum-exp, overwritten (saved for the backward) */
  l: Tensor;
  dims: AttentionDims;
  label?: string;
  /** Forces a kernel variant (tests, benchmarks); default `auto`. */
  variant?: AttentionVariant;
}

export interface AttentionForwardOp extends Op {
  /**
   * Moves the queries to positions pos0 .. pos0+Tq-1 for the next submissions (a KV-cache decode
   * step). Checked against the key capacity Tk and ATTENTION_MAX_KEYS.
   */
  setPos0(pos0: number): void;
}

/** Entry point `forward`: O = softmax(scale Q Kᵀ, causal) V per head, and L = row log-sum-exp. */
export function attentionForwardOp(ctx: GpuContext, args: AttentionForwardArgs): AttentionForwardOp {
  const what = `attention forward${args.label ? ` ${args.label}` : ''}`;
  const d = resolve(args.dims, what);
  if (d.pos0 + d.Tq > ATTENTION_MAX_KEYS) {
    throw new Error(
      `${what}: a query row attends up to pos0 + Tq = ${d.pos0 + d.Tq} keys; the forward holds at most ${ATTENTION_MAX_KEYS} (ATTENTION_MAX_KEYS)`,
    );
  }
  const s = sizes(d);
  need(what, 'Q', args.q, ...s.q);
  need(what, 'K', args.k, ...s.kv);
  need(what, 'V', args.v, ...s.kv);
  need(what, 'O', args.o, ...s.q);
  need(what, 'L', args.l, ...s.row);
  const variant = resolveVariant(what, d, args.variant);
  const op = createOp(ctx, {
    label: args.label ?? `attention forward ${args.o.name}`,
    shader: SHADER,
    ...queryRowKernel('forward', variant, d, { WG, MAX_KEYS: maxKeysFor(d.Tk) }),
    uniforms: uniforms(d),
    bindings: { 1: args.q, 2: args.k, 3: args.v, 4: args.o, 5: args.l },
  });
  return {
    ...op,
    setPos0(pos0: number) {
      if (!Number.isInteger(pos0) || pos0 < 0 || pos0 + d.Tq > d.Tk || pos0 + d.Tq > ATTENTION_MAX_KEYS) {
        throw new Error(`${what}: pos0 = ${pos0} puts queries past the key capacity Tk = ${d.Tk} (Tq = ${d.Tq})`);
      }
      setUniforms(ctx, op, { pos0 });
    },
  };
}

export interface AttentionBackwardDeltaArgs {
  /** [B, T, H*D] gradient of O */
  dO: Tensor;
  /** [B, T, H*D] the forward's output */
  o: Tensor;
  /** [B, H, T] scratch, overwritten with dO · O per row */
  dlt: Tensor;
  dims: AttentionDims;
  label?: string;
}

/** Entry point `backward_delta`: Dlt[b,h,t] = sum_d dO[b,t,h,d] * O[b,t,h,d] (overwrite). */
export function attentionBackwardDeltaOp(ctx: GpuContext, args: AttentionBackwardDeltaArgs): Op {
  const what = `attention backward_delta${args.label ? ` ${args.label}` : ''}`;
  const d = resolveBackward(args.dims, what);
  const s = sizes(d);
  need(what, 'dO', args.dO, ...s.q);
  need(what, 'O', args.o, ...s.q);
  need(what, 'Dlt', args.dlt, ...s.row);
  return createOp(ctx, {
    label: args.label ?? `attention backward_delta ${args.dlt.name}`,
    shader: SHADER,
    entryPoint: 'backward_delta',
    constants: { WG },
    uniforms: uniforms(d),
    bindings: { 4: args.o, 6: args.dO, 7: args.dlt },
    workgroups: grid1d(ceilDiv(d.B * d.H * d.Tq, WG)), // one thread per query row
  });
}

export interface AttentionBackwardArgs {
  /** [B, T, H*D] gradient of O */
  dO: Tensor;
  /** [B, T, H*D] */
  q: Tensor;
  /** [B, T, KVH*D] */
  k: Tensor;
  /** [B, T, KVH*D] */
  v: Tensor;
  /** [B, H, T] saved by the forward */
  l: Tensor;
  /** [B, H, T] from backward_delta */
  dlt: Tensor;
  dims: AttentionDims;
  label?: string;
  /** Forces a kernel variant of backward_query and backward_keyvalue; default `auto`. */
  variant?: AttentionVariant;
}

/** The backward's resolved dimensions and sizes, every input it reads (dO, Q, K, V, L, Dlt) checked against them. */
function backwardInputs(args: AttentionBackwardArgs, what: string): { d: Resolved; s: ReturnType<typeof sizes> } {
  const d = resolveBackward(args.dims, what);
  const s = sizes(d);
  need(what, 'dO', args.dO, ...s.q);
  need(what, 'Q', args.q, ...s.q);
  need(what, 'K', args.k, ...s.kv);
  need(what, 'V', args.v, ...s.kv);
  need(what, 'L', args.l, ...s.row);
  need(what, 'Dlt', args.dlt, ...s.row);
  return { d, s };
}

/** Entry point `backward_query`: dQ_t = scale * sum_s P_ts (dO_t · V_s - Dlt_t) K_s (overwrite). */
export function attentionBackwardQueryOp(ctx: GpuContext, args: AttentionBackwardArgs & { dq: Tensor }): Op {
  const what = `attention backward_query${args.label ? ` ${args.label}` : ''}`;
  const { d, s } = backwardInputs(args, what);
  need(what, 'dQ', args.dq, ...s.q);
  return createOp(ctx, {
    label: args.label ?? `attention backward_query ${args.dq.name}`,
    shader: SHADER,
    ...queryRowKernel('backward_query', resolveVariant(what, d, args.variant), d, { WG }),
    uniforms: uniforms(d),
    bindings: { 1: args.q, 2: args.k, 3: args.v, 5: args.l, 6: args.dO, 7: args.dlt, 8: args.dq },
  });
}

/**
 * Entry point `backward_keyvalue`: for each key row s of key/value head kvh, summed over the
 * H/KVH query heads of its group and the queries t >= s (overwrite):
 *   dV_s = sum P_ts dO_t,   dK_s = scale * sum P_ts (dO_t · V_s - Dlt_t) Q_t
 */
export function attentionBackwardKeyValueOp(ctx: GpuContext, args: AttentionBackwardArgs & { dk: Tensor; dv: Tensor }): Op {
  const what = `attention backward_keyvalue${args.label ? ` ${args.label}` : ''}`;
  const { d, s } = backwardInputs(args, what);
  need(what, 'dK', args.dk, ...s.kv);
  need(what, 'dV', args.dv, ...s.kv);
  const rows = d.B * d.KVH * d.Tk; // key rows (b, kvh, s)
  const variant = resolveVariant(what, d, args.variant);
  const rowsK = Math.min(d.Tk, ATTENTION_BLOCK_ROWS); // keys per blocked invocation (shader ROWS_K <= 8)
  const kernel: Kernel =
    variant === 'rows'
      ? { entryPoint: 'backward_keyvalue_rows', constants: { WG, HEAD_D4: d.D / 4 }, workgroups: grid1d(ceilDiv(rows, WG)) } // one invocation per key row
      : variant === 'blocked'
        ? {
            entryPoint: 'backward_keyvalue_blocked',
            constants: { WG: WG_BLOCKED, HEAD_D4: d.D / 4, ROWS_K: rowsK },
            workgroups: grid1d(ceilDiv(d.B * d.KVH * ceilDiv(d.Tk, rowsK), WG_BLOCKED)), // one invocation per block of rowsK keys
          }
        : { entryPoint: 'backward_keyvalue', constants: { WG }, workgroups: grid1d(rows) }; // one workgroup per key row
  return createOp(ctx, {
    label: args.label ?? `attention backward_keyvalue ${args.dk.name}`,
    shader: SHADER,
    ...kernel,
    uniforms: uniforms(d),
    bindings: { 1: args.q, 2: args.k, 3: args.v, 5: args.l, 6: args.dO, 7: args.dlt, 9: args.dk, 10: args.dv },
  });
}

/**
 * The whole attention backward in dispatch order: delta, query, keyvalue. `o` is the forward's
 * output, `dlt` a [B, H, T] scratch tensor; dQ, dK, dV are overwritten.
 */
export function attentionBackwardOps(
  ctx: GpuContext,
  args: AttentionBackwardArgs & { o: Tensor; dq: Tensor; dk: Tensor; dv: Tensor },
): Op[] {
  return [
    attentionBackwardDeltaOp(ctx, { dO: args.dO, o: args.o, dlt: args.dlt, dims: args.dims, label: args.label && `${args.label} delta` }),
    attentionBackwardQueryOp(ctx, { ...args, label: args.label && `${args.label} query` }),
    attentionBackwardKeyValueOp(ctx, { ...args, label: args.label && `${args.label} keyvalue` }),
  ];
}
