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
// one per call (f16wEntryPoint in src/engine/kernels/matmul.ts). All three run matmul.wgsl's own
// code, from shaders/matmul_blocked.wgsl (prepended with matmul_operands.wgsl, the uniforms and
// A and C: src/engine/kernels/matmul-shader.ts), reading B through this file's bAt, gatherB, b4At
// and slabNN:
//   main_nt4  forward (TRANS_B, A not transposed), K % 4 == 0 and batch strides of A and B multiples
//             of 4: A read as vec4s, each column of B as vec2<u32> words (four halves per load),
//             main_vec4's TRANS_B loop (blockNT).
//   main_nn8  input gradient (neither transposed), K % 4 == 0, N % 8 == 0, strides of A multiples
//             of 4 and of B multiples of 8: each row of B's eight columns is one vec4<u32> (eight
//             halves per load), main_vec4's [K, N] loop (blockNN). N % 8 == 0 means a block never
//             straddles the last column, so no clamping.
//   main_ragged  any layout, shape and alignment: matmul.wgsl's main_ragged; the forward reads a
//             column's four consecutive halves as two words when they start on a word, else one half
//             at a time (gatherB).

@group(0) @binding(2) var<storage, read> B: array<u32>;
// The same B as four halves (main_nt4) or eight halves (main_nn8) per load.
@group(0) @binding(2) var<storage, read> B2: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> B8: array<vec4<u32>>;

fn halves4(w: vec2<u32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

// How matmul_blocked.wgsl reads B (see there). Element i of B (f16) as f32:
fn bAt(i: u32) -> f32 {
  let pair = unpack2x16float(B[i >> 1u]);
  return select(pair.x, pair.y, (i & 1u) == 1u);
}

// Four values of B from element p with element stride s, as one vec4.
fn gatherB(p: u32, s: u32) -> vec4<f32> {
  if (s == 1u && (p & 1u) == 0u) {
    let w = p >> 1u;
    return vec4<f32>(unpack2x16float(B[w]), unpack2x16float(B[w + 1u]));
  }
  return vec4<f32>(bAt(p), bAt(p + s), bAt(p + 2u * s), bAt(p + 3u * s));
}

// Elements 4i .. 4i+3 of B: one vec2<u32> word pair.
fn b4At(i: u32) -> vec4<f32> {
  return halves4(B2[i]);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main_nt4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = tileAt(gid);
  if (!t.live) { return; }
  blockNT(t);
}

// Rows 4k .. 4k+3 of B[K, N] at the tile's eight columns, a vec4<u32> (eight halves) per row.
// N % 8 == 0 means a block never straddles the last column, so no clamping.
fn slabNN(t: Tile, k: u32) -> Slab {
  let N8 = dims.N / 8u;
  let bo = (t.baseB + t.col0) / 8u + 4u * k * N8;
  let w0 = B8[bo];
  let w1 = B8[bo + N8];
  let w2 = B8[bo + 2u * N8];
  let w3 = B8[bo + 3u * N8];
  let lo = mat4x4<f32>(halves4(w0.xy), halves4(w1.xy), halves4(w2.xy), halves4(w3.xy));
  let hi = mat4x4<f32>(halves4(w0.zw), halves4(w1.zw), halves4(w2.zw), halves4(w3.zw));
  return Slab(lo, hi);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main_nn8(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = tileAt(gid);
  if (!t.live) { return; }
  blockNN(t);
}
