// Causal self-attention with grouped key/value heads (Llama / GQA), float32, Hugging Face semantics.
//
//   Q   [B, Tq, H*D]    queries, rows are tokens as they come out of q_proj
//   K   [B, Tk, KVH*D]  keys; Tk is the key capacity (row stride) of the buffer (a KV cache holds
//   V   [B, Tk, KVH*D]  values   more rows than are filled; rows past pos0 + Tq - 1 are never read)
//   O   [B, Tq, H*D]    attention output (before o_proj)
//   L   [B, H, Tq]      log-sum-exp of each softmax row, saved by the forward for the backward
//   dO  [B, Tq, H*D]    gradient of the loss with respect to O
//   Dlt [B, H, Tq]      Dlt[b,h,t] = dO[b,t,h,:] · O[b,t,h,:]  (backward scratch)
//   dQ  [B, Tq, H*D]    gradients of Q, K, V (activation gradients: overwritten)
//   dK  [B, Tk, KVH*D]
//   dV  [B, Tk, KVH*D]
//
// Query t of sequence b sits at absolute position pos0 + t and attends keys s = 0 .. pos0 + t.
// Training: Tq = Tk = T, pos0 = 0. KV-cache decode: Tq = 1 (or a few), pos0 = tokens already in the
// cache, Tk = cache capacity. Head h reads key/value head kvh = h / (H / KVH), which is HF's
// repeat_kv (each key/value head serves H/KVH consecutive query heads).
//
//   S_ts = scale * Q_t · K_s          (scale = 1/sqrt(D) for Llama)
//   P_ts = softmax_s(S_ts) = exp(S_ts - L_t),   L_t = log sum_s exp(S_ts)
//   O_t  = sum_s P_ts V_s
//
// Backward (flash-attention style: P is recomputed from the saved L, never stored, so memory stays
// O(T) instead of O(T^2)):
//   Dlt_t = dO_t · O_t                 (= sum_s P_ts (dO_t · V_s))
//   dS_ts = P_ts * (dO_t · V_s - Dlt_t)
//   dQ_t  = scale * sum_s dS_ts K_s
//   dK_s  = scale * sum_{h in group, t} dS_ts Q_t
//   dV_s  = sum_{h in group, t} P_ts dO_t
// The sums over the query heads of a group are the gradient of repeat_kv.
//
// WGSL has no float atomics, so each backward entry point is a gather: backward_query owns query
// rows (b, h, t), backward_keyvalue owns key rows (b, kvh, s).
//
// Two families of entry points (src/engine/kernels/attention.ts picks one, see
// chooseAttentionVariant):
//   workgroup  forward, backward_query, backward_keyvalue: one workgroup of WG threads per row,
//              threads stride over keys (or queries) and over d, combined through workgroup memory
//              and barriers. Suits long rows: the work of one row is spread over WG threads.
//   rows       forward_rows, backward_query_rows, backward_keyvalue_rows: one invocation per row,
//              no workgroup memory, no barriers; the forward keeps an online softmax (running max
//              m, running sum l, output accumulator rescaled by exp(m_old - m_new) when the max
//              grows) in registers, the backward recomputes P from L as the workgroup kernels do.
//              Head vectors are held as vec4 registers (D % 4 == 0, D <= 128). Suits short rows:
//              with a few dozen keys most of a 64-thread workgroup idles, and on software adapters
//              every barrier costs a context switch per 4-lane subgroup, which made the workgroup
//              kernels spend 0.1 to 0.3 ms per row on overhead alone (SwiftShader).
// Binding numbers are global to this file; each entry point uses (and its dispatcher passes) only
// its own subset, and statically uses all of it (the rows kernels see Q, K, V, O, dO, dQ, dK, dV
// as vec4 arrays through the Q4 .. dV4 declarations of the same bindings):
//   forward(_rows)            1 Q, 2 K, 3 V, 4 O (write), 5 L (write)
//   backward_delta            4 O, 6 dO, 7 Dlt (write)
//   backward_query(_rows)     1 Q, 2 K, 3 V, 5 L, 6 dO, 7 Dlt, 8 dQ (write)
//   backward_keyvalue(_rows)  1 Q, 2 K, 3 V, 5 L, 6 dO, 7 Dlt, 9 dK (write), 10 dV (write)

