/**
 * CPU reference (float64) of the whole model: a Llama-family decoder with the LoRAMoE plugin, its
 * loss (cross-entropy on target tokens + the LBC of every adapted projection) and its backward.
 * It composes the per-kernel references of this folder in the GPU model's order, so a GPU/CPU
 * mismatch in a test points at a schedule bug, not at a kernel.
 *
 * Weights are keyed by Hugging Face names (model.layers.{l}.mlp.gate_proj.weight, ...). Adapter
 * tensors are keyed by `${layer}.${projection}` with the GPU layouts:
 *   router Wr [N, K] (null in plain LoRA), A [N*R, K] (expert i = rows i*R..i*R+R-1),
 *   B as Bcat [Nout, N*R] with Bcat[o, i*R + r] = B_i[o, r].
 */
import { adaptedIndex, type AdapterConfig, hasAdapter, isRouted } from '../method/adapter';
import { attentionBackward, attentionForward } from './attention';
import { crossEntropyBackward, crossEntropyForward } from './crossentropy';
import { lbcBackward, lbcBoost, lbcForward, lbcGpuBoost, type LbcSaved } from './lbc';
import { type LoramoeConfig, loramoeBackward, loramoeForward, type LoramoeSaved } from './loramoe';
import { matmul } from './matmul';
import { rmsnormBackward, rmsnormForward } from './rmsnorm';
import { ropeBackward, ropeForward, ropeTables } from './rope';
import { swigluBackward, swigluForward } from './swiglu';
import { hasBias, layerPrefix, type LlamaShape, projectionShape, projectionWeightName, type Projection } from '../method/shapes';

export type Weights = Map<string, Float64Array>;

interface AdapterTensors {
  wr: Float64Array | null;
  a: Float64Array;
  b: Float64Array;
}
export type AdapterWeights = Map<string, AdapterTensors>;

export interface RefBatch {
  B: number;
  T: number;
  ids: ArrayLike<number>;
  targets: ArrayLike<number>;
  valid: ArrayLike<number>;
  /** Data-type index per sample (index into adapter.groups); -1 for filler rows. */
  types: ArrayLike<number>;
}

export interface RefRunOptions {
  /** Dropout probability (0: eval). */
  dropout: number;
  /** Dropout seed of this step. */
  seed: number;
  /** Experts knocked out in every adapted projection (inference); default none. */
  expertMask?: readonly number[];
}

function get(w: Weights, name: string): Float64Array {
  const t = w.get(name);
  if (!t) throw new Error(`reference model: weight ${name} is missing`);
  return t;
}

function add(a: Float64Array, b: ArrayLike<number>): Float64Array {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
  return a;
}

interface ProjSaved {
  x: Float64Array;
  lora: LoramoeSaved | null;
  cfg: LoramoeConfig | null;
  lbc: LbcSaved | null;
}

interface LayerSaved {
  x: Float64Array;
  xn1: Float64Array;
  rstd1: Float64Array;
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  att: Float64Array;
  lse: Float64Array;
  h: Float64Array;
  xn2: Float64Array;
  rstd2: Float64Array;
  gate: Float64Array;
  up: Float64Array;
  act: Float64Array;
  proj: Map<Projection, ProjSaved>;
}

export interface RefForward {
  ce: number;
  /** Sum of the LBC over every adapted projection (0 unless mode is loramoe). */
  lbc: number;
  loss: number;
  count: number;
  logits: Float64Array;
  /** Router weights [M, N] per `${layer}.${projection}`. */
  routing: Map<string, Float64Array>;
  saved: {
    layers: LayerSaved[];
    xL: Float64Array;
    xf: Float64Array;
    rstdf: Float64Array;
    lse: Float64Array;
    boost: Float32Array | null;
  };
}

export class ReferenceLlama {
  readonly cos: Float32Array;
  readonly sin: Float32Array;

  constructor(
    readonly shape: LlamaShape,
    readonly weights: Weights,
    readonly adapterCfg: AdapterConfig,
    readonly adapter: AdapterWeights,
    maxPositions: number,
  ) {
    const t = ropeTables(maxPositions, shape.headDim, shape.ropeTheta);
    this.cos = t.cos;
    this.sin = t.sin;
  }

