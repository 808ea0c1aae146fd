/**
 * The Llama-family model on the GPU: forward and backward written out per block as lists of
 * prepared ops (the llm.c style), so every kernel a step launches is visible here.
 *
 * Dimension letters: B batch, T sequence, M = B*T rows, C hidden, H heads, KVH key/value heads,
 * D head dim, F FFN width, V vocabulary, N experts, R rank.
 *
 * One LlamaGraph is built for a fixed (B, T): its tensors come from one size table and its ops are
 * built once; a step writes the batch (ids, targets, valid, boost) and records forwardOps then
 * backwardOps into one submission. Gradient rule: parameter gradients accumulate (+=, zeroed by the
 * optimizer after each update), activation gradients overwrite, except where a sum of paths is
 * assembled on purpose (the residual stream, the inputs shared by q/k/v and by gate/up).
 *
 * In LoRAMoE and LoRA modes the backbone is frozen: its tensors get no gradient buffers and no
 * weight-gradient ops; activation gradients still flow through it to the adapters below.
 */
import type { GpuContext } from '../engine/gpu';
import { attentionBackwardOps, attentionForwardOp } from '../engine/kernels/attention';
import { biasBackwardOp, biasForwardOp } from '../engine/kernels/bias';
import { ceBackwardOp, ceForwardOp, ceReduceOp, CE_STATS, setCeGradScale } from '../engine/kernels/crossentropy';
import { accumulateOp } from '../engine/kernels/elementwise';
import { embeddingBackwardOp, embeddingBackwardPlan, type EmbeddingBackwardOp, embeddingForwardOp, embeddingPlanTensors } from '../engine/kernels/embedding';
import { lbcBackwardOp, lbcImportanceOp, lbcLossOp } from '../engine/kernels/lbc';
import { expertDownBackwardInputOp, expertDownBackwardWeightOp, expertDownForwardOp, gateBackwardOp, routerBackwardOp, routerForwardOp, setDropout } from '../engine/kernels/loramoe';
import { matmulOp } from '../engine/kernels/matmul';
import { rmsnormBackwardInputOp, rmsnormBackwardWeightOp, rmsnormForwardOp } from '../engine/kernels/rmsnorm';
import { ropeBackwardOp, ropeForwardOp } from '../engine/kernels/rope';
import { swigluBackwardOp, swigluForwardOp } from '../engine/kernels/swiglu';
import { type Op, setUniforms } from '../engine/op';
import { createTensor, readTensors, type DType, type Tensor, writeTensor } from '../engine/tensor';
import type { Batch } from '../data/batch';
import { hasAdapter, isRouted, orderedTargets, adaptedIndex } from '../method/adapter';
import { type Projection, hasBias, projectionShape, projectionWeightName } from '../method/shapes';
import { adapterKey } from '../loramoe/init';
import { gpuBoostFor } from '../reference/llama';
import type { GpuWeights } from './weights';

export interface GraphOptions {
  B: number;
  T: number;
  /** Build the backward (and gradient buffers). False for evaluation-only graphs. */
  training: boolean;
}

/** A trainable tensor and its gradient (same shape). */
export interface Param {
  name: string;
  param: Tensor;
  grad: Tensor;
}

/** Tensors the forward saves per adapted projection for the backward and for routing statistics. */
interface ProjState {
  p: Projection;
  key: string;
  K: number;
  Nout: number;
  /** Input x [M, K] (a tensor the block owns). */
  x: Tensor;
  /** Router weights [M, N] (routed only). */
  w: Tensor | null;
  /** [M, N*R] */
  h: Tensor | null;
  /** LBC importance and gradient [B, N] (routed with beta > 0 only). */
  lbcQ: Tensor | null;
  lbcDz: Tensor | null;
  lbcIndex: number;
  stream: number;
}

interface LayerTensors {
  x: Tensor; // [M, C] block input (residual stream)
  xn1: Tensor; // [M, C]
  rstd1: Tensor; // [M]
  q: Tensor; // [M, H*D]
  k: Tensor; // [M, KVH*D]
  v: Tensor; // [M, KVH*D]
  att: Tensor; // [M, H*D]
  lse: Tensor; // [B, H, T]
  h: Tensor; // [M, C] after attention residual
  xn2: Tensor; // [M, C]
  rstd2: Tensor; // [M]
  gate: Tensor; // [M, F]
  up: Tensor; // [M, F]
  act: Tensor; // [M, F]
  proj: Map<Projection, ProjState>;
}

