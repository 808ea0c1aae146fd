/**
 * One Llama block, forward and backward, written out as lists of prepared ops (the llm.c style).
 * The training graph (llama.ts: B sequences of T positions) and generation (generate.ts: one
 * sequence of S rows, B = 1, T = S, keys and values from the KV cache) both build their blocks
 * here, so every kernel a block launches is in this file.
 *
 * Dimension letters: docs/ARCHITECTURE.md's glossary. M = B·T rows; C hidden, F FFN width, H and
 * KVH query and key/value heads of D values, N experts of rank R, NR = N·R.
 *
 *   forward, block l: x [M, C] -> out [M, C]
 *     xn1 = rmsnorm(x)                                   rstd1 [M] kept for the backward
 *     q, k, v = projection(xn1)                          [M, H·D], [M, KVH·D], [M, KVH·D]
 *     q, k = rope(q), rope(k)                            in place, positions pos0 + (m % T)
 *     (generation: the k and v rows join the KV cache, a copy between compute passes)
 *     att = attention(q, k, v)                           causal, [M, H·D], lse [B, H, T]
 *     h = x + o_proj(att)
 *     xn2 = rmsnorm(h)
 *     act = silu(gate_proj(xn2)) * up_proj(xn2)          [M, F]
 *     out = h + down_proj(act)
 *
 *   projection p (q, k, v, o, gate, up, down): y = x·Wᵀ (+ bias)
 *     adapted:  + (alpha/R) Σ_i w_i B_i A_i dropout_i(x)  router w = softmax(x·Wrᵀ) [M, N] (LoRAMoE),
 *               experts h = A·dropout(x) [M, NR], g = scale·w·h [M, NR], y += g·Bᵀ;
 *               the router's LBC importance and loss beside it (training, LoRAMoE, beta > 0)
 *
 * The backward runs the same ops in reverse. Gradient rule (docs/ARCHITECTURE.md, Conventions):
 * parameter gradients accumulate (+=), activation gradients overwrite, except where a sum of paths
 * is assembled on purpose: the residual stream, the inputs shared by q/k/v and by gate/up, and the
 * LBC's gradient added into the router weights' gradient dw that the gate backward wrote.
 */
import type { GpuContext } from '../engine/gpu';
import { attentionBackwardOps, attentionForwardOp, type AttentionForwardOp, type AttentionVariant } from '../engine/kernels/attention';
import { biasBackwardOp, biasForwardOp } from '../engine/kernels/bias';
import { accumulateOp } from '../engine/kernels/elementwise';
import { lbcBackwardOp, lbcImportanceOp, lbcLossOp } from '../engine/kernels/lbc';
import { expertDownBackwardInputOp, expertDownBackwardWeightOp, expertDownForwardOp, gateBackwardOp, routerBackwardOp, routerForwardOp } from '../engine/kernels/loramoe';
import { matmulOp } from '../engine/kernels/matmul';
import { rmsnormBackwardInputOp, rmsnormBackwardWeightOp, rmsnormForwardOp } from '../engine/kernels/rmsnorm';
import { ropeBackwardOp, ropeForwardOp, type RopeOp } from '../engine/kernels/rope';
import { swigluBackwardOp, swigluForwardOp } from '../engine/kernels/swiglu';
import type { Op } from '../engine/op';
import type { Tensor } from '../engine/tensor';
import { isRouted } from '../method/adapter';
import { type Projection, hasBias, projectionShape, projectionWeightName } from '../method/shapes';
import type { AdapterTensors, GpuWeights } from './weights';

/** What the forward saves per adapted projection, for the backward and for routing statistics. */
export interface AdapterActs {
  /** `${l}.${p}`: the adapter's key in GpuWeights.adapter, and of routing read-backs. */
  key: string;
  /** The projection's dropout stream (adaptedIndex: layer-major, PROJECTIONS order). */
  stream: number;
  /** Router weights [M, N] (LoRAMoE only). */
  w: Tensor | null;
  /** Experts' hidden h = A·dropout(x) [M, NR]. */
  h: Tensor;
  /** LBC importance Q and its gradient dZ [B, N], and the loss's slot (training, LoRAMoE, beta > 0). */
  lbc: { q: Tensor; dZ: Tensor; index: number } | null;
}

