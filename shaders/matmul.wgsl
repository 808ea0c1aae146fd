// Batched matmul:  C[b] = alpha * op(A[b]) · op(B[b]) + beta * C[b]
//
//   op(A): [M, K]   stored as A[M, K] (TRANS_A = false) or A[K, M] (TRANS_A = true)
//   op(B): [K, N]   stored as B[K, N] (TRANS_B = false) or B[N, K] (TRANS_B = true)
//   C:     [M, N]
//
// The model's three products are layouts of this one kernel:
//   forward      y  = x · Wᵀ     A = x [M, K],  B = W [N, K],   TRANS_B
//   input grad   dx = dy · W     A = dy [M, N], B = W [N, K]
//   weight grad  dW += dyᵀ · x   A = dy [M, N], B = x [M, K],   TRANS_A, beta = 1
//
// Three entry points (src/engine/kernels/matmul.ts picks one per call, see chooseMatmulVariant):
//
//   main_vec4  the fast path. Each thread owns an 8x8 block of C held in sixteen vec4 registers
//              (a WG_X*8 by WG_Y*8 tile per workgroup) and reads A and B as vec4 along their
//              contiguous dimension, so every step of the k loop does 16 vec4 loads for 256
//              multiply-adds, with no bounds checks inside the loop: row and column indices past
//              the edge of C are clamped to the last valid row/column once, before the loop (the
//              loads stay in bounds, the extra results are never stored). It needs the contiguous
//              dimension of each operand (K or M for A, N or K for B) and the batch strides to be
//              multiples of 4, so that every vec4 starts on a 16-byte boundary; the k loop steps
//              by 4 except in the weight-gradient layout (TRANS_A, !TRANS_B), where K runs along
//              rows of both operands and may be ragged.
//              Why this shape: on software adapters (SwiftShader) and weak GPUs, register blocking
//              beats workgroup-memory tiling (no barriers), and every load costs a per-lane address
//              computation and bounds check, so more multiply-adds per load is what pays; 8x8
//              per thread measured about 1.5x faster than 4x4 with vec4 loads and 5-8x faster
//              than `main` on SwiftShader.
//   main_ragged  the fast path for the shapes main_vec4 cannot read (a vocabulary of 841 or 151936,
//              an odd experts*rank, batch strides not multiples of 4): the same 8x8 block per
//              thread and the same clamped rows and columns, but A and B are read with scalar
//              loads at any offset (no alignment needed), four at a time into the same vec4 and
//              mat4x4 products. The k loop steps by 4 without bounds checks while k + 3 < K, then
//              a scalar loop does the last K % 4 steps. Why not vec4 loads: a row of a ragged
//              operand starts off a 16-byte boundary. On SwiftShader four scalar loads cost not
//              much more than one vec4 load (each is a per-lane gather there): measured (CPU time)
//              1.1-1.45x main_vec4's time on the same shapes padded to multiples of 4, and 8-10x
//              faster than `main` on the demo LM head's gradients (vocabulary 841).
//   main       4x4 outputs per thread, every load bounds checked, any shape and alignment. No
//              longer chosen automatically; kept as the plain reference kernel (tests, and
//              tools/bench/profile-step.ts forces it to measure what the blocked kernels gain).
//
// All three: batch strides of 0 broadcast an operand (a shared weight). beta == 0 never reads C, so
// stale NaNs in an output buffer cannot leak into a fresh result.

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
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
// The same A and B seen as vec4s (main_vec4 only; offsets below are in vec4 units).
@group(0) @binding(1) var<storage, read> A4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> B4: array<vec4<f32>>;

fn loadA(base: u32, m: u32, k: u32) -> f32 {
  if (m >= dims.M || k >= dims.K) { return 0.0; }
  if (TRANS_A) { return A[base + k * dims.M + m]; }
  return A[base + m * dims.K + k];
}

