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

/** A WGSL struct's scalar fields, in declaration order: name and type. */
export type StructFields = ReadonlyArray<readonly [name: string, type: string]>;

const structCache = new Map<string, { code: string; structs: Map<string, StructFields> }>();

/**
 * The fields of every `struct` in a WGSL source. Uniform blocks here hold 4-byte scalars only, so a
 * field's byte offset is 4 times its index (see packUniforms).
 */
export function wgslStructs(shader: ShaderSource): Map<string, StructFields> {
  const hit = structCache.get(shader.name);
  if (hit && hit.code === shader.code) return hit.structs;
  const structs = new Map<string, StructFields>();
  // Comments out first: a field may carry one.
  const code = shader.code.replace(/\/\/[^\n]*/g, '');
  for (const m of code.matchAll(/struct\s+(\w+)\s*\{([^}]*)\}/g)) {
    const fields = m[2]
      .split(',')
      .map((f) => f.trim())
      .filter((f) => f.length > 0)
      .map((f) => {
        const [name, type] = f.split(':').map((x) => x.trim());
        return [name, type] as const;
      });
    structs.set(m[1], fields);
  }
  structCache.set(shader.name, { code: shader.code, structs });
  return structs;
}

/**
 * The uniform block's description is the WGSL struct: a dispatcher's field list must name the same
 * fields with the same types in the same order, or the op is refused (a drifted offset would pass
 * every shape check and compute garbage).
 */
export function checkUniformStruct(label: string, shader: ShaderSource, structName: string, fields: readonly UniformField[]): void {
  const struct = wgslStructs(shader).get(structName);
  if (!struct) throw new Error(`${label}: shader ${shader.name} has no struct ${structName} for its uniform block`);
  const want = struct.map(([n, t]) => `${n}: ${t}`).join(', ');
  const got = fields.map(([n, t]) => `${n}: ${t}`).join(', ');
  if (want !== got) throw new Error(`${label}: uniform fields [${got}] do not match WGSL struct ${shader.name}.${structName} [${want}]`);
}

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
  /** The WGSL struct of that block, checked field by field (default "Dims"). */
  uniformStruct?: string;
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
  /** The uniform block's fields (names and types, in order), for setUniforms. */
  readonly uniformFields: readonly UniformField[];
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
    checkUniformStruct(spec.label, spec.shader, spec.uniformStruct ?? 'Dims', spec.uniforms);
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
  return { label: spec.label, pipeline, bindGroup, workgroups: [x, y, z], uniformBuffer, uniformFields: spec.uniforms ?? [], boundBytes };
}

/**
 * Rewrites named fields of an op's uniform block (queue.writeBuffer: takes effect for submissions
 * made after the call). Offsets come from the field list the op was made with, never by hand.
 */
export function setUniforms(ctx: GpuContext, op: Op, values: Readonly<Record<string, number>>): void {
  if (!op.uniformBuffer) throw new Error(`${op.label} has no uniform block`);
  const fields = Object.entries(values)
    .map(([name, value]) => {
      const i = op.uniformFields.findIndex(([n]) => n === name);
      if (i < 0) throw new Error(`${op.label}: no uniform field ${name} (fields: ${op.uniformFields.map(([n]) => n).join(', ')})`);
      return { i, field: [name, op.uniformFields[i][1], value] as UniformField };
    })
    .sort((a, b) => a.i - b.i);
  // One write per run of adjacent fields (a dropout update is one write of seed, threshold, invKeep).
  let start = 0;
  while (start < fields.length) {
    let end = start + 1;
    while (end < fields.length && fields[end].i === fields[end - 1].i + 1) end++;
    const run = fields.slice(start, end);
    ctx.device.queue.writeBuffer(op.uniformBuffer, run[0].i * 4, packUniforms(run.map((f) => f.field)), 0, run.length * 4);
    start = end;
  }
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
