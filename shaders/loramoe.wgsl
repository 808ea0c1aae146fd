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
//
// The three expert kernels (expert_down_forward, expert_down_backward_input and _weight) are
// matmuls with a mask, register-blocked like matmul.wgsl's main_vec4 / main_ragged: each invocation
// owns a block of up to 64 outputs (sixteen vec4 accumulators), so every load feeds 4-8
// multiply-adds instead of one. Why, and why these shapes:
//   - On SwiftShader every storage load is a per-lane gather with a bounds check, so multiply-adds
//     per load is what sets the speed: with dropout off these run 5-9x (forward, weight gradient)
//     and 11-14x (input gradient) faster than the one-output-per-invocation loops they replaced,
//     at 1-2 GFLOP per CPU-second (measured in CPU time on SmolLM2's shapes, rank 4-16).
//   - Loads are scalar, four at a time into a vec4, at any offset: K (and N*R) may be any size, and
//     on SwiftShader four scalar loads cost about what one aligned vec4 load does (measured on the
//     forward: a vec4-binding variant was no faster).
//   - A block never spans two experts' masks along the reduction: each dropout bit keep(m, i, k)
//     is hashed once per block that needs it, and each (m, i, k) is needed by as few blocks as the
//     shapes allow (forward and weight gradient: once per chunk of CHUNK rank rows, so once when
//     R <= CHUNK; input gradient: exactly once). The hash (its six shifts cost SwiftShader about
//     four times an add) still costs more than the multiply-adds it serves at rank 4-8: with
//     dropout on, these kernels take 2-4x their p = 0 time (still 2-5x faster than before).
//   - threshold == 0 (p = 0) takes a separate loop without the hash: SwiftShader does not skip the
//     untaken side of a branch inside a loop (a uniform `if (p == 0)` around the hash in the loop
//     measured 7x slower at p = 0 than the hoisted branch).
//   - Rows, columns and rank rows past the edge of a block are clamped to the last valid one before
//     the loops (the loads stay in bounds, the results are never stored), so the loops have no
//     bounds checks. The forward's k loop and the input gradient's loop over rows of A (p = 0) step
//     by 4 and finish the rest one at a time.

struct Dims {
  M: u32, K: u32, N: u32, R: u32,
  scale: f32,
  // seed, threshold, invKeep are contiguous: setDropout() rewrites them between steps.
  seed: u32, threshold: u32, invKeep: f32,
  stream: u32,
  // Expert knockout (router_forward only): bit i % 32 of off<i / 32> set switches expert i off, so
  // its logit counts as minus infinity: weight 0, the others renormalised. All zero: every expert on.
  off0: u32, off1: u32, off2: u32, off3: u32, off4: u32, off5: u32, off6: u32, off7: u32,
}

override ROUTED: bool = true;
override WG: u32 = 64;
// Rank rows per block in expert_down_forward and expert_down_backward_weight: 4 or 8 (the
// dispatcher picks 4 for R <= 4, else 8), so that a block covers a whole expert of rank 4 without
// wasted lanes and of rank 5-8 without a second pass over its dropout bits.
override CHUNK: u32 = 8;

@group(0) @binding(0) var<uniform> dims: Dims;

// Bindings are per entry point (a binding number is reused by entry points that never share a
// pipeline); each entry point statically uses exactly the bindings listed above it.

// router_forward
@group(0) @binding(1) var<storage, read> rf_x: array<f32>;
@group(0) @binding(2) var<storage, read> rf_wr: array<f32>;
@group(0) @binding(3) var<storage, read_write> rf_w: array<f32>;
// router_forward_vec4: the same x and Wr seen as vec4s, and rf_w
@group(0) @binding(1) var<storage, read> rf_x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> rf_wr4: array<vec4<f32>>;

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

// Index of entry (m, e, k) in the dropout hash, wrapping mod 2^32 like the CPU's; entry (m, e, k + q)
// is this plus q (also mod 2^32).
fn dropout_index(m: u32, e: u32, k: u32) -> u32 {
  return (m * dims.N + e) * dims.K + k;
}

// Whether x[m, k] as seen by expert e survives dropout (idx = dropout_index(m, e, k)).
fn dropout_keep(key: u32, idx: u32) -> bool {
  if (dims.threshold == 0u) { return true; }
  return hash_mix(hash_mix(idx) ^ key) >= dims.threshold;
}

// hash_mix on four lanes at once (the same operations lane by lane).
fn hash_mix4(v: vec4<u32>) -> vec4<u32> {
  var x = v;
  x ^= x >> vec4<u32>(16u);
  x *= vec4<u32>(0x7feb352du);
  x ^= x >> vec4<u32>(15u);
  x *= vec4<u32>(0x846ca68bu);
  x ^= x >> vec4<u32>(16u);
  return x;
}

