/**
 * GPU memory a run will need, computed before anything is loaded: the same size table the model
 * code builds its buffers from (GpuWeights, LlamaGraph, Trainer), so the estimate can be checked
 * against the real sums after loading (src/store/memory.test.ts does, byte for byte).
 *
 *   weights      backbone tensors (float32 on the GPU, whatever the file's dtype) + RoPE tables
 *   adapter      router, A and B of every adapted projection
 *   activations  the training graph's forward tensors and backward scratch (LlamaGraph)
 *   gradients    one gradient per trainable tensor (LlamaGraph)
 *   optimizer    AdamW's two moments per trainable tensor + the gradient-clip buffers (Trainer)
 *   other        the embedding-gradient plan of full fine-tuning (part of LlamaGraph)
 *
 * It also checks each tensor against the adapter's limits: WebGPU binds one buffer per tensor,
 * and a buffer larger than maxStorageBufferBindingSize (or maxBufferSize) cannot be made. The
 * logits [B*T, V] (their gradient overwrites them) are the usual offender.
 */
import { gradSumsqGroups } from '../engine/kernels/optimizer';
import { type AdapterConfig } from '../method/adapter';
import { PROJECTIONS, projectionShape } from '../method/shapes';
import { expectedTensorNames, type ModelConfig } from '../model/config';

export interface MemoryInput {
  config: ModelConfig;
  adapter: Pick<AdapterConfig, 'mode' | 'numExperts' | 'rank' | 'targets' | 'lbcBeta'>;
  /** Samples per micro-batch (B). */
  batchSize: number;
  /** Padded sequence length (T). */
  seqLen: number;
  /** RoPE table rows (GpuWeights' maxPositions). */
  maxPositions: number;
  /** False: inference only (no graph, gradients or optimizer). */
  training: boolean;
}

export interface TensorSize {
  name: string;
  shape: number[];
  bytes: number;
  category: MemoryCategory;
}

export type MemoryCategory = 'weights' | 'adapter' | 'activations' | 'gradients' | 'optimizer' | 'other';

export interface Limits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

export interface TooLarge {
  tensor: string;
  shape: number[];
  bytes: number;
  limit: number;
  limitName: 'maxStorageBufferBindingSize' | 'maxBufferSize';
}

export interface MemoryEstimate {
  bytes: Record<MemoryCategory, number>;
  total: number;
  /** What GpuWeights.bytes reports (weights + adapter). */
  weightsBytes: number;
  /** What LlamaGraph.bytes reports (activations + gradients + other). */
  graphBytes: number;
  /** Trainable values (adapter, or every backbone weight in full mode). */
  trainableParams: number;
  /** The largest tensors, largest first. */
  largest: TensorSize[];
  /** Tensors over a limit (empty when `limits` was not given or all fit). */
  tooLarge: TooLarge[];
}

const F32 = 4;

