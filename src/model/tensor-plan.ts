/**
 * The size table: every tensor the model allocates on the GPU, by name, from shapes alone (no
 * device, no data). GpuWeights, LlamaGraph and the Generator allocate their buffers from it by
 * name, and the memory estimate (src/store/memory.ts) sums it before anything is loaded, so the
 * estimate and the allocation cannot drift apart.
 *
 *   weights      backbone tensors under their Hugging Face names (float32 on the GPU whatever the
 *                file's dtype, or the matrices in f16: WeightPrecision) and the RoPE tables
 *                                                                                    (GpuWeights)
 *   adapter      router, stacked A and concatenated B per adapted projection          (GpuWeights)
 *   activations  the graph's forward tensors and backward scratch; the Generator's
 *                KV cache and pass tensors                                (LlamaGraph, Generator)
 *   gradients    one per trainable tensor                                              (LlamaGraph)
 *   optimizer    AdamW's two moments per trainable tensor, the gradient clip's buffers  (Trainer)
 *   other        the embedding-gradient plan of full fine-tuning                       (LlamaGraph)
 *
 * Dimension letters: docs/ARCHITECTURE.md's glossary (B, T, M = B·T, S, C, F, H, KVH, D, V, L, N,
 * R, NR = N·R, U, cap).
 */
import { CE_STATS } from '../engine/kernels/crossentropy';
import { CLIP_STATS, gradSumsqGroups } from '../engine/kernels/optimizer';
import { storedBytes, type DType, type Tensor } from '../engine/tensor';
import { type AdapterConfig, hasAdapter, isRouted, orderedTargets } from '../method/adapter';
import { type Projection, projectionShape } from '../method/shapes';
import { adapterKey } from '../loramoe/init';
import { expectedTensorNames, type ModelConfig } from './config';

export type TensorRole = 'weights' | 'adapter' | 'activations' | 'gradients' | 'optimizer' | 'other';

export interface PlannedTensor {
  /** The GPU buffer's label (Tensor.name). */
  name: string;
  shape: readonly number[];
  dtype: DType;
  bytes: number;
  role: TensorRole;
}

/** The adapter settings that decide sizes. */
export type PlanAdapter = Pick<AdapterConfig, 'mode' | 'numExperts' | 'rank' | 'targets' | 'lbcBeta'>;

export interface ModelPlanInput {
  shape: ModelConfig;
  adapter: PlanAdapter;
  /** RoPE table rows (GpuWeights' maxPositions). */
  maxPositions: number;
  /** How the backbone's matrices are stored; f32 when absent. */
  precision?: WeightPrecision;
}

/**
 * How the frozen backbone's matrices are stored on the GPU (docs/ARCHITECTURE.md, "Half-precision
 * weights"): `f32`, or `f16` (half the memory and the bytes each product reads; the kernels widen
 * to f32 and accumulate in f32). Only matrices (embedding, projections, LM head) change: norms,
 * biases and RoPE tables stay f32. Full fine-tuning trains the backbone, so it needs f32.
 */
export type WeightPrecision = 'f32' | 'f16';

/**
 * The user's choice: a precision, or `auto`: f16 on hardware GPUs (memory and bandwidth are what
 * limit a backbone there), f32 on software adapters, where unpacking halves costs CPU time
 * (measured: a demo training step 1.06x the f32 time on SwiftShader; tools/bench/half-weights.ts). The accuracy cost is
 * the same everywhere and small (docs/performance.md, "Half-precision weights").
 */
export type WeightSetting = 'auto' | WeightPrecision;
export const WEIGHT_SETTINGS: readonly WeightSetting[] = ['auto', 'f32', 'f16'];

export function resolvePrecision(setting: WeightSetting, softwareAdapter: boolean): WeightPrecision {
  if (setting !== 'auto') return setting;
  return softwareAdapter ? 'f32' : 'f16';
}

/** The dtype a backbone tensor of this shape is stored in. */
export function backboneDtype(shape: readonly number[], precision: WeightPrecision): 'f32' | 'f16' {
  return precision === 'f16' && shape.length === 2 ? 'f16' : 'f32';
}

