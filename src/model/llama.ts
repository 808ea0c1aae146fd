/**
 * The Llama-family model on the GPU for training and evaluation: the embedding, the blocks
 * (block.ts: the block's forward and backward, every kernel it launches), the head and the
 * cross-entropy, written out as lists of prepared ops (the llm.c style).
 *
 * Dimension letters (docs/ARCHITECTURE.md): B batch, T sequence, M = B·T rows, C hidden, V
 * vocabulary, N experts, U distinct ids of a batch.
 *
 *   forward:  x0 = E[ids]; x(l+1) = block_l(x(l)); xf = rmsnorm(xL); logits = xf·headᵀ [M, V];
 *             ce = cross-entropy(logits, targets) over the valid positions
 *   backward: dlogits (overwrites the logits); dhead += dlogitsᵀ·xf; dxf = dlogits·head;
 *             final norm backward; block_l backward for l = L-1 .. 0 (residual gradient ping-pong);
 *             dE += scatter of the last residual gradient (full fine-tuning)
 *
 * One LlamaGraph is built for a fixed (B, T): its tensors are the size table's (tensor-plan.ts
 * graphPlan), all made at construction and taken by name, and its ops are built once; a step
 * writes the batch (ids, targets, valid, boost) and records forwardOps then backwardOps into one
 * submission.
 *
 * In LoRAMoE and LoRA modes the backbone is frozen: its tensors get no gradient buffers and no
 * weight-gradient ops; activation gradients still flow through it to the adapters below.
 */