/** Gradient scratch shared by all blocks (each block overwrites before it reads). */
interface Scratch {
  dres: [Tensor, Tensor]; // [M, C] residual-stream gradient, ping-pong
  dh: Tensor; // [M, C]
  dxn: Tensor; // [M, C]
  dact: Tensor; // [M, F]; after the SwiGLU backward, the gradient of gate
  dup: Tensor; // [M, F]
  datt: Tensor; // [M, H*D]
  dq: Tensor; // [M, H*D]
  dk: Tensor; // [M, KVH*D]
  dv: Tensor; // [M, KVH*D]
  dlt: Tensor; // [B, H, T]
  dG: Tensor | null; // [M, N*R]
  dhLora: Tensor | null; // [M, N*R]
  dw: Tensor | null; // [M, N]
  dlogitsRouter: Tensor | null; // [M, N]
}

export class LlamaGraph {
  readonly B: number;
  readonly T: number;
  readonly M: number;
  /** Inputs, written per batch. */
  readonly ids: Tensor<'u32'>;
  readonly targets: Tensor<'i32'>;
  readonly valid: Tensor<'u32'>;
  readonly boost: Tensor | null;
  /** Outputs read back as metrics: CE [loss, count, invalid, 0] and one LBC value per routed projection. */
  readonly ceStats: Tensor;
  readonly lbcLosses: Tensor | null;
  readonly logits: Tensor; // [M, V]
  readonly forwardOps: Op[] = [];
  readonly backwardOps: Op[] = [];
  readonly params: Param[] = [];
  /** Every tensor this graph made, by name: the size table (weights are GpuWeights'). */
  readonly tensors = new Map<string, Tensor>();

  private readonly layers: LayerTensors[] = [];
  private readonly scratch: Scratch | null;
  private readonly dropoutOps: Op[] = [];
  private readonly ceGradOps: Op[] = [];
  private readonly lbcLossOps: Op[] = [];
  private readonly grads = new Map<Tensor, Tensor>();
  private embeddingBackward: EmbeddingBackwardOp | null = null;
  private lbcCount = 0;
  private xf!: Tensor;
  private rstdf!: Tensor;
  private lse!: Tensor;
  private rowLoss!: Tensor;
  private dlogits: Tensor | null = null;
  private readonly loraG: Tensor | null;

  constructor(
    readonly ctx: GpuContext,
    readonly weights: GpuWeights,
    readonly opts: GraphOptions,
  ) {
    const s = weights.shape;
    const { B, T } = opts;
    if (!Number.isInteger(B) || B < 1 || !Number.isInteger(T) || T < 1) throw new Error(`LlamaGraph: B and T must be positive integers, got B=${B}, T=${T}`);
    if (T > weights.maxPositions) throw new Error(`LlamaGraph: sequence length ${T} exceeds the ${weights.maxPositions} positions of the RoPE tables`);
    this.B = B;
    this.T = T;
    this.M = B * T;
    const M = this.M;
    const cfg = weights.adapterCfg;
    this.ids = this.tensor('ids', [M], 'u32');
    this.targets = this.tensor('targets', [M], 'i32');
    this.valid = this.tensor('valid', [M], 'u32');
    this.boost = isRouted(cfg) ? this.tensor('lbc boost', [B, cfg.numExperts]) : null;
    this.ceStats = this.tensor('ce stats', [CE_STATS.size]);
    const routedCount = isRouted(cfg) && cfg.lbcBeta > 0 ? s.numLayers * orderedTargets(cfg).length : 0;
    this.lbcLosses = routedCount > 0 ? this.tensor('lbc losses', [routedCount]) : null;
    this.logits = this.tensor('logits', [M, s.vocabSize]);
    // The experts' gated hidden g = scale * w * h [M, N*R] feeds only the combine matmul right after
    // it: one buffer serves every projection, and the backward recomputes g where it needs it.
    const adapted = hasAdapter(cfg) ? orderedTargets(cfg).length : 0;
    this.loraG = adapted > 0 ? this.tensor('lora g', [M, cfg.numExperts * cfg.rank]) : null;

    if (opts.training) this.makeParams();
    for (let l = 0; l < s.numLayers; l++) this.layers.push(this.makeLayer(l));
    this.scratch = opts.training ? this.makeScratch() : null;

    this.buildForward();
    if (opts.training) this.buildBackward();
  }

  // ---- size table -------------------------------------------------------------------------------

