// Batched matmul with half-precision weights:  C[b] = alpha * op(A[b]) · op(B[b]) + beta * C[b]
//
//   A: f32, stored [M, K] (TRANS_A = false) or [K, M] (TRANS_A = true)
//   B: f16 values packed two per u32 word (element 2i in the low half, 2i + 1 in the high half),
//      stored [K, N] (TRANS_B = false) or [N, K] (TRANS_B = true)
//   C: f32 [M, N]
//
// The frozen backbone's matrices may be stored in f16 (src/model/weights.ts): half the memory and
// half the bytes every product reads. The model reads a weight W [N, K] in two layouts:
//   forward      y  = x · Wᵀ     A = x [M, K],  B = W [N, K],   TRANS_B
//   input grad   dx = dy · W     A = dy [M, N], B = W [N, K]     (the weight gradient never exists:
//                                                                  f16 tensors are frozen)
// Arithmetic and accumulation are f32: each weight is widened with the core builtin
// unpack2x16float (exact: every f16 value is an f32 value), so no `shader-f16` feature is needed
// and the kernel runs on every adapter, software ones included.
//
// The blocking is main_ragged's of shaders/matmul.wgsl: each thread computes an 8x8 block of C
// (lN: columns col0 .. col0+3 of row row0 + N, hN: col0+4 .. col0+7), rows and columns past the
// edge clamped once, one pointer per row of A and per column of B walking k. Any shape and
// alignment: the forward reads a column's four consecutive halves as two words when they start on
// a word (the common case, K even), else one half at a time.

