/**
 * GPU memory a run will need, computed before anything is loaded: the sum of the model's size
 * table (src/model/tensor-plan.ts), the same table GpuWeights, LlamaGraph and the Generator
 * allocate from, so the estimate can be checked against the real sums after loading
 * (src/store/memory.test.ts does, byte for byte).
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
import type { ModelConfig } from '../model/config';
import { type PlanAdapter, runPlan, type TensorRole, trainableTensors, type WeightPrecision } from '../model/tensor-plan';

export interface MemoryInput {
  config: ModelConfig;
  adapter: PlanAdapter;
  /** Samples per micro-batch (B). */
  batchSize: number;
  /** Padded sequence length (T). */
  seqLen: number;
  /** RoPE table rows (GpuWeights' maxPositions). */
  maxPositions: number;
  /** False: inference only (no graph, gradients or optimizer). */
  training: boolean;
  /** How the backbone's matrices are stored; f32 when absent. */
  precision?: WeightPrecision;
}

export interface TensorSize {
  name: string;
  shape: number[];
  bytes: number;
  category: MemoryCategory;
}

export type MemoryCategory = TensorRole;

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

/** Every tensor a run allocates, with its category: the size table for the weights, and when training the graph and the optimizer. */
export function runTensors(inp: MemoryInput): TensorSize[] {
  const plan = runPlan(
    { shape: inp.config, adapter: inp.adapter, maxPositions: inp.maxPositions, precision: inp.precision },
    inp.training ? { B: inp.batchSize, T: inp.seqLen, training: true } : null,
  );
  return plan.map((t) => ({ name: t.name, shape: [...t.shape], bytes: t.bytes, category: t.role }));
}

export function estimateMemory(inp: MemoryInput, limits?: Limits): MemoryEstimate {
  const tensors = runTensors(inp);
  const bytes: Record<MemoryCategory, number> = { weights: 0, adapter: 0, activations: 0, gradients: 0, optimizer: 0, other: 0 };
  for (const t of tensors) bytes[t.category] += t.bytes;
  let trainable = 0;
  for (const t of trainableTensors(inp.config, inp.adapter)) trainable += t.shape.reduce((x, y) => x * y, 1);
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
