// LoRAMoE adapted linear layer: the router, the expert down-projections with per-expert dropout, and
// their backward passes. The frozen product x · W0ᵀ, the combine y += g · Bcatᵀ and the other dense
// products of the backward are matmul.wgsl; this file holds everything that is not a plain matmul.
//
//   y = x · W0ᵀ + scale * sum_i w_i(x) * B_i A_i dropout_i(x),   w(x) = softmax(x · Wrᵀ),  scale = alpha / r
//
// Dimension letters: M = B*T rows, K input features, N experts, R rank, NR = N*R; i(j) = j / R is the
// expert of stacked row j. Tensors (row-major, f32):
//   x        [M, K]     layer input; the router sees it before dropout
//   Wr       [N, K]     router weight (no bias)
//   A        [NR, K]    expert down-projections stacked: rows i*R .. i*R+R-1 are A_i
//   w        [M, N]     router weights (saved for backward)
//   h        [M, NR]    h[m, j] = sum_k A[j, k] * x[m, k] * keep(m, i(j), k) / (1 - p)   (saved)
//   g        [M, NR]    g[m, j] = scale * w[m, i(j)] * h[m, j]                            (saved)
//   dG       [M, NR]    dLoss/dg (from dY · Bcat)
//   dh       [M, NR]    dLoss/dh
//   dw       [M, N]     dLoss/dw (gate part; the LBC gradient is added to it before router_backward)
//   dlogits  [M, N]     dLoss/d(x · Wrᵀ)
//   dx       [M, K]     dLoss/dx, accumulated by expert_down_backward_input
//   dA       [NR, K]    dLoss/dA, accumulated (parameter gradient)
//
// Dropout is a stateless hash of (seed, stream, m, expert, k) (see src/reference/dropout.ts for the
// definition; the CPU side computes the identical bits): the backward regenerates the forward's mask
// instead of storing an [M, N, K] tensor. threshold == 0 (p = 0) keeps everything and skips the hash.
//
// ROUTED = false is plain LoRA (the baseline): N = 1, w ≡ 1, no router ops; w and dw are never read
// or written then (their bindings still exist, the dispatcher binds placeholders).
//
// Every backward is a gather: each invocation owns the outputs it writes (WGSL has no float atomics).

struct Dims {
  M: u32, K: u32, N: u32, R: u32,
  scale: f32,
  // seed, threshold, invKeep are contiguous: setDropout() rewrites them between steps.
  seed: u32, threshold: u32, invKeep: f32,
  stream: u32,
}

override ROUTED: bool = true;
override WG: u32 = 64;

@group(0) @binding(0) var<uniform> dims: Dims;

// Bindings are per entry point (a binding number is reused by entry points that never share a
// pipeline); each entry point statically uses exactly the bindings listed above it.

// router_forward
@group(0) @binding(1) var<storage, read> rf_x: array<f32>;
@group(0) @binding(2) var<storage, read> rf_wr: array<f32>;
@group(0) @binding(3) var<storage, read_write> rf_w: array<f32>;

// expert_down_forward
@group(0) @binding(1) var<storage, read> df_x: array<f32>;
@group(0) @binding(2) var<storage, read> df_a: array<f32>;
@group(0) @binding(3) var<storage, read> df_w: array<f32>;
@group(0) @binding(4) var<storage, read_write> df_h: array<f32>;
@group(0) @binding(5) var<storage, read_write> df_g: array<f32>;

// gate_backward
@group(0) @binding(1) var<storage, read> gb_dg: array<f32>;
@group(0) @binding(2) var<storage, read> gb_h: array<f32>;
@group(0) @binding(3) var<storage, read> gb_w: array<f32>;
@group(0) @binding(4) var<storage, read_write> gb_dh: array<f32>;
@group(0) @binding(5) var<storage, read_write> gb_dw: array<f32>;

// router_backward
@group(0) @binding(1) var<storage, read> rb_w: array<f32>;
@group(0) @binding(2) var<storage, read> rb_dw: array<f32>;
@group(0) @binding(3) var<storage, read_write> rb_dlogits: array<f32>;

// expert_down_backward_input
@group(0) @binding(1) var<storage, read> bi_dh: array<f32>;
@group(0) @binding(2) var<storage, read> bi_a: array<f32>;
@group(0) @binding(3) var<storage, read_write> bi_dx: array<f32>;