/** The precision a model with this adapter can use: full fine-tuning keeps f32 (it updates the backbone). */
export function usablePrecision(adapter: Pick<AdapterConfig, 'mode'>, wanted: WeightPrecision): WeightPrecision {
  return adapter.mode === 'full' ? 'f32' : wanted;
}

/** The batch a LlamaGraph is built for. */
export interface GraphShape {
  B: number;
  T: number;
  /** Backward, gradients and scratch too; false for an evaluation graph (forward only). */
  training: boolean;
}

class Table {
  readonly tensors: PlannedTensor[] = [];
  add(role: TensorRole, name: string, shape: readonly number[], dtype: DType = 'f32'): void {
    const n = shape.reduce((x, y) => x * y, 1);
    this.tensors.push({ name, shape: [...shape], dtype, bytes: storedBytes(dtype, Math.max(n, 0)), role });
  }
}

/** The adapter's tensor for part `router`, `A` or `B` of layer l's projection p (GpuWeights' label). */
export function adapterTensorName(l: number, p: Projection, part: 'router' | 'A' | 'B'): string {
  return `adapter ${adapterKey(l, p)}.${part}`;
}

/**
 * The adapter's tensors per adapted projection: router Wr [N, K] (routed), A [NR, K], B [Nout, NR].
 * `param` is the trainable name (`${l}.${p}.A`: gradients and moments are named after it).
 */
function adapterTensors(shape: ModelConfig, a: PlanAdapter): { param: string; name: string; shape: [number, number] }[] {
  if (!hasAdapter(a)) return [];
  const N = a.numExperts;
  const NR = N * a.rank;
  const out: { param: string; name: string; shape: [number, number] }[] = [];
  for (let l = 0; l < shape.numLayers; l++) {
    for (const p of orderedTargets(a)) {
      const [K, Nout] = projectionShape(shape, p);
      const part = (what: 'router' | 'A' | 'B', dims: [number, number]) => out.push({ param: `${adapterKey(l, p)}.${what}`, name: adapterTensorName(l, p, what), shape: dims });
      if (isRouted(a)) part('router', [N, K]);
      part('A', [NR, K]);
      part('B', [Nout, NR]);
    }
  }
  return out;
}

/**
 * The trainable tensors, by the name their gradient and moments carry: every backbone weight in
 * full fine-tuning, the adapter's tensors in LoRA and LoRAMoE, none otherwise. LlamaGraph's
 * `params` list them in this order.
 */
export function trainableTensors(shape: ModelConfig, a: PlanAdapter): { name: string; shape: readonly number[] }[] {
  if (a.mode === 'full') return expectedTensorNames(shape).map((t) => ({ name: t.name, shape: t.shape }));
  return adapterTensors(shape, a).map((t) => ({ name: t.param, shape: t.shape }));
}

/** GpuWeights: the backbone, the adapter and the RoPE tables [maxPositions, D/2]. */
export function weightsPlan(inp: ModelPlanInput): PlannedTensor[] {
  const s = inp.shape;
  const t = new Table();
  const precision = inp.precision ?? 'f32';
  if (usablePrecision(inp.adapter, precision) !== precision) throw new Error('full fine-tuning updates the backbone: its weights must be f32');
  for (const w of expectedTensorNames(s)) t.add('weights', w.name, w.shape, backboneDtype(w.shape, precision));
  for (const w of adapterTensors(s, inp.adapter)) t.add('adapter', w.name, w.shape);
  t.add('weights', 'rope cos', [inp.maxPositions, s.headDim / 2]);
  t.add('weights', 'rope sin', [inp.maxPositions, s.headDim / 2]);
  return t.tensors;
}

/**
 * Names of layer l's activations the block forward writes (and, training, the backward reads),
 * with their shapes: the residual stream x, both norms' outputs and rstd, q, k, v after RoPE,
 * attention's output and log-sum-exp, the residual after attention h, and the MLP's three.
 */
function layerActivations(s: ModelConfig, l: number, B: number, T: number): [string, number[]][] {
  const M = B * T;
  const C = s.hiddenSize;
  const F = s.intermediateSize;
  const qd = s.numHeads * s.headDim;
  const kvd = s.numKvHeads * s.headDim;
  return ([
    ['x', [M, C]], ['xn1', [M, C]], ['rstd1', [M]], ['q', [M, qd]], ['k', [M, kvd]], ['v', [M, kvd]],
    ['att', [M, qd]], ['att lse', [B, s.numHeads, T]], ['h', [M, C]], ['xn2', [M, C]], ['rstd2', [M]],
    ['gate', [M, F]], ['up', [M, F]], ['act', [M, F]],
  ] as [string, number[]][]).map(([name, shape]) => [`L${l} ${name}`, shape]);
}

