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
import { createTensor, readTensor, type Tensor } from '../engine/tensor';
import { isRouted } from '../loramoe/config';
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

  /** One optimizer step over `gradAccum` micro-batches. */
  async step(): Promise<StepMetrics> {
    const s = this.settings;
    const t0 = performance.now();
    const lr = this.lrAt(this.stepsDone);
    this.hyper.set(this.stepsDone + 1, { lr, beta1: s.beta1, beta2: s.beta2, eps: s.eps, weightDecay: s.weightDecay });
    this.graph.setGradScale(1 / s.gradAccum);
    let ce = 0;
    let lbc = 0;
    let tokens = 0;
    for (let micro = 0; micro < s.gradAccum; micro++) {
      const batch = this.nextBatch();
      this.graph.setBatch(batch);
      this.graph.setDropout(Math.floor(this.dropoutRng.next() * 2 ** 32), this.weights.adapterCfg.dropout);
      const last = micro === s.gradAccum - 1;
      runOps(this.ctx, [...this.graph.forwardOps, ...this.graph.backwardOps, ...(last ? [...this.clip.ops, ...this.optimizerOps] : [])]);
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
