/**
 * The benchmark's peer: the product's training step (frozen Llama + LoRAMoE + LBC, gradient clip,
 * AdamW) written as an ordinary TensorFlow.js program, with autodiff (tf.variableGrads) instead of
 * hand-written backward kernels. Benchmark code only, not part of the product.
 *
 * It computes the same step as src/reference/llama.ts (checked by src/test/tfjs-peer.test.ts on the
 * CPU backend), so the benchmark compares the same work:
 *   loss = CE (mean over target tokens, label -100 ignored) + sum over adapted projections of LBC
 *   clip the global gradient norm (clip_grad_norm_), skip the update when it is not finite
 *   AdamW (torch.optim.AdamW), hyperparameters from src/train/trainer.ts defaultTrainSettings()
 *
 * Written the way a TF.js user would write it, without handicaps: backbone weights are constants
 * (no gradient is computed for them), adapter tensors are variables, each op is a library op
 * (batched matMul with transpose flags, softmax, tf.losses.softmaxCrossEntropy), intermediates are
 * freed by tf.tidy (variableGrads runs the forward in one), loop-invariant tensors (RoPE tables,
 * causal mask, constant scalars) are built once, and one readback per step returns the losses and
 * the gradient norm (the product reads back the same three numbers).
 *
 * What the peer leaves out, compared with the product's step:
 *   - Expert dropout. Each expert would need its own mask over x ([M, N, K]) and one matmul per
 *     expert; the peer requires adapterCfg.dropout = 0 and the benchmark runs both sides with 0.
 *   - RoPE scaling (Llama 3 rope_scaling): plain RoPE, as the reference (tables from ropeTables).
 *   - Full fine-tuning and the 'none' mode: only 'loramoe' and 'lora' adapters.
 *   - Gradient accumulation and the learning-rate schedule: one micro-batch per step; the caller
 *     passes the step's learning rate.
 *
 * Dimension letters: B sequences of T tokens, M = B*T rows, C hidden, F intermediate, H query
 * heads, KVH key/value heads, G = H/KVH, D head dim, V vocabulary, N experts, R rank, K and Nout
 * the in and out features of a projection.
 *
 * Use (a browser page, WebGPU backend):
 *   import * as tf from '@tensorflow/tfjs-core';
 *   import '@tensorflow/tfjs-backend-webgpu';
 *   await tf.setBackend('webgpu'); await tf.ready();
 *   const peer = buildPeerStep(tf, shape, weights, adapter, { ...adapterCfg, dropout: 0 });
 *   const r = await peer.step(batch);        // { ce, lbc, loss, gradNorm, skipped, step }
 *   peer.dispose();
 */
import type * as TF from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradient functions (the @tensorflow/tfjs umbrella package imports
// this module); the registry is global, so this serves whichever tfjs-core instance the caller uses.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { type AdapterConfig, hasAdapter, isRouted, orderedTargets } from '../../src/method/adapter';
import { PROJECTIONS, type Projection, hasBias, layerPrefix, type LlamaShape, projectionShape, projectionWeightName } from '../../src/method/shapes';
import { type AdapterArrays, adapterKey, type AdapterSet } from '../../src/loramoe/init';
import { gpuBoostFor } from '../../src/reference/llama';
import { ropeTables } from '../../src/reference/rope';
import { defaultTrainSettings } from '../../src/train/trainer';

/** The TensorFlow.js module the caller imported (with its backend registered and selected). */
export type Tf = typeof TF;
type Tensor = TF.Tensor;
type Tensor1D = TF.Tensor1D;
type Tensor2D = TF.Tensor2D;
type Tensor3D = TF.Tensor3D;
type Scalar = TF.Scalar;
type Variable = TF.Variable;

/** A training batch: src/data/batch.ts Batch and src/reference/llama.ts RefBatch both fit. */
export interface PeerBatch {
  B: number;
  T: number;
  /** [M] token ids */
  ids: ArrayLike<number>;
  /** [M] next-token labels, -100 (or anything outside 0..V-1) where the row is not a target */
  targets: ArrayLike<number>;
  /** [M] 1 for real tokens, 0 for padding (padding is left out of LBC's Q) */
  valid: ArrayLike<number>;
  /** [B] data-type index of each sample (index into adapterCfg.groups); -1 for filler rows */
  types: ArrayLike<number>;
}

/** The optimizer part of src/train/trainer.ts TrainSettings. */
export interface PeerTrainSettings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clip; <= 0 disables. */
  maxGradNorm: number;
}

