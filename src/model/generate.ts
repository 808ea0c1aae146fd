/**
 * Text generation on the GPU with a key/value cache: the inference schedule of the same frozen
 * backbone and LoRAMoE adapter that LlamaGraph trains (one GpuWeights serves both).
 *
 * Dimension letters as in llama.ts: S rows of this pass (prompt length in the prefill, 1 in a
 * decode step), C hidden, H heads, KVH key/value heads, D head dim, F FFN width, V vocabulary,
 * N experts, R rank, cap the KV capacity.
 *
 * Schedule of one pass (prefill: positions 0..S-1; decode: one row at position pos). The block is
 * block.ts's blockForward, the one the training graph runs, with B = 1, T = S and a KV cache:
 *
 *   x = E[ids]                                                   [S, C]
 *   per layer l:
 *     xn = rmsnorm(x); q, k, v = projections(xn)                 (+ adapter, + biases)
 *     q, k = rope(q, k) at positions pos0 .. pos0+S-1            (RopeOp.setPos0)
 *     -- end compute pass --
 *     Kcache[l][pos0 .. pos0+S-1] = k; Vcache[l][...] = v         copyBufferToBuffer
 *     -- new compute pass --
 *     att = attention(q, Kcache[l], Vcache[l]; Tq = S, Tk = cap, pos0)   (causal)
 *     h = x + o_proj(att); x' = h + down(silu(gate(rmsnorm(h))) * up(rmsnorm(h)))
 *   copy row S-1 of the last residual to xLast [1, C]
 *   logits = rmsnorm(xLast) · headᵀ                               [1, V]: only the last row
 *
 * Tensors: tensor-plan.ts generatorPlan (the KV cache and the head's row) and passPlan (one pass).
 *
 * The decode plan (S = 1) is built once per Generator; a prefill plan is built per prompt length
 * and destroyed after its pass (pipelines are cached, so this costs buffers and bind groups only).
 * Each pass is one submission and one readback: the logits row, plus the last row of every
 * router's weights when routing is asked for. Sampling runs on the CPU from those logits.
 *
 * Adapter on/off: the adapter's ops (router, experts, combine) are marked when the plan is built;
 * with `useAdapter: false` they are left out of the recording, so the projections are the frozen
 * backbone's alone. The KV cache is rebuilt by every generate() call (its prefill overwrites rows
 * 0..S-1 and attention never reads past pos0 + t), so a call is never influenced by an earlier one.
 *
 * Not handled (as in LlamaGraph and the reference): sliding-window attention (Mistral, Qwen2) and
 * Llama 3 RoPE scaling.
 */
import type { GpuContext } from '../engine/gpu';
import { ATTENTION_MAX_KEYS, ATTENTION_ROWS_MAX_KEYS, type AttentionForwardOp, attentionRowsFit, type AttentionVariant } from '../engine/kernels/attention';
import { embeddingForwardOp } from '../engine/kernels/embedding';
import type { RopeOp } from '../engine/kernels/rope';
import { setExpertMask } from '../engine/kernels/loramoe';
import { destroyOps, recordOps, runOps, type Op } from '../engine/op';
import { createTensor, readTensor, type Tensor, writeTensor } from '../engine/tensor';
import { adaptedIndex, hasAdapter, isRouted, orderedTargets } from '../method/adapter';
import { checkExpertMask, type ExpertMask } from '../method/expert-mask';
import type { Projection } from '../method/shapes';
import { adapterKey } from '../loramoe/init';
import { Rng } from '../util/random';
import { type AdapterActs, type BlockActs, type BlockGraph, type BlockHandles, blockForward, headForward } from './block';
import { LlamaGraph } from './llama';
import { asDType, generatorPlan, passPlan } from './tensor-plan';
import type { GpuWeights } from './weights';

// ---- public types --------------------------------------------------------------------------------