struct Dims {
  B: u32, Tq: u32, Tk: u32, pos0: u32,
  H: u32, KVH: u32, D: u32,
  scale: f32,
}

// Threads per workgroup; must be a power of two (tree reductions halve it).
override WG: u32 = 64u;
// Longest softmax row the workgroup forward holds in workgroup memory (MAX_KEYS * 4 bytes); the
// dispatcher sizes it from the key capacity Tk (a power of two, so few pipelines) and rejects
// pos0 + Tq past it. The backward streams keys in chunks of WG and has no such limit.
override MAX_KEYS: u32 = 2048u;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> K: array<f32>;
@group(0) @binding(3) var<storage, read> V: array<f32>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
@group(0) @binding(5) var<storage, read_write> L: array<f32>;
@group(0) @binding(6) var<storage, read> dO: array<f32>;
@group(0) @binding(7) var<storage, read_write> Dlt: array<f32>;
@group(0) @binding(8) var<storage, read_write> dQ: array<f32>;
@group(0) @binding(9) var<storage, read_write> dK: array<f32>;
@group(0) @binding(10) var<storage, read_write> dV: array<f32>;
// The same buffers as vec4 arrays (rows kernels; offsets in vec4 units).
@group(0) @binding(1) var<storage, read> Q4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> K4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> V4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> O4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> dO4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> dQ4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> dK4: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> dV4: array<vec4<f32>>;

// D / 4 for the rows kernels (at most 32: D <= 128), fixed per pipeline; see Head below.
override HEAD_D4: u32 = 1u;

var<workgroup> row_p: array<f32, MAX_KEYS>;  // forward: scores, then unnormalised probabilities
var<workgroup> red: array<f32, WG>;          // forward: reduction scratch
var<workgroup> chunk_p: array<f32, WG>;      // backward: P of the current chunk
var<workgroup> chunk_ds: array<f32, WG>;     // backward: dS of the current chunk

// Most negative finite f32: the identity of max for threads that own no key.
const LOWEST: f32 = -0x1.fffffep+127f;

// A query row (b, h, t): its index in L and Dlt, and where its H*D-wide token row starts.
struct QueryRow {
  b: u32, h: u32, t: u32, kvh: u32,
  q: u32,      // offset of (b, t, h, 0) in Q, O, dO, dQ
  kv: u32,     // offset of (b, 0, kvh, 0) in K, V
}

fn query_row(row: u32) -> QueryRow {
  let t = row % dims.Tq;
  let bh = row / dims.Tq;
  let h = bh % dims.H;
  let b = bh / dims.H;
  let kvh = h / (dims.H / dims.KVH);
  return QueryRow(b, h, t, kvh, (b * dims.Tq + t) * dims.H * dims.D + h * dims.D, b * dims.Tk * dims.KVH * dims.D + kvh * dims.D);
}

