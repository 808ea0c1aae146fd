// Localized balancing constraint (LBC) of LoRAMoE for one adapted layer: importance, loss and the
// gradient into the router weights.
//
// Dimension letters: B sequences of T tokens, M = B*T rows, N experts, n = B*N.
//   w       [M, N]   router weights of the layer (rows b*T .. b*T+T-1 belong to sequence b)
//   valid   [M]      u32: non-zero for a real token, 0 for padding (padding is excluded from Q)
//   I       [B, N]   boost, built on the CPU (src/reference/lbc.ts, lbcGpuBoost): 1 +- delta inside and
//                    outside sample b's expert group (the sign picks the direction, official or
//                    own-group), times s[b] = 1 (importance "sum") or 1 / len[b] ("mean"). Folding
//                    s into I gives Z = (Q * s) * I and its gradient with one kernel for both rules.
//   Q       [B, N]   Q[b, n] = sum_t valid[b*T+t] * w[b*T+t, n]
//   Z       [B, N]   Q * I (never stored; lbc_loss recomputes it)
//   loss    [L]      loss[lossIndex] = beta * var(Z) / (mean(Z)^2 + 1e-10), unbiased variance; several
//                    layers write their own index of one buffer
//   dZ      [B, N]   gradScale * dL/dZ = gradScale * beta * (2 (Z - mean) / ((n-1) D) - 2 V mean / (n D^2)),
//                    D = mean^2 + 1e-10, V = var(Z)
//   dw      [M, N]   dw[m, n] += valid[m] * I[b, n] * dZ[b, n]: added to the gate gradient that
//                    loramoe.wgsl's gate_backward wrote, before router_backward
//
// The official code sums Q over every position, padding included; we sum real tokens only.

struct Dims {
  B: u32, T: u32, N: u32,
  lossIndex: u32,
  beta: f32,
  // Multiplies dZ (not the loss): e.g. 1 / micro-batches under gradient accumulation. Usually 1.
  gradScale: f32,
}

override WG: u32 = 64;
// One workgroup computes the loss; a power of two for the tree reduction.
override LOSS_WG: u32 = 64;

@group(0) @binding(0) var<uniform> dims: Dims;

// lbc_importance
@group(0) @binding(1) var<storage, read> im_w: array<f32>;
@group(0) @binding(2) var<storage, read> im_valid: array<u32>;
@group(0) @binding(3) var<storage, read_write> im_q: array<f32>;

// lbc_loss
@group(0) @binding(1) var<storage, read> ls_q: array<f32>;
@group(0) @binding(2) var<storage, read> ls_boost: array<f32>;
@group(0) @binding(3) var<storage, read_write> ls_loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> ls_dz: array<f32>;

// lbc_backward
@group(0) @binding(1) var<storage, read> bk_valid: array<u32>;
@group(0) @binding(2) var<storage, read> bk_boost: array<f32>;
@group(0) @binding(3) var<storage, read> bk_dz: array<f32>;
@group(0) @binding(4) var<storage, read_write> bk_dw: array<f32>;

var<workgroup> red: array<f32, LOSS_WG>;

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

// Q[b, n] = sum over real tokens t of w[b*T+t, n] (overwrite). One invocation per (b, n).
@compute @workgroup_size(WG)
fn lbc_importance(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let t = linear_index(wid, nwg, lid);
  if (t >= dims.B * dims.N) { return; }
  let n = t % dims.N;
  let b = t / dims.N;
  var s = 0.0;
  for (var tt = 0u; tt < dims.T; tt++) {
    let m = b * dims.T + tt;
    // select, not a product: a padding row's w never reaches the sum, whatever it holds.
    s += select(0.0, im_w[m * dims.N + n], im_valid[m] != 0u);
  }
  im_q[t] = s;
}

// Sum over the workgroup of each invocation's `v`; every invocation gets the total.
fn workgroup_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var stride = LOSS_WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { red[lid] += red[lid + stride]; }
    workgroupBarrier();
  }
  let total = red[0];
  // Nobody may overwrite red[0] (a following call) before everyone has read it.
  workgroupBarrier();
  return total;
}

// The loss and dZ. Dispatched as exactly one workgroup. Two passes (mean, then squared deviations)
// rather than sum of squares minus square of sum, which cancels badly when the Z are nearly equal.
@compute @workgroup_size(LOSS_WG)
fn lbc_loss(@builtin(local_invocation_index) lid: u32) {
  let n = dims.B * dims.N;
  var s = 0.0;
  for (var j = lid; j < n; j += LOSS_WG) { s += ls_q[j] * ls_boost[j]; }
  let mean = workgroup_sum(s, lid) / f32(n);
  var ss = 0.0;
  for (var j = lid; j < n; j += LOSS_WG) {
    let d = ls_q[j] * ls_boost[j] - mean;
    ss += d * d;
  }
  let variance = workgroup_sum(ss, lid) / f32(n - 1u);
  let D = mean * mean + 1e-10;
  if (lid == 0u) { ls_loss[dims.lossIndex] = dims.beta * variance / D; }
  let c1 = dims.gradScale * dims.beta * 2.0 / (f32(n - 1u) * D);
  let c2 = dims.gradScale * dims.beta * 2.0 * variance * mean / (f32(n) * D * D);
  for (var j = lid; j < n; j += LOSS_WG) {
    ls_dz[j] = c1 * (ls_q[j] * ls_boost[j] - mean) - c2;
  }
}

// dw[m, n] += valid[m] * I[b, n] * dZ[b, n],  b = m / T (accumulate). One invocation per (m, n).
@compute @workgroup_size(WG)
fn lbc_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let t = linear_index(wid, nwg, lid);
  if (t >= dims.B * dims.T * dims.N) { return; }
  let n = t % dims.N;
  let m = t / dims.N;
  if (bk_valid[m] == 0u) { return; }
  let bn = (m / dims.T) * dims.N + n;
  bk_dw[t] += bk_boost[bn] * bk_dz[bn];
}