/**
 * LlamaGraph for (B, T): inputs, the per-layer activations the backward reads, the head's tensors
 * and, when training, the gradients, the backward's scratch (shared by every block: each overwrites
 * before it reads) and full fine-tuning's embedding-gradient plan.
 */
export function graphPlan(inp: ModelPlanInput, g: GraphShape): PlannedTensor[] {
  const s = inp.shape;
  const a = inp.adapter;
  const { B, T } = g;
  const M = B * T;
  const C = s.hiddenSize;
  const F = s.intermediateSize;
  const H = s.numHeads;
  const V = s.vocabSize;
  const qd = H * s.headDim;
  const kvd = s.numKvHeads * s.headDim;
  const N = a.numExperts;
  const NR = N * a.rank;
  const adapted = hasAdapter(a);
  const routed = isRouted(a);
  const targets = adapted ? orderedTargets(a) : [];
  const lbc = routed && a.lbcBeta > 0;
  const t = new Table();
  const act = (name: string, shape: number[], dtype: DType = 'f32') => t.add('activations', name, shape, dtype);

  act('ids', [M], 'u32');
  act('targets', [M], 'i32');
  act('valid', [M], 'u32');
  if (routed) act('lbc boost', [B, N]);
  act('ce stats', [CE_STATS.size]);
  if (lbc && targets.length > 0) act('lbc losses', [s.numLayers * targets.length]);
  act('logits', [M, V]);
  // The experts' gated hidden g = scale·w·h [M, NR] feeds only the combine matmul right after it:
  // one buffer serves every projection, and the backward recomputes g where it needs it.
  if (adapted && targets.length > 0) act('lora g', [M, NR]);
  if (g.training) for (const p of trainableTensors(s, a)) t.add('gradients', `grad ${p.name}`, p.shape);
  for (let l = 0; l < s.numLayers; l++) {
    for (const [name, shape] of layerActivations(s, l, B, T)) act(name, shape);
    for (const p of targets) {
      if (routed) act(`L${l} ${p} router w`, [M, N]);
      act(`L${l} ${p} lora h`, [M, NR]);
      if (lbc) {
        act(`L${l} ${p} lbc Q`, [B, N]);
        act(`L${l} ${p} lbc dZ`, [B, N]);
      }
    }
  }
  act('x final', [M, C]);
  act('x final normed', [M, C]);
  act('rstd final', [M]);
  act('ce lse', [M]);
  act('ce row loss', [M]);
  if (!g.training) return t.tensors;

  // No 'd logits': the cross-entropy backward overwrites the logits with their gradient.
  for (const [name, shape] of [
    ['d residual A', [M, C]], ['d residual B', [M, C]], ['d h', [M, C]], ['d xn', [M, C]], ['d act', [M, F]], ['d up', [M, F]],
    ['d att', [M, qd]], ['d q', [M, qd]], ['d k', [M, kvd]], ['d v', [M, kvd]], ['d att delta', [B, H, T]],
  ] as [string, number[]][]) act(name, shape);
  if (adapted) {
    act('d lora g', [M, NR]);
    act('d lora h', [M, NR]);
  }
  if (routed) {
    act('d router w', [M, N]);
    act('d router logits', [M, N]);
  }
  if (a.mode === 'full') {
    // The embedding gradient's per-batch plan: at most U = min(M, V) distinct ids.
    const U = Math.min(M, V);
    t.add('other', 'embedding plan tokens', [U], 'u32');
    t.add('other', 'embedding plan offsets', [U + 1], 'u32');
    t.add('other', 'embedding plan positions', [M], 'u32');
  }
  return t.tensors;
}

