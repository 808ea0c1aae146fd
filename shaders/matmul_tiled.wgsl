// Batched matmul through workgroup memory:  C[b] = alpha * op(A[b]) · op(B[b]) + beta * C[b]
//
//   op(A): [M, K]   stored as A[M, K] (TRANS_A = false) or A[K, M] (TRANS_A = true)
//   op(B): [K, N]   stored as B[K, N] (TRANS_B = false) or B[N, K] (TRANS_B = true)
//   C:     [M, N]
//
// Same operands, uniforms and batch strides as shaders/matmul.wgsl, for the model's three layouts
// (forward x · Wᵀ, input gradient dy · W and weight gradient dyᵀ · x: TRANS_B, plain and TRANS_A;
// matmulOp never builds it with both, which the model never asks for); a different way to reach
// the data. A workgroup of WG_X x WG_Y invocations owns a
// TILE_M x TILE_N tile of C (TILE_M = WG_Y * TM, TILE_N = WG_X * TN) and walks K in steps of TK:
// each step the whole workgroup copies a TILE_M x TK slice of op(A) and a TK x TILE_N slice of op(B)
// into workgroup memory (one load per element per workgroup, coalesced along each operand's
// contiguous dimension), waits at a barrier, and then every invocation multiplies its TM x TN block
// out of workgroup memory. On a hardware GPU this is what pays: each value loaded from global memory
// serves TILE_N (or TILE_M) multiply-adds instead of TN (TM), and workgroup memory is on-chip. On a
// software adapter barriers are costly and the register-blocked kernels of matmul.wgsl are faster;
// the autotuner (src/engine/autotune.ts) measures which, per adapter.
//
// Two entry points, the same tiling:
//   main       scalar loads with bounds checks: any shape, any alignment.
//   main_vec4  vec4 loads along each operand's contiguous dimension: that dimension (A: K, or M when
//              TRANS_A; B: N, or K when TRANS_B) and the batch strides of A and B must be multiples
//              of 4, as for matmul.wgsl's main_vec4 (src/engine/kernels/matmul.ts matmulVec4Fits).
//              A vec4 is then wholly inside or wholly outside the operand, so one check covers it.
//
// In workgroup memory both slices are stored k-major (As[k][m], Bs[k][n]) as floats, so the inner
// loop reads an invocation's TM rows and TN columns at one k as TM/4 + TN/4 runs of four aligned,
// consecutive floats (a vec4 each). Why floats rather than vec4s: on SwiftShader a pipeline's
// compile time grows with the size of its vec4 workgroup arrays (2-2.7 s per pipeline against
// 1.2-1.7 s with float arrays, measured); a hardware compiler merges the four aligned loads.
// Values outside op(A) or op(B) are stored as 0, so the partial tiles at the right and bottom
// edges and the last, partial K step need no checks in the inner loop. beta == 0 never reads C.
//
// TM and TN are 4 or 8: the accumulators are sixteen vec4 registers (rows 0..7, column halves
// 0..3 and 4..7), of which the TM x TN block uses TM * TN / 4.

// Dims, TRANS_A / TRANS_B, A, A4 and C: shaders/matmul_operands.wgsl, prepended by
// src/engine/kernels/matmul-shader.ts.

override WG_X: u32 = 16;
override WG_Y: u32 = 16;
// Rows and columns of C per invocation (4 or 8 each).
override TM: u32 = 4;
override TN: u32 = 4;
// Depth of one K step (a multiple of 4).
override TK: u32 = 16;
override TILE_M: u32 = WG_Y * TM;
override TILE_N: u32 = WG_X * TN;

@group(0) @binding(2) var<storage, read> B: array<f32>;
// The same B seen as vec4s (main_vec4 only; offsets in vec4 units).
@group(0) @binding(2) var<storage, read> B4: array<vec4<f32>>;

// As[k * TILE_M + m] = op(A)[row0 + m, k0 + k]; Bs[k * TILE_N + n] = op(B)[k0 + k, col0 + n].
var<workgroup> As: array<f32, TK * TILE_M>;
var<workgroup> Bs: array<f32, TK * TILE_N>;

// Four consecutive values of a tile as one vec4 (i4 in vec4 units), and the reverse.
fn aAt4(i4: u32) -> vec4<f32> {
  let i = 4u * i4;
  return vec4<f32>(As[i], As[i + 1u], As[i + 2u], As[i + 3u]);
}
fn bAt4(i4: u32) -> vec4<f32> {
  let i = 4u * i4;
  return vec4<f32>(Bs[i], Bs[i + 1u], Bs[i + 2u], Bs[i + 3u]);
}
fn setA4(i4: u32, v: vec4<f32>) {
  let i = 4u * i4;
  As[i] = v.x; As[i + 1u] = v.y; As[i + 2u] = v.z; As[i + 3u] = v.w;
}
fn setB4(i4: u32, v: vec4<f32>) {
  let i = 4u * i4;
  Bs[i] = v.x; Bs[i + 1u] = v.y; Bs[i + 2u] = v.z; Bs[i + 3u] = v.w;
}