  private tensor<D extends DType = 'f32'>(name: string, shape: number[], dtype: D = 'f32' as D): Tensor<D> {
    if (this.tensors.has(name)) throw new Error(`LlamaGraph: tensor ${name} made twice`);
    const t = createTensor(this.ctx, name, shape, dtype);
    this.tensors.set(name, t);
    return t;
  }

  private get full(): boolean {
    return this.weights.adapterCfg.mode === 'full';
  }

  /** Trainable tensors and their gradient buffers: adapter tensors, or every backbone weight in full mode. */
  private makeParams(): void {
    const w = this.weights;
    const add = (name: string, param: Tensor) => {
      const grad = this.tensor(`grad ${name}`, [...param.shape]);
      this.grads.set(param, grad);
      this.params.push({ name, param, grad });
    };
    if (this.full) {
      for (const [name, t] of w.backbone) add(name, t);
    } else if (hasAdapter(w.adapterCfg)) {
      for (const [key, t] of w.adapter) {
        if (t.wr) add(`${key}.router`, t.wr);
        add(`${key}.A`, t.a);
        add(`${key}.B`, t.b);
      }
    }
  }

  private grad(t: Tensor): Tensor | null {
    return this.grads.get(t) ?? null;
  }

  private makeLayer(l: number): LayerTensors {
    const s = this.weights.shape;
    const { M, B, T } = this;
    const C = s.hiddenSize;
    const F = s.intermediateSize;
    const qd = s.numHeads * s.headDim;
    const kvd = s.numKvHeads * s.headDim;
    const n = (what: string) => `L${l} ${what}`;
    const L: LayerTensors = {
      x: this.tensor(n('x'), [M, C]),
      xn1: this.tensor(n('xn1'), [M, C]),
      rstd1: this.tensor(n('rstd1'), [M]),
      q: this.tensor(n('q'), [M, qd]),
      k: this.tensor(n('k'), [M, kvd]),
      v: this.tensor(n('v'), [M, kvd]),
      att: this.tensor(n('att'), [M, qd]),
      lse: this.tensor(n('att lse'), [B, s.numHeads, T]),
      h: this.tensor(n('h'), [M, C]),
      xn2: this.tensor(n('xn2'), [M, C]),
      rstd2: this.tensor(n('rstd2'), [M]),
      gate: this.tensor(n('gate'), [M, F]),
      up: this.tensor(n('up'), [M, F]),
      act: this.tensor(n('act'), [M, F]),
      proj: new Map(),
    };
    const cfg = this.weights.adapterCfg;
    if (hasAdapter(cfg)) {
      const inputOf: Record<Projection, Tensor> = {
        q_proj: L.xn1, k_proj: L.xn1, v_proj: L.xn1, o_proj: L.att, gate_proj: L.xn2, up_proj: L.xn2, down_proj: L.act,
      };
      const N = cfg.numExperts;
      const NR = N * cfg.rank;
      const routed = isRouted(cfg);
      for (const p of orderedTargets(cfg)) {
        const [K, Nout] = projectionShape(s, p);
        const lbc = routed && cfg.lbcBeta > 0;
        L.proj.set(p, {
          p,
          key: adapterKey(l, p),
          K,
          Nout,
          x: inputOf[p],
          w: routed ? this.tensor(n(`${p} router w`), [M, N]) : null,
          h: this.tensor(n(`${p} lora h`), [M, NR]),
          lbcQ: lbc ? this.tensor(n(`${p} lbc Q`), [B, N]) : null,
          lbcDz: lbc ? this.tensor(n(`${p} lbc dZ`), [B, N]) : null,
          lbcIndex: lbc ? this.lbcCount++ : -1,
          stream: adaptedIndex(cfg, l, p),
        });
      }
    }
    return L;
  }