fn reduce_max(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { red[lid] = max(red[lid], red[lid + stride]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier(); // every thread has read red[0] before the next reduction overwrites it
  return r;
}

fn reduce_sum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { red[lid] = red[lid] + red[lid + stride]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

// One workgroup per query row (b, h, t), rows ordered (b, h, t) like L. Threads stride over the
// keys, the row's scores live in workgroup memory, then threads stride over d for the output.
@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= dims.B * dims.H * dims.Tq) { return; } // uniform: the whole workgroup leaves
  let r = query_row(row);
  let nkeys = dims.pos0 + r.t + 1u; // causal: keys past the query's own position are never read
  let kstride = dims.KVH * dims.D;

  var mloc = LOWEST;
  for (var s = lid; s < nkeys; s += WG) {
    let ko = r.kv + s * kstride;
    var acc = 0.0;
    for (var d = 0u; d < dims.D; d++) { acc += Q[r.q + d] * K[ko + d]; }
    let sc = dims.scale * acc;
    row_p[s] = sc;
    mloc = max(mloc, sc);
  }
  let m = reduce_max(lid, mloc);

  // Subtracting the row max keeps exp in range; each thread rewrites only the scores it wrote.
  var lsum = 0.0;
  for (var s = lid; s < nkeys; s += WG) {
    let p = exp(row_p[s] - m);
    row_p[s] = p;
    lsum += p;
  }
  let total = reduce_sum(lid, lsum); // its barriers also publish every row_p[s] to all threads
  if (lid == 0u) { L[row] = m + log(total); }

  let inv = 1.0 / total;
  for (var d = lid; d < dims.D; d += WG) {
    var acc = 0.0;
    for (var s = 0u; s < nkeys; s++) { acc += row_p[s] * V[r.kv + s * kstride + d]; }
    O[r.q + d] = acc * inv;
  }
}

// One thread per query row (b, h, t): Dlt = dO · O over the head's D values.
@compute @workgroup_size(WG)
fn backward_delta(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * WG + lid;
  if (row >= dims.B * dims.H * dims.Tq) { return; }
  let r = query_row(row);
  var acc = 0.0;
  for (var d = 0u; d < dims.D; d++) { acc += dO[r.q + d] * O[r.q + d]; }
  Dlt[row] = acc;
}

// One workgroup per query row (b, h, t). Keys are streamed in chunks of WG: each thread recomputes
// P and dS for one key of the chunk, then threads stride over d adding the chunk's share of
// dQ[d] (each thread owns its d values, so the read-modify-write of dQ needs no synchronisation).
@compute @workgroup_size(WG)
fn backward_query(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= dims.B * dims.H * dims.Tq) { return; }
  let r = query_row(row);
  let nkeys = dims.pos0 + r.t + 1u;
  let kstride = dims.KVH * dims.D;
  let lse = L[row];
  let delta = Dlt[row];

  for (var d = lid; d < dims.D; d += WG) { dQ[r.q + d] = 0.0; }
  for (var s0 = 0u; s0 < nkeys; s0 += WG) {
    let s = s0 + lid;
    var ds = 0.0;
    if (s < nkeys) {
      let ko = r.kv + s * kstride;
      var qk = 0.0;
      var dov = 0.0;
      for (var d = 0u; d < dims.D; d++) {
        qk += Q[r.q + d] * K[ko + d];
        dov += dO[r.q + d] * V[ko + d];
      }
      ds = exp(dims.scale * qk - lse) * (dov - delta);
    }
    chunk_ds[lid] = ds;
    workgroupBarrier();
    let n = min(WG, nkeys - s0);
    for (var d = lid; d < dims.D; d += WG) {
      var acc = 0.0;
      for (var j = 0u; j < n; j++) { acc += chunk_ds[j] * K[r.kv + (s0 + j) * kstride + d]; }
      dQ[r.q + d] += dims.scale * acc;
    }
    workgroupBarrier(); // the chunk is read by all threads before the next one overwrites it
  }
}

// One workgroup per key row (b, kvh, s), rows ordered (b, kvh, s). Loops over the H/KVH query heads
// of the group and, in chunks of WG, over the queries that see key s (pos0 + t >= s): each thread
// recomputes P and dS for one query, then threads stride over d accumulating dK[d] and dV[d].
@compute @workgroup_size(WG)
fn backward_keyvalue(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let krow = wid.x + wid.y * nwg.x;
  if (krow >= dims.B * dims.KVH * dims.Tk) { return; }
  let s = krow % dims.Tk;
  let bk = krow / dims.Tk;
  let kvh = bk % dims.KVH;
  let b = bk / dims.KVH;
  let ko = (b * dims.Tk + s) * dims.KVH * dims.D + kvh * dims.D; // (b, s, kvh, 0) in K, V, dK, dV
  let group = dims.H / dims.KVH;
  let qstride = dims.H * dims.D;
  // First query that sees key s; keys no query sees (t0 >= Tq) keep the zeros written here.
  let tfirst = select(0u, s - dims.pos0, s > dims.pos0);

  for (var d = lid; d < dims.D; d += WG) {
    dK[ko + d] = 0.0;
    dV[ko + d] = 0.0;
  }
  for (var g = 0u; g < group; g++) {
    let h = kvh * group + g;
    let qbase = b * dims.Tq * qstride + h * dims.D; // (b, 0, h, 0) in Q, dO
    let lbase = (b * dims.H + h) * dims.Tq;         // (b, h, 0) in L, Dlt
    for (var t0 = tfirst; t0 < dims.Tq; t0 += WG) {
      let t = t0 + lid;
      var p = 0.0;
      var ds = 0.0;
      if (t < dims.Tq) {
        let qo = qbase + t * qstride;
        var qk = 0.0;
        var dov = 0.0;
        for (var d = 0u; d < dims.D; d++) {
          qk += Q[qo + d] * K[ko + d];
          dov += dO[qo + d] * V[ko + d];
        }
        p = exp(dims.scale * qk - L[lbase + t]);
        ds = p * (dov - Dlt[lbase + t]);
      }
      chunk_p[lid] = p;
      chunk_ds[lid] = ds;
      workgroupBarrier();
      let n = min(WG, dims.Tq - t0);
      for (var d = lid; d < dims.D; d += WG) {
        var accv = 0.0;
        var acck = 0.0;
        for (var j = 0u; j < n; j++) {
          let qo = qbase + (t0 + j) * qstride + d;
          accv += chunk_p[j] * dO[qo];
          acck += chunk_ds[j] * Q[qo];
        }
        dV[ko + d] += accv;
        dK[ko + d] += dims.scale * acck;
      }
      workgroupBarrier();
    }
  }
}