// Accumulators of the invocation's block: lI holds columns 0..3 of row I, hI columns 4..7.
var<private> l0: vec4<f32>; var<private> l1: vec4<f32>; var<private> l2: vec4<f32>; var<private> l3: vec4<f32>;
var<private> l4: vec4<f32>; var<private> l5: vec4<f32>; var<private> l6: vec4<f32>; var<private> l7: vec4<f32>;
var<private> h0: vec4<f32>; var<private> h1: vec4<f32>; var<private> h2: vec4<f32>; var<private> h3: vec4<f32>;
var<private> h4: vec4<f32>; var<private> h5: vec4<f32>; var<private> h6: vec4<f32>; var<private> h7: vec4<f32>;

// Where one workgroup works: its batch entry's operand offsets and its tile's first row and column.
struct Tile {
  baseA: u32, baseB: u32, baseC: u32,
  row0: u32, col0: u32,
}

fn tileOf(wid: vec3<u32>) -> Tile {
  let b = wid.z;
  return Tile(b * dims.strideA, b * dims.strideB, b * dims.strideC, wid.y * TILE_M, wid.x * TILE_N);
}

// Copies op(A)[row0 .. row0+TILE_M, k0 .. k0+TK] and op(B)[k0 .. k0+TK, col0 .. col0+TILE_N] into
// As and Bs, scalar loads. Consecutive invocations take consecutive elements along the stored
// operand's contiguous dimension (k for A[M, K], m for A[K, M]), so global reads coalesce.
fn loadTilesScalar(t: Tile, k0: u32, lin: u32) {
  let threads = WG_X * WG_Y;
  let M = dims.M;
  let N = dims.N;
  let K = dims.K;
  for (var e = lin; e < TILE_M * TK; e += threads) {
    var m: u32; var k: u32;
    if (TRANS_A) { m = e % TILE_M; k = e / TILE_M; } else { k = e % TK; m = e / TK; }
    let gm = t.row0 + m;
    let gk = k0 + k;
    var v = 0.0;
    if (gm < M && gk < K) {
      v = A[t.baseA + select(gm * K + gk, gk * M + gm, TRANS_A)];
    }
    As[k * TILE_M + m] = v;
  }
  for (var e = lin; e < TILE_N * TK; e += threads) {
    var n: u32; var k: u32;
    if (TRANS_B) { k = e % TK; n = e / TK; } else { n = e % TILE_N; k = e / TILE_N; }
    let gn = t.col0 + n;
    let gk = k0 + k;
    var v = 0.0;
    if (gn < N && gk < K) {
      v = B[t.baseB + select(gk * N + gn, gn * K + gk, TRANS_B)];
    }
    Bs[k * TILE_N + n] = v;
  }
}

// The same copy with vec4 loads along the contiguous dimension. Along m (A[K, M]) or n (B[K, N])
// a loaded vec4 is four consecutive rows or columns of the tile: one vec4 store. Along k (A[M, K],
// B[N, K]) it is four consecutive k of one row: four stores into four k-rows of the tile.
fn loadTilesVec4(t: Tile, k0: u32, lin: u32) {
  let threads = WG_X * WG_Y;
  let M = dims.M;
  let N = dims.N;
  let K = dims.K;
  let TK4 = TK / 4u;
  for (var e = lin; e < TILE_M * TK4; e += threads) {
    if (TRANS_A) {
      let m4 = e % (TILE_M / 4u);
      let k = e / (TILE_M / 4u);
      let gm = t.row0 + 4u * m4;
      let gk = k0 + k;
      var v = vec4<f32>();
      if (gm < M && gk < K) { v = A4[(t.baseA + gk * M + gm) / 4u]; }
      setA4(k * (TILE_M / 4u) + m4, v);
    } else {
      let k4 = e % TK4;
      let m = e / TK4;
      let gm = t.row0 + m;
      let gk = k0 + 4u * k4;
      var v = vec4<f32>();
      if (gm < M && gk < K) { v = A4[(t.baseA + gm * K + gk) / 4u]; }
      let k = 4u * k4;
      As[k * TILE_M + m] = v.x;
      As[(k + 1u) * TILE_M + m] = v.y;
      As[(k + 2u) * TILE_M + m] = v.z;
      As[(k + 3u) * TILE_M + m] = v.w;
    }
  }
  for (var e = lin; e < TILE_N * TK4; e += threads) {
    if (!TRANS_B) {
      let n4 = e % (TILE_N / 4u);
      let k = e / (TILE_N / 4u);
      let gn = t.col0 + 4u * n4;
      let gk = k0 + k;
      var v = vec4<f32>();
      if (gn < N && gk < K) { v = B4[(t.baseB + gk * N + gn) / 4u]; }
      setB4(k * (TILE_N / 4u) + n4, v);
    } else {
      let k4 = e % TK4;
      let n = e / TK4;
      let gn = t.col0 + n;
      let gk = k0 + 4u * k4;
      var v = vec4<f32>();
      if (gn < N && gk < K) { v = B4[(t.baseB + gn * K + gk) / 4u]; }
      let k = 4u * k4;
      Bs[k * TILE_N + n] = v.x;
      Bs[(k + 1u) * TILE_N + n] = v.y;
      Bs[(k + 2u) * TILE_N + n] = v.z;
      Bs[(k + 3u) * TILE_N + n] = v.w;
    }
  }
}