// v with lane q zeroed where entry idx + q is dropped: v = x[m, k .. k+3] (or a sum over one
// expert's rows at those columns) and idx = dropout_index(m, e, k). Only for threshold != 0: it
// does not short-cut p = 0 (the callers branch once, outside their loops).
fn drop4(v: vec4<f32>, idx: u32, key: u32) -> vec4<f32> {
  let bits = hash_mix4(hash_mix4(vec4<u32>(idx) + vec4<u32>(0u, 1u, 2u, 3u)) ^ vec4<u32>(key));
  return select(vec4<f32>(0.0), v, bits >= vec4<u32>(dims.threshold));
}

// Linear invocation index of a 1-D grid folded into x and y (grid1d on the host).
fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

// Whether expert i is knocked out (the off0..off7 bit mask; experts 0..255).
fn expert_off(i: u32) -> bool {
  var word = 0u;
  switch (i >> 5u) {
    case 0u: { word = dims.off0; }
    case 1u: { word = dims.off1; }
    case 2u: { word = dims.off2; }
    case 3u: { word = dims.off3; }
    case 4u: { word = dims.off4; }
    case 5u: { word = dims.off5; }
    case 6u: { word = dims.off6; }
    default: { word = dims.off7; }
  }
  return ((word >> (i & 31u)) & 1u) == 1u;
}

// ---- forward ---------------------------------------------------------------------------------------

// w[m, :] = softmax(x[m] · Wrᵀ) in fp32, max-subtracted, over the experts not knocked out (the
// others get 0). One invocation per row m; the logits are staged in w itself, so any N works
// without a private array.
@compute @workgroup_size(WG)
fn router_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let m = linear_index(wid, nwg, lid);
  if (m >= dims.M) { return; }
  let xb = m * dims.K;
  let wb = m * dims.N;
  for (var i = 0u; i < dims.N; i++) {
    let rb = i * dims.K;
    var s = 0.0;
    for (var k = 0u; k < dims.K; k++) { s += rf_x[xb + k] * rf_wr[rb + k]; }
    rf_w[wb + i] = s;
  }
  router_softmax(wb);
}

// router_forward for K % 4 == 0, eight experts at a time with x and Wr read as vec4s. Each logit
// still gains x[m, k] * Wr[i, k] one k at a time in increasing k (the same additions as
// router_forward, so the same bits), but each x value is loaded once for eight experts and every
// load brings four values: 9 loads per four k and eight experts instead of 64 (on a software
// adapter every load is a per-lane gather). Experts past N in the last group read the last row
// (computed, never stored).
@compute @workgroup_size(WG)
fn router_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
  let m = linear_index(wid, nwg, lid);
  if (m >= dims.M) { return; }
  let K4 = dims.K / 4u;
  let xb = m * K4;
  let wb = m * dims.N;
  let last = dims.N - 1u;
  for (var i0 = 0u; i0 < dims.N; i0 += 8u) {
    let r0 = min(i0, last) * K4;
    let r1 = min(i0 + 1u, last) * K4;
    let r2 = min(i0 + 2u, last) * K4;
    let r3 = min(i0 + 3u, last) * K4;
    let r4 = min(i0 + 4u, last) * K4;
    let r5 = min(i0 + 5u, last) * K4;
    let r6 = min(i0 + 6u, last) * K4;
    let r7 = min(i0 + 7u, last) * K4;
    // lo[j] = logit of expert i0 + j, hi[j] of expert i0 + 4 + j.
    var lo = vec4<f32>();
    var hi = vec4<f32>();
    for (var k = 0u; k < K4; k++) {
      let xv = rf_x4[xb + k];
      // Row q of tl: Wr[i0 .. i0+3, 4k + q]; of th: Wr[i0+4 .. i0+7, 4k + q].
      let tl = transpose(mat4x4<f32>(rf_wr4[r0 + k], rf_wr4[r1 + k], rf_wr4[r2 + k], rf_wr4[r3 + k]));
      let th = transpose(mat4x4<f32>(rf_wr4[r4 + k], rf_wr4[r5 + k], rf_wr4[r6 + k], rf_wr4[r7 + k]));
      lo += xv.x * tl[0]; hi += xv.x * th[0];
      lo += xv.y * tl[1]; hi += xv.y * th[1];
      lo += xv.z * tl[2]; hi += xv.z * th[2];
      lo += xv.w * tl[3]; hi += xv.w * th[3];
    }
    for (var j = 0u; j < 8u; j++) {
      if (i0 + j >= dims.N) { break; }
      rf_w[wb + i0 + j] = select(hi[j & 3u], lo[j & 3u], j < 4u);
    }
  }
  router_softmax(wb);
}