/** Every tensor a run allocates, with its category. */
export function runTensors(inp: MemoryInput): TensorSize[] {
  const s = inp.config;
  const a = inp.adapter;
  const out: TensorSize[] = [];
  const add = (category: MemoryCategory, name: string, shape: number[]) => {
    const n = shape.reduce((x, y) => x * y, 1);
    out.push({ name, shape, bytes: Math.max(n, 0) * F32, category });
  };

  // Weights (GpuWeights): backbone tensors, RoPE tables.
  const backbone = expectedTensorNames(s);
  for (const t of backbone) add('weights', t.name, [...t.shape]);
  add('weights', 'rope cos', [inp.maxPositions, s.headDim / 2]);
  add('weights', 'rope sin', [inp.maxPositions, s.headDim / 2]);

  // As hasAdapter, isRouted and orderedTargets decide (src/loramoe/config.ts).
  const adapted = a.mode === 'loramoe' || a.mode === 'lora';
  const routed = a.mode === 'loramoe';
  const targets = adapted ? PROJECTIONS.filter((p) => a.targets.includes(p)) : [];
  const N = a.numExperts;
  const R = a.rank;
  const NR = N * R;
  const trainable: TensorSize[] = [];
  for (let l = 0; l < s.numLayers; l++) {
    for (const p of targets) {
      const [K, Nout] = projectionShape(s, p);
      if (routed) add('adapter', `L${l} ${p} router`, [N, K]);
      add('adapter', `L${l} ${p} A`, [NR, K]);
      add('adapter', `L${l} ${p} B`, [Nout, NR]);
    }
  }
  if (a.mode === 'full') trainable.push(...out.filter((t) => t.category === 'weights' && !t.name.startsWith('rope ')));
  else trainable.push(...out.filter((t) => t.category === 'adapter'));
  if (!inp.training) return out;

  // The training graph (LlamaGraph's size table).
  const B = inp.batchSize;
  const T = inp.seqLen;
  const M = B * T;
  const C = s.hiddenSize;
  const F = s.intermediateSize;
  const H = s.numHeads;
  const qd = H * s.headDim;
  const kvd = s.numKvHeads * s.headDim;
  const V = s.vocabSize;
  const act = (name: string, shape: number[]) => add('activations', name, shape);
  act('ids', [M]);
  act('targets', [M]);
  act('valid', [M]);
  if (routed) act('lbc boost', [B, N]);
  act('ce stats', [4]);
  const lbc = routed && a.lbcBeta > 0;
  if (lbc && targets.length > 0) act('lbc losses', [s.numLayers * targets.length]);
  act('logits', [M, V]);
  if (adapted) act('lora g', [M, NR]);
  for (const t of trainable) add('gradients', `grad ${t.name}`, [...t.shape]);
  for (let l = 0; l < s.numLayers; l++) {
    for (const [name, shape] of [
      ['x', [M, C]], ['xn1', [M, C]], ['rstd1', [M]], ['q', [M, qd]], ['k', [M, kvd]],
      ['v', [M, kvd]], ['att', [M, qd]], ['att lse', [B, H, T]], ['h', [M, C]], ['xn2', [M, C]], ['rstd2', [M]], ['gate', [M, F]], ['up', [M, F]], ['act', [M, F]],
    ] as [string, number[]][]) act(`L${l} ${name}`, shape);
    for (const p of targets) {
      if (routed) act(`L${l} ${p} router w`, [M, N]);
      act(`L${l} ${p} lora h`, [M, NR]);
      if (lbc) {
        act(`L${l} ${p} lbc Q`, [B, N]);
        act(`L${l} ${p} lbc dZ`, [B, N]);
      }
    }
  }
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
  act('x final', [M, C]);
  act('x final normed', [M, C]);
  act('rstd final', [M]);
  act('ce lse', [M]);
  act('ce row loss', [M]);
  if (a.mode === 'full') {
    const U = Math.min(M, V);
    add('other', 'embedding plan tokens', [U]);
    add('other', 'embedding plan offsets', [U + 1]);
    add('other', 'embedding plan positions', [M]);
  }

  // The optimizer (Trainer): AdamW moments and the clip plan.
  let partials = 0;
  for (const t of trainable) {
    add('optimizer', `adam m ${t.name}`, [...t.shape]);
    add('optimizer', `adam v ${t.name}`, [...t.shape]);
    partials += gradSumsqGroups(t.bytes / F32);
  }
  if (trainable.length > 0) {
    add('optimizer', 'clip partials', [partials]);
    add('optimizer', 'clip stats', [4]);
  }
  return out;
}

export function estimateMemory(inp: MemoryInput, limits?: Limits): MemoryEstimate {
  const tensors = runTensors(inp);
  const bytes: Record<MemoryCategory, number> = { weights: 0, adapter: 0, activations: 0, gradients: 0, optimizer: 0, other: 0 };
  for (const t of tensors) bytes[t.category] += t.bytes;
  const trainable = inp.adapter.mode === 'full'
    ? tensors.filter((t) => t.category === 'weights' && !t.name.startsWith('rope ')).reduce((n, t) => n + t.bytes / F32, 0)
    : bytes.adapter / F32;
  const tooLarge: TooLarge[] = [];
  if (limits) {
    for (const t of tensors) {
      // createTensor refuses a tensor over the binding limit; a buffer over maxBufferSize cannot exist.
      if (t.bytes > limits.maxBufferSize) tooLarge.push({ tensor: t.name, shape: t.shape, bytes: t.bytes, limit: limits.maxBufferSize, limitName: 'maxBufferSize' });
      else if (t.bytes > limits.maxStorageBufferBindingSize) {
        tooLarge.push({ tensor: t.name, shape: t.shape, bytes: t.bytes, limit: limits.maxStorageBufferBindingSize, limitName: 'maxStorageBufferBindingSize' });
      }
    }
  }
  const largest = [...tensors].sort((x, y) => y.bytes - x.bytes).slice(0, 5);
  const total = Object.values(bytes).reduce((x, y) => x + y, 0);
  return {
    bytes,
    total,
    weightsBytes: bytes.weights + bytes.adapter,
    graphBytes: bytes.activations + bytes.gradients + bytes.other,
    trainableParams: trainable,
    largest,
    tooLarge,
  };
}

/** "1.5 GiB", "12.0 MiB", "512 B". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

/** "135M", "1.2B", "86.4K". */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e4 ? 0 : 1)}K`;
  return String(n);
}