// The invocation's TM x TN block gains one k of the tile held in As and Bs. Written out per row
// rather than as loops over a private array: TM and TN are pipeline constants, so the untaken
// branches fold away and the accumulators stay in registers.
fn multiplyStep(k: u32, aCol: u32, bCol: u32) {
  let b0 = bAt4(k * (TILE_N / 4u) + bCol);
  let a0 = aAt4(k * (TILE_M / 4u) + aCol);
  l0 += a0.x * b0; l1 += a0.y * b0; l2 += a0.z * b0; l3 += a0.w * b0;
  if (TN == 8u) {
    let b1 = bAt4(k * (TILE_N / 4u) + bCol + 1u);
    h0 += a0.x * b1; h1 += a0.y * b1; h2 += a0.z * b1; h3 += a0.w * b1;
    if (TM == 8u) {
      let a1 = aAt4(k * (TILE_M / 4u) + aCol + 1u);
      l4 += a1.x * b0; l5 += a1.y * b0; l6 += a1.z * b0; l7 += a1.w * b0;
      h4 += a1.x * b1; h5 += a1.y * b1; h6 += a1.z * b1; h7 += a1.w * b1;
    }
  } else if (TM == 8u) {
    let a1 = aAt4(k * (TILE_M / 4u) + aCol + 1u);
    l4 += a1.x * b0; l5 += a1.y * b0; l6 += a1.z * b0; l7 += a1.w * b0;
  }
}

// The block gains the K step starting at k0: four k per iteration, up to the last multiple of 4
// that holds data (the tile's rows past K are zeros, so rounding up is exact): the last, partial K
// step skips most of its padding.
fn multiplyTile(lid: vec3<u32>, k0: u32) {
  let aCol = lid.y * (TM / 4u);
  let bCol = lid.x * (TN / 4u);
  let kEnd = min(TK, (dims.K - k0 + 3u) & ~3u);
  for (var k = 0u; k < kEnd; k += 4u) {
    multiplyStep(k, aCol, bCol);
    multiplyStep(k + 1u, aCol, bCol);
    multiplyStep(k + 2u, aCol, bCol);
    multiplyStep(k + 3u, aCol, bCol);
  }
}

// Writes C[m, n .. n+TN-1] = alpha * (lo, hi) + beta * C, skipping what lies outside C.
fn storeRow(t: Tile, m: u32, n: u32, lo: vec4<f32>, hi: vec4<f32>) {
  if (m >= dims.M) { return; }
  for (var j = 0u; j < TN; j++) {
    if (n + j >= dims.N) { return; }
    let idx = t.baseC + m * dims.N + n + j;
    var v = dims.alpha * select(hi[j & 3u], lo[j & 3u], j < 4u);
    if (dims.beta != 0.0) { v += dims.beta * C[idx]; }
    C[idx] = v;
  }
}

fn storeBlock(t: Tile, lid: vec3<u32>) {
  let m = t.row0 + lid.y * TM;
  let n = t.col0 + lid.x * TN;
  storeRow(t, m, n, l0, h0);
  storeRow(t, m + 1u, n, l1, h1);
  storeRow(t, m + 2u, n, l2, h2);
  storeRow(t, m + 3u, n, l3, h3);
  if (TM == 8u) {
    storeRow(t, m + 4u, n, l4, h4);
    storeRow(t, m + 5u, n, l5, h5);
    storeRow(t, m + 6u, n, l6, h6);
    storeRow(t, m + 7u, n, l7, h7);
  }
}

// The dispatch is exactly [ceil(N / TILE_N), ceil(M / TILE_M), batch] workgroups, so no workgroup
// lies wholly outside C; the barriers stay in uniform control flow (the K loop's trip count comes
// from the uniform block).
@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = tileOf(wid);
  let lin = lid.y * WG_X + lid.x;
  for (var k0 = 0u; k0 < dims.K; k0 += TK) {
    loadTilesScalar(t, k0, lin);
    workgroupBarrier();
    multiplyTile(lid, k0);
    workgroupBarrier();
  }
  storeBlock(t, lid);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = tileOf(wid);
  let lin = lid.y * WG_X + lid.x;
  for (var k0 = 0u; k0 < dims.K; k0 += TK) {
    loadTilesVec4(t, k0, lin);
    workgroupBarrier();
    multiplyTile(lid, k0);
    workgroupBarrier();
  }
  storeBlock(t, lid);
}
