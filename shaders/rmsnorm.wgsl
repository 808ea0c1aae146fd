// RMSNorm, as Hugging Face's LlamaRMSNorm computes it in float32:
//   rstd[m] = 1 / sqrt(mean_c(x[m, c]^2) + eps)
//   y[m, c] = w[c] * (x[m, c] * rstd[m])
//
//   x:    [M, C]   input rows (M = B*T tokens, C hidden)
//   w:    [C]      weight (frozen in LoRAMoE, but its gradient is provided)
//   y:    [M, C]   output (overwritten)
//   rstd: [M]      saved by forward for backward (overwritten)
//   dy:   [M, C]   gradient of y
//   dx:   [M, C]   gradient of x (overwritten: activation gradient)
//   dw:   [C]      gradient of w (accumulated: parameter gradient)
//
// With xhat = x * rstd and g = w * dy:
//   dx[m, c] = rstd[m] * (g[m, c] - xhat[m, c] * mean_c'(g[m, c'] * xhat[m, c']))
//   dw[c]   += sum_m dy[m, c] * xhat[m, c]
//
// forward and backward_input come in two variants (src/engine/kernels/rmsnorm.ts picks one per op
// from C, see chooseRmsnormVariant):
//   workgroup  forward, backward_input: a workgroup per row. The row's C values are strided over
//              the WG invocations, each keeps a partial sum, and a tree reduction in workgroup
//              memory combines them (WG must be a power of two). Rows past 65535 workgroups fold
//              into y (row = wid.x + wid.y * nwg.x); the early return on that row is uniform per
//              workgroup, so the barriers after it stay in uniform control flow.
//   rows       forward_rows, backward_input_rows: an invocation per row, looping over its C values:
//              no workgroup memory, no barriers (on software adapters each barrier is a context
//              switch per 4-lane subgroup, which made a 64-thread workgroup per row cost ~60 us
//              whatever C). Invocation index = (wid.x + wid.y * nwg.x) * WG + lid.
// backward_weight runs an invocation per column looping over the M rows, so each invocation owns
// its dw[c] and no atomics are needed.

struct Dims {
  M: u32,
  C: u32,
  eps: f32,
}

override WG: u32 = 64;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd_out: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read> rstd: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> dw: array<f32>;

var<workgroup> partial: array<f32, WG>;

// Sum of every invocation's `v` in the workgroup; all invocations get the result.
fn workgroupSum(lid: u32, v: f32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  let total = partial[0];
  // No one may overwrite partial[0] (a later reduction) before everyone has read it.
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid3: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= dims.M) { return; }
  let lid = lid3.x;
  let base = row * dims.C;
  var ss = 0.0;
  for (var c = lid; c < dims.C; c += WG) {
    let v = x[base + c];
    ss += v * v;
  }
  let total = workgroupSum(lid, ss);
  // HF: variance = x.pow(2).mean(-1); x * torch.rsqrt(variance + eps); then weight * that.
  let r = inverseSqrt(total / f32(dims.C) + dims.eps);
  for (var c = lid; c < dims.C; c += WG) {
    y[base + c] = w[c] * (x[base + c] * r);
  }
  if (lid == 0u) { rstd_out[row] = r; }
}

@compute @workgroup_size(WG)
fn backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid3: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= dims.M) { return; }
  let lid = lid3.x;
  let base = row * dims.C;
  let r = rstd[row];
  var acc = 0.0;
  for (var c = lid; c < dims.C; c += WG) {
    acc += w[c] * dy[base + c] * (x[base + c] * r);
  }
  let meanGX = workgroupSum(lid, acc) / f32(dims.C);
  for (var c = lid; c < dims.C; c += WG) {
    let xhat = x[base + c] * r;
    dx[base + c] = r * (w[c] * dy[base + c] - xhat * meanGX);
  }
}

@compute @workgroup_size(WG)
fn backward_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid3: vec3<u32>) {
  let c = (wid.x + wid.y * nwg.x) * WG + lid3.x;
  if (c >= dims.C) { return; }
  var acc = 0.0;
  for (var m = 0u; m < dims.M; m++) {
    acc += dy[m * dims.C + c] * (x[m * dims.C + c] * rstd[m]);
  }
  dw[c] += acc;
}

@compute @workgroup_size(WG)
fn forward_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid3: vec3<u32>) {
  let row = (wid.x + wid.y * nwg.x) * WG + lid3.x;
  if (row >= dims.M) { return; }
  let base = row * dims.C;
  var ss = 0.0;
  for (var c = 0u; c < dims.C; c++) {
    let v = x[base + c];
    ss += v * v;
  }
  let r = inverseSqrt(ss / f32(dims.C) + dims.eps);
  for (var c = 0u; c < dims.C; c++) {
    y[base + c] = w[c] * (x[base + c] * r);
  }
  rstd_out[row] = r;
}

@compute @workgroup_size(WG)
fn backward_input_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_id) lid3: vec3<u32>) {
  let row = (wid.x + wid.y * nwg.x) * WG + lid3.x;
  if (row >= dims.M) { return; }
  let base = row * dims.C;
  let r = rstd[row];
  var acc = 0.0;
  for (var c = 0u; c < dims.C; c++) {
    acc += w[c] * dy[base + c] * (x[base + c] * r);
  }
  let meanGX = acc / f32(dims.C);
  for (var c = 0u; c < dims.C; c++) {
    let xhat = x[base + c] * r;
    dx[base + c] = r * (w[c] * dy[base + c] - xhat * meanGX);
  }
}