// ---- rows kernels: one invocation per row, head vectors in registers, no workgroup memory ----

// A head row of D = 4 * HEAD_D4 values as vec4 registers: four chunks of eight vec4s (D <= 128).
// Vec4 j of a head exists when j < HEAD_D4, a pipeline constant, so once the helpers below are
// inlined every `has` test is a constant and folds away: a head costs D/4 vec4 operations, with
// no loop over d and no dynamically indexed array. (Measured on SwiftShader: a loop over d with a
// per-invocation array ran 2.5x slower, dominated by loop and dynamic-indexing overhead.)
// Absent vec4s are never loaded, stored or computed and stay zero.
struct V8 { v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>, v4: vec4<f32>, v5: vec4<f32>, v6: vec4<f32>, v7: vec4<f32> }
struct Head { c0: V8, c1: V8, c2: V8, c3: V8 }

fn has(j: u32) -> bool { return j < HEAD_D4; }

fn hsum(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

// Partial dot product of chunk j0 / 8 (callers skip absent chunks: its vec4 j0 exists).
fn dot8(a: V8, b: V8, j0: u32) -> vec4<f32> {
  var r = a.v0 * b.v0;
  if (has(j0 + 1u)) { r += a.v1 * b.v1; }
  if (has(j0 + 2u)) { r += a.v2 * b.v2; }
  if (has(j0 + 3u)) { r += a.v3 * b.v3; }
  if (has(j0 + 4u)) { r += a.v4 * b.v4; }
  if (has(j0 + 5u)) { r += a.v5 * b.v5; }
  if (has(j0 + 6u)) { r += a.v6 * b.v6; }
  if (has(j0 + 7u)) { r += a.v7 * b.v7; }
  return r;
}
// a · b over the head.
fn hdot(a: Head, b: Head) -> f32 {
  var r = dot8(a.c0, b.c0, 0u);
  if (has(8u)) { r += dot8(a.c1, b.c1, 8u); }
  if (has(16u)) { r += dot8(a.c2, b.c2, 16u); }
  if (has(24u)) { r += dot8(a.c3, b.c3, 24u); }
  return hsum(r);
}

fn axby8(a: f32, x: V8, b: f32, y: V8, j0: u32) -> V8 {
  var r: V8;
  if (has(j0)) { r.v0 = a * x.v0 + b * y.v0; }
  if (has(j0 + 1u)) { r.v1 = a * x.v1 + b * y.v1; }
  if (has(j0 + 2u)) { r.v2 = a * x.v2 + b * y.v2; }
  if (has(j0 + 3u)) { r.v3 = a * x.v3 + b * y.v3; }
  if (has(j0 + 4u)) { r.v4 = a * x.v4 + b * y.v4; }
  if (has(j0 + 5u)) { r.v5 = a * x.v5 + b * y.v5; }
  if (has(j0 + 6u)) { r.v6 = a * x.v6 + b * y.v6; }
  if (has(j0 + 7u)) { r.v7 = a * x.v7 + b * y.v7; }
  return r;
}
// a * x + b * y over the head.
fn haxby(a: f32, x: Head, b: f32, y: Head) -> Head {
  return Head(axby8(a, x.c0, b, y.c0, 0u), axby8(a, x.c1, b, y.c1, 8u), axby8(a, x.c2, b, y.c2, 16u), axby8(a, x.c3, b, y.c3, 24u));
}

// x scaled by a.
fn hscale(a: f32, x: Head) -> Head {
  return haxby(a, x, 0.0, x);
}

// Loads and stores of a head row at vec4 offset o, one per buffer (WGSL cannot pass a storage
// buffer to a function).
fn loadQ8(o: u32, j0: u32) -> V8 {
  var r: V8;
  if (has(j0 + 0u)) { r.v0 = Q4[o + 0u]; }
  if (has(j0 + 1u)) { r.v1 = Q4[o + 1u]; }
  if (has(j0 + 2u)) { r.v2 = Q4[o + 2u]; }
  if (has(j0 + 3u)) { r.v3 = Q4[o + 3u]; }
  if (has(j0 + 4u)) { r.v4 = Q4[o + 4u]; }
  if (has(j0 + 5u)) { r.v5 = Q4[o + 5u]; }
  if (has(j0 + 6u)) { r.v6 = Q4[o + 6u]; }
  if (has(j0 + 7u)) { r.v7 = Q4[o + 7u]; }
  return r;
}
fn loadQ(o: u32) -> Head {
  return Head(loadQ8(o, 0u), loadQ8(o + 8u, 8u), loadQ8(o + 16u, 16u), loadQ8(o + 24u, 24u));
}
fn loadK8(o: u32, j0: u32) -> V8 {
  var r: V8;
  if (has(j0 + 0u)) { r.v0 = K4[o + 0u]; }
  if (has(j0 + 1u)) { r.v1 = K4[o + 1u]; }
  if (has(j0 + 2u)) { r.v2 = K4[o + 2u]; }
  if (has(j0 + 3u)) { r.v3 = K4[o + 3u]; }
  if (has(j0 + 4u)) { r.v4 = K4[o + 4u]; }
  if (has(j0 + 5u)) { r.v5 = K4[o + 5u]; }
  if (has(j0 + 6u)) { r.v6 = K4[o + 6u]; }
  if (has(j0 + 7u)) { r.v7 = K4[o + 7u]; }
  return r;
}
fn loadK(o: u32) -> Head {
  return Head(loadK8(o, 0u), loadK8(o + 8u, 8u), loadK8(o + 16u, 16u), loadK8(o + 24u, 24u));
}
fn loadV8(o: u32, j0: u32) -> V8 {
  var r: V8;
  if (has(j0 + 0u)) { r.v0 = V4[o + 0u]; }
  if (has(j0 + 1u)) { r.v1 = V4[o + 1u]; }
  if (has(j0 + 2u)) { r.v2 = V4[o + 2u]; }
  if (has(j0 + 3u)) { r.v3 = V4[o + 3u]; }
  if (has(j0 + 4u)) { r.v4 = V4[o + 4u]; }
  if (has(j0 + 5u)) { r.v5 = V4[o + 5u]; }
  if (has(j0 + 6u)) { r.v6 = V4[o + 6u]; }
  if (has(j0 + 7u)) { r.v7 = V4[o + 7u]; }
  return r;
}
fn loadV(o: u32) -> Head {
  return Head(loadV8(o, 0u), loadV8(o + 8u, 8u), loadV8(o + 16u, 16u), loadV8(o + 24u, 24u));
}
fn loadDO8(o: u32, j0: u32) -> V8 {
  var r: V8;
  if (has(j0 + 0u)) { r.v0 = dO4[o + 0u]; }
  if (has(j0 + 1u)) { r.v1 = dO4[o + 1u]; }
  if (has(j0 + 2u)) { r.v2 = dO4[o + 2u]; }
  if (has(j0 + 3u)) { r.v3 = dO4[o + 3u]; }
  if (has(j0 + 4u)) { r.v4 = dO4[o + 4u]; }
  if (has(j0 + 5u)) { r.v5 = dO4[o + 5u]; }
  if (has(j0 + 6u)) { r.v6 = dO4[o + 6u]; }
  if (has(j0 + 7u)) { r.v7 = dO4[o + 7u]; }
  return r;
}
fn loadDO(o: u32) -> Head {
  return Head(loadDO8(o, 0u), loadDO8(o + 8u, 8u), loadDO8(o + 16u, 16u), loadDO8(o + 24u, 24u));
}
fn storeO8(o: u32, j0: u32, r: V8) {
  if (has(j0 + 0u)) { O4[o + 0u] = r.v0; }
  if (has(j0 + 1u)) { O4[o + 1u] = r.v1; }
  if (has(j0 + 2u)) { O4[o + 2u] = r.v2; }
  if (has(j0 + 3u)) { O4[o + 3u] = r.v3; }
  if (has(j0 + 4u)) { O4[o + 4u] = r.v4; }
  if (has(j0 + 5u)) { O4[o + 5u] = r.v5; }
  if (has(j0 + 6u)) { O4[o + 6u] = r.v6; }
  if (has(j0 + 7u)) { O4[o + 7u] = r.v7; }
}
fn storeO(o: u32, h: Head) {
  storeO8(o, 0u, h.c0);
  storeO8(o + 8u, 8u, h.c1);
  storeO8(o + 16u, 16u, h.c2);
  storeO8(o + 24u, 24u, h.c3);
}
fn storeDQ8(o: u32, j0: u32, r: V8) {
  if (has(j0 + 0u)) { dQ4[o + 0u] = r.v0; }
  if (has(j0 + 1u)) { dQ4[o + 1u] = r.v1; }
  if (has(j0 + 2u)) { dQ4[o + 2u] = r.v2; }
  if (has(j0 + 3u)) { dQ4[o + 3u] = r.v3; }
  if (has(j0 + 4u)) { dQ4[o + 4u] = r.v4; }
  if (has(j0 + 5u)) { dQ4[o + 5u] = r.v5; }
  if (has(j0 + 6u)) { dQ4[o + 6u] = r.v6; }
  if (has(j0 + 7u)) { dQ4[o + 7u] = r.v7; }
}
fn storeDQ(o: u32, h: Head) {
  storeDQ8(o, 0u, h.c0);
  storeDQ8(o + 8u, 8u, h.c1);
  storeDQ8(o + 16u, 16u, h.c2);
  storeDQ8(o + 24u, 24u, h.c3);
}
fn storeDK8(o: u32, j0: u32, r: V8) {
  if (has(j0 + 0u)) { dK4[o + 0u] = r.v0; }
  if (has(j0 + 1u)) { dK4[o + 1u] = r.v1; }
  if (has(j0 + 2u)) { dK4[o + 2u] = r.v2; }
  if (has(j0 + 3u)) { dK4[o + 3u] = r.v3; }
  if (has(j0 + 4u)) { dK4[o + 4u] = r.v4; }
  if (has(j0 + 5u)) { dK4[o + 5u] = r.v5; }
  if (has(j0 + 6u)) { dK4[o + 6u] = r.v6; }
  if (has(j0 + 7u)) { dK4[o + 7u] = r.v7; }
}
fn storeDK(o: u32, h: Head) {
  storeDK8(o, 0u, h.c0);
  storeDK8(o + 8u, 8u, h.c1);
  storeDK8(o + 16u, 16u, h.c2);
  storeDK8(o + 24u, 24u, h.c3);
}
fn storeDV8(o: u32, j0: u32, r: V8) {
  if (has(j0 + 0u)) { dV4[o + 0u] = r.v0; }
  if (has(j0 + 1u)) { dV4[o + 1u] = r.v1; }
  if (has(j0 + 2u)) { dV4[o + 2u] = r.v2; }
  if (has(j0 + 3u)) { dV4[o + 3u] = r.v3; }
  if (has(j0 + 4u)) { dV4[o + 4u] = r.v4; }
  if (has(j0 + 5u)) { dV4[o + 5u] = r.v5; }
  if (has(j0 + 6u)) { dV4[o + 6u] = r.v6; }
  if (has(j0 + 7u)) { dV4[o + 7u] = r.v7; }
}
fn storeDV(o: u32, h: Head) {
  storeDV8(o, 0u, h.c0);
  storeDV8(o + 8u, 8u, h.c1);
  storeDV8(o + 16u, 16u, h.c2);
  storeDV8(o + 24u, 24u, h.c3);
}

// Index of this invocation's row for a 1-D grid of WG-thread workgroups folded into x and y.
fn thread_row(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

// One invocation per query row (b, h, t), online softmax over its keys: with score x, the new max
// m' = max(m, x) rescales the running sum and the output accumulator by exp(m - m'), and key s
// adds exp(x - m') (times V_s). Key 0, which every query sees, starts them.
@compute @workgroup_size(WG)
fn forward_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let row = thread_row(wid, nwg, lid);
  if (row >= dims.B * dims.H * dims.Tq) { return; }
  let r = query_row(row);
  let nkeys = dims.pos0 + r.t + 1u;
  let kv4 = r.kv / 4u;
  let kstride4 = dims.KVH * HEAD_D4;
  let q = loadQ(r.q / 4u);
  var acc = loadV(kv4);
  var m = dims.scale * hdot(q, loadK(kv4));
  var l = 1.0;
  for (var s = 1u; s < nkeys; s++) {
    let ko = kv4 + s * kstride4;
    let x = dims.scale * hdot(q, loadK(ko));
    let mn = max(m, x);
    let c = exp(m - mn);
    let p = exp(x - mn);
    l = l * c + p;
    m = mn;
    acc = haxby(c, acc, p, loadV(ko));
  }
  L[row] = m + log(l);
  storeO(r.q / 4u, hscale(1.0 / l, acc));
}

// One invocation per query row (b, h, t): dQ_t = scale * sum_s P_ts (dO_t · V_s - Dlt_t) K_s.
@compute @workgroup_size(WG)
fn backward_query_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
  let row = thread_row(wid, nwg, lid);
  if (row >= dims.B * dims.H * dims.Tq) { return; }
  let r = query_row(row);
  let nkeys = dims.pos0 + r.t + 1u;
  let kv4 = r.kv / 4u;
  let kstride4 = dims.KVH * HEAD_D4;
  let lse = L[row];
  let delta = Dlt[row];
  let q = loadQ(r.q / 4u);
  let g = loadDO(r.q / 4u);
  var acc: Head;
  for (var s = 0u; s < nkeys; s++) {
    let ko = kv4 + s * kstride4;
    let k = loadK(ko);
    let ds = exp(dims.scale * hdot(q, k) - lse) * (hdot(g, loadV(ko)) - delta);
    acc = haxby(1.0, acc, ds, k);
  }
  storeDQ(r.q / 4u, hscale(dims.scale, acc));
}