/** The tensors block l's forward writes and, in training, its backward reads. */
export interface BlockActs {
  x: Tensor; // [M, C] block input (residual stream)
  xn1: Tensor; // [M, C]
  rstd1: Tensor; // [M]
  q: Tensor; // [M, H·D] after RoPE
  k: Tensor; // [M, KVH·D] after RoPE
  v: Tensor; // [M, KVH·D]
  att: Tensor; // [M, H·D]
  lse: Tensor; // [B, H, T]
  h: Tensor; // [M, C] the residual after attention
  xn2: Tensor; // [M, C]
  rstd2: Tensor; // [M]
  gate: Tensor; // [M, F]
  up: Tensor; // [M, F]
  act: Tensor; // [M, F]
  adapters: Map<Projection, AdapterActs>;
}

/** Ops a graph changes after building them. */
export interface BlockHandles {
  /** Ops that draw the experts' dropout masks (setDropout: seed and p per step). */
  dropout: Op[];
  /** LBC loss ops (their gradient scale under gradient accumulation). */
  lbcLoss: Op[];
  /** Router forwards (setExpertMask: expert knockout at inference). */
  router: Op[];
  /** RoPE and attention forwards (setPos0 in generation). */
  rope: RopeOp[];
  attention: AttentionForwardOp[];
}

/** What the blocks of one graph share. */
export interface BlockGraph {
  ctx: GpuContext;
  weights: GpuWeights;
  /** B sequences of T positions, M = B·T rows (generation: B = 1, T = S). */
  B: number;
  T: number;
  /** Prefix of every op label ('' in training; 'generate decode ' and the like in generation). */
  label: string;
  /** The experts' gated hidden g [M, NR], one scratch buffer for every adapted projection. */
  loraG: Tensor | null;
  /** The training graph's LBC inputs: valid [M], the boost [B, N], the losses (one slot per routed projection). */
  lbc: { valid: Tensor<'u32'>; boost: Tensor; losses: Tensor } | null;
  handles: BlockHandles;
}

/** Generation's keys and values: attention reads the cache's `capacity` rows instead of k and v. */
export interface KvCache {
  k: Tensor; // [1, cap, KVH·D]
  v: Tensor; // [1, cap, KVH·D]
  capacity: number;
  variant: AttentionVariant;
}

/** One step of a block's forward: an op (`adapter`: the adapter's own), or a copy into the KV cache. */
export type BlockStep = { kind: 'op'; op: Op; adapter: boolean } | { kind: 'cache'; src: Tensor; cache: Tensor };

/** Gradient scratch shared by every block (each overwrites before it reads). */
export interface BlockScratch {
  dh: Tensor; // [M, C]
  dxn: Tensor; // [M, C]
  dact: Tensor; // [M, F]; after the SwiGLU backward, the gradient of gate
  dup: Tensor; // [M, F]
  datt: Tensor; // [M, H·D]
  dq: Tensor; // [M, H·D]
  dk: Tensor; // [M, KVH·D]
  dv: Tensor; // [M, KVH·D]
  dlt: Tensor; // [B, H, T] attention's row delta
  dG: Tensor | null; // [M, NR]
  dhLora: Tensor | null; // [M, NR]
  dw: Tensor | null; // [M, N]
  dlogitsRouter: Tensor | null; // [M, N]
}

export interface BlockBackwardGraph extends BlockGraph {
  scratch: BlockScratch;
  /** The gradient of a trainable tensor; null for a frozen one. */
  grad(t: Tensor): Tensor | null;
}

/** The input of projection p in block l's forward. */
function projectionInput(a: BlockActs, p: Projection): Tensor {
  switch (p) {
    case 'q_proj':
    case 'k_proj':
    case 'v_proj':
      return a.xn1;
    case 'o_proj':
      return a.att;
    case 'gate_proj':
    case 'up_proj':
      return a.xn2;
    case 'down_proj':
      return a.act;
  }
}

function adapterOf(g: BlockGraph, ad: AdapterActs): AdapterTensors {
  const t = g.weights.adapter.get(ad.key);
  if (!t) throw new Error(`block: adapter tensors for ${ad.key} are missing`);
  return t;
}

function need<T>(t: T | null | undefined, what: string): T {
  if (t === null || t === undefined) throw new Error(`block: ${what} is missing`);
  return t;
}