export interface SamplingParams {
  /** 0: greedy (argmax; topK and topP are ignored). Otherwise logits are divided by it. */
  temperature: number;
  /** Keep the k most probable tokens (ties broken by lower id); 0: off. */
  topK: number;
  /** Keep the smallest most-probable set whose mass reaches topP (after top-k); 1: off. */
  topP: number;
}

export interface GenerateParams extends SamplingParams {
  /** Most tokens to generate (a stop token counts). */
  maxNewTokens: number;
  /** Seed of the sampler (src/util/random.ts Rng); the same seed gives the same sequence. */
  seed: number;
  /** Generation stops after producing one of these (end-of-sequence ids); it is returned. */
  stopIds: number[];
  /** false: the adapter's ops are skipped and the frozen backbone answers. */
  useAdapter: boolean;
  /** Return each token's router weights (routed adapters with useAdapter only). */
  returnRouting: boolean;
  /** Return each step's logits row (tests, inspection). Default false. */
  returnLogits?: boolean;
  /** Experts switched off in every adapted projection (knockout; src/method/expert-mask.ts). Default none. */
  expertMask?: ExpertMask;
}

export interface GeneratedToken {
  id: number;
  /** 0 for the token produced by the prefill, then 1, 2, ... */
  step: number;
  /** log softmax of `id` under the model's unmodified distribution (no temperature or filtering). */
  logprob: number;
  /**
   * Router weights [N] of the row that produced this token (position promptLength - 1 + step),
   * per adapted routed projection, keyed `${layer}.${projection}`.
   */
  routing?: Map<string, Float32Array>;
  /** The logits row [V] this token was sampled from (returnLogits only). */
  logits?: Float32Array;
}

/**
 * One generated token as the chat shows it: its text and, when the adapter routes, its routing
 * (absent when the adapter is off or unrouted). Made from a GeneratedToken by the engine worker.
 */
export interface ChatToken {
  id: number;
  text: string;
  /** A special token (the end of sequence): part of the answer's routing, not of its text. */
  special?: boolean;
  /** Share of router weight per expert group (index = group), averaged over adapted projections. */
  groupShares?: number[];
  /** Router weights [N] per adapted projection, keyed `${layer}.${projection}`. */
  perLayer?: Record<string, number[]>;
}

type FinishReason =
  /** produced a stop id */
  | 'stop'
  /** produced maxNewTokens */
  | 'length'
  /** the KV cache is full (promptLength + tokens fed reached maxLength) */
  | 'capacity'
  /** onToken returned false */
  | 'callback';

export interface GenerateResult {
  promptLength: number;
  tokens: GeneratedToken[];
  /** The generated ids (tokens' ids, in order). */
  ids: number[];
  finishReason: FinishReason;
  /** Wall time of the prefill pass (including its readback), and of all decode steps together. */
  prefillMs: number;
  decodeMs: number;
}

export interface GeneratorOptions {
  /** KV capacity in tokens (prompt + fed tokens): <= weights.maxPositions and <= 2048. */
  maxLength: number;
}

// ---- sampling (CPU) ------------------------------------------------------------------------------

/** Index of the largest value (the lowest index among ties). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** log softmax(logits)[id], in float64. */
export function logSoftmaxAt(logits: ArrayLike<number>, id: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return logits[id] - max - Math.log(sum);
}

function checkSamplingParams(p: SamplingParams): void {
  if (!(Number.isFinite(p.temperature) && p.temperature >= 0)) throw new Error(`sampling: temperature must be >= 0, got ${p.temperature}`);
  if (!(Number.isInteger(p.topK) && p.topK >= 0)) throw new Error(`sampling: topK must be a non-negative integer (0 = off), got ${p.topK}`);
  if (!(p.topP > 0 && p.topP <= 1)) throw new Error(`sampling: topP must be in (0, 1] (1 = off), got ${p.topP}`);
}

