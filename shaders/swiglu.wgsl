// SwiGLU, the gated activation of Llama's feed-forward block:  h = silu(g) * u
//
//   g:  [M, F]   gate_proj output
//   u:  [M, F]   up_proj output
//   h:  [M, F]   input of down_proj
//   dh: [M, F]   gradient of h
//   dg: [M, F]   gradient of g  (overwritten: activation gradient); backward_inplace reads dh
//                from it (dh is then overwritten: the model needs it no longer)
//   du: [M, F]   gradient of u  (overwritten)
//
// silu(g) = g * sigmoid(g). With s = sigmoid(g):
//   du = dh * silu(g)
//   dg = dh * u * d silu/dg = dh * u * s * (1 + g * (1 - s))
// The kernel is elementwise over n = M*F values, so dims carry only n. Forward saves nothing:
// backward recomputes sigmoid from g, which is cheaper than storing it.
//
// sigmoid is evaluated as 1 / (1 + e) or e / (1 + e) with e = exp(-|g|) <= 1, so exp never
// overflows (WGSL leaves the result of an overflowing exp indeterminate) and large |g| gives
// s = 0 or 1 exactly instead of inf / inf.
//
// One invocation per element; the 1-D grid may be folded into y past 65535 workgroups.

struct Dims {
  n: u32,
}

override WG: u32 = 256;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read_write> h: array<f32>;
@group(0) @binding(4) var<storage, read> dh: array<f32>;
@group(0) @binding(5) var<storage, read_write> dg: array<f32>;
@group(0) @binding(6) var<storage, read_write> du: array<f32>;

fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  if (x >= 0.0) { return 1.0 / (1.0 + e); }
  return e / (1.0 + e);
}

fn elementIndex(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid.x;
}

// h = silu(g) * u
@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = elementIndex(wid, nwg, lid);
  if (i >= dims.n) { return; }
  let gi = g[i];
  h[i] = gi * sigmoid(gi) * u[i];
}

// du = dh * silu(g);  dg = dh * u * s * (1 + g * (1 - s))
@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = elementIndex(wid, nwg, lid);
  if (i >= dims.n) { return; }
  let gi = g[i];
  let s = sigmoid(gi);
  let d = dh[i];
  du[i] = d * (gi * s);
  dg[i] = d * u[i] * s * (1.0 + gi * (1.0 - s));
}

// backward with dh in dg's buffer: each invocation reads its dh before writing dg at the same
// index, so the model's backward needs no separate dh buffer [M, F].
@compute @workgroup_size(WG)
fn backward_inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = elementIndex(wid, nwg, lid);
  if (i >= dims.n) { return; }
  let gi = g[i];
  let s = sigmoid(gi);
  let d = dg[i];
  du[i] = d * (gi * s);
  dg[i] = d * u[i] * s * (1.0 + gi * (1.0 - s));
}