/** The Trainer's optimizer: AdamW's m and v per trainable tensor, the gradient clip's partial sums and stats. */
function optimizerPlan(inp: ModelPlanInput): PlannedTensor[] {
  const t = new Table();
  let partials = 0;
  const trainable = trainableTensors(inp.shape, inp.adapter);
  for (const p of trainable) {
    t.add('optimizer', `adam m ${p.name}`, p.shape);
    t.add('optimizer', `adam v ${p.name}`, p.shape);
    partials += gradSumsqGroups(p.shape.reduce((x, y) => x * y, 1));
  }
  if (trainable.length > 0) {
    t.add('optimizer', 'clip partials', [partials]);
    t.add('optimizer', 'clip stats', [CLIP_STATS.size]);
  }
  return t.tensors;
}

/** Everything a run allocates: the weights, and with a graph its tensors and (training) the optimizer's. */
export function runPlan(inp: ModelPlanInput, g: GraphShape | null): PlannedTensor[] {
  const out = weightsPlan(inp);
  if (!g) return out;
  out.push(...graphPlan(inp, g));
  if (g.training) out.push(...optimizerPlan(inp));
  return out;
}

/**
 * The Generator's own tensors for a KV capacity of `cap` tokens: per layer the K and V caches
 * [1, cap, KVH·D], and the head's one row: the last residual, its norm and rstd, the logits [1, V].
 */
export function generatorPlan(s: ModelConfig, cap: number): PlannedTensor[] {
  const t = new Table();
  const kvd = s.numKvHeads * s.headDim;
  for (let l = 0; l < s.numLayers; l++) {
    t.add('activations', `generate L${l} K cache`, [1, cap, kvd]);
    t.add('activations', `generate L${l} V cache`, [1, cap, kvd]);
  }
  t.add('activations', 'generate x last', [1, s.hiddenSize]);
  t.add('activations', 'generate x final normed', [1, s.hiddenSize]);
  t.add('activations', 'generate rstd final', [1]);
  t.add('activations', 'generate logits', [1, s.vocabSize]);
  return t.tensors;
}

/**
 * One generation pass of S rows (the prompt, or 1 in a decode step), names prefixed by `label`.
 * Nothing is kept for a backward, so every layer shares one set of activations: the residual
 * stream ping-pongs between x0 and x1, both norms write xn and rstd, and the experts' h and g are
 * one buffer each. Only the router weights [S, N] are per layer, to be read back as routing.
 */
export function passPlan(s: ModelConfig, a: PlanAdapter, S: number, label: string): PlannedTensor[] {
  const t = new Table();
  const C = s.hiddenSize;
  const F = s.intermediateSize;
  const qd = s.numHeads * s.headDim;
  const kvd = s.numKvHeads * s.headDim;
  const act = (name: string, shape: number[], dtype: DType = 'f32') => t.add('activations', `${label} ${name}`, shape, dtype);
  act('ids', [S], 'u32');
  act('x0', [S, C]);
  act('x1', [S, C]);
  act('xn', [S, C]);
  act('rstd', [S]);
  act('q', [S, qd]);
  act('k', [S, kvd]); // rows copied into the K cache
  act('v', [S, kvd]); // rows copied into the V cache
  act('att', [S, qd]);
  act('att lse', [1, s.numHeads, S]);
  act('h', [S, C]);
  act('gate', [S, F]);
  act('up', [S, F]);
  act('act', [S, F]);
  const targets = hasAdapter(a) ? orderedTargets(a) : [];
  if (targets.length > 0) {
    const NR = a.numExperts * a.rank;
    act('lora h', [S, NR]);
    act('lora g', [S, NR]);
  }
  if (isRouted(a)) {
    for (let l = 0; l < s.numLayers; l++) for (const p of targets) act(`L${l} ${p} router weights`, [S, a.numExperts]);
  }
  return t.tensors;
}

/** Sum of the planned tensors' bytes. */
export function planBytes(tensors: readonly PlannedTensor[]): number {
  let n = 0;
  for (const t of tensors) n += t.bytes;
  return n;
}

/** A tensor made from the plan, as the dtype its user reads and writes (checked). */
export function asDType<D extends DType>(t: Tensor, dtype: D): Tensor<D> {
  if (!isDType(t, dtype)) throw new Error(`tensor ${t.name} is ${t.dtype}, expected ${dtype}`);
  return t;
}

function isDType<D extends DType>(t: Tensor, dtype: D): t is Tensor<D> {
  return t.dtype === dtype;
}