import type { GpuContext } from '../engine/gpu';
import { ceBackwardOp, ceForwardOp, ceReduceOp, CE_STATS, setCeGradScale } from '../engine/kernels/crossentropy';
import { embeddingBackwardOp, embeddingBackwardPlan, type EmbeddingBackwardOp, embeddingForwardOp } from '../engine/kernels/embedding';
import { setDropout, setExpertMask } from '../engine/kernels/loramoe';
import type { ExpertMask } from '../method/expert-mask';
import { matmulOp } from '../engine/kernels/matmul';
import { rmsnormBackwardInputOp, rmsnormBackwardWeightOp } from '../engine/kernels/rmsnorm';
import { type Op, setUniforms } from '../engine/op';
import { createTensor, readTensors, type DType, type Tensor, writeTensor } from '../engine/tensor';
import type { Batch } from '../data/batch';
import { adaptedIndex, hasAdapter, isRouted, orderedTargets } from '../method/adapter';
import type { Projection } from '../method/shapes';
import { adapterKey } from '../loramoe/init';
import { gpuBoostFor } from '../reference/llama';
import { type AdapterActs, type BlockActs, blockBackward, type BlockBackwardGraph, blockForward, type BlockGraph, type BlockHandles, type BlockScratch, headForward, opsOf } from './block';
import { asDType, graphPlan } from './tensor-plan';
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
  /** Every tensor this graph made, by name: graphPlan's (the weights are GpuWeights'). */
  readonly tensors = new Map<string, Tensor>();

  private readonly layers: BlockActs[] = [];
  private readonly handles: BlockHandles = { dropout: [], lbcLoss: [], router: [], rope: [], attention: [] };
  private readonly ceGradOps: Op[] = [];
  private readonly grads = new Map<Tensor, Tensor>();
  private readonly taken = new Set<string>();
  private embeddingBackward: EmbeddingBackwardOp | null = null;
  private readonly loraG: Tensor | null;
  private readonly rowLoss: Tensor; // [M] per-row cross-entropy

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
    const cfg = weights.adapterCfg;
    // The size table is the allocation: every planned tensor is made here, then taken by name.
    for (const p of graphPlan({ shape: s, adapter: cfg, maxPositions: weights.maxPositions }, opts)) {
      this.tensors.set(p.name, createTensor(ctx, p.name, p.shape, p.dtype));
    }
    this.ids = this.typed('ids', 'u32');
    this.targets = this.typed('targets', 'i32');
    this.valid = this.typed('valid', 'u32');
    this.boost = isRouted(cfg) ? this.t('lbc boost') : null;
    this.ceStats = this.t('ce stats');
    this.lbcLosses = this.tensors.has('lbc losses') ? this.t('lbc losses') : null;
    this.logits = this.t('logits');
    this.rowLoss = this.t('ce row loss');
    this.loraG = this.tensors.has('lora g') ? this.t('lora g') : null;

    if (opts.training) this.makeParams();
    for (let l = 0; l < s.numLayers; l++) this.layers.push(this.layerActs(l));
    this.buildForward();
    if (opts.training) this.buildBackward();
    const untaken = [...this.tensors.keys()].filter((n) => !this.taken.has(n));
    if (untaken.length > 0) {
      this.destroy();
      throw new Error(`LlamaGraph: planned tensors never used: ${untaken.join(', ')}`);
    }
  }

  // ---- tensors, from the size table -------------------------------------------------------------

  private t(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`LlamaGraph: tensor ${name} is not in the size table`);
    this.taken.add(name);
    return t;
  }

  private typed<D extends DType>(name: string, dtype: D): Tensor<D> {
    return asDType(this.t(name), dtype);
  }

  /** Trainable tensors and their gradient buffers: adapter tensors, or every backbone weight in full mode. */
  private makeParams(): void {
    const w = this.weights;
    const add = (name: string, param: Tensor) => {
      const grad = this.t(`grad ${name}`);
      this.grads.set(param, grad);
      this.params.push({ name, param, grad });
    };
    if (w.adapterCfg.mode === 'full') {
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

  /** Layer l's activations (graphPlan's `L${l} ...`), and per adapted projection its saved tensors. */
  private layerActs(l: number): BlockActs {
    const n = (what: string) => this.t(`L${l} ${what}`);
    const cfg = this.weights.adapterCfg;
    const adapters = new Map<Projection, AdapterActs>();
    if (hasAdapter(cfg)) {
      const routed = isRouted(cfg);
      const lbc = routed && cfg.lbcBeta > 0;
      for (const p of orderedTargets(cfg)) {
        // A projection's dropout stream and its slot in the LBC losses are both its adapted index.
        const index = adaptedIndex(cfg, l, p);
        adapters.set(p, {
          key: adapterKey(l, p),
          stream: index,
          w: routed ? n(`${p} router w`) : null,
          h: n(`${p} lora h`),
          lbc: lbc ? { q: n(`${p} lbc Q`), dZ: n(`${p} lbc dZ`), index } : null,
        });
      }
    }
    return {
      x: n('x'), xn1: n('xn1'), rstd1: n('rstd1'), q: n('q'), k: n('k'), v: n('v'), att: n('att'), lse: n('att lse'),
      h: n('h'), xn2: n('xn2'), rstd2: n('rstd2'), gate: n('gate'), up: n('up'), act: n('act'), adapters,
    };
  }

  /** What every block of this graph shares (block.ts). */
  private blockGraph(): BlockGraph {
    const lbc = this.boost && this.lbcLosses ? { valid: this.valid, boost: this.boost, losses: this.lbcLosses } : null;
    return { ctx: this.ctx, weights: this.weights, B: this.B, T: this.T, label: '', loraG: this.loraG, lbc, handles: this.handles };
  }

  /** The backward's scratch (graphPlan's 'd ...' tensors), shared by every block. */
  private scratch(): BlockScratch {
    const maybe = (name: string) => (this.tensors.has(name) ? this.t(name) : null);
    return {
      dh: this.t('d h'), dxn: this.t('d xn'), dact: this.t('d act'), dup: this.t('d up'),
      datt: this.t('d att'), dq: this.t('d q'), dk: this.t('d k'), dv: this.t('d v'), dlt: this.t('d att delta'),
      dG: maybe('d lora g'), dhLora: maybe('d lora h'), dw: maybe('d router w'), dlogitsRouter: maybe('d router logits'),
    };
  }

  // ---- forward ----------------------------------------------------------------------------------

  private buildForward(): void {
    const s = this.weights.shape;
    const ctx = this.ctx;
    const { M } = this;
    const C = s.hiddenSize;
    const V = s.vocabSize;
    const ops = this.forwardOps;
    const g = this.blockGraph();
    ops.push(embeddingForwardOp(ctx, { ids: this.ids, E: this.weights.get('model.embed_tokens.weight'), out: this.layers[0].x, M, C, V, label: 'embedding' }));
    const xL = this.t('x final');
    for (let l = 0; l < s.numLayers; l++) {
      const out = l + 1 < s.numLayers ? this.layers[l + 1].x : xL;
      ops.push(...opsOf(blockForward(g, l, this.layers[l], out)));
    }
    // Head: final norm, logits [M, V], cross-entropy over target positions.
    ops.push(...headForward(ctx, this.weights, { x: xL, xf: this.t('x final normed'), rstd: this.t('rstd final'), logits: this.logits }, M));
    ops.push(ceForwardOp(ctx, { logits: this.logits, labels: this.targets, lse: this.t('ce lse'), rowLoss: this.rowLoss, V }));
    ops.push(ceReduceOp(ctx, { labels: this.targets, rowLoss: this.rowLoss, stats: this.ceStats, V }));
  }

  // ---- backward ---------------------------------------------------------------------------------

  private buildBackward(): void {
    const ctx = this.ctx;
    const s = this.weights.shape;
    const sc = this.scratch();
    const g: BlockBackwardGraph = { ...this.blockGraph(), scratch: sc, grad: (t) => this.grad(t) };
    const dres = [this.t('d residual A'), this.t('d residual B')]; // [M, C] residual-stream gradient, ping-pong
    const { M } = this;
    const C = s.hiddenSize;
    const V = s.vocabSize;
    const ops = this.backwardOps;
    const head = this.weights.lmHead();
    const xL = this.t('x final');
    const xf = this.t('x final normed');
    const rstdf = this.t('rstd final');
    // The logits are not read after the cross-entropy backward: their gradient overwrites them.
    const dlogits = this.logits;
    // Head: dlogits = (softmax - onehot)/count; dxf = dlogits·head; final norm backward.
    const ceGrad = ceBackwardOp(ctx, { logits: this.logits, labels: this.targets, lse: this.t('ce lse'), stats: this.ceStats, dlogits, V });
    this.ceGradOps.push(ceGrad);
    ops.push(ceGrad);
    const gHead = this.grad(head);
    if (gHead) ops.push(matmulOp(ctx, { a: dlogits, b: xf, c: gHead, M: V, N: C, K: M, transA: true, beta: 1, label: 'grad lm head' }));
    ops.push(matmulOp(ctx, { a: dlogits, b: head, c: sc.dxn, M, N: C, K: V, label: 'd final norm out' }));
    const normF = this.weights.get('model.norm.weight');
    ops.push(rmsnormBackwardInputOp(ctx, { dy: sc.dxn, x: xL, w: normF, rstd: rstdf, dx: dres[0], M, C, label: 'final norm backward' }));
    const gNormF = this.grad(normF);
    if (gNormF) ops.push(rmsnormBackwardWeightOp(ctx, { dy: sc.dxn, x: xL, rstd: rstdf, dw: gNormF, M, C }));
    const gE = this.grad(this.weights.get('model.embed_tokens.weight'));
    let cur = 0;
    for (let l = s.numLayers - 1; l >= 0; l--) {
      // Below layer 0 only the embedding could use the residual gradient: with it frozen, layer 0
      // computes no input gradient (src/model/block.ts blockBackward).
      ops.push(...blockBackward(g, l, this.layers[l], dres[cur], l > 0 || gE ? dres[1 - cur] : null));
      cur = 1 - cur;
    }
    if (gE) {
      // dE[id] += the residual gradient of every row holding id, gathered per distinct id (U ≤ min(M, V)).
      const plan = { tokens: this.typed('embedding plan tokens', 'u32'), offsets: this.typed('embedding plan offsets', 'u32'), positions: this.typed('embedding plan positions', 'u32') };
      this.embeddingBackward = embeddingBackwardOp(ctx, { ...plan, dout: dres[cur], dE: gE, M, C, V, maxU: Math.min(M, V) });
      ops.push(this.embeddingBackward);
    }
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
    if (this.handles.dropout.length > 0) setDropout(this.ctx, this.handles.dropout, { seed: seed >>> 0, p });
  }

  /**
   * Expert knockout for the following forwards (inference): the experts in `mask` are switched off
   * in every adapted projection, [] turns them all back on. Refused when it leaves no expert, or
   * when the adapter has no router and the mask is not empty.
   */
  setExpertMask(mask: ExpertMask): void {
    if (this.handles.router.length === 0) {
      if (mask.length > 0) throw new Error(`LlamaGraph: expert knockout needs a LoRAMoE adapter (this one is ${this.weights.adapterCfg.mode})`);
      return;
    }
    setExpertMask(this.ctx, this.handles.router, mask);
  }

  /** Scales the loss gradient (1 / micro-batches under gradient accumulation). */
  setGradScale(scale: number): void {
    for (const op of this.ceGradOps) setCeGradScale(this.ctx, op, scale);
    for (const op of this.handles.lbcLoss) setLbcGradScale(this.ctx, op, scale);
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
    for (const L of this.layers) {
      for (const a of L.adapters.values()) if (a.w) out.set(a.key, a.w);
    }
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
