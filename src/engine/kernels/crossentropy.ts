/**
 * Dispatcher for shaders/crossentropy.wgsl: token cross-entropy over the vocabulary with PyTorch's
 * semantics (F.cross_entropy, ignore_index = -100, mean over counted rows).
 *
 * A step records, in order:
 *   ceForwardOp   logits [rows, V], labels [M] -> lse [M], rowLoss [M]   (per chunk of rows)
 *   ceReduceOp    labels [M], rowLoss [M]      -> stats [4] = [loss, count, invalid, 0]
 *   ceBackwardOp  logits, labels, lse, stats   -> dlogits [rows, V] (overwrite; per chunk), or the
 *                 logits overwritten in place by their gradient (`inPlace`)
 * The loss and count stay on the GPU (the backward reads count from stats); read stats back for
 * metrics only. stats[2] counts labels that are neither -100 nor in 0..V-1: such rows are treated
 * as ignored (never read out of bounds) and the caller should report a non-zero value as an error.
 *
 * Memory: WebGPU forbids one buffer bound read-only and writable in one dispatch, so a separate
 * dlogits is a second [rows, V] f32 buffer, 4·rows·V bytes (192 MiB for 1024 rows at V = 49152).
 * `inPlace` (ce_backward_inplace) writes the gradient over the logits instead, for callers that do
 * not read the logits after the backward (the training graph). Pass rows < M with rowOffset to work
 * through the batch in chunks.
 */
import type { GpuContext } from '../gpu';
import { createOp, grid1d, type Op, setUniforms } from '../op';
import type { ShaderSource } from '../pipelines';
import code from '../../../shaders/crossentropy.wgsl?raw';
import type { Tensor } from '../tensor';

const SHADER: ShaderSource = { name: 'crossentropy', code };

/** Threads per workgroup (a power of two: the shader's reductions halve it). */
const WG = 256;

/** Threads per workgroup of ce_forward_rows (one row per thread). */
const ROWS_WG = 64;

/**
 * ce_forward variants: `rows` (ce_forward_rows, one invocation per row), `workgroup` (ce_forward,
 * one workgroup per row); `auto` (default): chooseCeForwardVariant.
 */
export type CeForwardVariant = 'auto' | 'rows' | 'workgroup';

/**
 * Process-wide default for CeForwardArgs.variant, 'auto' normally. Benchmarks set it to force one
 * variant everywhere (tools/bench/profile-step.ts compares against the workgroup kernel this way).
 */
export const ceDefaults: { forwardVariant: CeForwardVariant } = { forwardVariant: 'auto' };

/** Vocabulary size up to which chooseCeForwardVariant picks the rows variant. */
export const CE_ROWS_MAX_V = 4096;

/**
 * Shape-dependent choice for ce_forward (made here only). Up to 4096 logits a row is a short
 * serial loop (two passes) for one invocation, and a batch has B*T rows, enough invocations for
 * any device; a 256-thread workgroup per row instead spends its time in the reduction's barriers
 * (on SwiftShader ~0.7 ms per row, against microseconds of arithmetic at V = 900). Real
 * vocabularies (32k-150k) keep the workgroup kernel: one invocation would serialise the whole
 * row.
 */
export function chooseCeForwardVariant(V: number): Exclude<CeForwardVariant, 'auto'> {
  return V <= CE_ROWS_MAX_V ? 'rows' : 'workgroup';
}

/** Label value of a position that does not count (PyTorch's default ignore_index). */
export const IGNORE_INDEX = -100;

/** Layout of the ce_reduce output. */
export const CE_STATS = { loss: 0, count: 1, invalid: 2, size: 4 } as const;

interface CeRowArgs {
  /** [rows, V] logits of this call's rows (may be larger than rows·V, e.g. a reused chunk buffer). */
  logits: Tensor;
  /** [M] i32 labels for the whole batch. */
  labels: Tensor;
  /** [M] saved log-sum-exp per row. */
  lse: Tensor;
  V: number;
  /** Rows of this call; default: logits.size / V. */
  rows?: number;
  /** Global index of this call's first row in labels / lse / rowLoss; default 0. */
  rowOffset?: number;
  label?: string;
}