  private adapted(p: Projection): boolean {
    return hasAdapter(this.adapterCfg) && this.adapterCfg.targets.includes(p);
  }

  private loraCfg(l: number, p: Projection, M: number, opts: RefRunOptions): LoramoeConfig {
    const [K, Nout] = projectionShape(this.shape, p);
    const c = this.adapterCfg;
    return {
      M,
      K,
      Nout,
      N: c.numExperts,
      R: c.rank,
      scale: c.alpha / c.rank,
      p: opts.dropout,
      seed: opts.seed,
      stream: adaptedIndex(c, l, p),
      routed: isRouted(c),
      mask: opts.expertMask,
    };
  }

  /** y = x·Wᵀ (+ bias) (+ the adapter), saving what the backward needs. */
  private project(l: number, p: Projection, x: Float64Array, batch: RefBatch, boost: Float32Array | null, opts: RefRunOptions, fwd: { lbc: number; routing: Map<string, Float64Array> }): { y: Float64Array; saved: ProjSaved } {
    const [K, Nout] = projectionShape(this.shape, p);
    const M = batch.B * batch.T;
    const W = get(this.weights, projectionWeightName(l, p));
    let y: Float64Array;
    const saved: ProjSaved = { x, lora: null, cfg: null, lbc: null };
    if (this.adapted(p)) {
      const ad = this.adapter.get(`${l}.${p}`);
      if (!ad) throw new Error(`reference model: adapter for layer ${l} ${p} is missing`);
      const cfg = this.loraCfg(l, p, M, opts);
      const out = loramoeForward(x, W, ad.wr, ad.a, ad.b, cfg);
      y = out.y;
      saved.lora = out;
      saved.cfg = cfg;
      if (cfg.routed) {
        fwd.routing.set(`${l}.${p}`, out.w);
        if (boost && this.adapterCfg.lbcBeta > 0) {
          const r = lbcForward(out.w, batch.valid, boost, { B: batch.B, T: batch.T, N: cfg.N, beta: this.adapterCfg.lbcBeta, importance: this.adapterCfg.lbcImportance });
          saved.lbc = r;
          fwd.lbc += r.loss;
        }
      }
    } else {
      y = matmul(x, W, { M, N: Nout, K, transB: true });
    }
    if (hasBias(this.shape, p)) {
      const bias = get(this.weights, projectionWeightName(l, p).replace(/weight$/, 'bias'));
      for (let m = 0; m < M; m++) for (let o = 0; o < Nout; o++) y[m * Nout + o] += bias[o];
    }
    return { y, saved };
  }

