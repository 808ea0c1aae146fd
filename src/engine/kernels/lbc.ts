/**
 * Dispatcher for shaders/lbc.wgsl: LoRAMoE's localized balancing constraint for one adapted layer.
 *
 *   lbcImportanceOp   Q[b, n] = sum over real tokens of w             (after router_forward)
 *   lbcLossOp         loss[lossIndex] = beta var(Z) / (mean(Z)^2 + 1e-10), dZ = dL/dZ   (Z = Q * I)
 *   lbcBackwardOp     dw[m, n] += valid[m] I[b, n] dZ[b, n]           (after gate_backward, before
 *                                                                      router_backward)
 * The boost I [B, N] comes from lbcGpuBoost (src/reference/lbc.ts) on the CPU, once per batch: the
 * direction's 1 +- delta with the importance rule's per-sample scale folded in.
 * Shapes and letters: see the header of shaders/lbc.wgsl.
 */
import type { GpuContext } from '../gpu';
import { ceilDiv, createOp, grid1d, type Op, type UniformField } from '../op';
import type { ShaderSource } from '../pipelines';
import type { DType, Tensor } from '../tensor';
import code from '../../../shaders/lbc.wgsl?raw';

const SHADER: ShaderSource = { name: 'lbc', code };

/** Invocations per workgroup of the 1-D kernels. */
const WG = 64;
/** The loss kernel's single workgroup (a power of two; B*N beyond it is looped over). */
const LOSS_WG = 64;

interface LbcOpDims {
  B: number;
  T: number;
  N: number;
}

function check(op: string, d: LbcOpDims): void {
  for (const k of ['B', 'T', 'N'] as const) {
    if (!Number.isInteger(d[k]) || d[k] < 1) throw new Error(`lbc ${op}: ${k} must be a positive integer, got ${d[k]}`);
  }
  if (d.B * d.N < 2) throw new Error(`lbc ${op}: the variance needs B*N >= 2 values, got B*N = ${d.B * d.N}`);
}

function need(op: string, role: string, t: Tensor, n: number, formula: string, dtype: DType = 'f32'): void {
  if (t.dtype !== dtype) throw new Error(`lbc ${op}: ${role} (${t.name}) must be ${dtype}, got ${t.dtype}`);
  if (t.size < n) throw new Error(`lbc ${op}: ${role} (${t.name}) has ${t.size} values, needs ${formula} = ${n}`);
}

function distinct(op: string, written: Record<string, Tensor>, read: Record<string, Tensor>): void {
  const all = [...Object.entries(written), ...Object.entries(read)];
  for (const [wn, wt] of Object.entries(written)) {
    for (const [rn, rt] of all) {
      if (rn !== wn && rt.buffer === wt.buffer) throw new Error(`lbc ${op}: ${wn} and ${rn} are the same tensor (${wt.name}); ${wn} is written`);
    }
  }
}

function uniforms(d: LbcOpDims, lossIndex = 0, beta = 0, gradScale = 1): UniformField[] {
  return [
    ['B', 'u32', d.B], ['T', 'u32', d.T], ['N', 'u32', d.N], ['lossIndex', 'u32', lossIndex],
    ['beta', 'f32', beta], ['gradScale', 'f32', gradScale],
  ];
}

export interface LbcImportanceArgs extends LbcOpDims {
  /** [B*T, N] router weights */
  w: Tensor;
  /** [B*T] u32, non-zero for real tokens */
  valid: Tensor<'u32'>;
  /** [B, N] output (overwrite) */
  q: Tensor;
  label?: string;
}

/** Q[b, n] = sum_t valid[b*T+t] * w[b*T+t, n] (overwrite). One invocation per (b, n). */
export function lbcImportanceOp(ctx: GpuContext, a: LbcImportanceArgs): Op {
  const op = 'lbc_importance';
  check(op, a);
  const { B, T, N } = a;
  need(op, 'w', a.w, B * T * N, 'B*T*N');
  need(op, 'valid', a.valid, B * T, 'B*T', 'u32');
  need(op, 'Q', a.q, B * N, 'B*N');
  distinct(op, { Q: a.q }, { w: a.w, valid: a.valid });
  return createOp(ctx, {
    label: a.label ?? `${op} ${a.q.name}`,
    shader: SHADER,
    entryPoint: op,
    constants: { WG },
    uniforms: uniforms(a),
    bindings: { 1: a.w, 2: a.valid, 3: a.q },
    workgroups: grid1d(ceilDiv(B * N, WG)),
  });
}

