// The uniforms and operands every matmul shares (shaders/matmul.wgsl, matmul_f16w.wgsl,
// matmul_tiled.wgsl): src/engine/kernels/matmul-shader.ts prepends this file to each (WGSL has no
// include), so the uniform block matmulOp packs is declared once.
//
//   C[b] = alpha * op(A[b]) · op(B[b]) + beta * C[b]
//   op(A): [M, K]   stored as A[M, K] (TRANS_A = false) or A[K, M] (TRANS_A = true), f32
//   op(B): [K, N]   stored as B[K, N] (TRANS_B = false) or B[N, K] (TRANS_B = true)
//   C:     [M, N]   f32
//
// B (binding 2) is each shader's own: f32, or f16 packed two halves per u32.

struct Dims {
  M: u32, N: u32, K: u32, batch: u32,
  strideA: u32, strideB: u32, strideC: u32,
  alpha: f32, beta: f32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
// The same A seen as vec4s (the vec-load kernels; offsets in vec4 units).
@group(0) @binding(1) var<storage, read> A4: array<vec4<f32>>;