  private makeScratch(): Scratch {
    const s = this.weights.shape;
    const { M, B, T } = this;
    const C = s.hiddenSize;
    const F = s.intermediateSize;
    const qd = s.numHeads * s.headDim;
    const kvd = s.numKvHeads * s.headDim;
    const cfg = this.weights.adapterCfg;
    const NR = cfg.numExperts * cfg.rank;
    const lora = hasAdapter(cfg);
    const routed = isRouted(cfg);
    // The logits are not read after the cross-entropy backward: their gradient overwrites them.
    this.dlogits = this.logits;
    return {
      dres: [this.tensor('d residual A', [M, C]), this.tensor('d residual B', [M, C])],
      dh: this.tensor('d h', [M, C]),
      dxn: this.tensor('d xn', [M, C]),
      dact: this.tensor('d act', [M, F]),
      dup: this.tensor('d up', [M, F]),
      datt: this.tensor('d att', [M, qd]),
      dq: this.tensor('d q', [M, qd]),
      dk: this.tensor('d k', [M, kvd]),
      dv: this.tensor('d v', [M, kvd]),
      dlt: this.tensor('d att delta', [B, s.numHeads, T]),
      dG: lora ? this.tensor('d lora g', [M, NR]) : null,
      dhLora: lora ? this.tensor('d lora h', [M, NR]) : null,
      dw: routed ? this.tensor('d router w', [M, cfg.numExperts]) : null,
      dlogitsRouter: routed ? this.tensor('d router logits', [M, cfg.numExperts]) : null,
    };
  }

  // ---- forward ----------------------------------------------------------------------------------

  private buildForward(): void {
    const s = this.weights.shape;
    const ctx = this.ctx;
    const { M } = this;
    const C = s.hiddenSize;
    const ops = this.forwardOps;
    ops.push(embeddingForwardOp(ctx, { ids: this.ids, E: this.weights.get('model.embed_tokens.weight'), out: this.layers[0].x, M, C, V: s.vocabSize, label: 'embedding' }));
    const xL = this.tensor('x final', [M, C]);
    for (let l = 0; l < s.numLayers; l++) {
      const out = l + 1 < s.numLayers ? this.layers[l + 1].x : xL;
      ops.push(...this.blockForward(l, out));
    }
    // Head: final norm, logits [M, V], cross-entropy over target positions.
    this.xf = this.tensor('x final normed', [M, C]);
    this.rstdf = this.tensor('rstd final', [M]);
    this.lse = this.tensor('ce lse', [M]);
    this.rowLoss = this.tensor('ce row loss', [M]);
    ops.push(rmsnormForwardOp(ctx, { x: xL, w: this.weights.get('model.norm.weight'), y: this.xf, rstd: this.rstdf, M, C, eps: s.rmsNormEps, label: 'final norm' }));
    ops.push(matmulOp(ctx, { a: this.xf, b: this.weights.lmHead(), c: this.logits, M, N: s.vocabSize, K: C, transB: true, label: 'lm head' }));
    ops.push(ceForwardOp(ctx, { logits: this.logits, labels: this.targets, lse: this.lse, rowLoss: this.rowLoss, V: s.vocabSize }));
    ops.push(ceReduceOp(ctx, { labels: this.targets, rowLoss: this.rowLoss, stats: this.ceStats, V: s.vocabSize }));
    this.xLast = xL;
  }

  private xLast!: Tensor;

  /** y = x·Wᵀ (+ bias) (+ Σ_i w_i B_i A_i dropout_i(x) · alpha/r, + the LBC of the router). */
  private projForward(l: number, p: Projection, x: Tensor, y: Tensor): Op[] {
    const ctx = this.ctx;
    const s = this.weights.shape;
    const cfg = this.weights.adapterCfg;
    const { M, B, T } = this;
    const [K, Nout] = projectionShape(s, p);
    const wName = projectionWeightName(l, p);
    const ops: Op[] = [matmulOp(ctx, { a: x, b: this.weights.get(wName), c: y, M, N: Nout, K, transB: true, label: `L${l} ${p}` })];
    if (hasBias(s, p)) ops.push(biasForwardOp(ctx, { y, b: this.weights.get(wName.replace(/weight$/, 'bias')), M, O: Nout }));
    const st = this.layers[l]?.proj.get(p);
    if (!st) return ops;
    const ad = this.weights.adapter.get(st.key)!;
    const N = cfg.numExperts;
    const R = cfg.rank;
    const routed = isRouted(cfg);
    if (routed && st.w && ad.wr) {
      ops.push(routerForwardOp(ctx, { x, wr: ad.wr, w: st.w, M, K, N, label: `L${l} ${p} router` }));
      if (st.lbcQ && st.lbcDz && this.boost && this.lbcLosses) {
        ops.push(lbcImportanceOp(ctx, { w: st.w, valid: this.valid, q: st.lbcQ, B, T, N }));
        const lossOp = lbcLossOp(ctx, { q: st.lbcQ, boost: this.boost, loss: this.lbcLosses, lossIndex: st.lbcIndex, dZ: st.lbcDz, beta: cfg.lbcBeta, B, T, N });
        this.lbcLossOps.push(lossOp);
        ops.push(lossOp);
      }
    }
    const down = expertDownForwardOp(ctx, {
      x, a: ad.a, w: st.w ?? undefined, h: st.h!, g: this.loraG!, M, K, N, R, scale: cfg.alpha / R, routed,
      p: 0, seed: 0, stream: st.stream, label: `L${l} ${p} experts`,
    });
    this.dropoutOps.push(down);
    ops.push(down);
    ops.push(matmulOp(ctx, { a: this.loraG!, b: ad.b, c: y, M, N: Nout, K: N * R, transB: true, beta: 1, label: `L${l} ${p} experts combine` }));
    return ops;
  }

