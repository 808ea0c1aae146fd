/**
 * Dispatcher for shaders/optimizer.wgsl: global gradient-norm clipping (as
 * torch.nn.utils.clip_grad_norm_) and AdamW (as torch.optim.AdamW with foreach = False).
 *
 * Built once per model:
 *   const hyper = new AdamWHyper(ctx);
 *   const clip = planGradClip(ctx, grads, maxNorm);            // grad_sumsq × tensors, finalize
 *   const adam = params.map((p) => adamwOp(ctx, { ...p, hyper, stats: clip.stats, zeroGrad: true }));
 * Each optimizer step:
 *   hyper.set(step, settings);                                  // queue.writeBuffer, before submit
 *   runOps(ctx, [...clip.ops, ...adam]);
 * clip.stats = [norm, scale, nonFinite, 0] can be read back afterwards for metrics. With
 * nonFinite = 1 the AdamW ops skip the update (torch would write NaN into every parameter).
 */
import type { GpuContext } from '../gpu';
import { ceilDiv, checkUniformStruct, createOp, grid1d, packUniforms, type Op, setUniforms } from '../op';
import type { ShaderSource } from '../pipelines';
import code from '../../../shaders/optimizer.wgsl?raw';
import { createTensor, type Tensor } from '../tensor';
import type { AdamWSettings } from '../../reference/optimizer';

const SHADER: ShaderSource = { name: 'optimizer', code };

/** Threads per workgroup (a power of two: the reductions halve it). */
const WG = 256;
/** Values each grad_sumsq thread sums; a workgroup covers GRAD_CHUNK values. */
const ITEMS = 8;
export const GRAD_CHUNK = WG * ITEMS;

/** Layout of the clipping stats buffer. */
export const CLIP_STATS = { norm: 0, scale: 1, nonFinite: 2, size: 4 } as const;

/** The reference's settings (lr, beta1, beta2, eps, weightDecay): one type on both sides. */
export type { AdamWSettings };

/** torch.optim.AdamW's defaults (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2). */
const ADAMW_DEFAULTS: AdamWSettings = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2 };

/**
 * The values written to the Hyper uniform for optimizer step `step` (1-based, torch's state['step']
 * after its increment). Derived values in float64 as torch computes them in Python floats.
 */
function adamwHyperFields(step: number, s: AdamWSettings) {
  if (!Number.isInteger(step) || step < 1) throw new Error(`AdamW step must be an integer >= 1, got ${step}`);
  if (!(s.beta1 >= 0 && s.beta1 < 1)) throw new Error(`AdamW beta1 must be in [0, 1), got ${s.beta1}`);
  if (!(s.beta2 >= 0 && s.beta2 < 1)) throw new Error(`AdamW beta2 must be in [0, 1), got ${s.beta2}`);
  if (!(s.lr >= 0)) throw new Error(`AdamW lr must be >= 0, got ${s.lr}`);
  if (!(s.eps >= 0)) throw new Error(`AdamW eps must be >= 0, got ${s.eps}`);
  if (!(s.weightDecay >= 0)) throw new Error(`AdamW weightDecay must be >= 0, got ${s.weightDecay}`);
  const bc1 = 1 - s.beta1 ** step;
  const bc2 = 1 - s.beta2 ** step;
  return [
    ['lr', 'f32', s.lr],
    ['beta1', 'f32', s.beta1],
    ['beta2', 'f32', s.beta2],
    ['eps', 'f32', s.eps],
    ['weightDecay', 'f32', s.weightDecay],
    ['step', 'u32', step],
    ['decay', 'f32', 1 - s.lr * s.weightDecay],
    ['oneMinusBeta1', 'f32', 1 - s.beta1],
    ['oneMinusBeta2', 'f32', 1 - s.beta2],
    ['stepSize', 'f32', s.lr / bc1],
    ['bc2Sqrt', 'f32', Math.sqrt(bc2)],
  ] as const;
}

/**
 * The per-step AdamW hyperparameters, one small uniform buffer shared by every adamwOp. Call set()
 * before submitting each step; the ops' bind groups never change. Values written with
 * queue.writeBuffer take effect for submissions made after the call, in queue order.
 */
export class AdamWHyper {
  readonly buffer: GPUBuffer;
  private current: { step: number; settings: AdamWSettings } | null = null;

