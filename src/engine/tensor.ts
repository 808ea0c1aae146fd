/**
 * One GPUBuffer per tensor. WebGPU tracks usage per buffer, so a shared arena with offsets would
 * turn "read x, write y" into a read-write hazard on one buffer; separate buffers keep every
 * dispatch valid. Tensors are made once (from a model's size table) and reused every step.
 */
import { decodeF16, encodeFromF32 } from '../io/dtypes';
import type { GpuContext } from './gpu';

/**
 * Element types. `f16` holds IEEE binary16 values packed two per 32-bit word (element 2i in the low
 * half), which WGSL reads as `array<u32>` and unpacks with the core builtin `unpack2x16float`: no
 * `shader-f16` feature needed, so it runs on every adapter (docs/ARCHITECTURE.md, "Half-precision
 * weights"). Only frozen backbone matrices use it; the host side reads and writes f16 tensors as
 * float32 values (rounded to nearest even on the way in, exact on the way out).
 */
export type DType = 'f32' | 'f16' | 'u32' | 'i32';
export type TypedArrayOf<D extends DType> = D extends 'f32' | 'f16' ? Float32Array : D extends 'u32' ? Uint32Array : Int32Array;

/** Bytes a tensor of `size` elements occupies: 4 per element, or 2 for f16 rounded up to whole words. */
export function storedBytes(dtype: DType, size: number): number {
  return dtype === 'f16' ? 4 * Math.ceil(size / 2) : 4 * size;
}

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
    return storedBytes(this.dtype, this.size);
  }
  destroy(): void {
    this.buffer.destroy();
  }
}

function shapeSize(shape: readonly number[]): number {
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
  const bytes = storedBytes(dtype, size);
  const limit = ctx.adapter.limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    throw new Error(`tensor ${name} [${shape.join(', ')}] needs ${bytes} bytes; the adapter binds at most ${limit}`);
  }
  const buffer = ctx.device.createBuffer({
    label: name,
    // Zero-sized bindings are invalid; a 4-byte floor keeps empty tensors bindable.
    size: Math.max(4, bytes),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  const t = new Tensor(name, [...shape], dtype, buffer);
  if (data) writeTensor(ctx, t, data);
  return t;
}

function toTyped<D extends DType>(dtype: D, data: ArrayLike<number>): TypedArrayOf<D> {
  if (dtype === 'f32' || dtype === 'f16') return (data instanceof Float32Array ? data : Float32Array.from(data)) as TypedArrayOf<D>;
  if (dtype === 'u32') return (data instanceof Uint32Array ? data : Uint32Array.from(data)) as TypedArrayOf<D>;
  return (data instanceof Int32Array ? data : Int32Array.from(data)) as TypedArrayOf<D>;
}

export function writeTensor<D extends DType>(ctx: GpuContext, t: Tensor<D>, data: ArrayLike<number>): void {
  if (data.length !== t.size) {
    throw new Error(`tensor ${t.name} [${t.shape.join(', ')}] holds ${t.size} values, got ${data.length}`);
  }
  if (t.size === 0) return;
  const typed = toTyped(t.dtype, data);
  if (t.dtype === 'f16') {
    // writeBuffer moves whole words: an odd count gets a zero half at the end.
    const packed = new Uint8Array(t.bytes);
    packed.set(encodeFromF32('F16', typed as Float32Array));
    ctx.device.queue.writeBuffer(t.buffer, 0, packed);
    return;
  }
  ctx.device.queue.writeBuffer(t.buffer, 0, typed.buffer, typed.byteOffset, typed.byteLength);
}

/** A read-back word range as the tensor's values (f16 decoded to float32). */
function fromBytes<D extends DType>(t: Tensor<D>, raw: ArrayBuffer): TypedArrayOf<D> {
  if (t.dtype === 'f16') return decodeF16(new Uint8Array(raw, 0, t.size * 2)) as TypedArrayOf<D>;
  if (t.dtype === 'f32') return new Float32Array(raw, 0, t.size) as TypedArrayOf<D>;
  if (t.dtype === 'u32') return new Uint32Array(raw, 0, t.size) as TypedArrayOf<D>;
  return new Int32Array(raw, 0, t.size) as TypedArrayOf<D>;
}

/** Copies a tensor back to the CPU. Used for metrics and tests, never inside a training step. */
export async function readTensor<D extends DType>(ctx: GpuContext, t: Tensor<D>): Promise<TypedArrayOf<D>> {
  const bytes = Math.max(4, t.bytes);
  const staging = ctx.device.createBuffer({
    label: `${t.name}:readback`,
    size: bytes,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = ctx.device.createCommandEncoder();
  enc.copyBufferToBuffer(t.buffer, 0, staging, 0, bytes);
  ctx.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const raw = staging.getMappedRange().slice(0, t.bytes);
  staging.unmap();
  staging.destroy();
  return fromBytes(t, raw);
}

/** Copies several tensors back with one submission and one mapping (metrics of a step). */
export async function readTensors(ctx: GpuContext, tensors: readonly Tensor[]): Promise<Float32Array[]> {
  const offsets: number[] = [];
  let total = 0;
  for (const t of tensors) {
    offsets.push(total);
    total += Math.max(4, t.bytes);
  }
  if (tensors.length === 0) return [];
  const staging = ctx.device.createBuffer({ label: 'readback', size: total, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = ctx.device.createCommandEncoder();
  tensors.forEach((t, i) => enc.copyBufferToBuffer(t.buffer, 0, staging, offsets[i], Math.max(4, t.bytes)));
  ctx.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const mapped = staging.getMappedRange();
  // Read-backs are metrics and losses: float tensors (an f16 one comes back decoded).
  const out = tensors.map((t, i) => {
    const raw = mapped.slice(offsets[i], offsets[i] + t.bytes);
    return t.dtype === 'f16' ? decodeF16(new Uint8Array(raw, 0, t.size * 2)) : new Float32Array(raw);
  });
  staging.unmap();
  staging.destroy();
  return out;
}