// The softmax of the N logits staged in w[wb ..], over the experts not knocked out. A switched-off
// expert's exp(-inf - mx) is exactly 0; with no expert off these are the same operations in the same
// order as without the mask (bit-identical).
fn router_softmax(wb: u32) {
  var mx = -3.402823e38;
  for (var i = 0u; i < dims.N; i++) {
    if (!expert_off(i)) { mx = max(mx, rf_w[wb + i]); }
  }
  var sum = 0.0;
  for (var i = 0u; i < dims.N; i++) {
    var e = 0.0;
    if (!expert_off(i)) { e = exp(rf_w[wb + i] - mx); }
    rf_w[wb + i] = e;
    sum += e;
  }
  let inv = 1.0 / sum;
  for (var i = 0u; i < dims.N; i++) { rf_w[wb + i] *= inv; }
}

// Four consecutive values at offset o (any alignment), one helper per binding.
fn df_x4(o: u32) -> vec4<f32> { return vec4<f32>(df_x[o], df_x[o + 1u], df_x[o + 2u], df_x[o + 3u]); }
fn df_a4(o: u32) -> vec4<f32> { return vec4<f32>(df_a[o], df_a[o + 1u], df_a[o + 2u], df_a[o + 3u]); }

// Writes h and g for row m of the block, rank rows j0 .. j0+n-1 (lo: the first four, hi: the next).
fn forward_store(m: u32, i: u32, j0: u32, n: u32, lo: vec4<f32>, hi: vec4<f32>) {
  if (m >= dims.M) { return; }
  var wv = 1.0;
  if (ROUTED) { wv = df_w[m * dims.N + i]; }
  let gs = dims.scale * wv;
  let ob = m * dims.N * dims.R + j0;
  for (var q = 0u; q < n; q++) {
    let v = dims.invKeep * select(hi[q & 3u], lo[q & 3u], q < 4u);
    df_h[ob + q] = v;
    df_g[ob + q] = gs * v;
  }
}

