// The shared part of the register-blocked matmuls: shaders/matmul.wgsl (f32 B) and
// shaders/matmul_f16w.wgsl (f16 B, packed two halves per u32). WGSL has no include, so
// src/engine/kernels/matmul-shader.ts assembles each shader as matmul_operands.wgsl (Dims, the
// TRANS_A / TRANS_B overrides, A, A4 and C), this file, then the shader's own.
//
// Here: the workgroup size, the 8x8 block each thread owns (Tile, storeBlock), and the code in
// which the two kernels differ only by how B is read: main_ragged (any layout, shape and
// alignment), blockNT and blockNN (the forward and input-gradient layouts with vec loads). Each
// includer declares B at binding 2 and reads it through four functions:
//   fn bAt(i: u32) -> f32                      element i of B, as f32
//   fn gatherB(p: u32, s: u32) -> vec4<f32>    elements p, p + s, p + 2s, p + 3s of B
//   fn b4At(i: u32) -> vec4<f32>               elements 4i .. 4i+3 of B (i in units of four)
//   fn slabNN(t: Tile, k: u32) -> Slab         B[K, N]'s rows 4k .. 4k+3 at the tile's 8 columns
//
// Batch strides of 0 broadcast an operand (a shared weight). beta == 0 never reads C, so stale
// NaNs in an output buffer cannot leak into a fresh result.

override WG_X: u32 = 8;
override WG_Y: u32 = 8;

// The 8x8 block of C that thread (x, y, b) computes: rows row0 .. row0+7 (row0 = 8y), columns
// col0 .. col0+7 (col0 = 8x) of batch entry b, whose operands start at baseA, baseB and baseC
// (elements). `live` is false for a thread whose block starts past C or past the batch.
struct Tile {
  live: bool,
  row0: u32,
  col0: u32,
  baseA: u32,
  baseB: u32,
  baseC: u32,
}