// expert_down_backward_weight
@group(0) @binding(1) var<storage, read> bw_dh: array<f32>;
@group(0) @binding(2) var<storage, read> bw_x: array<f32>;
@group(0) @binding(3) var<storage, read_write> bw_da: array<f32>;

// ---- dropout hash (mirrored in src/reference/dropout.ts) -------------------------------------------

// lowbias32: a bijection on u32 with near-ideal avalanche; u32 multiplication wraps mod 2^32.
fn hash_mix(v: u32) -> u32 {
  var x = v;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

// Per-step, per-layer key (uniform; each invocation computes it once).
fn dropout_key() -> u32 {
  return hash_mix(hash_mix(dims.seed) ^ dims.stream);
}

// Whether x[m, k] as seen by expert e survives dropout. The index wraps mod 2^32 like the CPU's.
fn dropout_keep(key: u32, m: u32, e: u32, k: u32) -> bool {
  if (dims.threshold == 0u) { return true; }
  let idx = (m * dims.N + e) * dims.K + k;
  return hash_mix(hash_mix(idx) ^ key) >= dims.threshold;
}

// Linear invocation index of a 1-D grid folded into x and y (grid1d on the host).
fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

// ---- forward ---------------------------------------------------------------------------------------

// w[m, :] = softmax(x[m] · Wrᵀ) in fp32, max-subtracted. One invocation per row m; the logits are
// staged in w itself, so any N works without a private array.
@compute @workgroup_size(WG)
fn router_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let m = linear_index(wid, nwg, lid);
  if (m >= dims.M) { return; }
  let xb = m * dims.K;
  let wb = m * dims.N;
  var mx = -3.402823e38;
  for (var i = 0u; i < dims.N; i++) {
    let rb = i * dims.K;
    var s = 0.0;
    for (var k = 0u; k < dims.K; k++) { s += rf_x[xb + k] * rf_wr[rb + k]; }
    rf_w[wb + i] = s;
    mx = max(mx, s);
  }
  var sum = 0.0;
  for (var i = 0u; i < dims.N; i++) {
    let e = exp(rf_w[wb + i] - mx);
    rf_w[wb + i] = e;
    sum += e;
  }
  let inv = 1.0 / sum;
  for (var i = 0u; i < dims.N; i++) { rf_w[wb + i] *= inv; }
}

// Rows of A handled together: one invocation owns up to 4 consecutive rows of one expert (a vec4 of
// accumulators), so each dropout bit is hashed once per 4 outputs. Chunk c of expert i covers rows
// i*R + 4c .. i*R + 4c + n - 1, n = min(4, R - 4c). Lanes q >= n re-read row (n - 1) so loads stay
// inside the expert; their results are discarded.
struct Chunk { j0: u32, n: u32, rows: vec4<u32> }

fn chunk_rows(i: u32, c: u32) -> Chunk {
  let r0 = c * 4u;
  let n = min(4u, dims.R - r0);
  let j0 = i * dims.R + r0;
  let last = n - 1u;
  return Chunk(j0, n, vec4<u32>(j0, j0 + min(1u, last), j0 + min(2u, last), j0 + min(3u, last)));
}

// h[m, j] = sum_k A[j, k] * x[m, k] * keep(m, i, k) / (1 - p);  g[m, j] = scale * w[m, i] * h[m, j].
// One invocation per (m, i, chunk); t = (m * N + i) * RC + c keeps one row's invocations together so
// they share x[m, :].
@compute @workgroup_size(WG)
fn expert_down_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
  let RC = (dims.R + 3u) / 4u;
  let t = linear_index(wid, nwg, lid);
  if (t >= dims.M * dims.N * RC) { return; }
  let c = t % RC;
  let i = (t / RC) % dims.N;
  let m = t / (RC * dims.N);
  let ch = chunk_rows(i, c);
  let ab = ch.rows * dims.K;
  let xb = m * dims.K;
  let key = dropout_key();
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < dims.K; k++) {
    if (!dropout_keep(key, m, i, k)) { continue; }
    let a = vec4<f32>(df_a[ab.x + k], df_a[ab.y + k], df_a[ab.z + k], df_a[ab.w + k]);
    acc += df_x[xb + k] * a;
  }
  acc *= dims.invKeep;
  var wv = 1.0;
  if (ROUTED) { wv = df_w[m * dims.N + i]; }
  let gs = dims.scale * wv;
  let ob = m * dims.N * dims.R + ch.j0;
  for (var q = 0u; q < ch.n; q++) {
    df_h[ob + q] = acc[q];
    df_g[ob + q] = gs * acc[q];
  }
}