  /** Block l: x (layers[l].x) -> out. Saves everything blockBackward reads. */
  private blockForward(l: number, out: Tensor): Op[] {
    const ctx = this.ctx;
    const s = this.weights.shape;
    const L = this.layers[l];
    const { M, B, T } = this;
    const C = s.hiddenSize;
    const F = s.intermediateSize;
    const D = s.headDim;
    const w = (name: string) => this.weights.get(`model.layers.${l}.${name}`);
    const rope = { cos: this.weights.cos, sin: this.weights.sin, M, D, T, maxPos: this.weights.maxPositions };
    const dims = { B, Tq: T, Tk: T, H: s.numHeads, KVH: s.numKvHeads, D };
    return [
      rmsnormForwardOp(ctx, { x: L.x, w: w('input_layernorm.weight'), y: L.xn1, rstd: L.rstd1, M, C, eps: s.rmsNormEps, label: `L${l} input norm` }),
      ...this.projForward(l, 'q_proj', L.xn1, L.q),
      ...this.projForward(l, 'k_proj', L.xn1, L.k),
      ...this.projForward(l, 'v_proj', L.xn1, L.v),
      // RoPE in place: the backward needs q and k only after rotation (RoPE's gradient is R^T dq).
      ropeForwardOp(ctx, { ...rope, x: L.q, out: L.q, nHeads: s.numHeads, label: `L${l} rope q` }),
      ropeForwardOp(ctx, { ...rope, x: L.k, out: L.k, nHeads: s.numKvHeads, label: `L${l} rope k` }),
      attentionForwardOp(ctx, { q: L.q, k: L.k, v: L.v, o: L.att, l: L.lse, dims, label: `L${l} attention` }),
      ...this.projForward(l, 'o_proj', L.att, L.h),
      accumulateOp(ctx, { x: L.x, y: L.h, label: `L${l} attention residual` }),
      rmsnormForwardOp(ctx, { x: L.h, w: w('post_attention_layernorm.weight'), y: L.xn2, rstd: L.rstd2, M, C, eps: s.rmsNormEps, label: `L${l} post-attention norm` }),
      ...this.projForward(l, 'gate_proj', L.xn2, L.gate),
      ...this.projForward(l, 'up_proj', L.xn2, L.up),
      swigluForwardOp(ctx, { g: L.gate, u: L.up, h: L.act, M, F, label: `L${l} swiglu` }),
      ...this.projForward(l, 'down_proj', L.act, out),
      accumulateOp(ctx, { x: L.h, y: out, label: `L${l} mlp residual` }),
    ];
  }

  // ---- backward ---------------------------------------------------------------------------------