export interface CeForwardArgs extends CeRowArgs {
  /** [M] per-row loss, 0 for ignored rows (overwrite). */
  rowLoss: Tensor;
  /** Forces a kernel variant (tests, benchmarks); default `auto`. */
  variant?: CeForwardVariant;
}

export interface CeReduceArgs {
  labels: Tensor;
  rowLoss: Tensor;
  /** [4] f32: [loss, count, invalid, 0] (overwrite). */
  stats: Tensor;
  V: number;
  /** Rows to reduce; default labels.size. */
  M?: number;
  label?: string;
}

export interface CeBackwardArgs extends CeRowArgs {
  /** [4] stats written by ceReduceOp (count is read from it). */
  stats: Tensor;
  /**
   * [rows, V] gradient of gradScale · loss (overwrite): a different tensor from logits, or the
   * logits tensor itself to overwrite the logits with their gradient (ce_backward_inplace).
   */
  dlogits: Tensor;
  /** Upstream gradient of the mean loss: 1, or 1 / accumulation steps. Default 1. */
  gradScale?: number;
}

function fail(op: string, label: string | undefined, msg: string): never {
  throw new Error(`${op}${label ? ` ${label}` : ''}: ${msg}`);
}

function checkRows(op: string, a: CeRowArgs): { rows: number; rowOffset: number } {
  const { V } = a;
  if (!Number.isInteger(V) || V < 1) fail(op, a.label, `V must be a positive integer, got ${V}`);
  const rows = a.rows ?? Math.floor(a.logits.size / V);
  const rowOffset = a.rowOffset ?? 0;
  if (!Number.isInteger(rows) || rows < 0) fail(op, a.label, `rows must be a non-negative integer, got ${rows}`);
  if (!Number.isInteger(rowOffset) || rowOffset < 0) fail(op, a.label, `rowOffset must be a non-negative integer, got ${rowOffset}`);
  if (rows * V > 0xffffffff) fail(op, a.label, `rows·V = ${rows * V} exceeds the u32 index range`);
  if (a.logits.dtype !== 'f32') fail(op, a.label, `logits ${a.logits.name} must be f32, got ${a.logits.dtype}`);
  if (a.logits.size < rows * V) {
    fail(op, a.label, `logits ${a.logits.name} has ${a.logits.size} values, needs rows·V = ${rows}·${V} = ${rows * V}`);
  }
  if (a.labels.dtype !== 'i32') fail(op, a.label, `labels ${a.labels.name} must be i32, got ${a.labels.dtype}`);
  const end = rowOffset + rows;
  if (a.labels.size < end) fail(op, a.label, `labels ${a.labels.name} has ${a.labels.size} values, needs rowOffset + rows = ${end}`);
  if (a.lse.size < end) fail(op, a.label, `lse ${a.lse.name} has ${a.lse.size} values, needs rowOffset + rows = ${end}`);
  return { rows, rowOffset };
}

/** lse[g] = logsumexp(logits[r]); rowLoss[g] = lse[g] - logits[r, label] or 0; g = rowOffset + r. */
export function ceForwardOp(ctx: GpuContext, a: CeForwardArgs): Op {
  const { rows, rowOffset } = checkRows('ce_forward', a);
  if (a.rowLoss.size < rowOffset + rows) {
    fail('ce_forward', a.label, `rowLoss ${a.rowLoss.name} has ${a.rowLoss.size} values, needs rowOffset + rows = ${rowOffset + rows}`);
  }
  const requested = a.variant ?? ceDefaults.forwardVariant;
  const variant = requested === 'auto' ? chooseCeForwardVariant(a.V) : requested;
  return createOp(ctx, {
    label: a.label ?? `ce_forward ${a.logits.name}`,
    shader: SHADER,
    ...(variant === 'rows'
      ? { entryPoint: 'ce_forward_rows', constants: { WG: ROWS_WG }, workgroups: grid1d(Math.ceil(rows / ROWS_WG)) }
      : { entryPoint: 'ce_forward', constants: { WG }, workgroups: grid1d(rows) }),
    uniforms: [['rows', 'u32', rows], ['V', 'u32', a.V], ['rowOffset', 'u32', rowOffset], ['gradScale', 'f32', 1]],
    uniformStruct: 'RowDims',
    bindings: { 1: a.logits, 2: a.labels, 3: a.lse, 4: a.rowLoss },
  });
}