/**
 * The distribution sampled from (float64, sums to 1): softmax(logits / temperature), then top-k,
 * then top-p, each filter followed by renormalisation. Filtered tokens get probability 0.
 * Temperature 0 gives the one-hot argmax.
 */
export function samplingDistribution(logits: ArrayLike<number>, p: SamplingParams): Float64Array {
  checkSamplingParams(p);
  const V = logits.length;
  const out = new Float64Array(V);
  if (V === 0) throw new Error('sampling: empty logits');
  if (p.temperature === 0) {
    out[argmax(logits)] = 1;
    return out;
  }
  let max = -Infinity;
  for (let i = 0; i < V; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < V; i++) sum += out[i] = Math.exp((logits[i] - max) / p.temperature);
  for (let i = 0; i < V; i++) out[i] /= sum;
  const k = p.topK > 0 ? Math.min(p.topK, V) : V;
  if (k === V && p.topP >= 1) return out;
  // Descending by probability, ties by lower id (so top-k = 1 is the argmax).
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => out[b] - out[a] || a - b);
  let keep = k;
  if (p.topP < 1) {
    let mass = 0;
    for (let j = 0; j < k; j++) mass += out[order[j]];
    // Smallest prefix of the top-k set whose renormalised mass reaches topP (at least one token).
    let cum = 0;
    keep = 0;
    while (keep < k) {
      cum += out[order[keep]] / mass;
      keep++;
      if (cum >= p.topP) break;
    }
  }
  let kept = 0;
  for (let j = 0; j < keep; j++) kept += out[order[j]];
  for (let j = keep; j < V; j++) out[order[j]] = 0;
  for (let j = 0; j < keep; j++) out[order[j]] /= kept;
  return out;
}

/** Draws a token from samplingDistribution(logits, p) with one rng.next(). */
export function sampleToken(logits: ArrayLike<number>, p: SamplingParams, rng: Rng): number {
  if (p.temperature === 0) {
    checkSamplingParams(p);
    return argmax(logits);
  }
  const probs = samplingDistribution(logits, p);
  const u = rng.next();
  let cum = 0;
  let last = -1;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    cum += probs[i];
    last = i;
    if (u < cum) return i;
  }
  return last; // u within rounding of 1
}

// ---- the GPU schedule ----------------------------------------------------------------------------


type Command =
  /** Ops recorded into the current compute pass; `base` leaves out the adapter's. */
  | { kind: 'ops'; all: Op[]; base: Op[] }
  /** Copy the pass's S rows of `src` into the cache rows pos0 .. pos0+S-1 (between passes). */
  | { kind: 'kv'; src: Tensor; cache: Tensor; rowBytes: number }
  /** A fixed copy between passes. */
  | { kind: 'copy'; src: Tensor; srcOffset: number; dst: Tensor; dstOffset: number; bytes: number };

/** Everything one pass shape (S rows) needs: its tensors, commands and the ops whose pos0 moves. */
interface Plan {
  S: number;
  /** Token ids [S], written before each pass. */
  ids: Tensor<'u32'>;
  commands: Command[];
  ropeOps: RopeOp[];
  attentionOps: AttentionForwardOp[];
  /** Every adapted projection's router forward (expert knockout), and the mask they hold now ("" none). */
  routerOps: Op[];
  mask: string;
  /** Router weights [S, N] per routed adapted projection, `${layer}.${projection}`. */
  routing: Map<string, Tensor>;
  tensors: Tensor[];
  ops: Op[];
}

/**
 * The attention variant of generation: the one-row-per-invocation kernel wherever it fits, so the
 * generator shares the pipeline the training forward compiles (sequences under 64 keys) instead of
 * compiling the blocked one. A decode step has one query row per head: the blocked kernel's reuse
 * of loaded keys across rows has little to work with, and on SwiftShader its pipeline took 38-48 s
 * to compile against 2.4 s for the rows kernel (tools/bench/startup.ts).
 */