// ---- forward ------------------------------------------------------------------------------------

/** y [M, Nout] = x [M, K] · Wᵀ (+ bias) (+ Σ_i w_i B_i A_i dropout_i(x) · alpha/R, + the router's LBC). */
function projectionForward(g: BlockGraph, l: number, p: Projection, x: Tensor, y: Tensor, ad: AdapterActs | undefined): BlockStep[] {
  const { ctx, weights: W, B, T } = g;
  const s = W.shape;
  const cfg = W.adapterCfg;
  const M = B * T;
  const [K, Nout] = projectionShape(s, p);
  const wName = projectionWeightName(l, p);
  const name = `${g.label}L${l} ${p}`;
  const steps: BlockStep[] = [];
  const op = (o: Op, adapter = false) => steps.push({ kind: 'op', op: o, adapter });
  op(matmulOp(ctx, { a: x, b: W.get(wName), c: y, M, N: Nout, K, transB: true, label: name }));
  if (hasBias(s, p)) op(biasForwardOp(ctx, { y, b: W.get(wName.replace(/weight$/, 'bias')), M, O: Nout }));
  if (!ad) return steps;
  const t = adapterOf(g, ad);
  const gBuf = need(g.loraG, 'the experts\' g scratch');
  const N = cfg.numExperts;
  const R = cfg.rank;
  const routed = isRouted(cfg);
  if (routed) {
    const w = need(ad.w, `${ad.key} router weights`);
    const router = routerForwardOp(ctx, { x, wr: need(t.wr, `${ad.key} router`), w, M, K, N, label: `${name} router` });
    g.handles.router.push(router);
    op(router, true);
    if (ad.lbc && g.lbc) {
      op(lbcImportanceOp(ctx, { w, valid: g.lbc.valid, q: ad.lbc.q, B, T, N }), true);
      const loss = lbcLossOp(ctx, { q: ad.lbc.q, boost: g.lbc.boost, loss: g.lbc.losses, lossIndex: ad.lbc.index, dZ: ad.lbc.dZ, beta: cfg.lbcBeta, B, T, N });
      g.handles.lbcLoss.push(loss);
      op(loss, true);
    }
  }
  // h = A·dropout(x), g = (alpha/R)·w·h; p and seed are set per step (setDropout).
  const down = expertDownForwardOp(ctx, {
    x, a: t.a, w: ad.w ?? undefined, h: ad.h, g: gBuf, M, K, N, R, scale: cfg.alpha / R, routed,
    p: 0, seed: 0, stream: ad.stream, label: `${name} experts`,
  });
  g.handles.dropout.push(down);
  op(down, true);
  op(matmulOp(ctx, { a: gBuf, b: t.b, c: y, M, N: Nout, K: N * R, transB: true, beta: 1, label: `${name} experts combine` }), true);
  return steps;
}

/**
 * Block l: a.x -> out. Saves everything blockBackward reads. With `cache`, the new keys and values
 * are copied into the cache at rows pos0 .. pos0+T-1 and attention reads the cache's rows instead.
 */
