/**
 * Argument checks that several dispatchers share, each error naming the op and the argument: sizes
 * that must be non-negative integers, a tensor's dtype and length, outputs that share a buffer with
 * another binding (a WebGPU validation error at dispatch).
 */
import type { DType, Tensor } from '../tensor';

/** Every size must be a non-negative integer (checked in the order given). */
export function checkSizes(op: string, sizes: Record<string, number>): void {
  for (const [k, v] of Object.entries(sizes)) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`${op}: ${k} must be a non-negative integer, got ${v}`);
  }
}

/** The argument `role` must be a `dtype` tensor of at least n values (`shape` says how n is made). */
export function needTensor(op: string, role: string, t: Tensor, n: number, shape: string, dtype: DType = 'f32'): void {
  if (t.dtype !== dtype) throw new Error(`${op}: ${role} ${t.name} must be ${dtype}, got ${t.dtype}`);
  if (t.size < n) throw new Error(`${op}: ${role} ${t.name} has ${t.size} values, needs ${shape} = ${n}`);
}

/** No output may share its buffer with another output or an input. */
export function distinctOutputs(op: string, outs: Tensor[], ins: Tensor[]): void {
  const all = [...outs, ...ins];
  outs.forEach((o, i) => {
    all.forEach((t, j) => {
      if (j !== i && t.buffer === o.buffer) throw new Error(`${op}: output ${o.name} shares its buffer with ${t.name}`);
    });
  });
}