// h[m, j] = sum_k A[j, k] * x[m, k] * keep(m, i, k) / (1 - p);  g[m, j] = scale * w[m, i] * h[m, j].
// x [M, K] · Aᵀ [K, N*R] with expert i's mask on x. One invocation per block of 8 rows m0 .. m0+7
// and one chunk c of CHUNK rank rows of expert i (rows j0 .. j0+CHUNK-1 of A, j0 = i*R + c*CHUNK,
// n = min(CHUNK, R - c*CHUNK) of them real); t = (m0 / 8) * (N * RC) + i * RC + c keeps the blocks
// of one row block together so they share x. Accumulators: lq = h[m0 + q, j0 .. j0+3], hq =
// h[m0 + q, j0+4 .. j0+7] (CHUNK == 8 only). Per 4 columns of k: bl's columns are A[j0 + s, k .. k+3]
// for s = 0..3, so row q gains x[m0 + q, k .. k+3] * bl (four dot products), masked per row.
@compute @workgroup_size(WG)
fn expert_down_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
  let M = dims.M;
  let K = dims.K;
  let N = dims.N;
  let R = dims.R;
  let RC = (R + CHUNK - 1u) / CHUNK;
  let t = linear_index(wid, nwg, lid);
  let m0 = (t / (N * RC)) * 8u;
  if (m0 >= M) { return; }
  let i = (t / RC) % N;
  let r0 = (t % RC) * CHUNK;
  let n = min(CHUNK, R - r0);
  let j0 = i * R + r0;
  let jl = j0 + n - 1u;
  // Rank rows past the chunk re-read its last row, rows past M the last row of x.
  let a0 = j0 * K;
  let a1 = min(j0 + 1u, jl) * K;
  let a2 = min(j0 + 2u, jl) * K;
  let a3 = min(j0 + 3u, jl) * K;
  let a4 = min(j0 + 4u, jl) * K;
  let a5 = min(j0 + 5u, jl) * K;
  let a6 = min(j0 + 6u, jl) * K;
  let a7 = min(j0 + 7u, jl) * K;
  let ml = M - 1u;
  let m1 = min(m0 + 1u, ml);
  let m2 = min(m0 + 2u, ml);
  let m3 = min(m0 + 3u, ml);
  let m4 = min(m0 + 4u, ml);
  let m5 = min(m0 + 5u, ml);
  let m6 = min(m0 + 6u, ml);
  let m7 = min(m0 + 7u, ml);
  let x0 = m0 * K;
  let x1 = m1 * K;
  let x2 = m2 * K;
  let x3 = m3 * K;
  let x4 = m4 * K;
  let x5 = m5 * K;
  let x6 = m6 * K;
  let x7 = m7 * K;
  // Dropout indices of (row, i, 0).
  let d0 = dropout_index(m0, i, 0u);
  let d1 = dropout_index(m1, i, 0u);
  let d2 = dropout_index(m2, i, 0u);
  let d3 = dropout_index(m3, i, 0u);
  let d4 = dropout_index(m4, i, 0u);
  let d5 = dropout_index(m5, i, 0u);
  let d6 = dropout_index(m6, i, 0u);
  let d7 = dropout_index(m7, i, 0u);
  let key = dropout_key();

  var l0 = vec4<f32>(); var l1 = vec4<f32>(); var l2 = vec4<f32>(); var l3 = vec4<f32>();
  var l4 = vec4<f32>(); var l5 = vec4<f32>(); var l6 = vec4<f32>(); var l7 = vec4<f32>();
  var h0 = vec4<f32>(); var h1 = vec4<f32>(); var h2 = vec4<f32>(); var h3 = vec4<f32>();
  var h4 = vec4<f32>(); var h5 = vec4<f32>(); var h6 = vec4<f32>(); var h7 = vec4<f32>();
  let K4 = K & ~3u;
  if (dims.threshold == 0u) {
    for (var k = 0u; k < K4; k += 4u) {
      let bl = mat4x4<f32>(df_a4(a0 + k), df_a4(a1 + k), df_a4(a2 + k), df_a4(a3 + k));
      var bh = mat4x4<f32>();
      if (CHUNK == 8u) { bh = mat4x4<f32>(df_a4(a4 + k), df_a4(a5 + k), df_a4(a6 + k), df_a4(a7 + k)); }
      var v = df_x4(x0 + k); l0 += v * bl; if (CHUNK == 8u) { h0 += v * bh; }
      v = df_x4(x1 + k); l1 += v * bl; if (CHUNK == 8u) { h1 += v * bh; }
      v = df_x4(x2 + k); l2 += v * bl; if (CHUNK == 8u) { h2 += v * bh; }
      v = df_x4(x3 + k); l3 += v * bl; if (CHUNK == 8u) { h3 += v * bh; }
      v = df_x4(x4 + k); l4 += v * bl; if (CHUNK == 8u) { h4 += v * bh; }
      v = df_x4(x5 + k); l5 += v * bl; if (CHUNK == 8u) { h5 += v * bh; }
      v = df_x4(x6 + k); l6 += v * bl; if (CHUNK == 8u) { h6 += v * bh; }
      v = df_x4(x7 + k); l7 += v * bl; if (CHUNK == 8u) { h7 += v * bh; }
    }
  } else {
    // The same with each row's x masked by expert i's dropout bits (32 hashes per step, shared by
    // the CHUNK rank rows).
    for (var k = 0u; k < K4; k += 4u) {
      let bl = mat4x4<f32>(df_a4(a0 + k), df_a4(a1 + k), df_a4(a2 + k), df_a4(a3 + k));
      var bh = mat4x4<f32>();
      if (CHUNK == 8u) { bh = mat4x4<f32>(df_a4(a4 + k), df_a4(a5 + k), df_a4(a6 + k), df_a4(a7 + k)); }
      var v = drop4(df_x4(x0 + k), d0 + k, key); l0 += v * bl; if (CHUNK == 8u) { h0 += v * bh; }
      v = drop4(df_x4(x1 + k), d1 + k, key); l1 += v * bl; if (CHUNK == 8u) { h1 += v * bh; }
      v = drop4(df_x4(x2 + k), d2 + k, key); l2 += v * bl; if (CHUNK == 8u) { h2 += v * bh; }
      v = drop4(df_x4(x3 + k), d3 + k, key); l3 += v * bl; if (CHUNK == 8u) { h3 += v * bh; }
      v = drop4(df_x4(x4 + k), d4 + k, key); l4 += v * bl; if (CHUNK == 8u) { h4 += v * bh; }
      v = drop4(df_x4(x5 + k), d5 + k, key); l5 += v * bl; if (CHUNK == 8u) { h5 += v * bh; }
      v = drop4(df_x4(x6 + k), d6 + k, key); l6 += v * bl; if (CHUNK == 8u) { h6 += v * bh; }
      v = drop4(df_x4(x7 + k), d7 + k, key); l7 += v * bl; if (CHUNK == 8u) { h7 += v * bh; }
    }
  }
  // The last K % 4 columns, one at a time (dropout_keep is true for p = 0).
  for (var k = K4; k < K; k++) {
    let bl = vec4<f32>(df_a[a0 + k], df_a[a1 + k], df_a[a2 + k], df_a[a3 + k]);
    let bh = vec4<f32>(df_a[a4 + k], df_a[a5 + k], df_a[a6 + k], df_a[a7 + k]);
    var v = select(0.0, df_x[x0 + k], dropout_keep(key, d0 + k)); l0 += v * bl; h0 += v * bh;
    v = select(0.0, df_x[x1 + k], dropout_keep(key, d1 + k)); l1 += v * bl; h1 += v * bh;
    v = select(0.0, df_x[x2 + k], dropout_keep(key, d2 + k)); l2 += v * bl; h2 += v * bh;
    v = select(0.0, df_x[x3 + k], dropout_keep(key, d3 + k)); l3 += v * bl; h3 += v * bh;
    v = select(0.0, df_x[x4 + k], dropout_keep(key, d4 + k)); l4 += v * bl; h4 += v * bh;
    v = select(0.0, df_x[x5 + k], dropout_keep(key, d5 + k)); l5 += v * bl; h5 += v * bh;
    v = select(0.0, df_x[x6 + k], dropout_keep(key, d6 + k)); l6 += v * bl; h6 += v * bh;
    v = select(0.0, df_x[x7 + k], dropout_keep(key, d7 + k)); l7 += v * bl; h7 += v * bh;
  }

  forward_store(m0, i, j0, n, l0, h0);
  forward_store(m0 + 1u, i, j0, n, l1, h1);
  forward_store(m0 + 2u, i, j0, n, l2, h2);
  forward_store(m0 + 3u, i, j0, n, l3, h3);
  forward_store(m0 + 4u, i, j0, n, l4, h4);
  forward_store(m0 + 5u, i, j0, n, l5, h5);
  forward_store(m0 + 6u, i, j0, n, l6, h6);
  forward_store(m0 + 7u, i, j0, n, l7, h7);
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