export interface LbcLossArgs extends LbcOpDims {
  /** [B, N] importance */
  q: Tensor;
  /** [B, N] boost I with the importance scale folded in (lbcGpuBoost) */
  boost: Tensor;
  /** [L] loss buffer; this layer writes loss[lossIndex] (overwrite) */
  loss: Tensor;
  lossIndex: number;
  /** [B, N] output (overwrite): gradScale * dL/dZ */
  dZ: Tensor;
  /** Weight of the constraint (the official blc_weight). */
  beta: number;
  /** Multiplies dZ only (e.g. 1 / micro-batches). Default 1. */
  gradScale?: number;
  label?: string;
}

/**
 * loss[lossIndex] = beta * var(Z) / (mean(Z)^2 + 1e-10) with Z = Q * I and the unbiased variance;
 * dZ = gradScale * dL/dZ (both overwrite). Exactly one workgroup.
 */
export function lbcLossOp(ctx: GpuContext, a: LbcLossArgs): Op {
  const op = 'lbc_loss';
  check(op, a);
  const { B, N } = a;
  need(op, 'Q', a.q, B * N, 'B*N');
  need(op, 'boost', a.boost, B * N, 'B*N');
  need(op, 'dZ', a.dZ, B * N, 'B*N');
  if (!Number.isInteger(a.lossIndex) || a.lossIndex < 0) throw new Error(`lbc ${op}: lossIndex must be a non-negative integer, got ${a.lossIndex}`);
  need(op, 'loss', a.loss, a.lossIndex + 1, 'lossIndex+1');
  if (!Number.isFinite(a.beta)) throw new Error(`lbc ${op}: beta must be finite, got ${a.beta}`);
  distinct(op, { loss: a.loss, dZ: a.dZ }, { Q: a.q, boost: a.boost });
  return createOp(ctx, {
    label: a.label ?? `${op} ${a.loss.name}[${a.lossIndex}]`,
    shader: SHADER,
    entryPoint: op,
    constants: { LOSS_WG },
    uniforms: uniforms(a, a.lossIndex, a.beta, a.gradScale ?? 1),
    bindings: { 1: a.q, 2: a.boost, 3: a.loss, 4: a.dZ },
    workgroups: [1],
  });
}

export interface LbcBackwardArgs extends LbcOpDims {
  /** [B*T] u32 */
  valid: Tensor<'u32'>;
  /** [B, N] */
  boost: Tensor;
  /** [B, N] from lbcLossOp */
  dZ: Tensor;
  /** [B*T, N] accumulated into (holds gate_backward's dw) */
  dw: Tensor;
  label?: string;
}

/** dw[m, n] += valid[m] * I[b, n] * dZ[b, n], b = m / T (accumulate). One invocation per (m, n). */
export function lbcBackwardOp(ctx: GpuContext, a: LbcBackwardArgs): Op {
  const op = 'lbc_backward';
  check(op, a);
  const { B, T, N } = a;
  need(op, 'valid', a.valid, B * T, 'B*T', 'u32');
  need(op, 'boost', a.boost, B * N, 'B*N');
  need(op, 'dZ', a.dZ, B * N, 'B*N');
  need(op, 'dw', a.dw, B * T * N, 'B*T*N');
  distinct(op, { dw: a.dw }, { valid: a.valid, boost: a.boost, dZ: a.dZ });
  return createOp(ctx, {
    label: a.label ?? `${op} ${a.dw.name}`,
    shader: SHADER,
    entryPoint: op,
    constants: { WG },
    uniforms: uniforms(a),
    bindings: { 1: a.valid, 2: a.boost, 3: a.dZ, 4: a.dw },
    workgroups: grid1d(ceilDiv(B * T * N, WG)),
  });
}