fn loadB(base: u32, k: u32, n: u32) -> f32 {
  if (k >= dims.K || n >= dims.N) { return 0.0; }
  if (TRANS_B) { return B[base + n * dims.K + k]; }
  return B[base + k * dims.N + n];
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.z;
  if (b >= dims.batch) { return; }
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= dims.M || col0 >= dims.N) { return; }
  let baseA = b * dims.strideA;
  let baseB = b * dims.strideB;
  let baseC = b * dims.strideC;

  var acc: array<vec4<f32>, 4>;
  for (var k = 0u; k < dims.K; k++) {
    let bv = vec4<f32>(loadB(baseB, k, col0), loadB(baseB, k, col0 + 1u), loadB(baseB, k, col0 + 2u), loadB(baseB, k, col0 + 3u));
    for (var i = 0u; i < 4u; i++) {
      acc[i] += loadA(baseA, row0 + i, k) * bv;
    }
  }

  for (var i = 0u; i < 4u; i++) {
    let m = row0 + i;
    if (m >= dims.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = col0 + j;
      if (n >= dims.N) { break; }
      let idx = baseC + m * dims.N + n;
      var v = dims.alpha * acc[i][j];
      if (dims.beta != 0.0) { v += dims.beta * C[idx]; }
      C[idx] = v;
    }
  }
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

// Rows m of an operand stored row-major with row length `len` (in floats), as vec4 offsets, with m
// clamped to the last row `last`.
fn rowOffset4(base: u32, m: u32, last: u32, len: u32) -> u32 {
  return (base + min(m, last) * len) / 4u;
}