  private buildBackward(): void {
    const ctx = this.ctx;
    const s = this.weights.shape;
    const sc = this.scratch!;
    const { M } = this;
    const C = s.hiddenSize;
    const V = s.vocabSize;
    const ops = this.backwardOps;
    const head = this.weights.lmHead();
    // Head: dlogits = (softmax - onehot)/count; dxf = dlogits·head; final norm backward.
    const ceGrad = ceBackwardOp(ctx, { logits: this.logits, labels: this.targets, lse: this.lse, stats: this.ceStats, dlogits: this.dlogits!, V });
    this.ceGradOps.push(ceGrad);
    ops.push(ceGrad);
    const gHead = this.grad(head);
    if (gHead) ops.push(matmulOp(ctx, { a: this.dlogits!, b: this.xf, c: gHead, M: V, N: C, K: M, transA: true, beta: 1, label: 'grad lm head' }));
    ops.push(matmulOp(ctx, { a: this.dlogits!, b: head, c: sc.dxn, M, N: C, K: V, label: 'd final norm out' }));
    const normF = this.weights.get('model.norm.weight');
    ops.push(rmsnormBackwardInputOp(ctx, { dy: sc.dxn, x: this.xLast, w: normF, rstd: this.rstdf, dx: sc.dres[0], M, C, label: 'final norm backward' }));
    const gNormF = this.grad(normF);
    if (gNormF) ops.push(rmsnormBackwardWeightOp(ctx, { dy: sc.dxn, x: this.xLast, rstd: this.rstdf, dw: gNormF, M, C }));
    let cur = 0;
    for (let l = s.numLayers - 1; l >= 0; l--) {
      ops.push(...this.blockBackward(l, sc.dres[cur], sc.dres[1 - cur]));
      cur = 1 - cur;
    }
    const E = this.weights.get('model.embed_tokens.weight');
    const gE = this.grad(E);
    if (gE) {
      const plan = embeddingPlanTensors(ctx, M, Math.min(M, s.vocabSize), 'embedding plan');
      for (const t of [plan.tokens, plan.offsets, plan.positions]) this.tensors.set(t.name, t);
      this.embeddingBackward = embeddingBackwardOp(ctx, { ...plan, dout: sc.dres[cur], dE: gE, M, C, V: s.vocabSize, maxU: Math.min(M, s.vocabSize) });
      ops.push(this.embeddingBackward);
    }
  }

  /**
   * dY of one projection -> dX (overwrite, or accumulate when `accumulate`), plus its parameter
   * gradients: the adapter's (router, A, B) or, in full mode, the weight's and bias's.
   */
  private projBackward(l: number, p: Projection, dY: Tensor, dX: Tensor, accumulate: boolean): Op[] {
    const ctx = this.ctx;
    const s = this.weights.shape;
    const cfg = this.weights.adapterCfg;
    const sc = this.scratch!;
    const { M, B, T } = this;
    const [K, Nout] = projectionShape(s, p);
    const wName = projectionWeightName(l, p);
    const W = this.weights.get(wName);
    const st = this.layers[l].proj.get(p);
    const x = st?.x ?? this.projectionInput(l, p);
    const ops: Op[] = [];
    const gW = this.grad(W);
    if (gW) ops.push(matmulOp(ctx, { a: dY, b: x, c: gW, M: Nout, N: K, K: M, transA: true, beta: 1, label: `L${l} grad ${p}` }));
    if (hasBias(s, p)) {
      const bias = this.weights.get(wName.replace(/weight$/, 'bias'));
      const gb = this.grad(bias);
      if (gb) ops.push(biasBackwardOp(ctx, { dy: dY, db: gb, M, O: Nout }));
    }
    ops.push(matmulOp(ctx, { a: dY, b: W, c: dX, M, N: K, K: Nout, beta: accumulate ? 1 : 0, label: `L${l} d ${p} input` }));
    if (!st) return ops;
    const ad = this.weights.adapter.get(st.key)!;
    const N = cfg.numExperts;
    const R = cfg.rank;
    const NR = N * R;
    const routed = isRouted(cfg);
    const gA = this.grad(ad.a)!;
    const gB = this.grad(ad.b)!;
    // a. g again (the forward's op with the same dropout stream rewrites h with the same values and
    // puts g in dG's buffer); dBcat += dYᵀ·g; then dG = dY·Bcat over it.
    const again = expertDownForwardOp(ctx, {
      x, a: ad.a, w: st.w ?? undefined, h: st.h!, g: sc.dG!, M, K, N, R, scale: cfg.alpha / R, routed,
      p: 0, seed: 0, stream: st.stream, label: `L${l} ${p} experts again`,
    });
    this.dropoutOps.push(again);
    ops.push(again);
    ops.push(matmulOp(ctx, { a: dY, b: sc.dG!, c: gB, M: Nout, N: NR, K: M, transA: true, beta: 1, label: `L${l} ${p} grad B` }));
    ops.push(matmulOp(ctx, { a: dY, b: ad.b, c: sc.dG!, M, N: NR, K: Nout, label: `L${l} ${p} d experts g` }));
    // b. dh, dw
    ops.push(gateBackwardOp(ctx, { dG: sc.dG!, h: st.h!, w: st.w ?? undefined, dh: sc.dhLora!, dw: sc.dw ?? undefined, M, N, R, scale: cfg.alpha / R, routed }));
    if (routed && st.w && ad.wr && sc.dw && sc.dlogitsRouter) {
      // c. the LBC's gradient joins dw; d. softmax backward; e. router weight and input gradients
      if (st.lbcDz && this.boost) ops.push(lbcBackwardOp(ctx, { valid: this.valid, boost: this.boost, dZ: st.lbcDz, dw: sc.dw, B, T, N }));
      ops.push(routerBackwardOp(ctx, { w: st.w, dw: sc.dw, dLogits: sc.dlogitsRouter, M, N }));
      ops.push(matmulOp(ctx, { a: sc.dlogitsRouter, b: x, c: this.grad(ad.wr)!, M: N, N: K, K: M, transA: true, beta: 1, label: `L${l} ${p} grad router` }));
      ops.push(matmulOp(ctx, { a: sc.dlogitsRouter, b: ad.wr, c: dX, M, N: K, K: N, beta: 1, label: `L${l} ${p} d input via router` }));
    }
    // f, g. through the experts, with the forward's dropout masks
    const drop = { p: 0, seed: 0, stream: st.stream };
    const bIn = expertDownBackwardInputOp(ctx, { dh: sc.dhLora!, a: ad.a, dx: dX, M, K, N, R, ...drop, label: `L${l} ${p} d input via experts` });
    const bW = expertDownBackwardWeightOp(ctx, { dh: sc.dhLora!, x, dA: gA, M, K, N, R, ...drop, label: `L${l} ${p} grad A` });
    this.dropoutOps.push(bIn, bW);
    ops.push(bIn, bW);
    return ops;
  }