  forward(batch: RefBatch, opts: RefRunOptions): RefForward {
    const s = this.shape;
    const { B, T } = batch;
    const M = B * T;
    const C = s.hiddenSize;
    const F = s.intermediateSize;
    const E = get(this.weights, 'model.embed_tokens.weight');
    const routed = hasAdapter(this.adapterCfg) && isRouted(this.adapterCfg);
    // Filler rows (type -1) get a neutral boost of 1 for every expert.
    const boost = routed ? boostFor(batch.types, this.adapterCfg) : null;
    const fwd = { lbc: 0, routing: new Map<string, Float64Array>() };

    let x: Float64Array = new Float64Array(M * C);
    for (let m = 0; m < M; m++) x.set(E.subarray(batch.ids[m] * C, (batch.ids[m] + 1) * C), m * C);
    const layers: LayerSaved[] = [];
    const ropeDims = (nHeads: number) => ({ M, nHeads, D: s.headDim, T, pos0: 0 });
    for (let l = 0; l < s.numLayers; l++) {
      const pre = layerPrefix(l);
      const proj = new Map<Projection, ProjSaved>();
      const run = (p: Projection, input: Float64Array) => {
        const r = this.project(l, p, input, batch, boost, opts, fwd);
        proj.set(p, r.saved);
        return r.y;
      };
      const n1 = rmsnormForward(x, get(this.weights, `${pre}.input_layernorm.weight`), { M, C, eps: s.rmsNormEps });
      const q = ropeForward(run('q_proj', n1.y), this.cos, this.sin, ropeDims(s.numHeads));
      const k = ropeForward(run('k_proj', n1.y), this.cos, this.sin, ropeDims(s.numKvHeads));
      const v = run('v_proj', n1.y);
      const att = attentionForward(q, k, v, { B, Tq: T, Tk: T, H: s.numHeads, KVH: s.numKvHeads, D: s.headDim });
      const h = add(run('o_proj', att.o), x);
      const n2 = rmsnormForward(h, get(this.weights, `${pre}.post_attention_layernorm.weight`), { M, C, eps: s.rmsNormEps });
      const gate = run('gate_proj', n2.y);
      const up = run('up_proj', n2.y);
      const act = swigluForward(gate, up, M * F);
      const out = add(run('down_proj', act), h);
      layers.push({ x, xn1: n1.y, rstd1: n1.rstd, q, k, v, att: att.o, lse: att.l, h, xn2: n2.y, rstd2: n2.rstd, gate, up, act, proj });
      x = out;
    }
    const nf = rmsnormForward(x, get(this.weights, 'model.norm.weight'), { M, C, eps: s.rmsNormEps });
    const head = this.lmHead();
    const logits = matmul(nf.y, head, { M, N: s.vocabSize, K: C, transB: true });
    const ce = crossEntropyForward(logits, batch.targets, M, s.vocabSize);
    return {
      ce: ce.loss,
      lbc: fwd.lbc,
      loss: ce.loss + fwd.lbc,
      count: ce.count,
      logits,
      routing: fwd.routing,
      saved: { layers, xL: x, xf: nf.y, rstdf: nf.rstd, lse: ce.lse, boost },
    };
  }

  lmHead(): Float64Array {
    return this.shape.tieWordEmbeddings ? get(this.weights, 'model.embed_tokens.weight') : get(this.weights, 'lm_head.weight');
  }