export function blockForward(g: BlockGraph, l: number, a: BlockActs, out: Tensor, cache: KvCache | null = null): BlockStep[] {
  const { ctx, weights: W, B, T } = g;
  const s = W.shape;
  const M = B * T;
  const C = s.hiddenSize;
  const F = s.intermediateSize;
  const H = s.numHeads;
  const KVH = s.numKvHeads;
  const D = s.headDim;
  const name = `${g.label}L${l}`;
  const w = (n: string) => W.get(`model.layers.${l}.${n}`);
  const rope = { cos: W.cos, sin: W.sin, M, D, T, maxPos: W.maxPositions };
  const steps: BlockStep[] = [];
  const op = (o: Op) => steps.push({ kind: 'op', op: o, adapter: false });
  const proj = (p: Projection, x: Tensor, y: Tensor) => steps.push(...projectionForward(g, l, p, x, y, a.adapters.get(p)));

  op(rmsnormForwardOp(ctx, { x: a.x, w: w('input_layernorm.weight'), y: a.xn1, rstd: a.rstd1, M, C, eps: s.rmsNormEps, label: `${name} input norm` }));
  proj('q_proj', a.xn1, a.q);
  proj('k_proj', a.xn1, a.k);
  proj('v_proj', a.xn1, a.v);
  // RoPE in place: the backward needs q and k only after rotation (RoPE's gradient is Rᵀ dq).
  const rq = ropeForwardOp(ctx, { ...rope, x: a.q, out: a.q, nHeads: H, label: `${name} rope q` });
  const rk = ropeForwardOp(ctx, { ...rope, x: a.k, out: a.k, nHeads: KVH, label: `${name} rope k` });
  g.handles.rope.push(rq, rk);
  op(rq);
  op(rk);
  if (cache) {
    steps.push({ kind: 'cache', src: a.k, cache: cache.k }, { kind: 'cache', src: a.v, cache: cache.v });
  }
  const att = attentionForwardOp(ctx, cache
    ? { q: a.q, k: cache.k, v: cache.v, o: a.att, l: a.lse, dims: { B, Tq: T, Tk: cache.capacity, pos0: 0, H, KVH, D }, label: `${name} attention`, variant: cache.variant }
    : { q: a.q, k: a.k, v: a.v, o: a.att, l: a.lse, dims: { B, Tq: T, Tk: T, H, KVH, D }, label: `${name} attention` });
  g.handles.attention.push(att);
  op(att);
  proj('o_proj', a.att, a.h);
  op(accumulateOp(ctx, { x: a.x, y: a.h, label: `${name} attention residual` }));
  op(rmsnormForwardOp(ctx, { x: a.h, w: w('post_attention_layernorm.weight'), y: a.xn2, rstd: a.rstd2, M, C, eps: s.rmsNormEps, label: `${name} post-attention norm` }));
  proj('gate_proj', a.xn2, a.gate);
  proj('up_proj', a.xn2, a.up);
  op(swigluForwardOp(ctx, { g: a.gate, u: a.up, h: a.act, M, F, label: `${name} swiglu` }));
  proj('down_proj', a.act, out);
  op(accumulateOp(ctx, { x: a.h, y: out, label: `${name} mlp residual` }));
  return steps;
}

/** The head's tensors: the last residual rows x [M, C] in; their norm xf [M, C], rstd [M] and logits [M, V] out. */
export interface HeadActs {
  x: Tensor;
  xf: Tensor;
  rstd: Tensor;
  logits: Tensor;
}

/**
 * The head, forward: xf = rmsnorm(x) with the final norm's weight, logits = xf·headᵀ [M, V] (the
 * LM head, or the tied embedding). The training graph runs it on every row, generation on the last
 * row only (M = 1); `prefix` starts the ops' labels.
 */
export function headForward(ctx: GpuContext, weights: GpuWeights, a: HeadActs, M: number, prefix = ''): Op[] {
  const s = weights.shape;
  const C = s.hiddenSize;
  return [
    rmsnormForwardOp(ctx, { x: a.x, w: weights.get('model.norm.weight'), y: a.xf, rstd: a.rstd, M, C, eps: s.rmsNormEps, label: `${prefix}final norm` }),
    matmulOp(ctx, { a: a.xf, b: weights.lmHead(), c: a.logits, M, N: s.vocabSize, K: C, transB: true, label: `${prefix}lm head` }),
  ];
}

/** The ops of a forward without a KV cache (the training and evaluation graph's). */
export function opsOf(steps: readonly BlockStep[]): Op[] {
  return steps.map((st) => {
    if (st.kind !== 'op') throw new Error('block: a copy into the KV cache in a graph without one');
    return st.op;
  });
}

// ---- backward -----------------------------------------------------------------------------------

/**
 * dY [M, Nout] of one projection -> dX [M, K] (overwritten, or accumulated when `accumulate`),
 * plus its parameter gradients: the adapter's (router, A, B) or, in full fine-tuning, the
 * weight's and the bias's. With `dX` null (nothing below needs it) only the parameter gradients.
 */
