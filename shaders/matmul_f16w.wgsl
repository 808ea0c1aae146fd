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
// Three entry points, each thread computing an 8x8 block of C as shaders/matmul.wgsl's blocked
// kernels do (lN: columns col0 .. col0+3 of row row0 + N, hN: col0+4 .. col0+7); matmulOp picks
// one per call (f16wEntryPoint in src/engine/kernels/matmul.ts):
//   main_nt4  forward (TRANS_B, A not transposed), K % 4 == 0 and batch strides of A and B multiples
//             of 4: A read as vec4s, each column of B as vec2<u32> words (four halves per load),
//             main_vec4's TRANS_B loop.
//   main_nn8  input gradient (neither transposed), K % 4 == 0, N % 8 == 0, strides of A multiples
//             of 4 and of B multiples of 8: each row of B's eight columns is one vec4<u32> (eight
//             halves per load), main_vec4's [K, N] loop. N % 8 == 0 means a block never straddles
//             the last column, so no clamping.
//   main      any layout, shape and alignment: main_ragged's walk with one pointer per row of A and
//             per column of B; the forward reads a column's four consecutive halves as two words
//             when they start on a word, else one half at a time.

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

// The same B as four halves (main_nt4) or eight halves (main_nn8) per load, and A as vec4s.
@group(0) @binding(2) var<storage, read> B2: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> B8: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> A4: array<vec4<f32>>;

