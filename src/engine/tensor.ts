/**
 * One GPUBuffer per tensor. WebGPU tracks usage per buffer, so a shared arena with offsets would
 * turn "read x, write y" into a read-write hazard on one buffer; separate buffers keep every
 * dispatch valid. Tensors are made once (from a model's size table) and reused every step.
 */
import type { GpuContext } from './gpu';

export type DType = 'f32' | 'u32' | 'i32';
export type TypedArrayOf<D extends DType> = D extends 'f32' ? Float32Array : D extends 'u32' ? Uint32Array : Int32Array;

export class Tensor<D extends DType = DType> {
  readonly size: number;
  constructor(
    readonly name: string,
    readonly shape: readonly number[],
    readonly dtype: D,
    readonly buffer: GPUBuffer,
  ) {
    this.size = shape.reduce((a, b) => a * b, 1);
  }
  get bytes(): number {
    return this.size * 4;
  }
  destroy(): void {
    this.buffer.destroy();
  }
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor dimension ${d} in shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

export function createTensor<D extends DType = 'f32'>(
  ctx: GpuContext,
  name: string,
  shape: readonly number[],
  dtype: D = 'f32' as D,
  data?: ArrayLike<number>,
): Tensor<D> {
  const size = shapeSize(shape);
  const limit = ctx.adapter.limits.maxStorageBufferBindingSize;
  if (size * 4 > limit) {
    throw new Error(`tensor ${name} [${shape.join(', ')}] needs ${size * 4} bytes; the adapter binds at most ${limit}`);
  }
  const buffer = ctx.device.createBuffer({
    label: name,
    // Zero-sized bindings are invalid; a 4-byte floor keeps empty tensors bindable.
    size: Math.max(4, size * 4),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  const t = new Tensor(name, [...shape], dtype, buffer);
  if (data) writeTensor(ctx, t, data);
  return t;
}

export function toTyped<D extends DType>(dtype: D, data: ArrayLike<number>): TypedArrayOf<D> {
  if (dtype === 'f32') return (data instanceof Float32Array ? data : Float32Array.from(data)) as TypedArrayOf<D>;
  if (dtype === 'u32') return (data instanceof Uint32Array ? data : Uint32Array.from(data)) as TypedArrayOf<D>;
  return (data instanceof Int32Array ? data : Int32Array.from(data)) as TypedArrayOf<D>;
}

export function writeTensor<D extends DType>(ctx: GpuContext, t: Tensor<D>, data: ArrayLike<number>): void {
  if (data.length !== t.size) {
    throw new Error(`tensor ${t.name} [${t.shape.join(', ')}] holds ${t.size} values, got ${data.length}`);
  }
  if (t.size === 0) return;
  const typed = toTyped(t.dtype, data);
  ctx.device.queue.writeBuffer(t.buffer, 0, typed.buffer, typed.byteOffset, typed.byteLength);
}

/** Copies a tensor back to the CPU. Used for metrics and tests, never inside a training step. */
export async function readTensor<D extends DType>(ctx: GpuContext, t: Tensor<D>): Promise<TypedArrayOf<D>> {
  const bytes = Math.max(4, t.size * 4);
  const staging = ctx.device.createBuffer({
    label: `${t.name}:readback`,
    size: bytes,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = ctx.device.createCommandEncoder();
  enc.copyBufferToBuffer(t.buffer, 0, staging, 0, bytes);
  ctx.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const raw = staging.getMappedRange().slice(0, t.size * 4);
  staging.unmap();
  staging.destroy();
  if (t.dtype === 'f32') return new Float32Array(raw) as TypedArrayOf<D>;
  if (t.dtype === 'u32') return new Uint32Array(raw) as TypedArrayOf<D>;
  return new Int32Array(raw) as TypedArrayOf<D>;
}

/** Copies several tensors back with one submission and one mapping (metrics of a step). */
export async function readTensors(ctx: GpuContext, tensors: readonly Tensor[]): Promise<Float32Array[]> {
  const offsets: number[] = [];
  let total = 0;
  for (const t of tensors) {
    offsets.push(total);
    total += Math.max(4, t.size * 4);
  }
  if (tensors.length === 0) return [];
  const staging = ctx.device.createBuffer({ label: 'readback', size: total, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = ctx.device.createCommandEncoder();
  tensors.forEach((t, i) => enc.copyBufferToBuffer(t.buffer, 0, staging, offsets[i], Math.max(4, t.size * 4)));
  ctx.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const mapped = staging.getMappedRange();
  const out = tensors.map((t, i) => new Float32Array(mapped.slice(offsets[i], offsets[i] + t.size * 4)));
  staging.unmap();
  staging.destroy();
  return out;
}
