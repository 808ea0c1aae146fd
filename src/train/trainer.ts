/**
 * The training loop: seeded shuffling into micro-batches, gradient accumulation, global-norm
 * clipping, AdamW with a cosine schedule and warmup, per-step metrics and routing statistics.
 *
 * One optimizer step = `gradAccum` micro-batches. Each micro-batch is one queue submission (its
 * forward and backward ops); the last one also carries the clip and AdamW ops, so a step with no
 * accumulation is a single submission. Losses and the gradient norm are read back after it.
 */
import type { Batch } from '../data/batch';
import { makeBatch } from '../data/batch';
import type { EncodedSample } from '../data/template';
import type { GpuContext } from '../engine/gpu';
import { adamwOp, AdamWHyper, CLIP_STATS, type GradClipPlan, planGradClip } from '../engine/kernels/optimizer';
import { runOps, type Op } from '../engine/op';
import { createTensor, readTensor, readTensors, type Tensor, writeTensor } from '../engine/tensor';
import { isRouted } from '../method/adapter';
import { LlamaGraph } from '../model/llama';
import type { GpuWeights } from '../model/weights';
import { Rng } from '../util/random';
import { RoutingStats } from './routing';
import { cosineWithWarmup } from './schedule';

export interface TrainSettings {
  /** Peak learning rate (official 2e-4). */
  lr: number;
  /** Decoupled weight decay (official 0). */
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Fraction of steps of linear warmup (official 0.03). */
  warmupRatio: number;
  schedule: 'cosine' | 'constant';
  /** Samples per micro-batch. */
  batchSize: number;
  /** Micro-batches per optimizer step. */
  gradAccum: number;
  /** Tokens per sample (longer samples are cut when encoding). */
  maxLength: number;
  /** Optimizer steps. */
  steps: number;
  /** Global gradient-norm clip (Hugging Face Trainer default 1.0; <= 0 disables). */
  maxGradNorm: number;
  /** Seeds shuffling and dropout (the adapter's init seed is separate, see initAdapter). */
  seed: number;
}

/** The official LoRAMoE script's optimizer settings where it sets them; Hugging Face defaults otherwise. */
export function defaultTrainSettings(): TrainSettings {
  return {
    lr: 2e-4,
    weightDecay: 0,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    warmupRatio: 0.03,
    schedule: 'cosine',
    batchSize: 4,
    gradAccum: 1,
    maxLength: 256,
    steps: 100,
    maxGradNorm: 1,
    seed: 42,
  };
}

export interface StepMetrics {
  /** 1-based optimizer step. */
  step: number;
  /** Mean cross-entropy over the step's micro-batches. */
  ce: number;
  /** Sum over adapted projections of the LBC, averaged over micro-batches. */
  lbc: number;
  loss: number;
  /** Global gradient 2-norm before clipping. */
  gradNorm: number;
  lr: number;
  /** Real tokens processed in the step. */
  tokens: number;
  tokensPerSecond: number;
  /** True when the gradients were not finite and the update was skipped. */
  skipped: boolean;
  epoch: number;
}

/** BatchSampler's state in a checkpoint. */
export interface SamplerState {
  n: number;
  order: number[];
  pos: number;
  epoch: number;
  rng: number;
}

/**
 * Everything a run needs to continue exactly where it stopped: the trainable tensors, AdamW's two
 * moments per tensor, the step count and the sampler and dropout RNG states. Continuing from a
 * checkpoint gives the same steps as never having stopped (same batches, masks and updates).
 */
export interface TrainerCheckpoint {
  stepsDone: number;
  sampler: SamplerState;
  dropoutRng: number;
  /** Per trainable tensor, in graph.params order. */
  tensors: { name: string; shape: number[]; param: Float32Array; m: Float32Array; v: Float32Array }[];
}