// dh[m, j .. j+3] at offset o = m * N*R + j (any alignment).
fn bi_dh4(o: u32) -> vec4<f32> { return vec4<f32>(bi_dh[o], bi_dh[o + 1u], bi_dh[o + 2u], bi_dh[o + 3u]); }

// Adds invKeep * (lo, hi) to dx[m, k0 .. k0+7], skipping what lies outside dx.
fn input_grad_store(m: u32, k0: u32, lo: vec4<f32>, hi: vec4<f32>) {
  if (m >= dims.M) { return; }
  for (var c = 0u; c < 8u; c++) {
    if (k0 + c >= dims.K) { return; }
    bi_dx[m * dims.K + k0 + c] += dims.invKeep * select(hi[c & 3u], lo[c & 3u], c < 4u);
  }
}

// dx[m, k] += sum_j dh[m, j] * A[j, k] * keep(m, i(j), k) / (1 - p)   (accumulate: dx already holds
// dY · W0 + dlogits · Wr). dh [M, N*R] · A [N*R, K] with the mask on the reduction, per expert.
// One invocation per block of 8 rows m0 .. m0+7 and 8 columns k0 .. k0+7; t = (m0 / 8) * KB + k0 / 8
// (KB = ceil(K / 8)) puts neighbours on neighbouring columns of A, sharing the rows of dh.
// Accumulators: lq = dx[m0 + q, k0 .. k0+3], hq = dx[m0 + q, k0+4 .. k0+7]. Per row j of A, row q
// gains dh[m0 + q, j] * A[j, k0 .. k0+7]. With dropout the block sums one expert at a time into
// partials (pq, sq), masks them with keep(m0 + q, i, k0 .. k0+7) and adds them up: each bit is
// hashed once in the whole grid, and the mask costs one select per R multiply-adds. That path reads
// one row of A per step: with the partials live, four rows per step measured about 10% slower.
@compute @workgroup_size(WG)
fn expert_down_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                              @builtin(local_invocation_index) lid: u32) {
  let M = dims.M;
  let K = dims.K;
  let N = dims.N;
  let R = dims.R;
  let NR = N * R;
  let KB = (K + 7u) / 8u;
  let t = linear_index(wid, nwg, lid);
  let m0 = (t / KB) * 8u;
  if (m0 >= M) { return; }
  let k0 = (t % KB) * 8u;
  // Columns past K re-read the last one, rows past M the last row of dh.
  let kl = K - 1u;
  let c1 = min(k0 + 1u, kl);
  let c2 = min(k0 + 2u, kl);
  let c3 = min(k0 + 3u, kl);
  let c4 = min(k0 + 4u, kl);
  let c5 = min(k0 + 5u, kl);
  let c6 = min(k0 + 6u, kl);
  let c7 = min(k0 + 7u, kl);
  let ml = M - 1u;
  let m1 = min(m0 + 1u, ml);
  let m2 = min(m0 + 2u, ml);
  let m3 = min(m0 + 3u, ml);
  let m4 = min(m0 + 4u, ml);
  let m5 = min(m0 + 5u, ml);
  let m6 = min(m0 + 6u, ml);
  let m7 = min(m0 + 7u, ml);
  let g0 = m0 * NR;
  let g1 = m1 * NR;
  let g2 = m2 * NR;
  let g3 = m3 * NR;
  let g4 = m4 * NR;
  let g5 = m5 * NR;
  let g6 = m6 * NR;
  let g7 = m7 * NR;

  var l0 = vec4<f32>(); var l1 = vec4<f32>(); var l2 = vec4<f32>(); var l3 = vec4<f32>();
  var l4 = vec4<f32>(); var l5 = vec4<f32>(); var l6 = vec4<f32>(); var l7 = vec4<f32>();
  var h0 = vec4<f32>(); var h1 = vec4<f32>(); var h2 = vec4<f32>(); var h3 = vec4<f32>();
  var h4 = vec4<f32>(); var h5 = vec4<f32>(); var h6 = vec4<f32>(); var h7 = vec4<f32>();
  if (dims.threshold == 0u) {
    // No mask: one plain pass over all N*R rows of A, four rows j .. j+3 per step (as main_vec4's
    // input-gradient layout: al, ah's columns are A[j + s, k0 .. k0+3] and A[j + s, k0+4 .. k0+7],
    // row q gains al * dh[m0 + q, j .. j+3]), then the last NR % 4 rows one at a time.
    let NR4 = NR & ~3u;
    for (var j = 0u; j < NR4; j += 4u) {
      let a0 = j * K;
      let a1 = a0 + K;
      let a2 = a1 + K;
      let a3 = a2 + K;
      let al = mat4x4<f32>(
        vec4<f32>(bi_a[a0 + k0], bi_a[a0 + c1], bi_a[a0 + c2], bi_a[a0 + c3]),
        vec4<f32>(bi_a[a1 + k0], bi_a[a1 + c1], bi_a[a1 + c2], bi_a[a1 + c3]),
        vec4<f32>(bi_a[a2 + k0], bi_a[a2 + c1], bi_a[a2 + c2], bi_a[a2 + c3]),
        vec4<f32>(bi_a[a3 + k0], bi_a[a3 + c1], bi_a[a3 + c2], bi_a[a3 + c3]));
      let ah = mat4x4<f32>(
        vec4<f32>(bi_a[a0 + c4], bi_a[a0 + c5], bi_a[a0 + c6], bi_a[a0 + c7]),
        vec4<f32>(bi_a[a1 + c4], bi_a[a1 + c5], bi_a[a1 + c6], bi_a[a1 + c7]),
        vec4<f32>(bi_a[a2 + c4], bi_a[a2 + c5], bi_a[a2 + c6], bi_a[a2 + c7]),
        vec4<f32>(bi_a[a3 + c4], bi_a[a3 + c5], bi_a[a3 + c6], bi_a[a3 + c7]));
      var d = bi_dh4(g0 + j); l0 += al * d; h0 += ah * d;
      d = bi_dh4(g1 + j); l1 += al * d; h1 += ah * d;
      d = bi_dh4(g2 + j); l2 += al * d; h2 += ah * d;
      d = bi_dh4(g3 + j); l3 += al * d; h3 += ah * d;
      d = bi_dh4(g4 + j); l4 += al * d; h4 += ah * d;
      d = bi_dh4(g5 + j); l5 += al * d; h5 += ah * d;
      d = bi_dh4(g6 + j); l6 += al * d; h6 += ah * d;
      d = bi_dh4(g7 + j); l7 += al * d; h7 += ah * d;
    }
    for (var j = NR4; j < NR; j++) {
      let aj = j * K;
      let al = vec4<f32>(bi_a[aj + k0], bi_a[aj + c1], bi_a[aj + c2], bi_a[aj + c3]);
      let ah = vec4<f32>(bi_a[aj + c4], bi_a[aj + c5], bi_a[aj + c6], bi_a[aj + c7]);
      var d = bi_dh[g0 + j]; l0 += d * al; h0 += d * ah;
      d = bi_dh[g1 + j]; l1 += d * al; h1 += d * ah;
      d = bi_dh[g2 + j]; l2 += d * al; h2 += d * ah;
      d = bi_dh[g3 + j]; l3 += d * al; h3 += d * ah;
      d = bi_dh[g4 + j]; l4 += d * al; h4 += d * ah;
      d = bi_dh[g5 + j]; l5 += d * al; h5 += d * ah;
      d = bi_dh[g6 + j]; l6 += d * al; h6 += d * ah;
      d = bi_dh[g7 + j]; l7 += d * al; h7 += d * ah;
    }
  } else {
    let key = dropout_key();
    for (var i = 0u; i < N; i++) {
      var p0 = vec4<f32>(); var p1 = vec4<f32>(); var p2 = vec4<f32>(); var p3 = vec4<f32>();
      var p4 = vec4<f32>(); var p5 = vec4<f32>(); var p6 = vec4<f32>(); var p7 = vec4<f32>();
      var s0 = vec4<f32>(); var s1 = vec4<f32>(); var s2 = vec4<f32>(); var s3 = vec4<f32>();
      var s4 = vec4<f32>(); var s5 = vec4<f32>(); var s6 = vec4<f32>(); var s7 = vec4<f32>();
      for (var j = i * R; j < i * R + R; j++) {
        let aj = j * K;
        let al = vec4<f32>(bi_a[aj + k0], bi_a[aj + c1], bi_a[aj + c2], bi_a[aj + c3]);
        let ah = vec4<f32>(bi_a[aj + c4], bi_a[aj + c5], bi_a[aj + c6], bi_a[aj + c7]);
        var d = bi_dh[g0 + j]; p0 += d * al; s0 += d * ah;
        d = bi_dh[g1 + j]; p1 += d * al; s1 += d * ah;
        d = bi_dh[g2 + j]; p2 += d * al; s2 += d * ah;
        d = bi_dh[g3 + j]; p3 += d * al; s3 += d * ah;
        d = bi_dh[g4 + j]; p4 += d * al; s4 += d * ah;
        d = bi_dh[g5 + j]; p5 += d * al; s5 += d * ah;
        d = bi_dh[g6 + j]; p6 += d * al; s6 += d * ah;
        d = bi_dh[g7 + j]; p7 += d * al; s7 += d * ah;
      }
      var e = dropout_index(m0, i, k0); l0 += drop4(p0, e, key); h0 += drop4(s0, e + 4u, key);
      e = dropout_index(m1, i, k0); l1 += drop4(p1, e, key); h1 += drop4(s1, e + 4u, key);
      e = dropout_index(m2, i, k0); l2 += drop4(p2, e, key); h2 += drop4(s2, e + 4u, key);
      e = dropout_index(m3, i, k0); l3 += drop4(p3, e, key); h3 += drop4(s3, e + 4u, key);
      e = dropout_index(m4, i, k0); l4 += drop4(p4, e, key); h4 += drop4(s4, e + 4u, key);
      e = dropout_index(m5, i, k0); l5 += drop4(p5, e, key); h5 += drop4(s5, e + 4u, key);
      e = dropout_index(m6, i, k0); l6 += drop4(p6, e, key); h6 += drop4(s6, e + 4u, key);
      e = dropout_index(m7, i, k0); l7 += drop4(p7, e, key); h7 += drop4(s7, e + 4u, key);
    }
  }

  input_grad_store(m0, k0, l0, h0);
  input_grad_store(m0 + 1u, k0, l1, h1);
  input_grad_store(m0 + 2u, k0, l2, h2);
  input_grad_store(m0 + 3u, k0, l3, h3);
  input_grad_store(m0 + 4u, k0, l4, h4);
  input_grad_store(m0 + 5u, k0, l5, h5);
  input_grad_store(m0 + 6u, k0, l6, h6);
  input_grad_store(m0 + 7u, k0, l7, h7);
}