fn halves4(w: vec2<u32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

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

// A row of A or B stored row-major with row length `len` (in elements), at row min(m, last), as
// an offset in units of `per` elements.
fn rowOffset(base: u32, m: u32, last: u32, len: u32, per: u32) -> u32 {
  return (base + min(m, last) * len) / per;
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main_nt4(@builtin(global_invocation_id) gid: vec3<u32>) {
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
  let K4 = K / 4u;
  let a0 = rowOffset(baseA, row0, M - 1u, K, 4u);
  let a1 = rowOffset(baseA, row0 + 1u, M - 1u, K, 4u);
  let a2 = rowOffset(baseA, row0 + 2u, M - 1u, K, 4u);
  let a3 = rowOffset(baseA, row0 + 3u, M - 1u, K, 4u);
  let a4 = rowOffset(baseA, row0 + 4u, M - 1u, K, 4u);
  let a5 = rowOffset(baseA, row0 + 5u, M - 1u, K, 4u);
  let a6 = rowOffset(baseA, row0 + 6u, M - 1u, K, 4u);
  let a7 = rowOffset(baseA, row0 + 7u, M - 1u, K, 4u);
  let b0 = rowOffset(baseB, col0, N - 1u, K, 4u);
  let b1 = rowOffset(baseB, col0 + 1u, N - 1u, K, 4u);
  let b2 = rowOffset(baseB, col0 + 2u, N - 1u, K, 4u);
  let b3 = rowOffset(baseB, col0 + 3u, N - 1u, K, 4u);
  let b4 = rowOffset(baseB, col0 + 4u, N - 1u, K, 4u);
  let b5 = rowOffset(baseB, col0 + 5u, N - 1u, K, 4u);
  let b6 = rowOffset(baseB, col0 + 6u, N - 1u, K, 4u);
  let b7 = rowOffset(baseB, col0 + 7u, N - 1u, K, 4u);

  var l0 = vec4<f32>(); var l1 = vec4<f32>(); var l2 = vec4<f32>(); var l3 = vec4<f32>();
  var l4 = vec4<f32>(); var l5 = vec4<f32>(); var l6 = vec4<f32>(); var l7 = vec4<f32>();
  var h0 = vec4<f32>(); var h1 = vec4<f32>(); var h2 = vec4<f32>(); var h3 = vec4<f32>();
  var h4 = vec4<f32>(); var h5 = vec4<f32>(); var h6 = vec4<f32>(); var h7 = vec4<f32>();
  for (var k = 0u; k < K4; k++) {
    let bl = mat4x4<f32>(halves4(B2[b0 + k]), halves4(B2[b1 + k]), halves4(B2[b2 + k]), halves4(B2[b3 + k]));
    let bh = mat4x4<f32>(halves4(B2[b4 + k]), halves4(B2[b5 + k]), halves4(B2[b6 + k]), halves4(B2[b7 + k]));
    var a = A4[a0 + k]; l0 += a * bl; h0 += a * bh;
    a = A4[a1 + k]; l1 += a * bl; h1 += a * bh;
    a = A4[a2 + k]; l2 += a * bl; h2 += a * bh;
    a = A4[a3 + k]; l3 += a * bl; h3 += a * bh;
    a = A4[a4 + k]; l4 += a * bl; h4 += a * bh;
    a = A4[a5 + k]; l5 += a * bl; h5 += a * bh;
    a = A4[a6 + k]; l6 += a * bl; h6 += a * bh;
    a = A4[a7 + k]; l7 += a * bl; h7 += a * bh;
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

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main_nn8(@builtin(global_invocation_id) gid: vec3<u32>) {
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
  let K4 = K / 4u;
  let N8 = N / 8u;
  let a0 = rowOffset(baseA, row0, M - 1u, K, 4u);
  let a1 = rowOffset(baseA, row0 + 1u, M - 1u, K, 4u);
  let a2 = rowOffset(baseA, row0 + 2u, M - 1u, K, 4u);
  let a3 = rowOffset(baseA, row0 + 3u, M - 1u, K, 4u);
  let a4 = rowOffset(baseA, row0 + 4u, M - 1u, K, 4u);
  let a5 = rowOffset(baseA, row0 + 5u, M - 1u, K, 4u);
  let a6 = rowOffset(baseA, row0 + 6u, M - 1u, K, 4u);
  let a7 = rowOffset(baseA, row0 + 7u, M - 1u, K, 4u);
  // Row k of B's eight columns col0 .. col0+7: one vec4<u32>; rows k .. k+3 per step.
  var bo = (baseB + col0) / 8u;

  var l0 = vec4<f32>(); var l1 = vec4<f32>(); var l2 = vec4<f32>(); var l3 = vec4<f32>();
  var l4 = vec4<f32>(); var l5 = vec4<f32>(); var l6 = vec4<f32>(); var l7 = vec4<f32>();
  var h0 = vec4<f32>(); var h1 = vec4<f32>(); var h2 = vec4<f32>(); var h3 = vec4<f32>();
  var h4 = vec4<f32>(); var h5 = vec4<f32>(); var h6 = vec4<f32>(); var h7 = vec4<f32>();
  for (var k = 0u; k < K4; k++) {
    let w0 = B8[bo];
    let w1 = B8[bo + N8];
    let w2 = B8[bo + 2u * N8];
    let w3 = B8[bo + 3u * N8];
    bo += 4u * N8;
    let bl = mat4x4<f32>(halves4(w0.xy), halves4(w1.xy), halves4(w2.xy), halves4(w3.xy));
    let bh = mat4x4<f32>(halves4(w0.zw), halves4(w1.zw), halves4(w2.zw), halves4(w3.zw));
    var a = A4[a0 + k]; l0 += bl * a; h0 += bh * a;
    a = A4[a1 + k]; l1 += bl * a; h1 += bh * a;
    a = A4[a2 + k]; l2 += bl * a; h2 += bh * a;
    a = A4[a3 + k]; l3 += bl * a; h3 += bh * a;
    a = A4[a4 + k]; l4 += bl * a; h4 += bh * a;
    a = A4[a5 + k]; l5 += bl * a; h5 += bh * a;
    a = A4[a6 + k]; l6 += bl * a; h6 += bh * a;
    a = A4[a7 + k]; l7 += bl * a; h7 += bh * a;
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