  private projectionInput(l: number, p: Projection): Tensor {
    const L = this.layers[l];
    switch (p) {
      case 'q_proj':
      case 'k_proj':
      case 'v_proj':
        return L.xn1;
      case 'o_proj':
        return L.att;
      case 'gate_proj':
      case 'up_proj':
        return L.xn2;
      case 'down_proj':
        return L.act;
    }
  }

  /** Block l backward: dOut (gradient of the block's output) -> dIn (gradient of its input x). */
  private blockBackward(l: number, dOut: Tensor, dIn: Tensor): Op[] {
    const ctx = this.ctx;
    const s = this.weights.shape;
    const L = this.layers[l];
    const sc = this.scratch!;
    const { M, B, T } = this;
    const C = s.hiddenSize;
    const F = s.intermediateSize;
    const D = s.headDim;
    const w = (name: string) => this.weights.get(`model.layers.${l}.${name}`);
    const rope = { cos: this.weights.cos, sin: this.weights.sin, M, D, T, maxPos: this.weights.maxPositions };
    const dims = { B, Tq: T, Tk: T, H: s.numHeads, KVH: s.numKvHeads, D };
    const ops: Op[] = [];
    const normGrad = (name: string, dy: Tensor, x: Tensor, rstd: Tensor) => {
      const g = this.grad(w(name));
      if (g) ops.push(rmsnormBackwardWeightOp(ctx, { dy, x, rstd, dw: g, M, C, label: `L${l} grad ${name}` }));
    };
    // MLP: out = h + down(swiglu(gate(xn2), up(xn2)))
    ops.push(...this.projBackward(l, 'down_proj', dOut, sc.dact, false));
    ops.push(swigluBackwardOp(ctx, { dh: sc.dact, g: L.gate, u: L.up, dg: sc.dact, du: sc.dup, M, F }));
    ops.push(...this.projBackward(l, 'gate_proj', sc.dact, sc.dxn, false)); // dact now holds d gate
    ops.push(...this.projBackward(l, 'up_proj', sc.dup, sc.dxn, true));
    ops.push(rmsnormBackwardInputOp(ctx, { dy: sc.dxn, x: L.h, w: w('post_attention_layernorm.weight'), rstd: L.rstd2, dx: sc.dh, M, C }));
    normGrad('post_attention_layernorm.weight', sc.dxn, L.h, L.rstd2);
    ops.push(accumulateOp(ctx, { x: dOut, y: sc.dh, label: `L${l} d h residual` }));
    // Attention: h = x + o(attention(rope(q(xn1)), rope(k(xn1)), v(xn1)))
    ops.push(...this.projBackward(l, 'o_proj', sc.dh, sc.datt, false));
    ops.push(...attentionBackwardOps(ctx, { dO: sc.datt, q: L.q, k: L.k, v: L.v, o: L.att, l: L.lse, dlt: sc.dlt, dq: sc.dq, dk: sc.dk, dv: sc.dv, dims }));
    ops.push(ropeBackwardOp(ctx, { ...rope, dy: sc.dq, dx: sc.dq, nHeads: s.numHeads }));
    ops.push(ropeBackwardOp(ctx, { ...rope, dy: sc.dk, dx: sc.dk, nHeads: s.numKvHeads }));
    ops.push(...this.projBackward(l, 'q_proj', sc.dq, sc.dxn, false));
    ops.push(...this.projBackward(l, 'k_proj', sc.dk, sc.dxn, true));
    ops.push(...this.projBackward(l, 'v_proj', sc.dv, sc.dxn, true));
    ops.push(rmsnormBackwardInputOp(ctx, { dy: sc.dxn, x: L.x, w: w('input_layernorm.weight'), rstd: L.rstd1, dx: dIn, M, C }));
    normGrad('input_layernorm.weight', sc.dxn, L.x, L.rstd1);
    ops.push(accumulateOp(ctx, { x: sc.dh, y: dIn, label: `L${l} d x residual` }));
    return ops;
  }