// One invocation per key row (b, kvh, s), summing over the H/KVH query heads of its group and the
// queries that see key s:  dV_s = sum P_ts dO_t,  dK_s = scale * sum P_ts (dO_t · V_s - Dlt_t) Q_t.
@compute @workgroup_size(WG)
fn backward_keyvalue_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
  let krow = thread_row(wid, nwg, lid);
  if (krow >= dims.B * dims.KVH * dims.Tk) { return; }
  let s = krow % dims.Tk;
  let bk = krow / dims.Tk;
  let kvh = bk % dims.KVH;
  let b = bk / dims.KVH;
  let ko = ((b * dims.Tk + s) * dims.KVH + kvh) * HEAD_D4; // (b, s, kvh, 0) in vec4s
  let group = dims.H / dims.KVH;
  let qstride4 = dims.H * HEAD_D4;
  let tfirst = select(0u, s - dims.pos0, s > dims.pos0);
  let k = loadK(ko);
  let v = loadV(ko);
  var acck: Head;
  var accv: Head;
  for (var gi = 0u; gi < group; gi++) {
    let h = kvh * group + gi;
    let lbase = (b * dims.H + h) * dims.Tq;                              // (b, h, 0) in L, Dlt
    var qo = (b * dims.Tq * dims.H + h) * HEAD_D4 + tfirst * qstride4; // (b, t, h, 0) in vec4s
    for (var t = tfirst; t < dims.Tq; t++) {
      let qt = loadQ(qo);
      let gt = loadDO(qo);
      let p = exp(dims.scale * hdot(k, qt) - L[lbase + t]);
      let ds = p * (hdot(v, gt) - Dlt[lbase + t]);
      accv = haxby(1.0, accv, p, gt);
      acck = haxby(1.0, acck, ds, qt);
      qo += qstride4;
    }
  }
  storeDK(ko, hscale(dims.scale, acck));
  storeDV(ko, accv);
}
