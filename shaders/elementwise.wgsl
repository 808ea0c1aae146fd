// Elementwise helpers for the residual stream and for gradient buffers.
//
//   a:   [n]   first input  (add: a;  accumulate, copy: x)
//   b:   [n]   second input (add only)
//   out: [n]   output       (add: out; accumulate, fill, scale, copy: y)
//
// n is any element count (rows times width of whatever tensor, e.g. M*C for the residual stream).
//
//   add         out = a + b            (out must be a different buffer from a and b)
//   accumulate  y  += alpha * x        (in-place residual add, gradient accumulation)
//   fill        y   = value            (zeroing gradient buffers before accumulation)
//   scale       y  *= alpha            (gradient averaging, clipping)
//   copy        y   = x
//
// A buffer may not be bound read-only and read-write in one dispatch, so "x += y" is accumulate on
// out = x, never add with a == out. The binding numbers are shared so that a single set of tensors
// can be handed to any entry point; each entry point declares only what it touches.
//
// One invocation per element. The grid is 1-D and may be folded into y when n / WG passes 65535
// workgroups, so the linear workgroup index is wid.x + wid.y * nwg.x; invocations past n return.

struct Dims {
  n: u32,
  alpha: f32,  // accumulate, scale
  value: f32,  // fill
}

override WG: u32 = 256;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn elementIndex(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid.x;
}

@compute @workgroup_size(WG)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = elementIndex(wid, nwg, lid);
  if (i >= dims.n) { return; }
  out[i] = a[i] + b[i];
}

@compute @workgroup_size(WG)
fn accumulate(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = elementIndex(wid, nwg, lid);
  if (i >= dims.n) { return; }
  out[i] = out[i] + dims.alpha * a[i];
}

@compute @workgroup_size(WG)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = elementIndex(wid, nwg, lid);
  if (i >= dims.n) { return; }
  out[i] = dims.value;
}

@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = elementIndex(wid, nwg, lid);
  if (i >= dims.n) { return; }
  out[i] = out[i] * dims.alpha;
}

@compute @workgroup_size(WG)
fn copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = elementIndex(wid, nwg, lid);
  if (i >= dims.n) { return; }
  out[i] = a[i];
}