// Adds invKeep * (lo, hi) to dA[j, k0 .. k0+7] when j is one of the block's n real rows (s < n).
fn weight_grad_store(s: u32, n: u32, j: u32, k0: u32, lo: vec4<f32>, hi: vec4<f32>) {
  if (s >= n) { return; }
  for (var c = 0u; c < 8u; c++) {
    if (k0 + c >= dims.K) { return; }
    bw_da[j * dims.K + k0 + c] += dims.invKeep * select(hi[c & 3u], lo[c & 3u], c < 4u);
  }
}

// dA[j, k] += sum_m dh[m, j] * x[m, k] * keep(m, i(j), k) / (1 - p)   (accumulate: parameter grad).
// dhᵀ [N*R, M] · x [M, K] with expert i's mask on x. One invocation per chunk c of CHUNK rank rows of
// expert i (rows j0 .. j0+CHUNK-1, n real, as in expert_down_forward) and 8 columns k0 .. k0+7;
// t = (i * RC + c) * KB + k0 / 8 puts neighbours on neighbouring columns of x. Accumulators: ls =
// dA[j0 + s, k0 .. k0+3], hs = dA[j0 + s, k0+4 .. k0+7]. Per row m, x[m, k0 .. k0+7] is masked once
// (8 hashes) and feeds CHUNK * 8 multiply-adds: row s gains dh[m, j0 + s] * x[m, k0 .. k0+7].
@compute @workgroup_size(WG)
fn expert_down_backward_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                               @builtin(local_invocation_index) lid: u32) {
  let M = dims.M;
  let K = dims.K;
  let N = dims.N;
  let R = dims.R;
  let NR = N * R;
  let RC = (R + CHUNK - 1u) / CHUNK;
  let KB = (K + 7u) / 8u;
  let t = linear_index(wid, nwg, lid);
  if (t >= N * RC * KB) { return; }
  let k0 = (t % KB) * 8u;
  let i = t / (KB * RC);
  let r0 = ((t / KB) % RC) * CHUNK;
  let n = min(CHUNK, R - r0);
  let j0 = i * R + r0;
  let jl = j0 + n - 1u;
  // Rank rows past the chunk re-read its last row, columns past K the last column of x.
  let j1 = min(j0 + 1u, jl);
  let j2 = min(j0 + 2u, jl);
  let j3 = min(j0 + 3u, jl);
  let j4 = min(j0 + 4u, jl);
  let j5 = min(j0 + 5u, jl);
  let j6 = min(j0 + 6u, jl);
  let j7 = min(j0 + 7u, jl);
  let kl = K - 1u;
  let c1 = min(k0 + 1u, kl);
  let c2 = min(k0 + 2u, kl);
  let c3 = min(k0 + 3u, kl);
  let c4 = min(k0 + 4u, kl);
  let c5 = min(k0 + 5u, kl);
  let c6 = min(k0 + 6u, kl);
  let c7 = min(k0 + 7u, kl);

  var l0 = vec4<f32>(); var l1 = vec4<f32>(); var l2 = vec4<f32>(); var l3 = vec4<f32>();
  var l4 = vec4<f32>(); var l5 = vec4<f32>(); var l6 = vec4<f32>(); var l7 = vec4<f32>();
  var h0 = vec4<f32>(); var h1 = vec4<f32>(); var h2 = vec4<f32>(); var h3 = vec4<f32>();
  var h4 = vec4<f32>(); var h5 = vec4<f32>(); var h6 = vec4<f32>(); var h7 = vec4<f32>();
  if (dims.threshold == 0u) {
    for (var m = 0u; m < M; m++) {
      let xb = m * K;
      let xl = vec4<f32>(bw_x[xb + k0], bw_x[xb + c1], bw_x[xb + c2], bw_x[xb + c3]);
      let xh = vec4<f32>(bw_x[xb + c4], bw_x[xb + c5], bw_x[xb + c6], bw_x[xb + c7]);
      let hb = m * NR;
      var d = bw_dh[hb + j0]; l0 += d * xl; h0 += d * xh;
      d = bw_dh[hb + j1]; l1 += d * xl; h1 += d * xh;
      d = bw_dh[hb + j2]; l2 += d * xl; h2 += d * xh;
      d = bw_dh[hb + j3]; l3 += d * xl; h3 += d * xh;
      if (CHUNK == 8u) {
        d = bw_dh[hb + j4]; l4 += d * xl; h4 += d * xh;
        d = bw_dh[hb + j5]; l5 += d * xl; h5 += d * xh;
        d = bw_dh[hb + j6]; l6 += d * xl; h6 += d * xh;
        d = bw_dh[hb + j7]; l7 += d * xl; h7 += d * xh;
      }
    }
  } else {
    let key = dropout_key();
    for (var m = 0u; m < M; m++) {
      let xb = m * K;
      let e = dropout_index(m, i, k0);
      let xl = drop4(vec4<f32>(bw_x[xb + k0], bw_x[xb + c1], bw_x[xb + c2], bw_x[xb + c3]), e, key);
      let xh = drop4(vec4<f32>(bw_x[xb + c4], bw_x[xb + c5], bw_x[xb + c6], bw_x[xb + c7]), e + 4u, key);
      let hb = m * NR;
      var d = bw_dh[hb + j0]; l0 += d * xl; h0 += d * xh;
      d = bw_dh[hb + j1]; l1 += d * xl; h1 += d * xh;
      d = bw_dh[hb + j2]; l2 += d * xl; h2 += d * xh;
      d = bw_dh[hb + j3]; l3 += d * xl; h3 += d * xh;
      if (CHUNK == 8u) {
        d = bw_dh[hb + j4]; l4 += d * xl; h4 += d * xh;
        d = bw_dh[hb + j5]; l5 += d * xl; h5 += d * xh;
        d = bw_dh[hb + j6]; l6 += d * xl; h6 += d * xh;
        d = bw_dh[hb + j7]; l7 += d * xl; h7 += d * xh;
      }
    }
  }

  weight_grad_store(0u, n, j0, k0, l0, h0);
  weight_grad_store(1u, n, j1, k0, l1, h1);
  weight_grad_store(2u, n, j2, k0, l2, h2);
  weight_grad_store(3u, n, j3, k0, l3, h3);
  weight_grad_store(4u, n, j4, k0, l4, h4);
  weight_grad_store(5u, n, j5, k0, l5, h5);
  weight_grad_store(6u, n, j6, k0, l6, h6);
  weight_grad_store(7u, n, j7, k0, l7, h7);
}