struct Dims {
  M: u32, N: u32, K: u32, batch: u32,
  strideA: u32, strideB: u32, strideC: u32,
  alpha: f32, beta: f32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override WG_X: u32 = 8;
override WG_Y: u32 = 8;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<u32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

// Element i of B (f16) as f32.
fn wB(i: u32) -> f32 {
  let pair = unpack2x16float(B[i >> 1u]);
  return select(pair.x, pair.y, (i & 1u) == 1u);
}

// Four values of B from element p with element stride s, as one vec4.
fn gatherB(p: u32, s: u32) -> vec4<f32> {
  if (s == 1u && (p & 1u) == 0u) {
    let w = p >> 1u;
    return vec4<f32>(unpack2x16float(B[w]), unpack2x16float(B[w + 1u]));
  }
  return vec4<f32>(wB(p), wB(p + s), wB(p + 2u * s), wB(p + 3u * s));
}

fn gatherA(p: u32, s: u32) -> vec4<f32> {
  return vec4<f32>(A[p], A[p + s], A[p + 2u * s], A[p + 3u * s]);
}

// Writes C[m, n .. n+7] = alpha * (lo, hi) + beta * C, skipping what lies outside C.
fn store8(baseC: u32, m: u32, n: u32, lo: vec4<f32>, hi: vec4<f32>) {
  if (m >= dims.M) { return; }
  for (var j = 0u; j < 8u; j++) {
    if (n + j >= dims.N) { return; }
    let idx = baseC + m * dims.N + n + j;
    var v = dims.alpha * select(hi[j & 3u], lo[j & 3u], j < 4u);
    if (dims.beta != 0.0) { v += dims.beta * C[idx]; }
    C[idx] = v;
  }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.z;
  if (b >= dims.batch) { return; }
  let M = dims.M;
  let N = dims.N;
  let K = dims.K;
  let row0 = gid.y * 8u;
  let col0 = gid.x * 8u;
  if (row0 >= M || col0 >= N) { return; }
  let baseA = b * dims.strideA;
  let baseB = b * dims.strideB;
  let baseC = b * dims.strideC;
  // A stored [M, K] (row step K, k step 1) or [K, M] (row step 1, k step M); B [K, N] or [N, K].
  let ra = select(K, 1u, TRANS_A);
  let ka = select(1u, M, TRANS_A);
  let rb = select(1u, K, TRANS_B);
  let kb = select(N, 1u, TRANS_B);
  var pa0 = baseA + min(row0, M - 1u) * ra;
  var pa1 = baseA + min(row0 + 1u, M - 1u) * ra;
  var pa2 = baseA + min(row0 + 2u, M - 1u) * ra;
  var pa3 = baseA + min(row0 + 3u, M - 1u) * ra;
  var pa4 = baseA + min(row0 + 4u, M - 1u) * ra;
  var pa5 = baseA + min(row0 + 5u, M - 1u) * ra;
  var pa6 = baseA + min(row0 + 6u, M - 1u) * ra;
  var pa7 = baseA + min(row0 + 7u, M - 1u) * ra;
  var pb0 = baseB + min(col0, N - 1u) * rb;
  var pb1 = baseB + min(col0 + 1u, N - 1u) * rb;
  var pb2 = baseB + min(col0 + 2u, N - 1u) * rb;
  var pb3 = baseB + min(col0 + 3u, N - 1u) * rb;
  var pb4 = baseB + min(col0 + 4u, N - 1u) * rb;
  var pb5 = baseB + min(col0 + 5u, N - 1u) * rb;
  var pb6 = baseB + min(col0 + 6u, N - 1u) * rb;
  var pb7 = baseB + min(col0 + 7u, N - 1u) * rb;

  var l0 = vec4<f32>(); var l1 = vec4<f32>(); var l2 = vec4<f32>(); var l3 = vec4<f32>();
  var l4 = vec4<f32>(); var l5 = vec4<f32>(); var l6 = vec4<f32>(); var l7 = vec4<f32>();
  var h0 = vec4<f32>(); var h1 = vec4<f32>(); var h2 = vec4<f32>(); var h3 = vec4<f32>();
  var h4 = vec4<f32>(); var h5 = vec4<f32>(); var h6 = vec4<f32>(); var h7 = vec4<f32>();

  // Full steps of 4: k + 3 < K, no checks.
  let sa = 4u * ka;
  let sb = 4u * kb;
  for (var k = 0u; k < K / 4u; k++) {
    let bl = mat4x4<f32>(gatherB(pb0, kb), gatherB(pb1, kb), gatherB(pb2, kb), gatherB(pb3, kb));
    let bh = mat4x4<f32>(gatherB(pb4, kb), gatherB(pb5, kb), gatherB(pb6, kb), gatherB(pb7, kb));
    var a = gatherA(pa0, ka); l0 += a * bl; h0 += a * bh;
    a = gatherA(pa1, ka); l1 += a * bl; h1 += a * bh;
    a = gatherA(pa2, ka); l2 += a * bl; h2 += a * bh;
    a = gatherA(pa3, ka); l3 += a * bl; h3 += a * bh;
    a = gatherA(pa4, ka); l4 += a * bl; h4 += a * bh;
    a = gatherA(pa5, ka); l5 += a * bl; h5 += a * bh;
    a = gatherA(pa6, ka); l6 += a * bl; h6 += a * bh;
    a = gatherA(pa7, ka); l7 += a * bl; h7 += a * bh;
    pa0 += sa; pa1 += sa; pa2 += sa; pa3 += sa; pa4 += sa; pa5 += sa; pa6 += sa; pa7 += sa;
    pb0 += sb; pb1 += sb; pb2 += sb; pb3 += sb; pb4 += sb; pb5 += sb; pb6 += sb; pb7 += sb;
  }
  // The last K % 4 steps, one k at a time.
  for (var k = K & ~3u; k < K; k++) {
    let bl = vec4<f32>(wB(pb0), wB(pb1), wB(pb2), wB(pb3));
    let bh = vec4<f32>(wB(pb4), wB(pb5), wB(pb6), wB(pb7));
    var a = A[pa0]; l0 += a * bl; h0 += a * bh;
    a = A[pa1]; l1 += a * bl; h1 += a * bh;
    a = A[pa2]; l2 += a * bl; h2 += a * bh;
    a = A[pa3]; l3 += a * bl; h3 += a * bh;
    a = A[pa4]; l4 += a * bl; h4 += a * bh;
    a = A[pa5]; l5 += a * bl; h5 += a * bh;
    a = A[pa6]; l6 += a * bl; h6 += a * bh;
    a = A[pa7]; l7 += a * bl; h7 += a * bh;
    pa0 += ka; pa1 += ka; pa2 += ka; pa3 += ka; pa4 += ka; pa5 += ka; pa6 += ka; pa7 += ka;
    pb0 += kb; pb1 += kb; pb2 += kb; pb3 += kb; pb4 += kb; pb5 += kb; pb6 += kb; pb7 += kb;
  }

  store8(baseC, row0, col0, l0, h0);
  store8(baseC, row0 + 1u, col0, l1, h1);
  store8(baseC, row0 + 2u, col0, l2, h2);
  store8(baseC, row0 + 3u, col0, l3, h3);
  store8(baseC, row0 + 4u, col0, l4, h4);
  store8(baseC, row0 + 5u, col0, l5, h5);
  store8(baseC, row0 + 6u, col0, l6, h6);
  store8(baseC, row0 + 7u, col0, l7, h7);
}
