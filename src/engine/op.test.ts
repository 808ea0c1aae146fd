import { describe, expect, it } from 'vitest';
import { testGpu, withValidation } from '../test/gpu';
import { checkUniformStruct, createOp, runOps, setUniforms, wgslStructs } from './op';
import type { ShaderSource } from './pipelines';
import { createTensor, readTensor } from './tensor';

// Copies its uniform block into out: out = [a, b, c, d] (b and d as floats, a and c as u32 values).
const SHADER: ShaderSource = {
  name: 'op-test-uniforms',
  code: `
struct Dims {
  a: u32,   // a comment, with a comma
  b: f32,
  c: u32,
  d: f32,
}
struct Other { x: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1)
fn main() {
  out[0] = f32(dims.a);
  out[1] = dims.b;
  out[2] = f32(dims.c);
  out[3] = dims.d;
}
`,
};

describe('uniform blocks by field name', () => {
  it('reads the WGSL structs (comments aside)', () => {
    const s = wgslStructs(SHADER);
    expect(s.get('Dims')).toEqual([['a', 'u32'], ['b', 'f32'], ['c', 'u32'], ['d', 'f32']]);
    expect(s.get('Other')).toEqual([['x', 'u32']]);
  });

  it('refuses a field list that does not match the struct, naming both', () => {
    expect(() => checkUniformStruct('op', SHADER, 'Dims', [['a', 'u32', 1], ['c', 'u32', 2], ['b', 'f32', 3], ['d', 'f32', 4]])).toThrow(
      /op: uniform fields \[a: u32, c: u32, b: f32, d: f32\] do not match WGSL struct op-test-uniforms.Dims \[a: u32, b: f32, c: u32, d: f32\]/,
    );
    expect(() => checkUniformStruct('op', SHADER, 'Dims', [['a', 'f32', 1], ['b', 'f32', 3], ['c', 'u32', 2], ['d', 'f32', 4]])).toThrow(/do not match/);
    expect(() => checkUniformStruct('op', SHADER, 'Missing', [])).toThrow(/has no struct Missing/);
  });

  it('setUniforms writes the named fields only, at their offsets', async () => {
    const ctx = await testGpu();
    const out = createTensor(ctx, 'out', [4]);
    const op = createOp(ctx, {
      label: 'copy uniforms',
      shader: SHADER,
      entryPoint: 'main',
      uniforms: [['a', 'u32', 1], ['b', 'f32', 2.5], ['c', 'u32', 3], ['d', 'f32', 4.5]],
      bindings: { 1: out },
      workgroups: [1],
    });
    await withValidation(ctx, () => runOps(ctx, [op]));
    expect(Array.from(await readTensor(ctx, out))).toEqual([1, 2.5, 3, 4.5]);
    // Two separate runs (b; c, d) and one left alone (a).
    setUniforms(ctx, op, { d: -1.25, b: 7.5, c: 9 });
    await withValidation(ctx, () => runOps(ctx, [op]));
    expect(Array.from(await readTensor(ctx, out))).toEqual([1, 7.5, 9, -1.25]);
    expect(() => setUniforms(ctx, op, { e: 1 })).toThrow(/copy uniforms: no uniform field e \(fields: a, b, c, d\)/);
    expect(() => setUniforms(ctx, op, { c: -1 })).toThrow(/uniform c must be a u32/);
    expect(() =>
      createOp(ctx, { label: 'bad', shader: SHADER, entryPoint: 'main', uniforms: [['a', 'u32', 1]], bindings: { 1: out }, workgroups: [1] }),
    ).toThrow(/bad: uniform fields \[a: u32\] do not match/);
  });
});