  // ---- per step -----------------------------------------------------------------------------------

  /** Uploads a batch built for this graph's (B, T). */
  setBatch(batch: Batch): void {
    if (batch.B !== this.B || batch.T !== this.T) throw new Error(`LlamaGraph: batch is ${batch.B}x${batch.T}, the graph was built for ${this.B}x${this.T}`);
    const V = this.weights.shape.vocabSize;
    for (let m = 0; m < batch.ids.length; m++) {
      if (batch.ids[m] >= V) throw new Error(`LlamaGraph: token id ${batch.ids[m]} at row ${m} is outside the vocabulary of ${V}`);
    }
    writeTensor(this.ctx, this.ids, batch.ids);
    writeTensor(this.ctx, this.targets, batch.targets);
    writeTensor(this.ctx, this.valid, batch.valid);
    if (this.boost) writeTensor(this.ctx, this.boost, gpuBoostFor(batch.types, batch.valid, batch.T, this.weights.adapterCfg));
    this.embeddingBackward?.setPlan(embeddingBackwardPlan(batch.ids));
  }

  /** Dropout of this step (p = 0 for evaluation). Every mask of a step derives from `seed`. */
  setDropout(seed: number, p: number): void {
    if (this.dropoutOps.length > 0) setDropout(this.ctx, this.dropoutOps, { seed: seed >>> 0, p });
  }

  /** Scales the loss gradient (1 / micro-batches under gradient accumulation). */
  setGradScale(scale: number): void {
    for (const op of this.ceGradOps) setCeGradScale(this.ctx, op, scale);
    for (const op of this.lbcLossOps) setLbcGradScale(this.ctx, op, scale);
  }

  /** Reads the losses of the last forward: CE, the sum of LBC over adapted projections, counts. */
  async readLosses(): Promise<{ ce: number; lbc: number; count: number; invalidLabels: number; lbcPerLayer: Float32Array }> {
    const [stats, lbcRead] = await readTensors(this.ctx, this.lbcLosses ? [this.ceStats, this.lbcLosses] : [this.ceStats]);
    const lbcPerLayer = lbcRead ?? new Float32Array(0);
    let lbc = 0;
    for (const v of lbcPerLayer) lbc += v;
    return { ce: stats[CE_STATS.loss], lbc, count: stats[CE_STATS.count], invalidLabels: stats[CE_STATS.invalid], lbcPerLayer };
  }

  /**
   * Per-row cross-entropy of the last forward [M] (0 for rows without a target) and the logits
   * [M, V]; in a training graph the backward overwrites the logits with their gradient.
   */
  async readRows(): Promise<{ rowLoss: Float32Array; logits: Float32Array }> {
    const [rowLoss, logits] = await readTensors(this.ctx, [this.rowLoss, this.logits]);
    return { rowLoss, logits };
  }

  /** Router weights [M, N] saved by the last forward for each routed projection, by `${layer}.${projection}`. */
  routingTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.layers.forEach((L) => {
      for (const st of L.proj.values()) if (st.w) out.set(st.key, st.w);
    });
    return out;
  }

  /** Bytes of every tensor this graph made (activations, gradients, scratch; not the weights). */
  get bytes(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.bytes;
    return n;
  }

  destroy(): void {
    for (const t of this.tensors.values()) t.destroy();
    for (const op of [...this.forwardOps, ...this.backwardOps]) op.uniformBuffer?.destroy();
  }
}

function setLbcGradScale(ctx: GpuContext, op: Op, scale: number): void {
  setUniforms(ctx, op, { gradScale: scale });
}
