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
// Each thread owns a 4x4 block of C held in registers (a WG_X*4 by WG_Y*4 tile per workgroup);
// on software adapters register blocking beats workgroup-memory tiling. Every load is bounds
// checked, so any M, N, K is correct; batch strides of 0 broadcast an operand (a shared weight).
// beta == 0 never reads C, so stale NaNs in an output buffer cannot leak into a fresh result.

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