function projectionBackward(g: BlockBackwardGraph, l: number, a: BlockActs, p: Projection, dY: Tensor, dX: Tensor | null, accumulate: boolean): Op[] {
  const { ctx, weights: W, B, T, scratch: sc } = g;
  const s = W.shape;
  const cfg = W.adapterCfg;
  const M = B * T;
  const [K, Nout] = projectionShape(s, p);
  const wName = projectionWeightName(l, p);
  const Wp = W.get(wName);
  const x = projectionInput(a, p);
  const name = `${g.label}L${l} ${p}`;
  const ops: Op[] = [];
  const gW = g.grad(Wp);
  if (gW) ops.push(matmulOp(ctx, { a: dY, b: x, c: gW, M: Nout, N: K, K: M, transA: true, beta: 1, label: `${g.label}L${l} grad ${p}` }));
  if (hasBias(s, p)) {
    const gb = g.grad(W.get(wName.replace(/weight$/, 'bias')));
    if (gb) ops.push(biasBackwardOp(ctx, { dy: dY, db: gb, M, O: Nout }));
  }
  if (dX) ops.push(matmulOp(ctx, { a: dY, b: Wp, c: dX, M, N: K, K: Nout, beta: accumulate ? 1 : 0, label: `${g.label}L${l} d ${p} input` }));
  const ad = a.adapters.get(p);
  if (!ad) return ops;
  const t = adapterOf(g, ad);
  const N = cfg.numExperts;
  const R = cfg.rank;
  const NR = N * R;
  const routed = isRouted(cfg);
  const dG = need(sc.dG, 'the d g scratch');
  const dh = need(sc.dhLora, 'the d h scratch');
  const gA = need(g.grad(t.a), `${ad.key} A's gradient`);
  const gB = need(g.grad(t.b), `${ad.key} B's gradient`);
  // a. g again (the forward's op with the same dropout stream rewrites h with the same values and
  // puts g in dG's buffer); dBcat += dYᵀ·g; then dG = dY·Bcat over it.
  const again = expertDownForwardOp(ctx, {
    x, a: t.a, w: ad.w ?? undefined, h: ad.h, g: dG, M, K, N, R, scale: cfg.alpha / R, routed,
    p: 0, seed: 0, stream: ad.stream, label: `${name} experts again`,
  });
  g.handles.dropout.push(again);
  ops.push(again);
  ops.push(matmulOp(ctx, { a: dY, b: dG, c: gB, M: Nout, N: NR, K: M, transA: true, beta: 1, label: `${name} grad B` }));
  ops.push(matmulOp(ctx, { a: dY, b: t.b, c: dG, M, N: NR, K: Nout, label: `${name} d experts g` }));
  // b. dh, dw
  ops.push(gateBackwardOp(ctx, { dG, h: ad.h, w: ad.w ?? undefined, dh, dw: sc.dw ?? undefined, M, N, R, scale: cfg.alpha / R, routed }));
  if (routed) {
    const w = need(ad.w, `${ad.key} router weights`);
    const wr = need(t.wr, `${ad.key} router`);
    const dw = need(sc.dw, 'the d router w scratch');
    const dLogits = need(sc.dlogitsRouter, 'the d router logits scratch');
    // c. the LBC's gradient joins dw; d. softmax backward; e. router weight and input gradients
    if (ad.lbc && g.lbc) ops.push(lbcBackwardOp(ctx, { valid: g.lbc.valid, boost: g.lbc.boost, dZ: ad.lbc.dZ, dw, B, T, N }));
    ops.push(routerBackwardOp(ctx, { w, dw, dLogits, M, N }));
    ops.push(matmulOp(ctx, { a: dLogits, b: x, c: need(g.grad(wr), `${ad.key} router's gradient`), M: N, N: K, K: M, transA: true, beta: 1, label: `${name} grad router` }));
    if (dX) ops.push(matmulOp(ctx, { a: dLogits, b: wr, c: dX, M, N: K, K: N, beta: 1, label: `${name} d input via router` }));
  }
  // f, g. through the experts, with the forward's dropout masks
  const drop = { p: 0, seed: 0, stream: ad.stream };
  if (dX) {
    const bIn = expertDownBackwardInputOp(ctx, { dh, a: t.a, dx: dX, M, K, N, R, ...drop, label: `${name} d input via experts` });
    g.handles.dropout.push(bIn);
    ops.push(bIn);
  }
  const bW = expertDownBackwardWeightOp(ctx, { dh, x, dA: gA, M, K, N, R, ...drop, label: `${name} grad A` });
  g.handles.dropout.push(bW);
  ops.push(bW);
  return ops;
}