function generationAttentionVariant(capacity: number, D: number): AttentionVariant {
  return capacity <= ATTENTION_ROWS_MAX_KEYS && attentionRowsFit(D) ? 'rows' : 'auto';
}

export class Generator {
  /** KV capacity. */
  readonly capacity: number;
  private readonly kCache: Tensor[] = [];
  private readonly vCache: Tensor[] = [];
  /** Last residual row [1, C], its norm [1, C], rstd [1] and the logits row [1, V]. */
  private readonly xLast: Tensor;
  private readonly xf: Tensor;
  private readonly rstdf: Tensor;
  private readonly logits: Tensor;
  private readonly headOps: Op[];
  private readonly decode: Plan;
  private readonly routedKeys: string[];
  private readonly staging: GPUBuffer;
  private busy = false;
  private destroyed = false;

  constructor(
    readonly ctx: GpuContext,
    readonly weights: GpuWeights,
    opts: GeneratorOptions,
  ) {
    const s = weights.shape;
    const cap = opts.maxLength;
    if (!Number.isInteger(cap) || cap < 1) throw new Error(`Generator: maxLength must be a positive integer, got ${cap}`);
    if (cap > weights.maxPositions) throw new Error(`Generator: maxLength ${cap} exceeds the ${weights.maxPositions} positions of the RoPE tables`);
    if (cap > ATTENTION_MAX_KEYS) throw new Error(`Generator: maxLength ${cap} exceeds the attention kernel's ${ATTENTION_MAX_KEYS} keys`);
    this.capacity = cap;
    const own = new Map<string, Tensor>();
    for (const t of generatorPlan(s, cap)) own.set(t.name, createTensor(ctx, t.name, t.shape, t.dtype));
    const take = (name: string): Tensor => {
      const t = own.get(name);
      if (!t) throw new Error(`Generator: tensor ${name} is not in the size table`);
      return t;
    };
    for (let l = 0; l < s.numLayers; l++) {
      this.kCache.push(take(`generate L${l} K cache`));
      this.vCache.push(take(`generate L${l} V cache`));
    }
    const V = s.vocabSize;
    this.xLast = take('generate x last');
    this.xf = take('generate x final normed');
    this.rstdf = take('generate rstd final');
    this.logits = take('generate logits');
    this.headOps = headForward(ctx, weights, { x: this.xLast, xf: this.xf, rstd: this.rstdf, logits: this.logits }, 1, 'generate ');
    const cfg = weights.adapterCfg;
    this.routedKeys = [];
    if (isRouted(cfg)) {
      for (let l = 0; l < s.numLayers; l++) for (const p of orderedTargets(cfg)) this.routedKeys.push(adapterKey(l, p));
    }
    const N = isRouted(cfg) ? cfg.numExperts : 0;
    this.staging = ctx.device.createBuffer({
      label: 'generate readback',
      size: (V + this.routedKeys.length * N) * 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.decode = this.buildPlan(1, 'generate decode');
  }

  // ---- plans ----------------------------------------------------------------------------------

  /**
   * The commands of one pass of S rows: the embedding, every layer's blockForward (B = 1, T = S,
   * keys and values through the cache) and the copy of the last row into xLast. Tensors are
   * passPlan's, shared by the layers (nothing is kept for a backward).
   */
  private buildPlan(S: number, label: string): Plan {
    const ctx = this.ctx;
    const w = this.weights;
    const s = w.shape;
    const cfg = w.adapterCfg;
    const C = s.hiddenSize;
    const D = s.headDim;
    const kvd = s.numKvHeads * D;
    const tensors: Tensor[] = [];
    const byName = new Map<string, Tensor>();
    for (const p of passPlan(s, cfg, S, label)) {
      const t = createTensor(ctx, p.name, p.shape, p.dtype);
      tensors.push(t);
      byName.set(p.name, t);
    }
    const t = (name: string): Tensor => {
      const x = byName.get(`${label} ${name}`);
      if (!x) throw new Error(`Generator: tensor ${label} ${name} is not in the size table`);
      return x;
    };
    const ids = asDType(t('ids'), 'u32');
    // The residual stream ping-pongs between x0 and x1; both norms write xn and rstd.
    const xs = [t('x0'), t('x1')];
    const xn = t('xn');
    const rstd = t('rstd');
    const targets = hasAdapter(cfg) ? orderedTargets(cfg) : [];
    const routing = new Map<string, Tensor>();

    const commands: Command[] = [];
    const handles: BlockHandles = { dropout: [], lbcLoss: [], router: [], rope: [], attention: [] };
    const allOps: Op[] = [];
    let cur: { all: Op[]; base: Op[] } | null = null;
    const push = (op: Op, adapter: boolean) => {
      if (!cur) {
        cur = { all: [], base: [] };
        commands.push({ kind: 'ops', ...cur });
      }
      cur.all.push(op);
      if (!adapter) cur.base.push(op);
      allOps.push(op);
    };
    const copy = (c: Command) => {
      cur = null;
      commands.push(c);
    };

    const g: BlockGraph = { ctx, weights: w, B: 1, T: S, label: `${label} `, loraG: targets.length > 0 ? t('lora g') : null, lbc: null, handles };
    const variant = generationAttentionVariant(this.capacity, D);
    push(embeddingForwardOp(ctx, { ids, E: w.get('model.embed_tokens.weight'), out: xs[0], M: S, C, V: s.vocabSize, label: `${label} embedding` }), false);
    for (let l = 0; l < s.numLayers; l++) {
      const adapters = new Map<Projection, AdapterActs>();
      for (const p of targets) {
        const key = adapterKey(l, p);
        const rw = isRouted(cfg) ? t(`L${l} ${p} router weights`) : null;
        if (rw) routing.set(key, rw);
        adapters.set(p, { key, stream: adaptedIndex(cfg, l, p), w: rw, h: t('lora h'), lbc: null });
      }
      const acts: BlockActs = {
        x: xs[l % 2], xn1: xn, rstd1: rstd, q: t('q'), k: t('k'), v: t('v'), att: t('att'), lse: t('att lse'),
        h: t('h'), xn2: xn, rstd2: rstd, gate: t('gate'), up: t('up'), act: t('act'), adapters,
      };
      const cache = { k: this.kCache[l], v: this.vCache[l], capacity: this.capacity, variant };
      for (const step of blockForward(g, l, acts, xs[(l + 1) % 2], cache)) {
        // The new keys and values join the cache at rows pos0 .. pos0+S-1, between compute passes.
        if (step.kind === 'cache') copy({ kind: 'kv', src: step.src, cache: step.cache, rowBytes: kvd * 4 });
        else push(step.op, step.adapter);
      }
    }
    // Only the last row goes through the head.
    copy({ kind: 'copy', src: xs[s.numLayers % 2], srcOffset: (S - 1) * C * 4, dst: this.xLast, dstOffset: 0, bytes: C * 4 });
    return { S, ids, commands, ropeOps: handles.rope, attentionOps: handles.attention, routerOps: handles.router, mask: '', routing, tensors, ops: allOps };
  }

  private destroyPlan(plan: Plan): void {
    destroyOps(plan.ops);
    for (const t of plan.tensors) t.destroy();
  }

  /**
   * Runs `plan` on `ids` at positions pos0 .. pos0+S-1 (writing their keys and values into the
   * cache) and reads back the last row's logits and, when asked, its router weights.
   */
  private async runPlan(plan: Plan, ids: readonly number[], pos0: number, useAdapter: boolean, wantRouting: boolean, mask: ExpertMask): Promise<{ logits: Float32Array; routing?: Map<string, Float32Array> }> {
    const ctx = this.ctx;
    const S = plan.S;
    if (ids.length !== S) throw new Error(`Generator: ${ids.length} ids for a pass of ${S} rows`);
    if (pos0 + S > this.capacity) throw new Error(`Generator: positions up to ${pos0 + S - 1} are past the KV capacity ${this.capacity}`);
    writeTensor(ctx, plan.ids, ids);
    // The mask's uniforms are rewritten only when it changes (not every decode step).
    if (plan.routerOps.length > 0 && mask.join(',') !== plan.mask) {
      setExpertMask(ctx, plan.routerOps, mask);
      plan.mask = mask.join(',');
    }
    for (const r of plan.ropeOps) r.setPos0(pos0);
    for (const a of plan.attentionOps) a.setPos0(pos0);
    const enc = ctx.device.createCommandEncoder({ label: 'generate step' });
    let pass: GPUComputePassEncoder | null = null;
    const endPass = () => {
      pass?.end();
      pass = null;
    };
    for (const c of plan.commands) {
      if (c.kind === 'ops') {
        pass ??= enc.beginComputePass();
        recordOps(pass, useAdapter ? c.all : c.base);
        continue;
      }
      endPass();
      if (c.kind === 'kv') enc.copyBufferToBuffer(c.src.buffer, 0, c.cache.buffer, pos0 * c.rowBytes, S * c.rowBytes);
      else enc.copyBufferToBuffer(c.src.buffer, c.srcOffset, c.dst.buffer, c.dstOffset, c.bytes);
    }
    endPass();
    const head = enc.beginComputePass();
    recordOps(head, this.headOps);
    head.end();
    const V = this.weights.shape.vocabSize;
    enc.copyBufferToBuffer(this.logits.buffer, 0, this.staging, 0, V * 4);
    const N = this.weights.adapterCfg.numExperts;
    const routed = wantRouting && useAdapter && this.routedKeys.length > 0;
    if (routed) {
      this.routedKeys.forEach((key, i) => {
        const rw = plan.routing.get(key)!;
        enc.copyBufferToBuffer(rw.buffer, (S - 1) * N * 4, this.staging, (V + i * N) * 4, N * 4);
      });
    }
    ctx.device.queue.submit([enc.finish()]);
    await this.staging.mapAsync(GPUMapMode.READ);
    const data = new Float32Array(this.staging.getMappedRange().slice(0));
    this.staging.unmap();
    const logits = data.slice(0, V);
    if (!routed) return { logits };
    const routing = new Map<string, Float32Array>();
    this.routedKeys.forEach((key, i) => routing.set(key, data.slice(V + i * N, V + (i + 1) * N)));
    return { logits, routing };
  }

  // ---- public ---------------------------------------------------------------------------------

  /**
   * Generates up to maxNewTokens after `prompt`. `onToken` sees each token as it is produced;
   * returning false stops generation (finishReason 'callback'). One call at a time per Generator.
   */
  async generate(prompt: number[], params: GenerateParams, onToken?: (t: GeneratedToken) => void | boolean): Promise<GenerateResult> {
    if (this.destroyed) throw new Error('Generator: used after destroy()');
    if (this.busy) throw new Error('Generator: generate() is already running (one call at a time: the KV cache is shared)');
    checkSamplingParams(params);
    if (!Number.isInteger(params.maxNewTokens) || params.maxNewTokens < 0) throw new Error(`Generator: maxNewTokens must be a non-negative integer, got ${params.maxNewTokens}`);
    if (!Number.isFinite(params.seed)) throw new Error(`Generator: seed must be a finite number, got ${params.seed}`);
    const V = this.weights.shape.vocabSize;
    const S = prompt.length;
    if (S === 0) throw new Error('Generator: the prompt is empty (at least one token, e.g. BOS, is needed)');
    if (S > this.capacity) throw new Error(`Generator: the prompt has ${S} tokens, the KV cache holds ${this.capacity} (maxLength)`);
    prompt.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`Generator: prompt token ${id} at ${i} is outside the vocabulary of ${V}`);
    });
    const mask = params.expertMask ?? [];
    if (mask.length > 0 && !isRouted(this.weights.adapterCfg)) throw new Error(`Generator: expert knockout needs a LoRAMoE adapter (this one is ${this.weights.adapterCfg.mode})`);
    if (isRouted(this.weights.adapterCfg)) checkExpertMask(mask, this.weights.adapterCfg.numExperts);
    const stop = new Set(params.stopIds);
    const rng = new Rng(params.seed >>> 0);
    const tokens: GeneratedToken[] = [];
    const result: GenerateResult = { promptLength: S, tokens, ids: [], finishReason: 'length', prefillMs: 0, decodeMs: 0 };
    if (params.maxNewTokens === 0) return result;