// Thread (x, y) computes C[row0 .. row0+7, col0 .. col0+7], row0 = 8y, col0 = 8x. The accumulators
// are lN (columns col0 .. col0+3) and hN (col0+4 .. col0+7) of row row0 + N. Each k step loads the
// operands as 4x4 blocks (mat4x4 columns are the loaded vec4s), so a block update is one
// matrix-vector product: with Bl = columns (B[k+0, cols], .., B[k+3, cols]), row i gains
// Bl * A[row i, k .. k+3]; with columns (B[n0, k..k+3], .., B[n3, k..k+3]) it gains A[row i, k..] * Bl.
@compute @workgroup_size(WG_X, WG_Y, 1)
fn main_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
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

  var l0 = vec4<f32>(); var l1 = vec4<f32>(); var l2 = vec4<f32>(); var l3 = vec4<f32>();
  var l4 = vec4<f32>(); var l5 = vec4<f32>(); var l6 = vec4<f32>(); var l7 = vec4<f32>();
  var h0 = vec4<f32>(); var h1 = vec4<f32>(); var h2 = vec4<f32>(); var h3 = vec4<f32>();
  var h4 = vec4<f32>(); var h5 = vec4<f32>(); var h6 = vec4<f32>(); var h7 = vec4<f32>();

  if (!TRANS_A) {
    // A[M, K]: eight rows, read along k. K % 4 == 0.
    let K4 = K / 4u;
    let a0 = rowOffset4(baseA, row0, M - 1u, K);
    let a1 = rowOffset4(baseA, row0 + 1u, M - 1u, K);
    let a2 = rowOffset4(baseA, row0 + 2u, M - 1u, K);
    let a3 = rowOffset4(baseA, row0 + 3u, M - 1u, K);
    let a4 = rowOffset4(baseA, row0 + 4u, M - 1u, K);
    let a5 = rowOffset4(baseA, row0 + 5u, M - 1u, K);
    let a6 = rowOffset4(baseA, row0 + 6u, M - 1u, K);
    let a7 = rowOffset4(baseA, row0 + 7u, M - 1u, K);
    if (TRANS_B) {
      // B[N, K]: eight rows, read along k (forward y = x · Wᵀ).
      let b0 = rowOffset4(baseB, col0, N - 1u, K);
      let b1 = rowOffset4(baseB, col0 + 1u, N - 1u, K);
      let b2 = rowOffset4(baseB, col0 + 2u, N - 1u, K);
      let b3 = rowOffset4(baseB, col0 + 3u, N - 1u, K);
      let b4 = rowOffset4(baseB, col0 + 4u, N - 1u, K);
      let b5 = rowOffset4(baseB, col0 + 5u, N - 1u, K);
      let b6 = rowOffset4(baseB, col0 + 6u, N - 1u, K);
      let b7 = rowOffset4(baseB, col0 + 7u, N - 1u, K);
      for (var k = 0u; k < K4; k++) {
        let bl = mat4x4<f32>(B4[b0 + k], B4[b1 + k], B4[b2 + k], B4[b3 + k]);
        let bh = mat4x4<f32>(B4[b4 + k], B4[b5 + k], B4[b6 + k], B4[b7 + k]);
        var a = A4[a0 + k]; l0 += a * bl; h0 += a * bh;
        a = A4[a1 + k]; l1 += a * bl; h1 += a * bh;
        a = A4[a2 + k]; l2 += a * bl; h2 += a * bh;
        a = A4[a3 + k]; l3 += a * bl; h3 += a * bh;
        a = A4[a4 + k]; l4 += a * bl; h4 += a * bh;
        a = A4[a5 + k]; l5 += a * bl; h5 += a * bh;
        a = A4[a6 + k]; l6 += a * bl; h6 += a * bh;
        a = A4[a7 + k]; l7 += a * bl; h7 += a * bh;
      }
    } else {
      // B[K, N]: four rows k .. k+3 per step, eight columns read along n (input grad dx = dy · W).
      let N4 = N / 4u;
      var bo = (baseB + col0) / 4u;
      let hiB = min(1u, N4 - 1u - col0 / 4u); // 0 when col0 + 4 is past N: reread the low half
      for (var k = 0u; k < K4; k++) {
        let bl = mat4x4<f32>(B4[bo], B4[bo + N4], B4[bo + 2u * N4], B4[bo + 3u * N4]);
        let bh = mat4x4<f32>(B4[bo + hiB], B4[bo + N4 + hiB], B4[bo + 2u * N4 + hiB], B4[bo + 3u * N4 + hiB]);
        bo += 4u * N4;
        var a = A4[a0 + k]; l0 += bl * a; h0 += bh * a;
        a = A4[a1 + k]; l1 += bl * a; h1 += bh * a;
        a = A4[a2 + k]; l2 += bl * a; h2 += bh * a;
        a = A4[a3 + k]; l3 += bl * a; h3 += bh * a;
        a = A4[a4 + k]; l4 += bl * a; h4 += bh * a;
        a = A4[a5 + k]; l5 += bl * a; h5 += bh * a;
        a = A4[a6 + k]; l6 += bl * a; h6 += bh * a;
        a = A4[a7 + k]; l7 += bl * a; h7 += bh * a;
      }
    }
  } else {
    // A[K, M]: per k, eight consecutive values along m (two vec4s). M % 4 == 0.
    let M4 = M / 4u;
    var ao = (baseA + row0) / 4u;
    let hiA = min(1u, M4 - 1u - row0 / 4u);
    if (!TRANS_B) {
      // B[K, N] read along n (weight grad dW += dyᵀ · x). Four k per step, then the ragged rest.
      let N4 = N / 4u;
      var bo = (baseB + col0) / 4u;
      let hiB = min(1u, N4 - 1u - col0 / 4u);
      let K4 = K / 4u;
      for (var k = 0u; k < K4; k++) {
        // Rows of A (rows of C) become rows of these transposes: at[i] = A[k .. k+3, row0 + i].
        let al = transpose(mat4x4<f32>(A4[ao], A4[ao + M4], A4[ao + 2u * M4], A4[ao + 3u * M4]));
        let ah = transpose(mat4x4<f32>(A4[ao + hiA], A4[ao + M4 + hiA], A4[ao + 2u * M4 + hiA], A4[ao + 3u * M4 + hiA]));
        let bl = mat4x4<f32>(B4[bo], B4[bo + N4], B4[bo + 2u * N4], B4[bo + 3u * N4]);
        let bh = mat4x4<f32>(B4[bo + hiB], B4[bo + N4 + hiB], B4[bo + 2u * N4 + hiB], B4[bo + 3u * N4 + hiB]);
        ao += 4u * M4;
        bo += 4u * N4;
        l0 += bl * al[0]; h0 += bh * al[0];
        l1 += bl * al[1]; h1 += bh * al[1];
        l2 += bl * al[2]; h2 += bh * al[2];
        l3 += bl * al[3]; h3 += bh * al[3];
        l4 += bl * ah[0]; h4 += bh * ah[0];
        l5 += bl * ah[1]; h5 += bh * ah[1];
        l6 += bl * ah[2]; h6 += bh * ah[2];
        l7 += bl * ah[3]; h7 += bh * ah[3];
      }
      for (var k = K4 * 4u; k < K; k++) {
        let al = A4[ao];
        let ah = A4[ao + hiA];
        let bl = B4[bo];
        let bh = B4[bo + hiB];
        ao += M4;
        bo += N4;
        l0 += al.x * bl; h0 += al.x * bh;
        l1 += al.y * bl; h1 += al.y * bh;
        l2 += al.z * bl; h2 += al.z * bh;
        l3 += al.w * bl; h3 += al.w * bh;
        l4 += ah.x * bl; h4 += ah.x * bh;
        l5 += ah.y * bl; h5 += ah.y * bh;
        l6 += ah.z * bl; h6 += ah.z * bh;
        l7 += ah.w * bl; h7 += ah.w * bh;
      }
    } else {
      // B[N, K]: eight rows read along k. K % 4 == 0.
      let K4 = K / 4u;
      let b0 = rowOffset4(baseB, col0, N - 1u, K);
      let b1 = rowOffset4(baseB, col0 + 1u, N - 1u, K);
      let b2 = rowOffset4(baseB, col0 + 2u, N - 1u, K);
      let b3 = rowOffset4(baseB, col0 + 3u, N - 1u, K);
      let b4 = rowOffset4(baseB, col0 + 4u, N - 1u, K);
      let b5 = rowOffset4(baseB, col0 + 5u, N - 1u, K);
      let b6 = rowOffset4(baseB, col0 + 6u, N - 1u, K);
      let b7 = rowOffset4(baseB, col0 + 7u, N - 1u, K);
      for (var k = 0u; k < K4; k++) {
        let al = transpose(mat4x4<f32>(A4[ao], A4[ao + M4], A4[ao + 2u * M4], A4[ao + 3u * M4]));
        let ah = transpose(mat4x4<f32>(A4[ao + hiA], A4[ao + M4 + hiA], A4[ao + 2u * M4 + hiA], A4[ao + 3u * M4 + hiA]));
        ao += 4u * M4;
        let bl = mat4x4<f32>(B4[b0 + k], B4[b1 + k], B4[b2 + k], B4[b3 + k]);
        let bh = mat4x4<f32>(B4[b4 + k], B4[b5 + k], B4[b6 + k], B4[b7 + k]);
        l0 += al[0] * bl; h0 += al[0] * bh;
        l1 += al[1] * bl; h1 += al[1] * bh;
        l2 += al[2] * bl; h2 += al[2] * bh;
        l3 += al[3] * bl; h3 += al[3] * bh;
        l4 += ah[0] * bl; h4 += ah[0] * bh;
        l5 += ah[1] * bl; h5 += ah[1] * bh;
        l6 += ah[2] * bl; h6 += ah[2] * bh;
        l7 += ah[3] * bl; h7 += ah[3] * bh;
      }
    }
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

// Four values of A (or B) from offset p with stride s, as one vec4 (main_ragged: no alignment).
fn gatherA(p: u32, s: u32) -> vec4<f32> {
  return vec4<f32>(A[p], A[p + s], A[p + 2u * s], A[p + 3u * s]);
}
fn gatherB(p: u32, s: u32) -> vec4<f32> {
  return vec4<f32>(B[p], B[p + s], B[p + 2u * s], B[p + 3u * s]);
}

// Thread (x, y) computes C[row0 .. row0+7, col0 .. col0+7] as main_vec4 does (lN: columns col0 ..
// col0+3 of row row0 + N, hN: col0+4 .. col0+7), for any layout, shape and alignment. Element
// op(A)[m, k] lies at baseA + m * ra + k * ka and op(B)[k, n] at baseB + n * rb + k * kb, so one
// pointer per row of the block (paN) and per column (pbN) walks k by adding ka (kb). Each 4-step
// loads, per row, a = (op(A)[m, k], .., op(A)[m, k+3]) and, per column, the column's four values of
// op(B) as a column of bl / bh; then row m gains a * bl (four dot products, one per column).
@compute @workgroup_size(WG_X, WG_Y, 1)
fn main_ragged(@builtin(global_invocation_id) gid: vec3<u32>) {
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
  // Rows past M and columns past N are clamped to the last one: the loads stay in bounds, the
  // results are never stored.
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
    let bl = vec4<f32>(B[pb0], B[pb1], B[pb2], B[pb3]);
    let bh = vec4<f32>(B[pb4], B[pb5], B[pb6], B[pb7]);
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