/** Seeded epoch-wise shuffling; batches wrap into the next epoch so every batch is full. */
export class BatchSampler {
  private order: number[] = [];
  private pos = 0;
  epoch = 0;
  private readonly rng: Rng;

  constructor(
    private readonly n: number,
    seed: number,
  ) {
    if (n < 1) throw new Error('no training samples');
    this.rng = new Rng(seed);
    this.reshuffle();
  }

  private reshuffle(): void {
    this.order = Array.from({ length: this.n }, (_, i) => i);
    for (let i = this.n - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      [this.order[i], this.order[j]] = [this.order[j], this.order[i]];
    }
    this.pos = 0;
  }

  /** The sampler's whole state: the epoch's order, the position in it, the epoch and the RNG. */
  snapshot(): SamplerState {
    return { n: this.n, order: [...this.order], pos: this.pos, epoch: this.epoch, rng: this.rng.snapshot() };
  }

  /** Puts back a state from snapshot(): the next batches are those the snapshotted sampler would give. */
  restore(st: SamplerState): void {
    if (st.n !== this.n || st.order.length !== this.n) throw new Error(`checkpoint: the sampler was over ${st.n} samples, this run has ${this.n}`);
    if (!(Number.isInteger(st.pos) && st.pos >= 0 && st.pos <= this.n)) throw new Error(`checkpoint: sampler position ${st.pos} is outside 0..${this.n}`);
    const seen = new Set(st.order);
    if (seen.size !== this.n || st.order.some((i) => !(Number.isInteger(i) && i >= 0 && i < this.n))) throw new Error('checkpoint: the sampler order is not a permutation');
    this.order = [...st.order];
    this.pos = st.pos;
    this.epoch = st.epoch;
    this.rng.restore(st.rng);
  }

  next(count: number): number[] {
    const out: number[] = [];
    while (out.length < count) {
      if (this.pos >= this.n) {
        this.epoch++;
        this.reshuffle();
      }
      out.push(this.order[this.pos++]);
    }
    return out;
  }
}

export class Trainer {
  readonly graph: LlamaGraph;
  readonly routing: RoutingStats | null;
  private readonly hyper: AdamWHyper;
  private readonly clip: GradClipPlan;
  private readonly optimizerOps: Op[] = [];
  private readonly moments: Tensor[] = [];
  private readonly sampler: BatchSampler;
  private readonly dropoutRng: Rng;
  /** Optimizer steps taken. */
  stepsDone = 0;
  /** Test hook (injectGradientNaN): poison the next step's gradient. */
  private poisonNextGradient = false;

  constructor(
    readonly ctx: GpuContext,
    readonly weights: GpuWeights,
    readonly samples: readonly EncodedSample[],
    readonly typeIndex: (type: string) => number,
    readonly typeNames: readonly string[],
    readonly settings: TrainSettings,
    readonly padId: number,
  ) {
    checkSettings(settings);
    for (const [i, s] of samples.entries()) {
      if (s.ids.length > settings.maxLength) throw new Error(`sample ${i} has ${s.ids.length} tokens, more than maxLength ${settings.maxLength}`);
    }
    this.graph = new LlamaGraph(ctx, weights, { B: settings.batchSize, T: settings.maxLength, training: true });
    if (this.graph.params.length === 0) throw new Error('nothing to train: the mode has no trainable tensors');
    this.hyper = new AdamWHyper(ctx);
    this.clip = planGradClip(ctx, this.graph.params.map((p) => p.grad), settings.maxGradNorm);
    for (const p of this.graph.params) {
      const m = createTensor(ctx, `adam m ${p.name}`, [...p.param.shape]);
      const v = createTensor(ctx, `adam v ${p.name}`, [...p.param.shape]);
      this.moments.push(m, v);
      this.optimizerOps.push(adamwOp(ctx, { param: p.param, grad: p.grad, m, v, hyper: this.hyper, stats: this.clip.stats, zeroGrad: true }));
    }
    this.sampler = new BatchSampler(samples.length, settings.seed);
    this.dropoutRng = new Rng(settings.seed ^ 0x5bd1e995);
    this.routing = isRouted(weights.adapterCfg) ? new RoutingStats(weights, typeNames) : null;
  }