    this.busy = true;
    try {
      const emit = (out: { logits: Float32Array; routing?: Map<string, Float32Array> }): boolean => {
        const id = sampleToken(out.logits, params, rng);
        const tok: GeneratedToken = { id, step: tokens.length, logprob: logSoftmaxAt(out.logits, id) };
        if (out.routing) tok.routing = out.routing;
        if (params.returnLogits) tok.logits = out.logits;
        tokens.push(tok);
        result.ids.push(id);
        if (onToken?.(tok) === false) {
          result.finishReason = 'callback';
          return false;
        }
        if (stop.has(id)) {
          result.finishReason = 'stop';
          return false;
        }
        if (tokens.length >= params.maxNewTokens) {
          result.finishReason = 'length';
          return false;
        }
        // The next step feeds this token at position S + step; the cache must have that row.
        if (S + tok.step >= this.capacity) {
          result.finishReason = 'capacity';
          return false;
        }
        return true;
      };

      const t0 = performance.now();
      const prefill = S === 1 ? this.decode : this.buildPlan(S, `generate prefill ${S}`);
      let out;
      try {
        out = await this.runPlan(prefill, prompt, 0, params.useAdapter, params.returnRouting, mask);
      } finally {
        if (prefill !== this.decode) this.destroyPlan(prefill);
      }
      result.prefillMs = performance.now() - t0;
      let go = emit(out);
      const t1 = performance.now();
      while (go) {
        const last = tokens[tokens.length - 1];
        out = await this.runPlan(this.decode, [last.id], S + last.step, params.useAdapter, params.returnRouting, mask);
        go = emit(out);
      }
      result.decodeMs = performance.now() - t1;
      return result;
    } finally {
      this.busy = false;
    }
  }

  /**
   * Logits [T, V] of the whole sequence without any cache: LlamaGraph's training forward (B = 1,
   * T = ids.length, no backward), an independent schedule to check the cached one against. It runs
   * the model as `weights` configure it (adapter included when there is one).
   */
  forwardLogitsNoCache(ids: number[]): Promise<Float32Array> {
    return forwardLogitsNoCache(this.ctx, this.weights, ids);
  }

  /** Bytes of the KV cache. */
  get cacheBytes(): number {
    let n = 0;
    for (const t of [...this.kCache, ...this.vCache]) n += t.bytes;
    return n;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.destroyPlan(this.decode);
    destroyOps(this.headOps);
    for (const t of [...this.kCache, ...this.vCache, this.xLast, this.xf, this.rstdf, this.logits]) t.destroy();
    this.staging.destroy();
  }
}

/** See Generator.forwardLogitsNoCache. */
async function forwardLogitsNoCache(ctx: GpuContext, weights: GpuWeights, ids: number[]): Promise<Float32Array> {
  const V = weights.shape.vocabSize;
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`forwardLogitsNoCache: token ${id} at ${i} is outside the vocabulary of ${V}`);
  });
  const graph = new LlamaGraph(ctx, weights, { B: 1, T: ids.length, training: false });
  try {
    writeTensor(ctx, graph.ids, ids);
    runOps(ctx, graph.forwardOps);
    return (await readTensor(ctx, graph.logits)) as Float32Array;
  } finally {
    graph.destroy();
  }
}
