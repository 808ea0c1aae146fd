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
// Three entry points (src/engine/kernels/matmul.ts picks one per call, see chooseMatmulVariant);
// main_ragged and main_vec4's forward and input-gradient layouts (blockNT, blockNN) live in
// shaders/matmul_blocked.wgsl, which shaders/matmul_f16w.wgsl shares (assembly:
// src/engine/kernels/matmul-shader.ts):
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
//
// From matmul_operands.wgsl: Dims, TRANS_A, TRANS_B, A, A4 and C (bindings 0, 1 and 3); from
// matmul_blocked.wgsl: WG_X, WG_Y, Tile, storeBlock, rowOffset4, blockNT, blockNN and main_ragged.
// This file declares B and how it is read.

@group(0) @binding(2) var<storage, read> B: array<f32>;
// The same B seen as vec4s (main_vec4 only; offsets in vec4 units).
@group(0) @binding(2) var<storage, read> B4: array<vec4<f32>>;

// How matmul_blocked.wgsl reads B (see there).
fn bAt(i: u32) -> f32 {
  return B[i];
}
fn gatherB(p: u32, s: u32) -> vec4<f32> {
  return vec4<f32>(B[p], B[p + s], B[p + 2u * s], B[p + 3u * s]);
}
fn b4At(i: u32) -> vec4<f32> {
  return B4[i];
}
// N % 4 == 0; a tile whose col0 + 4 is past N rereads its low half as its high half (never stored).
fn slabNN(t: Tile, k: u32) -> Slab {
  let N4 = dims.N / 4u;
  let bo = (t.baseB + t.col0) / 4u + 4u * k * N4;
  let hiB = min(1u, N4 - 1u - t.col0 / 4u);
  let lo = mat4x4<f32>(B4[bo], B4[bo + N4], B4[bo + 2u * N4], B4[bo + 3u * N4]);
  let hi = mat4x4<f32>(B4[bo + hiB], B4[bo + N4 + hiB], B4[bo + 2u * N4 + hiB], B4[bo + 3u * N4 + hiB]);
  return Slab(lo, hi);
}

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

// Thread (x, y) computes C[row0 .. row0+7, col0 .. col0+7], row0 = 8y, col0 = 8x. The accumulators
// are lN (columns col0 .. col0+3) and hN (col0+4 .. col0+7) of row row0 + N. Each k step loads the
// operands as 4x4 blocks (mat4x4 columns are the loaded vec4s), so a block update is one
// matrix-vector product: with Bl = columns (B[k+0, cols], .., B[k+3, cols]), row i gains
// Bl * A[row i, k .. k+3]; with columns (B[n0, k..k+3], .., B[n3, k..k+3]) it gains A[row i, k..] * Bl.
@compute @workgroup_size(WG_X, WG_Y, 1)
fn main_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = tileAt(gid);
  if (!t.live) { return; }
  // A[M, K]: eight rows read along k, B[N, K] (forward y = x · Wᵀ) or B[K, N] (input grad dx = dy · W).
  if (!TRANS_A) {
    if (TRANS_B) { blockNT(t); } else { blockNN(t); }
    return;
  }
  let M = dims.M;
  let N = dims.N;
  let K = dims.K;
  let row0 = t.row0;
  let col0 = t.col0;
  let baseA = t.baseA;
  let baseB = t.baseB;

  var l0 = vec4<f32>(); var l1 = vec4<f32>(); var l2 = vec4<f32>(); var l3 = vec4<f32>();
  var l4 = vec4<f32>(); var l5 = vec4<f32>(); var l6 = vec4<f32>(); var l7 = vec4<f32>();
  var h0 = vec4<f32>(); var h1 = vec4<f32>(); var h2 = vec4<f32>(); var h3 = vec4<f32>();
  var h4 = vec4<f32>(); var h5 = vec4<f32>(); var h6 = vec4<f32>(); var h7 = vec4<f32>();

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

  storeBlock(t, l0, h0, l1, h1, l2, h2, l3, h3, l4, h4, l5, h5, l6, h6, l7, h7);
}