  lrAt(step: number): number {
    const s = this.settings;
    return s.schedule === 'cosine' ? cosineWithWarmup(step, s.steps, s.warmupRatio, s.lr) : s.lr;
  }

  nextBatch(): Batch {
    const idx = this.sampler.next(this.settings.batchSize);
    return makeBatch(idx.map((i) => this.samples[i]), this.settings.batchSize, this.settings.maxLength, this.padId, this.typeIndex);
  }

  /** The dispatches of a step's last micro-batch: forward, backward, gradient clip, AdamW. */
  stepOps(): Op[] {
    return [...this.graph.forwardOps, ...this.graph.backwardOps, ...this.clip.ops, ...this.optimizerOps];
  }

  /** One optimizer step over `gradAccum` micro-batches. */
  async step(): Promise<StepMetrics> {
    const s = this.settings;
    const t0 = performance.now();
    const lr = this.lrAt(this.stepsDone);
    this.hyper.set(this.stepsDone + 1, { lr, beta1: s.beta1, beta2: s.beta2, eps: s.eps, weightDecay: s.weightDecay });
    this.graph.setGradScale(1 / s.gradAccum);
    if (this.poisonNextGradient) {
      // Parameter gradients accumulate (+=) until AdamW zeroes them: a NaN written now stays in
      // this step's gradient and is gone after it.
      this.poisonNextGradient = false;
      const g = this.graph.params[0].grad;
      this.ctx.device.queue.writeBuffer(g.buffer, 0, new Float32Array([NaN]));
    }
    let ce = 0;
    let lbc = 0;
    let tokens = 0;
    for (let micro = 0; micro < s.gradAccum; micro++) {
      const batch = this.nextBatch();
      this.graph.setBatch(batch);
      this.graph.setDropout(Math.floor(this.dropoutRng.next() * 2 ** 32), this.weights.adapterCfg.dropout);
      const last = micro === s.gradAccum - 1;
      runOps(this.ctx, last ? this.stepOps() : [...this.graph.forwardOps, ...this.graph.backwardOps]);
      const losses = await this.graph.readLosses();
      ce += losses.ce / s.gradAccum;
      lbc += losses.lbc / s.gradAccum;
      tokens += batch.tokenCount;
      if (this.routing) await this.routing.add(this.graph, batch);
    }
    const stats = await readTensor(this.ctx, this.clip.stats);
    this.stepsDone++;
    const seconds = (performance.now() - t0) / 1000;
    return {
      step: this.stepsDone,
      ce,
      lbc,
      loss: ce + lbc,
      gradNorm: stats[CLIP_STATS.norm],
      lr,
      tokens,
      tokensPerSecond: tokens / Math.max(seconds, 1e-9),
      skipped: stats[CLIP_STATS.nonFinite] !== 0,
      epoch: this.sampler.epoch,
    };
  }

  /**
   * Fault injection for tests: the next step's gradient of the first trainable tensor gets a NaN
   * (as a NaN from an overflowing backward would), so that step reports a non-finite gradient norm
   * and AdamW skips it; its loss stays finite. Later steps are unaffected.
   */
  injectGradientNaN(): void {
    this.poisonNextGradient = true;
  }

  /** Bytes of the optimizer's buffers: AdamW moments and the gradient-clip plan. */
  get optimizerBytes(): number {
    let n = this.clip.partials.bytes + this.clip.stats.bytes;
    for (const t of this.moments) n += t.bytes;
    return n;
  }