// ---- backward --------------------------------------------------------------------------------------

// dh[m, j] = scale * w[m, i] * dG[m, j]  (overwrite)
// dw[m, i] = scale * sum_r dG[m, i*R + r] * h[m, i*R + r]  (overwrite; not written when !ROUTED)
// One invocation per (m, i).
@compute @workgroup_size(WG)
fn gate_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let t = linear_index(wid, nwg, lid);
  if (t >= dims.M * dims.N) { return; }
  let i = t % dims.N;
  let m = t / dims.N;
  var wv = 1.0;
  if (ROUTED) { wv = gb_w[t]; }
  let s = dims.scale * wv;
  let base = m * dims.N * dims.R + i * dims.R;
  var d = 0.0;
  for (var r = 0u; r < dims.R; r++) {
    let gv = gb_dg[base + r];
    gb_dh[base + r] = s * gv;
    d += gv * gb_h[base + r];
  }
  if (ROUTED) { gb_dw[t] = dims.scale * d; }
}

// Softmax backward: dlogits[m, i] = w[m, i] * (dw[m, i] - sum_k w[m, k] dw[m, k]) (overwrite).
// One invocation per (m, i); the N-term dot is recomputed per i (N is small) to keep the gather shape.
@compute @workgroup_size(WG)
fn router_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
  let t = linear_index(wid, nwg, lid);
  if (t >= dims.M * dims.N) { return; }
  let rb = (t / dims.N) * dims.N;
  var s = 0.0;
  for (var k = 0u; k < dims.N; k++) { s += rb_w[rb + k] * rb_dw[rb + k]; }
  rb_dlogits[t] = rb_w[t] * (rb_dw[t] - s);
}

// dx[m, k] += sum_j dh[m, j] * A[j, k] * keep(m, i(j), k) / (1 - p)   (accumulate: dx already holds
// dY · W0 + dlogits · Wr). One invocation per (m, k); neighbours read neighbouring columns of A.
@compute @workgroup_size(WG)
fn expert_down_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                              @builtin(local_invocation_index) lid: u32) {
  let t = linear_index(wid, nwg, lid);
  if (t >= dims.M * dims.K) { return; }
  let k = t % dims.K;
  let m = t / dims.K;
  let key = dropout_key();
  let hb = m * dims.N * dims.R;
  var acc = 0.0;
  for (var i = 0u; i < dims.N; i++) {
    if (!dropout_keep(key, m, i, k)) { continue; }
    var s = 0.0;
    for (var r = 0u; r < dims.R; r++) {
      let j = i * dims.R + r;
      s += bi_dh[hb + j] * bi_a[j * dims.K + k];
    }
    acc += s;
  }
  bi_dx[t] += dims.invKeep * acc;
}

// dA[j, k] += sum_m dh[m, j] * x[m, k] * keep(m, i(j), k) / (1 - p)   (accumulate: parameter grad).
// One invocation per (i, chunk, k) owning up to 4 rows of A (the same chunks as the forward), so each
// dropout bit is hashed once per 4 outputs; t = (i * RC + c) * K + k keeps neighbours on neighbouring
// columns of x.
@compute @workgroup_size(WG)
fn expert_down_backward_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                               @builtin(local_invocation_index) lid: u32) {
  let RC = (dims.R + 3u) / 4u;
  let t = linear_index(wid, nwg, lid);
  if (t >= dims.N * RC * dims.K) { return; }
  let k = t % dims.K;
  let c = (t / dims.K) % RC;
  let i = t / (dims.K * RC);
  let ch = chunk_rows(i, c);
  let NR = dims.N * dims.R;
  let key = dropout_key();
  var acc = vec4<f32>(0.0);
  for (var m = 0u; m < dims.M; m++) {
    if (!dropout_keep(key, m, i, k)) { continue; }
    let hb = m * NR;
    let d = vec4<f32>(bw_dh[hb + ch.rows.x], bw_dh[hb + ch.rows.y], bw_dh[hb + ch.rows.z], bw_dh[hb + ch.rows.w]);
    acc += bw_x[m * dims.K + k] * d;
  }
  for (var q = 0u; q < ch.n; q++) {
    bw_da[(ch.j0 + q) * dims.K + k] += dims.invKeep * acc[q];
  }
}
