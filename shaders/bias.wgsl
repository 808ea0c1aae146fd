// Bias of a linear layer (Qwen2's q/k/v projections):
//   forward          y[m, o] += b[o]                 y [M, O], b [O]
//   backward_weight  db[o]   += sum_m dy[m, o]       dy [M, O], db [O]   (parameter grad: accumulate)
// The input gradient of a bias is dy itself, so there is no backward_input.

struct Dims { M: u32, O: u32 }

override WG: u32 = 64;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid.x;
  if (i >= dims.M * dims.O) { return; }
  y[i] += b[i % dims.O];
}

@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> db: array<f32>;

// An invocation per output feature o sums its column: a gather, no atomics needed.
@compute @workgroup_size(WG)
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = gid.x;
  if (o >= dims.O) { return; }
  var s = 0.0;
  for (var m = 0u; m < dims.M; m++) { s += dy[m * dims.O + o]; }
  db[o] += s;
}