  /** Reads the run's state back from the GPU (see TrainerCheckpoint). */
  async exportCheckpoint(): Promise<TrainerCheckpoint> {
    const params = this.graph.params;
    const read = await readTensors(this.ctx, params.flatMap((p, i) => [p.param, this.moments[2 * i], this.moments[2 * i + 1]]));
    return {
      stepsDone: this.stepsDone,
      sampler: this.sampler.snapshot(),
      dropoutRng: this.dropoutRng.snapshot(),
      tensors: params.map((p, i) => ({ name: p.name, shape: [...p.param.shape], param: read[3 * i], m: read[3 * i + 1], v: read[3 * i + 2] })),
    };
  }

  /**
   * Puts a checkpoint's state into this trainer (built with the same weights layout, samples and
   * settings): trainable tensors and moments onto the GPU, the step count, the sampler and the
   * dropout RNG. Checks everything before writing anything.
   */
  importCheckpoint(cp: TrainerCheckpoint): void {
    const params = this.graph.params;
    if (cp.tensors.length !== params.length) throw new Error(`checkpoint: ${cp.tensors.length} trainable tensors, this run has ${params.length}`);
    params.forEach((p, i) => {
      const t = cp.tensors[i];
      if (t.name !== p.name) throw new Error(`checkpoint: tensor ${i} is ${t.name}, this run's is ${p.name}`);
      const n = p.param.size;
      if (t.shape.join(',') !== p.param.shape.join(',') || t.param.length !== n || t.m.length !== n || t.v.length !== n) {
        throw new Error(`checkpoint: tensor ${p.name} has shape [${t.shape.join(', ')}], this run's is [${p.param.shape.join(', ')}]`);
      }
    });
    if (!(Number.isInteger(cp.stepsDone) && cp.stepsDone >= 0)) throw new Error(`checkpoint: step ${cp.stepsDone} is not a step count`);
    if (!(Number.isInteger(cp.dropoutRng) && cp.dropoutRng >= 0 && cp.dropoutRng < 2 ** 32)) throw new Error(`checkpoint: dropout RNG state ${cp.dropoutRng} is not a 32-bit unsigned integer`);
    this.sampler.restore(cp.sampler);
    this.dropoutRng.restore(cp.dropoutRng);
    params.forEach((p, i) => {
      writeTensor(this.ctx, p.param, cp.tensors[i].param);
      writeTensor(this.ctx, this.moments[2 * i], cp.tensors[i].m);
      writeTensor(this.ctx, this.moments[2 * i + 1], cp.tensors[i].v);
    });
    this.stepsDone = cp.stepsDone;
  }

  destroy(): void {
    this.graph.destroy();
    this.hyper.destroy();
    this.clip.destroy();
    for (const t of this.moments) t.destroy();
    for (const op of this.optimizerOps) op.uniformBuffer?.destroy();
  }
}

export function checkSettings(s: TrainSettings): void {
  const fail = (m: string) => {
    throw new Error(`training settings: ${m}`);
  };
  const posInt = (k: keyof TrainSettings) => {
    const v = s[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(`${k} must be a positive integer, got ${String(v)}`);
  };
  posInt('batchSize');
  posInt('gradAccum');
  posInt('maxLength');
  posInt('steps');
  if (!(s.lr > 0 && Number.isFinite(s.lr))) fail(`lr must be positive, got ${s.lr}`);
  if (!(s.weightDecay >= 0)) fail(`weightDecay must be >= 0, got ${s.weightDecay}`);
  if (!(s.warmupRatio >= 0 && s.warmupRatio < 1)) fail(`warmupRatio must be in [0, 1), got ${s.warmupRatio}`);
  if (!(s.beta1 >= 0 && s.beta1 < 1 && s.beta2 >= 0 && s.beta2 < 1)) fail('beta1 and beta2 must be in [0, 1)');
  if (!(s.eps > 0)) fail(`eps must be positive, got ${s.eps}`);
  if (!Number.isInteger(s.seed) || s.seed < 0) fail(`seed must be a non-negative integer, got ${s.seed}`);
}
