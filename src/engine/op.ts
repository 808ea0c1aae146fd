/**
 * An Op is one prepared dispatch: pipeline, bind group and workgroup count, built once when a model
 * or test sets up its tensors, then recorded into a compute pass as often as needed. Recording an
 * op allocates nothing, so a training step is a list of ops encoded into one submission.
 *
 * Binding convention for every shader in `shaders/`: binding 0 is the kernel's uniform block (its
 * shapes and constants), bindings 1.. are tensors in the order the shader declares them.
 */
import type { GpuContext } from './gpu';
import type { OverrideConstants, ShaderSource } from './pipelines';
import { Tensor } from './tensor';

export type UniformField = readonly [name: string, type: 'u32' | 'i32' | 'f32', value: number];

/** Packs scalar fields in declaration order (all 4-byte, so WGSL's struct layout is the plain order). */
export function packUniforms(fields: readonly UniformField[]): ArrayBuffer {
  const bytes = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  const buf = new ArrayBuffer(bytes);
  const view = new DataView(buf);
  fields.forEach(([name, type, value], i) => {
    if (!Number.isFinite(value)) throw new Error(`uniform ${name} must be finite, got ${value}`);
    if (type === 'u32') {
      if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new Error(`uniform ${name} must be a u32, got ${value}`);
      view.setUint32(i * 4, value, true);
    } else if (type === 'i32') {
      if (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31) throw new Error(`uniform ${name} must be an i32, got ${value}`);
      view.setInt32(i * 4, value, true);
    } else {
      view.setFloat32(i * 4, value, true);
    }
  });
  return buf;
}

export interface OpSpec {
  label: string;
  shader: ShaderSource;
  entryPoint: string;
  constants?: OverrideConstants;
  /** Contents of the uniform block at binding 0 (omit when the entry point has none). */
  uniforms?: readonly UniformField[];
  /** Tensors or raw buffers by binding index (1..). */
  bindings: Record<number, Tensor | GPUBuffer>;
  /** Workgroup counts; use `grid` helpers for counts past the 65535-per-dimension limit. */
  workgroups: readonly [number, number?, number?];
}

export interface Op {
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly workgroups: readonly [number, number, number];
  /** The op's uniform buffer, when it has one (owned by the op). */
  readonly uniformBuffer: GPUBuffer | null;
  /**
   * Bytes of the storage buffers the op binds, summed: what one dispatch moves at least once
   * when it reads each input and writes each output once (the benchmark's bytes per step).
   */
  readonly boundBytes: number;
}

export function createOp(ctx: GpuContext, spec: OpSpec): Op {
  const pipeline = ctx.pipelines.get(spec.shader, spec.entryPoint, spec.constants);
  const entries: GPUBindGroupEntry[] = [];
  let uniformBuffer: GPUBuffer | null = null;
  if (spec.uniforms) {
    const data = packUniforms(spec.uniforms);
    uniformBuffer = ctx.device.createBuffer({
      label: `${spec.label}:uniforms`,
      size: data.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    ctx.device.queue.writeBuffer(uniformBuffer, 0, data);
    entries.push({ binding: 0, resource: { buffer: uniformBuffer } });
  }
  let boundBytes = 0;
  for (const [binding, b] of Object.entries(spec.bindings)) {
    const buffer = b instanceof Tensor ? b.buffer : b;
    entries.push({ binding: Number(binding), resource: { buffer } });
    boundBytes += buffer.size;
  }
  const bindGroup = ctx.device.createBindGroup({
    label: spec.label,
    layout: pipeline.getBindGroupLayout(0),
    entries,
  });
  const [x, y = 1, z = 1] = spec.workgroups;
  const max = ctx.adapter.limits.maxComputeWorkgroupsPerDimension;
  for (const n of [x, y, z]) {
    if (!Number.isInteger(n) || n < 0 || n > max) {
      throw new Error(`${spec.label}: workgroup count ${n} is outside 0..${max}`);
    }
  }
  return { label: spec.label, pipeline, bindGroup, workgroups: [x, y, z], uniformBuffer, boundBytes };
}

export function recordOps(pass: GPUComputePassEncoder, ops: readonly Op[]): void {
  for (const op of ops) {
    const [x, y, z] = op.workgroups;
    if (x === 0 || y === 0 || z === 0) continue;
    pass.setPipeline(op.pipeline);
    pass.setBindGroup(0, op.bindGroup);
    pass.dispatchWorkgroups(x, y, z);
  }
}

/**
 * Encodes `ops` into one compute pass and submits once. Dispatches in one pass run in order with
 * storage writes visible to later dispatches, so a whole training step can be one call.
 */
export function runOps(ctx: GpuContext, ops: readonly Op[]): void {
  const enc = ctx.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  recordOps(pass, ops);
  pass.end();
  ctx.device.queue.submit([enc.finish()]);
}

/**
 * 1-D grid of `count` workgroups folded into x and y when x alone would pass the per-dimension
 * limit. Shaders recover the linear index as `wid.x + wid.y * num_workgroups.x`.
 */
export function grid1d(count: number, maxPerDim = 65535): [number, number] {
  if (count <= maxPerDim) return [count, 1];
  const y = Math.ceil(count / maxPerDim);
  return [Math.ceil(count / y), y];
}

export function ceilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}

export function destroyOps(ops: readonly Op[]): void {
  for (const op of ops) op.uniformBuffer?.destroy();
}