  /**
   * Gradients of `loss` (CE + LBC) for the adapter tensors (keys as `adapter`) and, in full mode,
   * for every backbone weight (keys as `weights`; tied embeddings get both contributions).
   */
  backward(batch: RefBatch, f: RefForward): { adapter: AdapterWeights; weights: Weights } {
    const s = this.shape;
    const { B, T } = batch;
    const M = B * T;
    const C = s.hiddenSize;
    const F = s.intermediateSize;
    const V = s.vocabSize;
    const full = this.adapterCfg.mode === 'full';
    const gw: Weights = new Map();
    const ga: AdapterWeights = new Map();
    const acc = (name: string, g: ArrayLike<number>) => {
      if (!full) return;
      const cur = gw.get(name);
      if (cur) add(cur, g);
      else gw.set(name, Float64Array.from(g));
    };

    const dlogits = crossEntropyBackward(1, f.logits, batch.targets, f.saved.lse, f.count, M, V);
    const head = this.lmHead();
    const dxf = matmul(dlogits, head, { M, N: C, K: V });
    acc(s.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight', matmul(dlogits, f.saved.xf, { M: V, N: C, K: M, transA: true }));
    const nfb = rmsnormBackward(dxf, f.saved.xL, get(this.weights, 'model.norm.weight'), f.saved.rstdf, { M, C });
    acc('model.norm.weight', nfb.dw);
    let dres = nfb.dx;

    const ropeDims = (nHeads: number) => ({ M, nHeads, D: s.headDim, T, pos0: 0 });
    // dY of one projection -> dX, adapter grads, full-FT weight grads.
    const backProj = (l: number, p: Projection, dY: Float64Array, sv: ProjSaved): Float64Array => {
      const [K, Nout] = projectionShape(s, p);
      const wName = projectionWeightName(l, p);
      const W = get(this.weights, wName);
      if (hasBias(s, p)) {
        const db = new Float64Array(Nout);
        for (let m = 0; m < M; m++) for (let o = 0; o < Nout; o++) db[o] += dY[m * Nout + o];
        acc(wName.replace(/weight$/, 'bias'), db);
      }
      if (sv.lora && sv.cfg) {
        const ad = this.adapter.get(`${l}.${p}`)!;
        const dwExtra = sv.lbc && f.saved.boost
          ? lbcBackward(1, batch.valid, f.saved.boost, sv.lbc, { B, T, N: sv.cfg.N, beta: this.adapterCfg.lbcBeta, importance: this.adapterCfg.lbcImportance }).dw
          : undefined;
        const g = loramoeBackward(dY, sv.x, W, ad.wr, ad.a, ad.b, sv.lora, sv.cfg, dwExtra);
        ga.set(`${l}.${p}`, { wr: g.dWr, a: g.dA, b: g.dBcat });
        return g.dx;
      }
      acc(wName, matmul(dY, sv.x, { M: Nout, N: K, K: M, transA: true }));
      return matmul(dY, W, { M, N: K, K: Nout });
    };

    for (let l = s.numLayers - 1; l >= 0; l--) {
      const L = f.saved.layers[l];
      const pre = layerPrefix(l);
      const P = (p: Projection) => L.proj.get(p)!;
      // MLP: out = h + down(swiglu(gate(xn2), up(xn2)))
      const dact = backProj(l, 'down_proj', dres, P('down_proj'));
      const sw = swigluBackward(dact, L.gate, L.up, M * F);
      const dxn2 = add(backProj(l, 'gate_proj', sw.dg, P('gate_proj')), backProj(l, 'up_proj', sw.du, P('up_proj')));
      const n2 = rmsnormBackward(dxn2, L.h, get(this.weights, `${pre}.post_attention_layernorm.weight`), L.rstd2, { M, C });
      acc(`${pre}.post_attention_layernorm.weight`, n2.dw);
      const dh = add(n2.dx, dres);
      // Attention: h = x + o_proj(attn(rope(q_proj(xn1)), rope(k_proj(xn1)), v_proj(xn1)))
      const datt = backProj(l, 'o_proj', dh, P('o_proj'));
      const ab = attentionBackward(datt, L.q, L.k, L.v, L.att, L.lse, { B, Tq: T, Tk: T, H: s.numHeads, KVH: s.numKvHeads, D: s.headDim });
      const dqp = ropeBackward(ab.dq, this.cos, this.sin, ropeDims(s.numHeads));
      const dkp = ropeBackward(ab.dk, this.cos, this.sin, ropeDims(s.numKvHeads));
      const dxn1 = backProj(l, 'q_proj', dqp, P('q_proj'));
      add(dxn1, backProj(l, 'k_proj', dkp, P('k_proj')));
      add(dxn1, backProj(l, 'v_proj', ab.dv, P('v_proj')));
      const n1 = rmsnormBackward(dxn1, L.x, get(this.weights, `${pre}.input_layernorm.weight`), L.rstd1, { M, C });
      acc(`${pre}.input_layernorm.weight`, n1.dw);
      dres = add(n1.dx, dh);
    }
    if (full) {
      const dE = new Float64Array(V * C);
      for (let m = 0; m < M; m++) {
        const id = batch.ids[m];
        for (let c = 0; c < C; c++) dE[id * C + c] += dres[m * C + c];
      }
      acc('model.embed_tokens.weight', dE);
    }
    return { adapter: ga, weights: gw };
  }
}

/**
 * LBC boost I [B, N] in the configured direction; filler rows (type -1) are neutral (1 for every
 * expert).
 */
function boostFor(types: ArrayLike<number>, cfg: AdapterConfig): Float32Array {
  const B = types.length;
  const N = cfg.numExperts;
  const out = new Float32Array(B * N).fill(1);
  for (let b = 0; b < B; b++) {
    if (types[b] < 0) continue;
    out.set(lbcBoost([types[b]], cfg.groups, N, cfg.lbcDelta, cfg.lbcDirection), b * N);
  }
  return out;
}

/**
 * The boost as the GPU's LBC kernels take it [B, N]: boostFor with the importance rule folded in
 * (I[b, n] / len[b] under "mean"; see lbcGpuBoost). `valid` [B*T] marks the batch's real tokens.
 */
export function gpuBoostFor(types: ArrayLike<number>, valid: ArrayLike<number>, T: number, cfg: AdapterConfig): Float32Array {
  return lbcGpuBoost(boostFor(types, cfg), valid, types.length, T, cfg.numExperts, cfg.lbcImportance);
}