fn tileAt(gid: vec3<u32>) -> Tile {
  let row0 = gid.y * 8u;
  let col0 = gid.x * 8u;
  let live = gid.z < dims.batch && row0 < dims.M && col0 < dims.N;
  return Tile(live, row0, col0, gid.z * dims.strideA, gid.z * dims.strideB, gid.z * dims.strideC);
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

// Writes a tile's block from its accumulators: lN holds columns col0 .. col0+3 of row row0 + N,
// hN columns col0+4 .. col0+7.
fn storeBlock(t: Tile, l0: vec4<f32>, h0: vec4<f32>, l1: vec4<f32>, h1: vec4<f32>, l2: vec4<f32>, h2: vec4<f32>,
              l3: vec4<f32>, h3: vec4<f32>, l4: vec4<f32>, h4: vec4<f32>, l5: vec4<f32>, h5: vec4<f32>,
              l6: vec4<f32>, h6: vec4<f32>, l7: vec4<f32>, h7: vec4<f32>) {
  store8(t.baseC, t.row0, t.col0, l0, h0);
  store8(t.baseC, t.row0 + 1u, t.col0, l1, h1);
  store8(t.baseC, t.row0 + 2u, t.col0, l2, h2);
  store8(t.baseC, t.row0 + 3u, t.col0, l3, h3);
  store8(t.baseC, t.row0 + 4u, t.col0, l4, h4);
  store8(t.baseC, t.row0 + 5u, t.col0, l5, h5);
  store8(t.baseC, t.row0 + 6u, t.col0, l6, h6);
  store8(t.baseC, t.row0 + 7u, t.col0, l7, h7);
}

// Row m of an operand stored row-major with row length `len` (in elements), clamped to the last
// row `last`, as an offset in units of four elements.
fn rowOffset4(base: u32, m: u32, last: u32, len: u32) -> u32 {
  return (base + min(m, last) * len) / 4u;
}

// Four values of A from offset p with stride s, as one vec4 (no alignment).
fn gatherA(p: u32, s: u32) -> vec4<f32> {
  return vec4<f32>(A[p], A[p + s], A[p + 2u * s], A[p + 3u * s]);
}

// The forward layout (TRANS_B, A not transposed: y = x · Wᵀ) with vec loads: A [M, K] and B [N, K],
// eight rows of each read along k, four k per step. Needs K % 4 == 0 and batch strides of A and B
// multiples of 4. Rows past M and columns past N are clamped to the last one (the loads stay in
// bounds, the results are never stored). Each step is one matrix-vector product per row: with
// bl = columns (B[n0, k..k+3], .., B[n3, k..k+3]), row i gains A[row i, k..k+3] * bl.
fn blockNT(t: Tile) {
  let M = dims.M;
  let N = dims.N;
  let K = dims.K;
  let K4 = K / 4u;
  let a0 = rowOffset4(t.baseA, t.row0, M - 1u, K);
  let a1 = rowOffset4(t.baseA, t.row0 + 1u, M - 1u, K);
  let a2 = rowOffset4(t.baseA, t.row0 + 2u, M - 1u, K);
  let a3 = rowOffset4(t.baseA, t.row0 + 3u, M - 1u, K);
  let a4 = rowOffset4(t.baseA, t.row0 + 4u, M - 1u, K);
  let a5 = rowOffset4(t.baseA, t.row0 + 5u, M - 1u, K);
  let a6 = rowOffset4(t.baseA, t.row0 + 6u, M - 1u, K);
  let a7 = rowOffset4(t.baseA, t.row0 + 7u, M - 1u, K);
  let b0 = rowOffset4(t.baseB, t.col0, N - 1u, K);
  let b1 = rowOffset4(t.baseB, t.col0 + 1u, N - 1u, K);
  let b2 = rowOffset4(t.baseB, t.col0 + 2u, N - 1u, K);
  let b3 = rowOffset4(t.baseB, t.col0 + 3u, N - 1u, K);
  let b4 = rowOffset4(t.baseB, t.col0 + 4u, N - 1u, K);
  let b5 = rowOffset4(t.baseB, t.col0 + 5u, N - 1u, K);
  let b6 = rowOffset4(t.baseB, t.col0 + 6u, N - 1u, K);
  let b7 = rowOffset4(t.baseB, t.col0 + 7u, N - 1u, K);

  var l0 = vec4<f32>(); var l1 = vec4<f32>(); var l2 = vec4<f32>(); var l3 = vec4<f32>();
  var l4 = vec4<f32>(); var l5 = vec4<f32>(); var l6 = vec4<f32>(); var l7 = vec4<f32>();
  var h0 = vec4<f32>(); var h1 = vec4<f32>(); var h2 = vec4<f32>(); var h3 = vec4<f32>();
  var h4 = vec4<f32>(); var h5 = vec4<f32>(); var h6 = vec4<f32>(); var h7 = vec4<f32>();
  for (var k = 0u; k < K4; k++) {
    let bl = mat4x4<f32>(b4At(b0 + k), b4At(b1 + k), b4At(b2 + k), b4At(b3 + k));
    let bh = mat4x4<f32>(b4At(b4 + k), b4At(b5 + k), b4At(b6 + k), b4At(b7 + k));
    var a = A4[a0 + k]; l0 += a * bl; h0 += a * bh;
    a = A4[a1 + k]; l1 += a * bl; h1 += a * bh;
    a = A4[a2 + k]; l2 += a * bl; h2 += a * bh;
    a = A4[a3 + k]; l3 += a * bl; h3 += a * bh;
    a = A4[a4 + k]; l4 += a * bl; h4 += a * bh;
    a = A4[a5 + k]; l5 += a * bl; h5 += a * bh;
    a = A4[a6 + k]; l6 += a * bl; h6 += a * bh;
    a = A4[a7 + k]; l7 += a * bl; h7 += a * bh;
  }
  storeBlock(t, l0, h0, l1, h1, l2, h2, l3, h3, l4, h4, l5, h5, l6, h6, l7, h7);
}

// Four rows k .. k+3 of B[K, N] at a tile's eight columns: lo[j] = B[k + j, col0 .. col0+3],
// hi[j] = B[k + j, col0+4 .. col0+7].
struct Slab {
  lo: mat4x4<f32>,
  hi: mat4x4<f32>,
}

// The input-gradient layout (neither transposed: dx = dy · W) with vec loads: A [M, K], eight rows
// read along k, and B [K, N] four rows per step (slabNN). Needs K % 4 == 0 and the includer's
// alignment of B (see its slabNN). With lo = rows of the slab, row i gains lo * A[row i, k..k+3].
fn blockNN(t: Tile) {
  let M = dims.M;
  let K = dims.K;
  let a0 = rowOffset4(t.baseA, t.row0, M - 1u, K);
  let a1 = rowOffset4(t.baseA, t.row0 + 1u, M - 1u, K);
  let a2 = rowOffset4(t.baseA, t.row0 + 2u, M - 1u, K);
  let a3 = rowOffset4(t.baseA, t.row0 + 3u, M - 1u, K);
  let a4 = rowOffset4(t.baseA, t.row0 + 4u, M - 1u, K);
  let a5 = rowOffset4(t.baseA, t.row0 + 5u, M - 1u, K);
  let a6 = rowOffset4(t.baseA, t.row0 + 6u, M - 1u, K);
  let a7 = rowOffset4(t.baseA, t.row0 + 7u, M - 1u, K);

  var l0 = vec4<f32>(); var l1 = vec4<f32>(); var l2 = vec4<f32>(); var l3 = vec4<f32>();
  var l4 = vec4<f32>(); var l5 = vec4<f32>(); var l6 = vec4<f32>(); var l7 = vec4<f32>();
  var h0 = vec4<f32>(); var h1 = vec4<f32>(); var h2 = vec4<f32>(); var h3 = vec4<f32>();
  var h4 = vec4<f32>(); var h5 = vec4<f32>(); var h6 = vec4<f32>(); var h7 = vec4<f32>();
  for (var k = 0u; k < K / 4u; k++) {
    let s = slabNN(t, k);
    let bl = s.lo;
    let bh = s.hi;
    var a = A4[a0 + k]; l0 += bl * a; h0 += bh * a;
    a = A4[a1 + k]; l1 += bl * a; h1 += bh * a;
    a = A4[a2 + k]; l2 += bl * a; h2 += bh * a;
    a = A4[a3 + k]; l3 += bl * a; h3 += bh * a;
    a = A4[a4 + k]; l4 += bl * a; h4 += bh * a;
    a = A4[a5 + k]; l5 += bl * a; h5 += bh * a;
    a = A4[a6 + k]; l6 += bl * a; h6 += bh * a;
    a = A4[a7 + k]; l7 += bl * a; h7 += bh * a;
  }
  storeBlock(t, l0, h0, l1, h1, l2, h2, l3, h3, l4, h4, l5, h5, l6, h6, l7, h7);
}

// Any layout, shape and alignment, the same 8x8 block with scalar loads. Element op(A)[m, k] lies
// at baseA + m * ra + k * ka and op(B)[k, n] at baseB + n * rb + k * kb, so one pointer per row of
// the block (paN) and per column (pbN) walks k by adding ka (kb). Each 4-step loads, per row,
// a = (op(A)[m, k], .., op(A)[m, k+3]) and, per column, the column's four values of op(B) as a
// column of bl / bh; then row m gains a * bl (four dot products, one per column). The k loop steps
// by 4 without bounds checks while k + 3 < K, then a scalar loop does the last K % 4 steps.
@compute @workgroup_size(WG_X, WG_Y, 1)
fn main_ragged(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = tileAt(gid);
  if (!t.live) { return; }
  let M = dims.M;
  let N = dims.N;
  let K = dims.K;
  // A stored [M, K] (row step K, k step 1) or [K, M] (row step 1, k step M); B [K, N] or [N, K].
  let ra = select(K, 1u, TRANS_A);
  let ka = select(1u, M, TRANS_A);
  let rb = select(1u, K, TRANS_B);
  let kb = select(N, 1u, TRANS_B);
  // Rows past M and columns past N are clamped to the last one: the loads stay in bounds, the
  // results are never stored.
  var pa0 = t.baseA + min(t.row0, M - 1u) * ra;
  var pa1 = t.baseA + min(t.row0 + 1u, M - 1u) * ra;
  var pa2 = t.baseA + min(t.row0 + 2u, M - 1u) * ra;
  var pa3 = t.baseA + min(t.row0 + 3u, M - 1u) * ra;
  var pa4 = t.baseA + min(t.row0 + 4u, M - 1u) * ra;
  var pa5 = t.baseA + min(t.row0 + 5u, M - 1u) * ra;
  var pa6 = t.baseA + min(t.row0 + 6u, M - 1u) * ra;
  var pa7 = t.baseA + min(t.row0 + 7u, M - 1u) * ra;
  var pb0 = t.baseB + min(t.col0, N - 1u) * rb;
  var pb1 = t.baseB + min(t.col0 + 1u, N - 1u) * rb;
  var pb2 = t.baseB + min(t.col0 + 2u, N - 1u) * rb;
  var pb3 = t.baseB + min(t.col0 + 3u, N - 1u) * rb;
  var pb4 = t.baseB + min(t.col0 + 4u, N - 1u) * rb;
  var pb5 = t.baseB + min(t.col0 + 5u, N - 1u) * rb;
  var pb6 = t.baseB + min(t.col0 + 6u, N - 1u) * rb;
  var pb7 = t.baseB + min(t.col0 + 7u, N - 1u) * rb;

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
    let bl = vec4<f32>(bAt(pb0), bAt(pb1), bAt(pb2), bAt(pb3));
    let bh = vec4<f32>(bAt(pb4), bAt(pb5), bAt(pb6), bAt(pb7));
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
  storeBlock(t, l0, h0, l1, h1, l2, h2, l3, h3, l4, h4, l5, h5, l6, h6, l7, h7);
}