/**
 * Block l backward: dOut [M, C] (gradient of the block's output) -> dIn [M, C] (of its input x).
 * With `dIn` null nothing below the block trains (layer 0 when the embedding is frozen): only the
 * block's own parameter gradients are computed, and when all of them sit in the MLP's projections
 * (the adapters on gate, up and down) the gradient stops there: the attention's backward and every
 * frozen input-gradient matmul of the block are left out. The parameter gradients are the same bits.
 */
export function blockBackward(g: BlockBackwardGraph, l: number, a: BlockActs, dOut: Tensor, dIn: Tensor | null): Op[] {
  const { ctx, weights: W, B, T, scratch: sc } = g;
  const s = W.shape;
  const M = B * T;
  const C = s.hiddenSize;
  const F = s.intermediateSize;
  const D = s.headDim;
  const w = (n: string) => W.get(`model.layers.${l}.${n}`);
  const rope = { cos: W.cos, sin: W.sin, M, D, T, maxPos: W.maxPositions };
  const dims = { B, Tq: T, Tk: T, H: s.numHeads, KVH: s.numKvHeads, D };
  const ops: Op[] = [];
  const proj = (p: Projection, dY: Tensor, dX: Tensor | null, accumulate: boolean) => ops.push(...projectionBackward(g, l, a, p, dY, dX, accumulate));
  const normGrad = (n: string, dy: Tensor, x: Tensor, rstd: Tensor) => {
    const gw = g.grad(w(n));
    if (gw) ops.push(rmsnormBackwardWeightOp(ctx, { dy, x, rstd, dw: gw, M, C, label: `${g.label}L${l} grad ${n}` }));
  };
  const attentionTrains =
    (['o_proj', 'q_proj', 'k_proj', 'v_proj'] as const).some((p) => a.adapters.has(p) || g.grad(W.get(projectionWeightName(l, p))) !== null) ||
    g.grad(w('post_attention_layernorm.weight')) !== null ||
    g.grad(w('input_layernorm.weight')) !== null;
  const below = dIn !== null || attentionTrains;
  // MLP: out = h + down(swiglu(gate(xn2), up(xn2)))
  proj('down_proj', dOut, sc.dact, false);
  ops.push(swigluBackwardOp(ctx, { dh: sc.dact, g: a.gate, u: a.up, dg: sc.dact, du: sc.dup, M, F }));
  proj('gate_proj', sc.dact, below ? sc.dxn : null, false); // dact now holds d gate
  proj('up_proj', sc.dup, below ? sc.dxn : null, true);
  if (!below) return ops;
  ops.push(rmsnormBackwardInputOp(ctx, { dy: sc.dxn, x: a.h, w: w('post_attention_layernorm.weight'), rstd: a.rstd2, dx: sc.dh, M, C }));
  normGrad('post_attention_layernorm.weight', sc.dxn, a.h, a.rstd2);
  ops.push(accumulateOp(ctx, { x: dOut, y: sc.dh, label: `${g.label}L${l} d h residual` }));
  // Attention: h = x + o(attention(rope(q(xn1)), rope(k(xn1)), v(xn1)))
  proj('o_proj', sc.dh, sc.datt, false);
  ops.push(...attentionBackwardOps(ctx, { dO: sc.datt, q: a.q, k: a.k, v: a.v, o: a.att, l: a.lse, dlt: sc.dlt, dq: sc.dq, dk: sc.dk, dv: sc.dv, dims }));
  ops.push(ropeBackwardOp(ctx, { ...rope, dy: sc.dq, dx: sc.dq, nHeads: s.numHeads }));
  ops.push(ropeBackwardOp(ctx, { ...rope, dy: sc.dk, dx: sc.dk, nHeads: s.numKvHeads }));
  proj('q_proj', sc.dq, sc.dxn, false);
  proj('k_proj', sc.dk, sc.dxn, true);
  proj('v_proj', sc.dv, sc.dxn, true);
  normGrad('input_layernorm.weight', sc.dxn, a.x, a.rstd1);
  if (!dIn) return ops;
  ops.push(rmsnormBackwardInputOp(ctx, { dy: sc.dxn, x: a.x, w: w('input_layernorm.weight'), rstd: a.rstd1, dx: dIn, M, C }));
  ops.push(accumulateOp(ctx, { x: sc.dh, y: dIn, label: `${g.label}L${l} d x residual` }));
  return ops;
}