/** stats = [sum of rowLoss over counted rows / count (0 when count = 0), count, invalid labels, 0]. */
export function ceReduceOp(ctx: GpuContext, a: CeReduceArgs): Op {
  const M = a.M ?? a.labels.size;
  const op = 'ce_reduce';
  if (!Number.isInteger(a.V) || a.V < 1) fail(op, a.label, `V must be a positive integer, got ${a.V}`);
  if (!Number.isInteger(M) || M < 0) fail(op, a.label, `M must be a non-negative integer, got ${M}`);
  if (a.labels.dtype !== 'i32') fail(op, a.label, `labels ${a.labels.name} must be i32, got ${a.labels.dtype}`);
  if (a.labels.size < M) fail(op, a.label, `labels ${a.labels.name} has ${a.labels.size} values, needs M = ${M}`);
  if (a.rowLoss.size < M) fail(op, a.label, `rowLoss ${a.rowLoss.name} has ${a.rowLoss.size} values, needs M = ${M}`);
  if (a.stats.size < CE_STATS.size) fail(op, a.label, `stats ${a.stats.name} has ${a.stats.size} values, needs ${CE_STATS.size}`);
  return createOp(ctx, {
    label: a.label ?? `ce_reduce ${a.stats.name}`,
    shader: SHADER,
    entryPoint: 'ce_reduce',
    constants: { WG },
    uniforms: [['M', 'u32', M], ['V', 'u32', a.V]],
    uniformStruct: 'ReduceDims',
    bindings: { 2: a.labels, 4: a.rowLoss, 5: a.stats },
    workgroups: [1],
  });
}

/** dlogits[r, v] = gradScale · (softmax(logits[r])[v] - [v == label]) / count, 0 for ignored rows. */
export function ceBackwardOp(ctx: GpuContext, a: CeBackwardArgs): Op {
  const { rows } = checkRows('ce_backward', a);
  const op = 'ce_backward';
  const inPlace = a.dlogits.buffer === a.logits.buffer;
  if (inPlace && a.dlogits !== a.logits) fail(op, a.label, `dlogits ${a.dlogits.name} shares a buffer with logits ${a.logits.name} but is a different tensor; pass the logits tensor itself to work in place`);
  if (a.dlogits.size < rows * a.V) {
    fail(op, a.label, `dlogits ${a.dlogits.name} has ${a.dlogits.size} values, needs rows·V = ${rows}·${a.V} = ${rows * a.V}`);
  }
  if (a.stats.size < CE_STATS.size) fail(op, a.label, `stats ${a.stats.name} has ${a.stats.size} values, needs ${CE_STATS.size}`);
  return createOp(ctx, {
    label: a.label ?? `ce_backward ${a.dlogits.name}`,
    shader: SHADER,
    entryPoint: inPlace ? 'ce_backward_inplace' : 'ce_backward',
    constants: { WG },
    uniforms: [
      ['rows', 'u32', rows], ['V', 'u32', a.V], ['rowOffset', 'u32', a.rowOffset ?? 0], ['gradScale', 'f32', a.gradScale ?? 1],
    ],
    uniformStruct: 'RowDims',
    bindings: inPlace ? { 2: a.labels, 3: a.lse, 5: a.stats, 6: a.dlogits } : { 1: a.logits, 2: a.labels, 3: a.lse, 5: a.stats, 6: a.dlogits },
    workgroups: grid1d(rows),
  });
}

/**
 * Changes the gradScale of a prepared ceBackwardOp (e.g. when the number of accumulation steps
 * changes) without rebuilding its bind group. Takes effect for submissions after this call.
 */
export function setCeGradScale(ctx: GpuContext, op: Op, gradScale: number): void {
  if (!op.uniformBuffer || !/^crossentropy:ce_backward(_inplace)?:/.test(op.pipeline.label)) {
    throw new Error(`setCeGradScale: ${op.label} is not a ceBackwardOp`);
  }
  if (!Number.isFinite(gradScale)) throw new Error(`setCeGradScale: gradScale must be finite, got ${gradScale}`);
  setUniforms(ctx, op, { gradScale });
}