  constructor(
    private readonly ctx: GpuContext,
    label = 'adamw:hyper',
  ) {
    checkUniformStruct(label, SHADER, 'Hyper', adamwHyperFields(1, ADAMW_DEFAULTS));
    const size = packUniforms(adamwHyperFields(1, ADAMW_DEFAULTS)).byteLength;
    this.buffer = ctx.device.createBuffer({ label, size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  }

  /** Writes the hyperparameters of optimizer step `step` (1 for the first). */
  set(step: number, settings: AdamWSettings): void {
    this.ctx.device.queue.writeBuffer(this.buffer, 0, packUniforms(adamwHyperFields(step, settings)));
    this.current = { step, settings: { ...settings } };
  }

  /** The last values set (null before the first set()). */
  get last(): { step: number; settings: AdamWSettings } | null {
    return this.current;
  }

  destroy(): void {
    this.buffer.destroy();
  }
}

export interface AdamWArgs {
  param: Tensor;
  grad: Tensor;
  /** First moment (exp_avg), zero-initialised, same size as param. */
  m: Tensor;
  /** Second moment (exp_avg_sq), zero-initialised, same size as param. */
  v: Tensor;
  hyper: AdamWHyper;
  /** [4] clipping stats from grad_norm_finalize (scale and nonFinite are read). */
  stats: Tensor;
  /** Set grad to 0 after reading it. Default false. */
  zeroGrad?: boolean;
  label?: string;
}

/**
 * AdamW on one parameter tensor, in place: param, m, v updated (grad zeroed when zeroGrad). The
 * gradient is multiplied by stats[1] (the clip scale) first; when stats[2] != 0 the update is
 * skipped. Uniforms: n at binding 0; the shared Hyper block at binding 1.
 */
export function adamwOp(ctx: GpuContext, a: AdamWArgs): Op {
  const name = a.label ?? `adamw ${a.param.name}`;
  const n = a.param.size;
  const tensors = { param: a.param, grad: a.grad, m: a.m, v: a.v };
  for (const [role, t] of Object.entries(tensors)) {
    if (t.dtype !== 'f32') throw new Error(`${name}: ${role} ${t.name} must be f32, got ${t.dtype}`);
    if (t.size !== n) throw new Error(`${name}: ${role} ${t.name} has ${t.size} values, expected ${n} (the size of param ${a.param.name})`);
  }
  const buffers = new Set([a.param.buffer, a.grad.buffer, a.m.buffer, a.v.buffer, a.stats.buffer]);
  if (buffers.size !== 5) throw new Error(`${name}: param, grad, m, v and stats must be five different tensors`);
  if (a.stats.size < CLIP_STATS.size) throw new Error(`${name}: stats ${a.stats.name} has ${a.stats.size} values, needs ${CLIP_STATS.size}`);
  return createOp(ctx, {
    label: name,
    shader: SHADER,
    entryPoint: 'adamw',
    constants: { WG, ZERO_GRAD: a.zeroGrad ?? false },
    uniforms: [['n', 'u32', n]],
    uniformStruct: 'AdamWDims',
    bindings: { 1: a.hyper.buffer, 2: a.grad, 4: a.stats, 5: a.param, 6: a.m, 7: a.v },
    workgroups: grid1d(ceilDiv(n, WG)),
  });
}

/** Workgroups (= partials slots) grad_sumsq uses for a tensor of n values. */
export function gradSumsqGroups(n: number): number {
  return ceilDiv(n, GRAD_CHUNK);
}

export interface GradSumsqArgs {
  grad: Tensor;
  partials: Tensor;
  /** First partials slot of this tensor. */
  offset: number;
  label?: string;
}

/** partials[offset + j] = sum of grad[i]² over chunk j (GRAD_CHUNK values); overwrites its slots. */
export function gradSumsqOp(ctx: GpuContext, a: GradSumsqArgs): Op {
  const name = a.label ?? `grad_sumsq ${a.grad.name}`;
  const n = a.grad.size;
  const groups = gradSumsqGroups(n);
  if (a.grad.dtype !== 'f32') throw new Error(`${name}: grad ${a.grad.name} must be f32, got ${a.grad.dtype}`);
  if (!Number.isInteger(a.offset) || a.offset < 0) throw new Error(`${name}: offset must be a non-negative integer, got ${a.offset}`);
  if (a.partials.size < a.offset + groups) {
    throw new Error(`${name}: partials ${a.partials.name} has ${a.partials.size} values, needs offset + groups = ${a.offset} + ${groups}`);
  }
  return createOp(ctx, {
    label: name,
    shader: SHADER,
    entryPoint: 'grad_sumsq',
    constants: { WG, ITEMS },
    uniforms: [['n', 'u32', n], ['offset', 'u32', a.offset], ['groups', 'u32', groups]],
    uniformStruct: 'SumsqDims',
    bindings: { 2: a.grad, 3: a.partials },
    workgroups: grid1d(groups),
  });
}

export interface GradNormFinalizeArgs {
  partials: Tensor;
  /** Slots of partials in use. */
  count: number;
  /** [4] f32 output: [norm, scale, nonFinite, 0]. */
  stats: Tensor;
  /** Clip threshold; <= 0 disables clipping (scale 1, the norm is still computed). */
  maxNorm: number;
  label?: string;
}

export function gradNormFinalizeOp(ctx: GpuContext, a: GradNormFinalizeArgs): Op {
  const name = a.label ?? `grad_norm_finalize ${a.stats.name}`;
  if (!Number.isInteger(a.count) || a.count < 0) throw new Error(`${name}: count must be a non-negative integer, got ${a.count}`);
  if (a.partials.size < a.count) throw new Error(`${name}: partials ${a.partials.name} has ${a.partials.size} values, needs count = ${a.count}`);
  if (a.stats.size < CLIP_STATS.size) throw new Error(`${name}: stats ${a.stats.name} has ${a.stats.size} values, needs ${CLIP_STATS.size}`);
  if (a.partials.buffer === a.stats.buffer) throw new Error(`${name}: partials and stats must be different tensors`);
  return createOp(ctx, {
    label: name,
    shader: SHADER,
    entryPoint: 'grad_norm_finalize',
    constants: { WG },
    uniforms: [['count', 'u32', a.count], ['maxNorm', 'f32', a.maxNorm]],
    uniformStruct: 'FinalizeDims',
    bindings: { 3: a.partials, 4: a.stats },
    workgroups: [1],
  });
}

export interface GradClipPlan {
  /** [sum of groups] partial sums of squares, shared by all tensors. */
  partials: Tensor;
  /** [4] [norm, scale, nonFinite, 0]: pass to adamwOp, read back for metrics. */
  stats: Tensor;
  /** First partials slot of each gradient tensor, in the order given. */
  offsets: number[];
  /** grad_sumsq for every tensor, then grad_norm_finalize: record them in this order. */
  ops: Op[];
  /** Changes the clip threshold without rebuilding (<= 0 disables clipping). */
  setMaxNorm(maxNorm: number): void;
  destroy(): void;
}

/**
 * Lays out one partials buffer for all `grads` (each tensor's slots after the previous one's) and
 * builds the ops computing the global 2-norm and the clip scale into a fresh stats tensor.
 */
export function planGradClip(ctx: GpuContext, grads: readonly Tensor[], maxNorm: number, label = 'clip'): GradClipPlan {
  if (grads.length === 0) throw new Error(`planGradClip ${label}: no gradient tensors given`);
  if (!Number.isFinite(maxNorm)) throw new Error(`planGradClip ${label}: maxNorm must be finite, got ${maxNorm}`);
  const offsets: number[] = [];
  let total = 0;
  for (const g of grads) {
    offsets.push(total);
    total += gradSumsqGroups(g.size);
  }
  const partials = createTensor(ctx, `${label}:partials`, [total]);
  const stats = createTensor(ctx, `${label}:stats`, [CLIP_STATS.size], 'f32', [0, 1, 0, 0]);
  const ops = grads.map((grad, i) => gradSumsqOp(ctx, { grad, partials, offset: offsets[i] }));
  const finalize = gradNormFinalizeOp(ctx, { partials, count: total, stats, maxNorm, label: `grad_norm_finalize ${label}` });
  ops.push(finalize);
  return {
    partials,
    stats,
    offsets,
    ops,
    setMaxNorm(v: number) {
      if (!Number.isFinite(v)) throw new Error(`planGradClip ${label}: maxNorm must be finite, got ${v}`);
      setUniforms(ctx, finalize, { maxNorm: v });
    },
    destroy() {
      partials.destroy();
      stats.destroy();
      for (const op of ops) op.uniformBuffer?.destroy();
    },
  };
}

/**
 * A stats tensor [0, 1, 0, 0] (scale 1, finite) for running adamwOp without clipping or norm
 * computation at all.
 */
export function unitClipStats(ctx: GpuContext, name = 'clip:unit-stats'): Tensor {
  return createTensor(ctx, name, [CLIP_STATS.size], 'f32', [0, 1, 0, 0]);
}