export interface PeerOptions {
  /** Optimizer settings; each defaults to defaultTrainSettings() (the product's defaults). */
  train?: Partial<PeerTrainSettings>;
  /** Skip the update (parameters and moments unchanged) when the gradient norm is not finite, as the product does. Default true. */
  skipNonFinite?: boolean;
}

export interface PeerStepResult {
  /** 1-based optimizer step. */
  step: number;
  ce: number;
  /** Sum of the LBC over every adapted projection. */
  lbc: number;
  loss: number;
  /** Global gradient 2-norm before clipping. */
  gradNorm: number;
  skipped: boolean;
}

export interface PeerStep {
  /** One training step: forward, autodiff backward, clip, AdamW. `lr` defaults to the settings' lr. */
  step(batch: PeerBatch, lr?: number): Promise<PeerStepResult>;
  /** Loss and gradients without an update (tests), in the product's layouts (see AdapterArrays). */
  lossAndGrads(batch: PeerBatch): Promise<{ ce: number; lbc: number; grads: AdapterSet }>;
  /** Current trainable tensors and AdamW moments (tests). */
  readState(): Promise<{ params: AdapterSet; m: AdapterSet; v: AdapterSet }>;
  /** Trainable tensors and AdamW moment tensors held by the peer. */
  readonly numTrainable: number;
  readonly settings: Readonly<PeerTrainSettings>;
  dispose(): void;
}

type Part = 'wr' | 'a' | 'b';

/** One trainable tensor with its AdamW moments. */
interface Param {
  key: string;
  part: Part;
  p: Variable;
  m: Variable;
  v: Variable;
}

/** The adapter of one adapted projection as TF.js variables (product layouts). */
interface AdapterVars {
  /** Router Wr [N, K]; null in plain LoRA. */
  wr: Variable | null;
  /** Stacked A [N*R, K]. */
  a: Variable;
  /** Concatenated B [Nout, N*R]. */
  b: Variable;
}

/** Per-step inputs, uploaded once per step (created inside the loss's tidy, freed with it). */
interface StepInputs {
  B: number;
  T: number;
  M: number;
  /** [M] int32 */
  ids: Tensor1D;
  /** [M, V] one-hot labels (all zero on rows that do not count) */
  onehot: Tensor2D;
  /** [M] 1 on rows that count in the CE, else 0 */
  ceWeight: Tensor1D;
  /** 1 / max(count, 1): the CE is a mean over counted rows (0 when none counts, as the reference) */
  invCount: Scalar;
  /** [B, T, 1] valid tokens, for LBC's Q */
  valid: Tensor3D;
  /** [B, N] LBC boost I (neutral 1 on filler rows) */
  boost: Tensor2D;
  /** 1 / (B*N - 1): unbiased variance */
  invNm1: Scalar;
  cos: Tensor3D;
  sin: Tensor3D;
  cosQ: Tensor3D;
  sinQ: Tensor3D;
  mask: Tensor2D;
}

let instances = 0;

/**
 * Builds the peer. `weights`: the backbone under Hugging Face names (float32, as randomWeights or
 * the loader gives them); `adapter`: the initial adapter (src/loramoe/init.ts layouts); it is
 * copied into TF.js variables, so the arrays are not modified.
 */
