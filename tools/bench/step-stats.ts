/**
 * What one training step costs, counted two ways: analytically from the shapes (FLOPs, the memory
 * a step needs at the least), and as the project's step really runs (dispatches, bytes bound, peak
 * GPU memory). Shared by the benchmark pages (browser) and `tools/bench/step-stats-cli.ts` (Node).
 *
 * Shapes: C hidden, F FFN, L layers, H / KVH heads, D head dim, qd = H*D, kvd = KVH*D, V vocab,
 * B sequences of T tokens, M = B*T rows; an adapted projection K -> N has E experts of rank r.
 */
import type { GpuContext } from '../../src/engine/gpu';
import { type AdapterConfig, hasAdapter, isRouted, orderedTargets } from '../../src/method/adapter';
import { type Projection, PROJECTIONS, projectionShape } from '../../src/method/shapes';
import type { ModelConfig } from '../../src/model/config';
import type { Trainer } from '../../src/train/trainer';
import { countBuffers } from '../../src/engine/buffer-count';

const F32 = 4;

/**
 * Matmul and attention FLOPs of one training step (a multiply-add is 2 FLOPs; norms, activations,
 * softmax and the optimizer are left out: they are O(M*C) against O(M*C*C)).
 *
 * Forward: every projection 2*M*K*N, causal attention 2*B*H*D*T*(T+1) (scores and values over
 * the T*(T+1)/2 visible pairs), lm head 2*M*C*V, each adapted projection 2*M*K*E (router) +
 * 2*M*K*E*r (A) + 2*M*E*r*N (B). Backward: the input gradient of every matmul (same FLOPs as its
 * forward), the weight gradient of every trainable one (again the same), attention twice its
 * forward (dQ, dK, dV, dP).
 */
export function stepFlops(s: ModelConfig, a: AdapterConfig, B: number, T: number): { forward: number; backward: number; total: number } {
  const M = B * T;
  const full = a.mode === 'full';
  let fwd = 0;
  let bwd = 0;
  const matmul = (K: number, N: number, trainable: boolean) => {
    const f = 2 * M * K * N;
    fwd += f;
    bwd += f + (trainable ? f : 0);
  };
  const adapted = hasAdapter(a) ? new Set<Projection>(orderedTargets(a)) : new Set<Projection>();
  for (let l = 0; l < s.numLayers; l++) {
    for (const p of PROJECTIONS) {
      const [K, N] = projectionShape(s, p);
      matmul(K, N, full);
      if (!adapted.has(p)) continue;
      const E = a.numExperts;
      const R = E * a.rank;
      if (isRouted(a)) matmul(K, E, true);
      matmul(K, R, true);
      matmul(R, N, true);
    }
    const att = 2 * B * s.numHeads * s.headDim * T * (T + 1);
    fwd += att;
    bwd += 2 * att;
  }
  matmul(s.hiddenSize, s.vocabSize, full);
  return { forward: fwd, backward: bwd, total: fwd + bwd };
}

export interface MemoryNeed {
  weights: number;
  adapter: number;
  /** Gradient + AdamW's two moments per trainable value. */
  optimizer: number;
  activations: number;
  total: number;
}

/**
 * The least GPU memory a training step needs without recomputation, in bytes of float32:
 * backbone weights, adapter, gradient and two moments per trainable value, and the activations
 * the backward reads. Kept per layer: the block input x, xn1 and rstd1 (attention norm), q, k, v
 * after RoPE, the attention output and its log-sum-exp rows [B, H, T] (a fused attention
 * backward recomputes the probabilities), h, xn2 and rstd2 (FFN norm), gate, up and act [M, F];
 * per adapted projection the router weights [M, E] and the experts' hidden [M, E*r]. Head: the
 * final x, its norm and rstd, the logits [M, V] (their gradient can be written in place) and
 * the cross-entropy rows. Scratch for the backward's own gradients is not counted: it is part of
 * what the measured peak is compared against.
 */
export function memoryNeed(s: ModelConfig, a: AdapterConfig, B: number, T: number): MemoryNeed {
  const M = B * T;
  const C = s.hiddenSize;
  const F = s.intermediateSize;
  const qd = s.numHeads * s.headDim;
  const kvd = s.numKvHeads * s.headDim;
  let backbone = s.vocabSize * C + C + (s.tieWordEmbeddings ? 0 : s.vocabSize * C);
  let adapter = 0;
  let activations = 0;
  const adapted = hasAdapter(a) ? orderedTargets(a) : [];
  for (let l = 0; l < s.numLayers; l++) {
    backbone += 2 * C;
    for (const p of PROJECTIONS) {
      const [K, N] = projectionShape(s, p);
      backbone += K * N;
      if (p === 'q_proj' && s.attentionBias) backbone += qd;
      if ((p === 'k_proj' || p === 'v_proj') && s.attentionBias) backbone += kvd;
      if (p === 'o_proj' && s.attentionOutBias) backbone += C;
    }
    for (const p of adapted) {
      const [K, N] = projectionShape(s, p);
      const R = a.numExperts * a.rank;
      adapter += K * R + R * N + (isRouted(a) ? K * a.numExperts : 0);
      activations += M * R + (isRouted(a) ? M * a.numExperts : 0);
    }
    activations += 3 * M * C + 2 * M + M * (qd + 2 * kvd) + M * qd + B * s.numHeads * T + 3 * M * F;
  }
  activations += 2 * M * C + M + M * s.vocabSize + M;
  const trainable = a.mode === 'full' ? backbone : adapter;
  const need = { weights: backbone * F32, adapter: adapter * F32, optimizer: 3 * trainable * F32, activations: activations * F32, total: 0 };
  need.total = need.weights + need.adapter + need.optimizer + need.activations;
  return need;
}

export interface StepCounts {
  /** Dispatches of one optimizer step (forward, backward, gradient clip, AdamW). */
  dispatches: number;
  /** Bytes of the buffers those dispatches bind, summed over dispatches. */
  boundBytes: number;
  /** Command buffers submitted per step (micro-batches). */
  submissions: number;
}

/** Counts of the step `trainer.step()` submits (no gradient accumulation: one submission). */
export function stepCounts(trainer: Trainer): StepCounts {
  const ops = trainer.stepOps();
  const live = ops.filter((op) => op.workgroups.every((n) => n > 0));
  return { dispatches: live.length, boundBytes: live.reduce((n, op) => n + op.boundBytes, 0), submissions: trainer.settings.gradAccum };
}

/**
 * Peak bytes of GPU buffers alive while `build` sets a run up and `run` trains it, counted on
 * the device's createBuffer/destroy (uniform and staging buffers included).
 */
export async function peakBytes<T>(ctx: GpuContext, build: () => T, run: (t: T) => Promise<void>): Promise<{ peak: number; value: T }> {
  const counter = countBuffers(ctx.device);
  try {
    const value = build();
    await run(value);
    return { peak: counter.peakBytes, value };
  } finally {
    counter.stop();
  }
}