export function buildPeerStep(
  tf: Tf,
  shape: LlamaShape,
  weights: ReadonlyMap<string, Float32Array>,
  adapter: AdapterSet,
  adapterCfg: AdapterConfig,
  opts: PeerOptions = {},
): PeerStep {
  if (!hasAdapter(adapterCfg)) throw new Error(`tfjs peer: mode '${adapterCfg.mode}' has no adapter; the peer trains 'loramoe' or 'lora' adapters`);
  if (adapterCfg.dropout !== 0) {
    throw new Error(`tfjs peer: expert dropout is not implemented (adapterCfg.dropout = ${adapterCfg.dropout}); run both sides of the benchmark with dropout 0`);
  }
  const defaults = defaultTrainSettings();
  const settings: PeerTrainSettings = {
    lr: defaults.lr,
    beta1: defaults.beta1,
    beta2: defaults.beta2,
    eps: defaults.eps,
    weightDecay: defaults.weightDecay,
    maxGradNorm: defaults.maxGradNorm,
    ...opts.train,
  };
  const skipNonFinite = opts.skipNonFinite ?? true;
  const id = instances++;

  const C = shape.hiddenSize;
  const H = shape.numHeads;
  const KVH = shape.numKvHeads;
  const G = H / KVH;
  const D = shape.headDim;
  const V = shape.vocabSize;
  const N = adapterCfg.numExperts;
  const R = adapterCfg.rank;
  const routed = isRouted(adapterCfg);
  const lbcOn = routed && adapterCfg.lbcBeta > 0;
  if (!Number.isInteger(G)) throw new Error(`tfjs peer: numHeads ${H} is not a multiple of numKvHeads ${KVH}`);

  // Everything the peer owns, freed by dispose().
  const owned: Tensor[] = [];
  // tf.keep: tablesFor runs lazily inside the loss's tidy, whose end must not free them.
  const own = <X extends Tensor>(t: X): X => {
    owned.push(t);
    return tf.keep(t);
  };

  // Frozen backbone: constants [out, in] (HF layout; matMul reads them with transposeB).
  const consts = new Map<string, Tensor>();
  const weight = (name: string, dims: number[]): Tensor => {
    let t = consts.get(name);
    if (!t) {
      const data = weights.get(name);
      if (!data) throw new Error(`tfjs peer: backbone weight ${name} is missing`);
      t = own(tf.tensor(data, dims, 'float32'));
      consts.set(name, t);
    }
    return t;
  };
  const embed = weight('model.embed_tokens.weight', [V, C]) as Tensor2D; // [V, C]
  const head = (shape.tieWordEmbeddings ? embed : weight('lm_head.weight', [V, C])) as Tensor2D; // [V, C]
  const finalNorm = weight('model.norm.weight', [C]) as Tensor1D; // [C]
  for (let l = 0; l < shape.numLayers; l++) {
    weight(`${layerPrefix(l)}.input_layernorm.weight`, [C]);
    weight(`${layerPrefix(l)}.post_attention_layernorm.weight`, [C]);
    for (const p of PROJECTIONS) {
      const [K, Nout] = projectionShape(shape, p);
      weight(projectionWeightName(l, p), [Nout, K]);
      if (hasBias(shape, p)) weight(projectionWeightName(l, p).replace(/weight$/, 'bias'), [Nout]);
    }
  }

  // Trainable adapter: variables in the product's layouts, each with its AdamW moments.
  const targets = new Set<Projection>(orderedTargets(adapterCfg));
  const vars = new Map<string, AdapterVars>();
  const params: Param[] = [];
  const addParam = (key: string, part: Part, data: Float32Array, dims: number[]): Variable => {
    const name = `tfjs-peer-${id}/${key}/${part}`;
    // tidy frees the initial tensors (a variable holds its own reference to the data).
    const [p, m, v] = tf.tidy(() => [
      tf.variable(tf.tensor(data, dims, 'float32'), true, name),
      tf.variable(tf.zeros(dims), false, `${name}/adam_m`),
      tf.variable(tf.zeros(dims), false, `${name}/adam_v`),
    ]);
    params.push({ key, part, p, m, v });
    return p;
  };
  for (let l = 0; l < shape.numLayers; l++) {
    for (const p of targets) {
      const key = adapterKey(l, p);
      const t = adapter.get(key);
      if (!t) throw new Error(`tfjs peer: adapter for ${key} is missing`);
      const [K, Nout] = projectionShape(shape, p);
      if (routed && !t.wr) throw new Error(`tfjs peer: adapter ${key} has no router`);
      vars.set(key, {
        wr: routed ? addParam(key, 'wr', t.wr!, [N, K]) : null,
        a: addParam(key, 'a', t.a, [N * R, K]),
        b: addParam(key, 'b', t.b, [Nout, N * R]),
      });
    }
  }
  const varList = params.map((q) => q.p);

  // Constant scalars, made once (a JS number in an op would upload a new scalar every call).
  const scalar = (x: number): Scalar => own(tf.scalar(x, 'float32'));
  const loraScale = scalar(adapterCfg.alpha / adapterCfg.rank);
  const lbcBeta = scalar(adapterCfg.lbcBeta);
  const lbcEps = scalar(1e-10);
  const rmsEps = scalar(shape.rmsNormEps);
  const one = scalar(1);
  const beta1 = scalar(settings.beta1);
  const oneMinusBeta1 = scalar(1 - settings.beta1);
  const beta2 = scalar(settings.beta2);
  const oneMinusBeta2 = scalar(1 - settings.beta2);
  const adamEps = scalar(settings.eps);
  const maxNorm = scalar(settings.maxGradNorm);
  const clipEps = scalar(1e-6);

  // Per-T tables: RoPE cos/sin [T, 1, D] (HF's emb = cat(freqs, freqs)), with the sign of
  // rotate_half folded into sin ([-sin, sin]) so rope(x) = x*cos + cat(x2, x1)*sin; the query's
  // copy also carries the attention scale 1/sqrt(D) (free: the scores need no extra op). Causal
  // mask [T, T]: 0 on and below the diagonal, -1e9 above (exp underflows to exactly 0).
  const perT = new Map<number, { cos: Tensor3D; sin: Tensor3D; cosQ: Tensor3D; sinQ: Tensor3D; mask: Tensor2D }>();
  const tablesFor = (T: number) => {
    let t = perT.get(T);
    if (t) return t;
    const half = D / 2;
    const r = ropeTables(T, D, shape.ropeTheta);
    const cos = new Float32Array(T * D);
    const sin = new Float32Array(T * D);
    for (let p = 0; p < T; p++) {
      for (let i = 0; i < half; i++) {
        cos[p * D + i] = cos[p * D + i + half] = r.cos[p * half + i];
        sin[p * D + i] = -r.sin[p * half + i];
        sin[p * D + i + half] = r.sin[p * half + i];
      }
    }
    const s = 1 / Math.sqrt(D);
    const mask = new Float32Array(T * T);
    for (let q = 0; q < T; q++) for (let k = q + 1; k < T; k++) mask[q * T + k] = -1e9;
    t = {
      cos: own(tf.tensor3d(cos, [T, 1, D])),
      sin: own(tf.tensor3d(sin, [T, 1, D])),
      cosQ: own(tf.tensor3d(cos.map((c) => c * s), [T, 1, D])),
      sinQ: own(tf.tensor3d(sin.map((c) => c * s), [T, 1, D])),
      mask: own(tf.tensor2d(mask, [T, T])),
    };
    perT.set(T, t);
    return t;
  };

  /** Uploads a batch (call inside a tidy). */
  const inputs = (batch: PeerBatch): StepInputs => {
    const { B, T } = batch;
    const M = B * T;
    if (batch.ids.length !== M || batch.targets.length !== M || batch.valid.length !== M || batch.types.length !== B) {
      throw new Error(`tfjs peer: batch arrays do not match B = ${B}, T = ${T}`);
    }
    const labels = new Int32Array(M);
    const ceWeight = new Float32Array(M);
    let count = 0;
    for (let m = 0; m < M; m++) {
      const y = batch.targets[m];
      if (Number.isInteger(y) && y >= 0 && y < V) {
        labels[m] = y;
        ceWeight[m] = 1;
        count++;
      }
    }
    return {
      B,
      T,
      M,
      ids: tf.tensor1d(Int32Array.from(batch.ids), 'int32'),
      onehot: tf.oneHot(tf.tensor1d(labels, 'int32'), V, 1, 0, 'float32') as Tensor2D,
      ceWeight: tf.tensor1d(ceWeight),
      invCount: tf.scalar(1 / Math.max(count, 1)),
      valid: tf.tensor3d(Float32Array.from(batch.valid), [B, T, 1]),
      boost: tf.tensor2d(routed ? gpuBoostFor(batch.types, batch.valid, batch.T, adapterCfg) : new Float32Array(B * N).fill(1), [B, N]),
      invNm1: tf.scalar(1 / (B * N - 1)),
      ...tablesFor(T),
    };
  };

  /** LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * w.  x [M, C], w [C] -> [M, C] */
  const rmsnorm = (x: Tensor2D, w: Tensor1D): Tensor2D => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), rmsEps))), w);

  /** HF rotate_half RoPE. x [M, nH*D] -> [M, nH*D]; cos, sin [T, 1, D] broadcast over [B, T, nH, D]. */
  const rope = (x: Tensor2D, nH: number, cos: Tensor3D, sin: Tensor3D, s: StepInputs): Tensor2D => {
    const x4 = tf.reshape(x, [s.B, s.T, nH, D]);
    const [x1, x2] = tf.split(x4, 2, 3); // [B, T, nH, D/2] each
    const rot = tf.concat([x2, x1], 3); // rotate_half(x) up to the sign, which sin carries
    return tf.reshape(tf.add(tf.mul(x4, cos), tf.mul(rot, sin)), [s.M, nH * D]);
  };

  /**
   * Causal softmax attention with grouped key/value heads. Query head h = kvh*G + g reads key/value
   * head kvh (HF repeat_kv); the G query heads of a group share one batched matmul with their K/V,
   * so K and V are never repeated. q [M, H*D] (already scaled by 1/sqrt(D)), k, v [M, KVH*D] -> [M, H*D]
   */
  const attention = (q: Tensor2D, k: Tensor2D, v: Tensor2D, s: StepInputs): Tensor2D => {
    const { B, T, M } = s;
    const qh = tf.reshape(tf.transpose(tf.reshape(q, [B, T, KVH, G, D]), [0, 2, 3, 1, 4]), [B * KVH, G * T, D]);
    const kh = tf.reshape(tf.transpose(tf.reshape(k, [B, T, KVH, D]), [0, 2, 1, 3]), [B * KVH, T, D]);
    const vh = tf.reshape(tf.transpose(tf.reshape(v, [B, T, KVH, D]), [0, 2, 1, 3]), [B * KVH, T, D]);
    const scores = tf.reshape(tf.matMul(qh, kh, false, true), [B * KVH, G, T, T]); // [B*KVH, G, Tq, Tk]
    const probs = tf.softmax(tf.add(scores, s.mask)); // mask [Tq, Tk] broadcast
    const o = tf.matMul(tf.reshape(probs, [B * KVH, G * T, T]), vh); // [B*KVH, G*T, D]
    return tf.reshape(tf.transpose(tf.reshape(o, [B, KVH, G, T, D]), [0, 3, 1, 2, 4]), [M, H * D]);
  };

  /**
   * LBC of one adapted projection. w [M, N] router weights.
   *   Q = sum over the sample's real tokens of w   [B, N];  Z = Q * I
   *   L = beta * var(Z) / (mean(Z)^2 + 1e-10), unbiased variance over the B*N values
   */
  const lbc = (w: Tensor2D, s: StepInputs): Scalar => {
    const Q = tf.sum(tf.mul(tf.reshape(w, [s.B, s.T, N]), s.valid), 1); // [B, N]
    const Z = tf.mul(Q, s.boost); // [B, N]
    const mean = tf.mean(Z);
    const variance = tf.mul(tf.sum(tf.square(tf.sub(Z, mean))), s.invNm1);
    return tf.div(tf.mul(lbcBeta, variance), tf.add(tf.square(mean), lbcEps));
  };

  /**
   * y = x W0ᵀ (+ bias) (+ scale * sum_i w_i(x) B_i A_i x), w = softmax(x Wrᵀ) dense over experts.
   * x [M, K] -> y [M, Nout]. The experts run as two matmuls over the stacked A [N*R, K] and
   * concatenated B [Nout, N*R]; the router weights scale each expert's R columns in between.
   */
  const project = (l: number, p: Projection, x: Tensor2D, s: StepInputs, lbcTerms: Scalar[]): Tensor2D => {
    const name = projectionWeightName(l, p);
    let y: Tensor2D = tf.matMul(x, consts.get(name) as Tensor2D, false, true); // [M, Nout]
    const ad = vars.get(adapterKey(l, p));
    if (ad) {
      const h = tf.matMul(x, ad.a, false, true) as Tensor2D; // [M, N*R]
      let g: Tensor2D; // [M, N*R] scale * w * h
      if (ad.wr) {
        const w = tf.softmax(tf.matMul(x, ad.wr, false, true)) as Tensor2D; // [M, N]
        if (lbcOn) lbcTerms.push(lbc(w, s));
        g = tf.reshape(tf.mul(tf.reshape(h, [s.M, N, R]), tf.reshape(tf.mul(w, loraScale), [s.M, N, 1])), [s.M, N * R]);
      } else {
        g = tf.mul(h, loraScale);
      }
      y = tf.add<Tensor2D>(y, tf.matMul(g, ad.b, false, true)); // [M, Nout]
    }
    if (hasBias(shape, p)) y = tf.add<Tensor2D>(y, consts.get(name.replace(/weight$/, 'bias'))!);
    return y;
  };

  /**
   * Sum of scalars. Not tf.addN: its WebGPU kernel binds every input in one shader and fails
   * validation beyond maxStorageBuffersPerShaderStage - 1 inputs (7 with the default limits),
   * returning garbage; tf.stack (a concat) splits its inputs into chunks under that limit.
   */
  const sumScalars = (xs: Scalar[]): Scalar => tf.sum(tf.stack(xs));

  /** The whole forward: returns CE and the summed LBC (the caller adds them for the loss). */
  const forward = (s: StepInputs): { ce: Scalar; lbc: Scalar } => {
    const lbcTerms: Scalar[] = [];
    let x = tf.gather(embed, s.ids) as Tensor2D; // [M, C]
    for (let l = 0; l < shape.numLayers; l++) {
      const pre = layerPrefix(l);
      const xn1 = rmsnorm(x, consts.get(`${pre}.input_layernorm.weight`) as Tensor1D); // [M, C]
      const q = rope(project(l, 'q_proj', xn1, s, lbcTerms), H, s.cosQ, s.sinQ, s); // [M, H*D]
      const k = rope(project(l, 'k_proj', xn1, s, lbcTerms), KVH, s.cos, s.sin, s); // [M, KVH*D]
      const v = project(l, 'v_proj', xn1, s, lbcTerms); // [M, KVH*D]
      const h = tf.add<Tensor2D>(x, project(l, 'o_proj', attention(q, k, v, s), s, lbcTerms)); // [M, C]
      const xn2 = rmsnorm(h, consts.get(`${pre}.post_attention_layernorm.weight`) as Tensor1D); // [M, C]
      const gate = project(l, 'gate_proj', xn2, s, lbcTerms); // [M, F]
      const up = project(l, 'up_proj', xn2, s, lbcTerms); // [M, F]
      const act = tf.mul<Tensor2D>(tf.mul(gate, tf.sigmoid(gate)), up); // silu(gate) * up, [M, F]
      x = tf.add<Tensor2D>(h, project(l, 'down_proj', act, s, lbcTerms)); // [M, C]
    }
    const logits = tf.matMul(rmsnorm(x, finalNorm), head, false, true); // [M, V]
    // Sum of the counted rows' CE (weights 0 elsewhere), divided by the count: F.cross_entropy's mean.
    const ceSum = tf.losses.softmaxCrossEntropy(s.onehot, logits, s.ceWeight, 0, tf.Reduction.SUM) as Scalar;
    const ce = tf.mul<Scalar>(ceSum, s.invCount);
    const lbcSum = lbcTerms.length > 0 ? sumScalars(lbcTerms) : tf.zerosLike(ce);
    return { ce, lbc: lbcSum };
  };

  /** Loss and gradients (tensors the caller disposes), in `params` order. */
  const lossAndGradTensors = (batch: PeerBatch): { ce: Scalar; lbc: Scalar; grads: Tensor[] } => {
    let ce: Scalar | null = null;
    let lbcT: Scalar | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const f = forward(inputs(batch));
      ce = tf.keep(f.ce);
      lbcT = tf.keep(f.lbc);
      return tf.add(f.ce, f.lbc);
    }, varList);
    value.dispose();
    return { ce: ce!, lbc: lbcT!, grads: params.map((q) => grads[q.p.name]) };
  };

  let stepsDone = 0;
  let disposed = false;
  const alive = () => {
    if (disposed) throw new Error('tfjs peer: used after dispose()');
  };

  const toSet = async (pick: (q: Param) => Tensor): Promise<AdapterSet> => {
    const out: AdapterSet = new Map();
    for (const q of params) {
      let e = out.get(q.key);
      if (!e) {
        e = { wr: null, a: new Float32Array(0), b: new Float32Array(0) } satisfies AdapterArrays;
        out.set(q.key, e);
      }
      e[q.part] = (await pick(q).data()) as Float32Array;
    }
    return out;
  };

  return {
    settings,
    numTrainable: params.length,

    async step(batch, lr = settings.lr) {
      alive();
      const t = ++stepsDone;
      // torch.optim.AdamW's bias corrections, in float64 as torch computes them in Python floats.
      const bc1 = 1 - settings.beta1 ** t;
      const bc2 = 1 - settings.beta2 ** t;
      const { ce, lbc: lbcT, grads } = lossAndGradTensors(batch);
      const stats = tf.tidy(() => {
        const lrOverBc1 = tf.scalar(lr / bc1);
        const invSqrtBc2 = tf.scalar(1 / Math.sqrt(bc2));
        const decay = settings.weightDecay > 0 ? tf.scalar(1 - lr * settings.weightDecay) : null;
        // clip_grad_norm_: norm over all gradients as one vector, coefficient min(1, max / (norm + 1e-6)).
        const norm = tf.sqrt(sumScalars(grads.map((g) => tf.sum(tf.square(g)))));
        const clip = settings.maxGradNorm > 0 ? tf.minimum(one, tf.div(maxNorm, tf.add(norm, clipEps))) : null;
        const finite = skipNonFinite ? tf.isFinite(norm) : null;
        params.forEach((q, i) => {
          const g = clip ? tf.mul(grads[i], clip) : grads[i];
          const m = tf.add(tf.mul(beta1, q.m), tf.mul(oneMinusBeta1, g));
          const v = tf.add(tf.mul(beta2, q.v), tf.mul(oneMinusBeta2, tf.square(g)));
          const decayed = decay ? tf.mul(q.p, decay) : q.p;
          // p - lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)
          const p = tf.sub(decayed, tf.mul(lrOverBc1, tf.div(m, tf.add(tf.mul(tf.sqrt(v), invSqrtBc2), adamEps))));
          q.m.assign(finite ? tf.where(finite, m, q.m) : m);
          q.v.assign(finite ? tf.where(finite, v, q.v) : v);
          q.p.assign(finite ? tf.where(finite, p, q.p) : p);
        });
        return tf.stack([ce, lbcT, norm]); // [3]
      });
      tf.dispose([ce, lbcT, ...grads]);
      const [ceV, lbcV, normV] = await stats.data();
      stats.dispose();
      return { step: t, ce: ceV, lbc: lbcV, loss: ceV + lbcV, gradNorm: normV, skipped: skipNonFinite && !Number.isFinite(normV) };
    },

    async lossAndGrads(batch) {
      alive();
      const { ce, lbc: lbcT, grads } = lossAndGradTensors(batch);
      try {
        const byTensor = new Map(params.map((q, i) => [q, grads[i]]));
        return { ce: (await ce.data())[0], lbc: (await lbcT.data())[0], grads: await toSet((q) => byTensor.get(q)!) };
      } finally {
        tf.dispose([ce, lbcT, ...grads]);
      }
    },

    async readState() {
      alive();
      return { params: await toSet((q) => q.p), m: await toSet((q) => q.m), v: await toSet((q) => q.v) };
    },

    dispose() {
      if (disposed) return;
      disposed = true;
      for (const q of params) tf.dispose([q.p, q.m, q.v]);
      tf.dispose(owned);
    },
  };
}
