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
// Three families of entry points (src/engine/kernels/attention.ts picks one, see
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
//   blocked    forward_blocked, backward_query_blocked, backward_keyvalue_blocked: the rows
//              kernels with up to 8 rows per invocation sharing each loaded K/V (or Q/dO) row;
//              see the section before them. Chosen for 64 <= Tk <= 256.
// Binding numbers are global to this file; each entry point uses (and its dispatcher passes) only
// its own subset, and statically uses all of it (the rows kernels see Q, K, V, O, dO, dQ, dK, dV
// as vec4 arrays through the Q4 .. dV4 declarations of the same bindings):
//   forward(_rows)            1 Q, 2 K, 3 V, 4 O (write), 5 L (write)
//   backward_delta            4 O, 6 dO, 7 Dlt (write)
//   backward_query(_rows)     1 Q, 2 K, 3 V, 5 L, 6 dO, 7 Dlt, 8 dQ (write)
//   backward_keyvalue(_rows)  1 Q, 2 K, 3 V, 5 L, 6 dO, 7 Dlt, 9 dK (write), 10 dV (write)
// (the _blocked entry points use the same bindings as the _rows ones)

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

// ---- blocked kernels: several rows per invocation, each loaded key/value (or query) row reused ----
//
// forward_blocked, backward_query_blocked: one invocation per block of n = ROWS_H * ROWS_T <= 8
// query rows: ROWS_H consecutive query heads of one key/value group (ROWS_H divides H / KVH)
// times ROWS_T consecutive tokens. Every row of the block reads the same key/value head, and the
// tokens' causal ranges differ by at most ROWS_T - 1 keys, so each K_s / V_s the invocation loads
// serves all n rows: one vec4 load feeds n vec4 multiply-adds instead of 1. On SwiftShader every
// storage load is a per-lane gather with a bounds check, several times the cost of a multiply-add,
// so multiply-adds per load is what sets the speed (the rows kernels spent most of their time
// loading K and V; matmul.wgsl's main_vec4 does 16 multiply-adds per vec4 load, these 4n).
// backward_keyvalue_blocked: one invocation per ROWS_K <= 8 consecutive key rows of one key/value
// head; each query row Q_t / dO_t it loads serves all its keys.
//
// The rows of a block are held in two halves of up to 4 (rows 0-3 and 4-7): a half is a Rows
// (four Heads) and its per-row scalars (running max, sum, log-sum-exp, one key's scores) are the
// components of one vec4, so the softmax bookkeeping is vector work too. A half's row count is a
// pipeline constant, so absent rows (and an absent second half) fold away like absent vec4s of a
// Head (`has`).
// Row i of a query block: head h0 + i / ROWS_T, token t0 + i % ROWS_T. Tokens past Tq are clamped
// to Tq - 1 for their loads and not stored.
// The forward walks keys in aligned chunks of 4 with an online softmax per row: the chunk's scores
// are masked (key s > pos0 + t gets score LOWEST and weight 0), the running max m, sum l and output
// accumulator are rescaled once per chunk instead of once per key, and the 4 weights of a row are
// one vec4 exp. A row's arithmetic does not depend on which block it sits in (chunks are aligned
// to key 0; a chunk entirely past a row's last key leaves its m, l and accumulator bit-identical:
// c = exp(0) = 1, p = 0), so a KV-cache decode step reproduces the full forward's rows exactly.
// Key indices past the last key the block needs are clamped to it before loading: a KV cache's
// rows past pos0 + Tq may hold anything (NaN), and 0 * NaN would poison the accumulators.

// Block shape, fixed per pipeline (the dispatcher's choice, see chooseAttentionBlock).
override ROWS_H: u32 = 1u;
override ROWS_T: u32 = 8u;
// Key rows per backward_keyvalue_blocked invocation (1 .. 8).
override ROWS_K: u32 = 8u;

// Four head rows, one per row of a half block; absent rows stay zero and are never touched.
struct Rows { r0: Head, r1: Head, r2: Head, r3: Head }
// Four consecutive key (or value) rows s0 .. s0+3 of a forward chunk.
struct Keys4 { k0: Head, k1: Head, k2: Head, k3: Head }

// Whether row i of a half with n rows exists (n a pipeline constant).
fn on(i: u32, n: u32) -> bool { return i < n; }
// Rows of the half that starts at block row base, for a block of total rows (0 .. 4).
fn half_rows(total: u32, base: u32) -> u32 { return min(total - min(total, base), 4u); }

// The dot product of each row of a half with x, as one vec4 over rows (absent rows give 0).
fn rdot(a: Rows, x: Head, n: u32) -> vec4<f32> {
  var r = vec4<f32>(hdot(a.r0, x), 0.0, 0.0, 0.0);
  if (on(1u, n)) { r.y = hdot(a.r1, x); }
  if (on(2u, n)) { r.z = hdot(a.r2, x); }
  if (on(3u, n)) { r.w = hdot(a.r3, x); }
  return r;
}

// Row i of a becomes c[i] * a_i + p[i] * x.
fn raxpy(c: vec4<f32>, a: Rows, p: vec4<f32>, x: Head, n: u32) -> Rows {
  var r: Rows;
  r.r0 = haxby(c.x, a.r0, p.x, x);
  if (on(1u, n)) { r.r1 = haxby(c.y, a.r1, p.y, x); }
  if (on(2u, n)) { r.r2 = haxby(c.z, a.r2, p.z, x); }
  if (on(3u, n)) { r.r3 = haxby(c.w, a.r3, p.w, x); }
  return r;
}

// Row i of a becomes a_i + p[i] * x (the multiply by 1 is exact and folds away).
fn radd(a: Rows, p: vec4<f32>, x: Head, n: u32) -> Rows {
  return raxpy(vec4<f32>(1.0), a, p, x, n);
}

// A block of query rows: heads h0 .. h0 + ROWS_H - 1 (of key/value head kvh), tokens t0 ..
// t0 + ROWS_T - 1 of sequence b. Blocks are numbered (b, head block, token block), token blocks
// fastest.
struct QueryBlock {
  b: u32, h0: u32, t0: u32, kvh: u32,
  valid: bool,
}

fn query_block(blk: u32) -> QueryBlock {
  let ntb = (dims.Tq + ROWS_T - 1u) / ROWS_T;
  let nhb = dims.H / ROWS_H;
  let tb = blk % ntb;
  let hb = (blk / ntb) % nhb;
  let b = blk / (ntb * nhb);
  let h0 = hb * ROWS_H;
  return QueryBlock(b, h0, tb * ROWS_T, h0 / (dims.H / dims.KVH), b < dims.B);
}

// Row i of the block: its head, its token clamped to Tq - 1, and whether that token exists.
// (Rows i >= ROWS_H * ROWS_T repeat tokens of present rows: i % ROWS_T < ROWS_T.)
fn block_h(qb: QueryBlock, i: u32) -> u32 { return qb.h0 + min(i / ROWS_T, ROWS_H - 1u); }
fn block_t(qb: QueryBlock, i: u32) -> u32 { return min(qb.t0 + i % ROWS_T, dims.Tq - 1u); }
fn block_real(qb: QueryBlock, i: u32) -> bool { return qb.t0 + i % ROWS_T < dims.Tq; }
// Vec4 offset of row i's (b, t, h, 0) in Q, O, dO, dQ.
fn block_q4(qb: QueryBlock, i: u32) -> u32 {
  return ((qb.b * dims.Tq + block_t(qb, i)) * dims.H + block_h(qb, i)) * HEAD_D4;
}
// Index of row i's (b, h, t) in L and Dlt.
fn block_l(qb: QueryBlock, i: u32) -> u32 {
  return (qb.b * dims.H + block_h(qb, i)) * dims.Tq + block_t(qb, i);
}
// Last key of rows base .. base+3 (pos0 + t), as a vector over rows.
fn block_last(qb: QueryBlock, base: u32) -> vec4<u32> {
  return vec4<u32>(dims.pos0) + vec4<u32>(block_t(qb, base), block_t(qb, base + 1u), block_t(qb, base + 2u), block_t(qb, base + 3u));
}
fn loadQRows(qb: QueryBlock, base: u32, n: u32) -> Rows {
  var r: Rows;
  r.r0 = loadQ(block_q4(qb, base));
  if (on(1u, n)) { r.r1 = loadQ(block_q4(qb, base + 1u)); }
  if (on(2u, n)) { r.r2 = loadQ(block_q4(qb, base + 2u)); }
  if (on(3u, n)) { r.r3 = loadQ(block_q4(qb, base + 3u)); }
  return r;
}
fn loadDORows(qb: QueryBlock, base: u32, n: u32) -> Rows {
  var r: Rows;
  r.r0 = loadDO(block_q4(qb, base));
  if (on(1u, n)) { r.r1 = loadDO(block_q4(qb, base + 1u)); }
  if (on(2u, n)) { r.r2 = loadDO(block_q4(qb, base + 2u)); }
  if (on(3u, n)) { r.r3 = loadDO(block_q4(qb, base + 3u)); }
  return r;
}
// L and Dlt of rows base .. base+3 as vectors over rows (absent rows repeat present ones).
fn loadL(qb: QueryBlock, base: u32) -> vec4<f32> {
  return vec4<f32>(L[block_l(qb, base)], L[block_l(qb, base + 1u)], L[block_l(qb, base + 2u)], L[block_l(qb, base + 3u)]);
}
fn loadDlt(qb: QueryBlock, base: u32) -> vec4<f32> {
  return vec4<f32>(Dlt[block_l(qb, base)], Dlt[block_l(qb, base + 1u)], Dlt[block_l(qb, base + 2u)], Dlt[block_l(qb, base + 3u)]);
}

// Online-softmax state of a half block: output accumulators, running max and sum per row.
struct Soft { acc: Rows, m: vec4<f32>, l: vec4<f32> }

// One chunk of keys s0 .. s0+3 (rows kk, values vv) for a half block with queries q.
fn soft_chunk(st: Soft, q: Rows, kk: Keys4, vv: Keys4, s0: u32, last: vec4<u32>, n: u32) -> Soft {
  let in0 = vec4<u32>(s0) <= last;
  let in1 = vec4<u32>(s0 + 1u) <= last;
  let in2 = vec4<u32>(s0 + 2u) <= last;
  let in3 = vec4<u32>(s0 + 3u) <= last;
  let x0 = select(vec4<f32>(LOWEST), dims.scale * rdot(q, kk.k0, n), in0);
  let x1 = select(vec4<f32>(LOWEST), dims.scale * rdot(q, kk.k1, n), in1);
  let x2 = select(vec4<f32>(LOWEST), dims.scale * rdot(q, kk.k2, n), in2);
  let x3 = select(vec4<f32>(LOWEST), dims.scale * rdot(q, kk.k3, n), in3);
  let mn = max(st.m, max(max(x0, x1), max(x2, x3)));
  // Before a row's first key (m == LOWEST) its l and accumulator are 0: scale them by 0 rather
  // than trust exp(LOWEST - mn) to underflow cleanly.
  let c = select(exp(st.m - mn), vec4<f32>(0.0), st.m == vec4<f32>(LOWEST));
  let p0 = select(vec4<f32>(0.0), exp(x0 - mn), in0);
  let p1 = select(vec4<f32>(0.0), exp(x1 - mn), in1);
  let p2 = select(vec4<f32>(0.0), exp(x2 - mn), in2);
  let p3 = select(vec4<f32>(0.0), exp(x3 - mn), in3);
  var acc = raxpy(c, st.acc, p0, vv.k0, n);
  acc = radd(acc, p1, vv.k1, n);
  acc = radd(acc, p2, vv.k2, n);
  acc = radd(acc, p3, vv.k3, n);
  return Soft(acc, mn, st.l * c + ((p0 + p1) + (p2 + p3)));
}

// Writes O and L of rows base .. base+3 (present rows whose token exists).
fn store_soft(qb: QueryBlock, base: u32, st: Soft, n: u32) {
  let lse = st.m + log(st.l);
  let inv = 1.0 / st.l;
  if (block_real(qb, base)) { L[block_l(qb, base)] = lse.x; storeO(block_q4(qb, base), hscale(inv.x, st.acc.r0)); }
  if (on(1u, n) && block_real(qb, base + 1u)) { L[block_l(qb, base + 1u)] = lse.y; storeO(block_q4(qb, base + 1u), hscale(inv.y, st.acc.r1)); }
  if (on(2u, n) && block_real(qb, base + 2u)) { L[block_l(qb, base + 2u)] = lse.z; storeO(block_q4(qb, base + 2u), hscale(inv.z, st.acc.r2)); }
  if (on(3u, n) && block_real(qb, base + 3u)) { L[block_l(qb, base + 3u)] = lse.w; storeO(block_q4(qb, base + 3u), hscale(inv.w, st.acc.r3)); }
}

// One invocation per query block; see the section header for the chunked online softmax.
@compute @workgroup_size(WG)
fn forward_blocked(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
  let nA = half_rows(ROWS_H * ROWS_T, 0u);
  let nB = half_rows(ROWS_H * ROWS_T, 4u);
  let qb = query_block(thread_row(wid, nwg, lid));
  if (!qb.valid) { return; }
  let lastA = block_last(qb, 0u);
  let lastB = block_last(qb, 4u);
  let lastKey = max(max(max(lastA.x, lastA.y), max(lastA.z, lastA.w)), max(max(lastB.x, lastB.y), max(lastB.z, lastB.w)));
  let kv4 = (qb.b * dims.Tk * dims.KVH + qb.kvh) * HEAD_D4; // (b, 0, kvh, 0) in vec4s
  let kstride4 = dims.KVH * HEAD_D4;
  let qA = loadQRows(qb, 0u, nA);
  var qB: Rows;
  if (nB > 0u) { qB = loadQRows(qb, 4u, nB); }
  var stA = Soft(Rows(), vec4<f32>(LOWEST), vec4<f32>(0.0));
  var stB = stA;
  for (var s0 = 0u; s0 <= lastKey; s0 += 4u) {
    let o0 = kv4 + s0 * kstride4;
    let o1 = kv4 + min(s0 + 1u, lastKey) * kstride4;
    let o2 = kv4 + min(s0 + 2u, lastKey) * kstride4;
    let o3 = kv4 + min(s0 + 3u, lastKey) * kstride4;
    let kk = Keys4(loadK(o0), loadK(o1), loadK(o2), loadK(o3));
    let vv = Keys4(loadV(o0), loadV(o1), loadV(o2), loadV(o3));
    stA = soft_chunk(stA, qA, kk, vv, s0, lastA, nA);
    if (nB > 0u) { stB = soft_chunk(stB, qB, kk, vv, s0, lastB, nB); }
  }
  store_soft(qb, 0u, stA, nA);
  if (nB > 0u) { store_soft(qb, 4u, stB, nB); }
}

// dQ accumulation of a half block for key s: adds P_ts (dO_t · V_s - Dlt_t) K_s to each row.
fn dq_step(acc: Rows, q: Rows, g: Rows, k: Head, v: Head, lse: vec4<f32>, delta: vec4<f32>, s: u32, last: vec4<u32>, n: u32) -> Rows {
  // Masked (future) keys: select, not multiply, since exp of a future score may overflow.
  let ds = select(vec4<f32>(0.0), exp(dims.scale * rdot(q, k, n) - lse) * (rdot(g, v, n) - delta), vec4<u32>(s) <= last);
  return radd(acc, ds, k, n);
}

fn store_dq(qb: QueryBlock, base: u32, acc: Rows, n: u32) {
  if (block_real(qb, base)) { storeDQ(block_q4(qb, base), hscale(dims.scale, acc.r0)); }
  if (on(1u, n) && block_real(qb, base + 1u)) { storeDQ(block_q4(qb, base + 1u), hscale(dims.scale, acc.r1)); }
  if (on(2u, n) && block_real(qb, base + 2u)) { storeDQ(block_q4(qb, base + 2u), hscale(dims.scale, acc.r2)); }
  if (on(3u, n) && block_real(qb, base + 3u)) { storeDQ(block_q4(qb, base + 3u), hscale(dims.scale, acc.r3)); }
}

// One invocation per query block: dQ_t = scale * sum_s P_ts (dO_t · V_s - Dlt_t) K_s for each of
// its rows, every K_s and V_s loaded once for the block.
@compute @workgroup_size(WG)
fn backward_query_blocked(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
  let nA = half_rows(ROWS_H * ROWS_T, 0u);
  let nB = half_rows(ROWS_H * ROWS_T, 4u);
  let qb = query_block(thread_row(wid, nwg, lid));
  if (!qb.valid) { return; }
  let lastA = block_last(qb, 0u);
  let lastB = block_last(qb, 4u);
  let lastKey = max(max(max(lastA.x, lastA.y), max(lastA.z, lastA.w)), max(max(lastB.x, lastB.y), max(lastB.z, lastB.w)));
  let kv4 = (qb.b * dims.Tk * dims.KVH + qb.kvh) * HEAD_D4;
  let kstride4 = dims.KVH * HEAD_D4;
  let lseA = loadL(qb, 0u);
  let deltaA = loadDlt(qb, 0u);
  let qA = loadQRows(qb, 0u, nA);
  let gA = loadDORows(qb, 0u, nA);
  var lseB: vec4<f32>;
  var deltaB: vec4<f32>;
  var qB: Rows;
  var gB: Rows;
  if (nB > 0u) {
    lseB = loadL(qb, 4u);
    deltaB = loadDlt(qb, 4u);
    qB = loadQRows(qb, 4u, nB);
    gB = loadDORows(qb, 4u, nB);
  }
  var accA: Rows;
  var accB: Rows;
  for (var s = 0u; s <= lastKey; s++) {
    let ko = kv4 + s * kstride4;
    let k = loadK(ko);
    let v = loadV(ko);
    accA = dq_step(accA, qA, gA, k, v, lseA, deltaA, s, lastA, nA);
    if (nB > 0u) { accB = dq_step(accB, qB, gB, k, v, lseB, deltaB, s, lastB, nB); }
  }
  store_dq(qb, 0u, accA, nA);
  if (nB > 0u) { store_dq(qb, 4u, accB, nB); }
}

fn loadKRows(o: vec4<u32>, n: u32) -> Rows {
  var r: Rows;
  r.r0 = loadK(o.x);
  if (on(1u, n)) { r.r1 = loadK(o.y); }
  if (on(2u, n)) { r.r2 = loadK(o.z); }
  if (on(3u, n)) { r.r3 = loadK(o.w); }
  return r;
}
fn loadVRows(o: vec4<u32>, n: u32) -> Rows {
  var r: Rows;
  r.r0 = loadV(o.x);
  if (on(1u, n)) { r.r1 = loadV(o.y); }
  if (on(2u, n)) { r.r2 = loadV(o.z); }
  if (on(3u, n)) { r.r3 = loadV(o.w); }
  return r;
}

// dK, dV accumulators of a half block of keys.
struct KVAcc { k: Rows, v: Rows }

// Query t (absolute position pos) of head row lse / dl, for a half block of keys:
//   dV_s += P_ts dO_t,  dK_s += P_ts (dO_t · V_s - Dlt_t) Q_t  (scale applied at the end).
fn kv_step(acc: KVAcc, k: Rows, v: Rows, qt: Head, gt: Head, lse: f32, dl: f32, pos: u32, keys: vec4<u32>, n: u32) -> KVAcc {
  // Causal: query t sees key s when pos0 + t >= s; select, not multiply (exp may overflow).
  let p = select(vec4<f32>(0.0), exp(dims.scale * rdot(k, qt, n) - lse), vec4<u32>(pos) >= keys);
  let ds = p * (rdot(v, gt, n) - dl);
  return KVAcc(radd(acc.k, ds, qt, n), radd(acc.v, p, gt, n));
}

// Writes dK, dV of keys s0 + base .. s0 + base + 3 at vec4 offsets ko (present keys below Tk).
fn store_kv(acc: KVAcc, ko: vec4<u32>, first: u32, n: u32) {
  if (first < dims.Tk) { storeDK(ko.x, hscale(dims.scale, acc.k.r0)); storeDV(ko.x, acc.v.r0); }
  if (on(1u, n) && first + 1u < dims.Tk) { storeDK(ko.y, hscale(dims.scale, acc.k.r1)); storeDV(ko.y, acc.v.r1); }
  if (on(2u, n) && first + 2u < dims.Tk) { storeDK(ko.z, hscale(dims.scale, acc.k.r2)); storeDV(ko.z, acc.v.r2); }
  if (on(3u, n) && first + 3u < dims.Tk) { storeDK(ko.w, hscale(dims.scale, acc.k.r3)); storeDV(ko.w, acc.v.r3); }
}

// One invocation per block of ROWS_K consecutive key rows s0 .. s0 + ROWS_K - 1 of key/value head
// kvh (blocks numbered (b, kvh, key block), key blocks fastest). Sums over the group's query heads
// and the queries that see the block's first key; each Q_t, dO_t is loaded once for all its keys:
//   dV_s = sum P_ts dO_t,  dK_s = scale * sum P_ts (dO_t · V_s - Dlt_t) Q_t.
// Keys past Tk are clamped to Tk - 1 for their loads and not stored.
@compute @workgroup_size(WG)
fn backward_keyvalue_blocked(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                             @builtin(local_invocation_index) lid: u32) {
  let nA = half_rows(ROWS_K, 0u);
  let nB = half_rows(ROWS_K, 4u);
  let blk = thread_row(wid, nwg, lid);
  let nkb = (dims.Tk + ROWS_K - 1u) / ROWS_K;
  let bk = blk / nkb;
  if (bk >= dims.B * dims.KVH) { return; }
  let s0 = (blk % nkb) * ROWS_K;
  let kvh = bk % dims.KVH;
  let b = bk / dims.KVH;
  let keysA = min(vec4<u32>(s0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(dims.Tk - 1u));
  let keysB = min(vec4<u32>(s0) + vec4<u32>(4u, 5u, 6u, 7u), vec4<u32>(dims.Tk - 1u));
  let koA = ((vec4<u32>(b * dims.Tk) + keysA) * dims.KVH + kvh) * HEAD_D4; // (b, s, kvh, 0) in vec4s
  let koB = ((vec4<u32>(b * dims.Tk) + keysB) * dims.KVH + kvh) * HEAD_D4;
  let group = dims.H / dims.KVH;
  let qstride4 = dims.H * HEAD_D4;
  let tfirst = select(0u, s0 - dims.pos0, s0 > dims.pos0); // first query that sees key s0
  let kA = loadKRows(koA, nA);
  let vA = loadVRows(koA, nA);
  var kB: Rows;
  var vB: Rows;
  if (nB > 0u) {
    kB = loadKRows(koB, nB);
    vB = loadVRows(koB, nB);
  }
  var accA: KVAcc;
  var accB: KVAcc;
  for (var gi = 0u; gi < group; gi++) {
    let h = kvh * group + gi;
    let lbase = (b * dims.H + h) * dims.Tq;
    var qo = (b * dims.Tq * dims.H + h) * HEAD_D4 + tfirst * qstride4;
    for (var t = tfirst; t < dims.Tq; t++) {
      let qt = loadQ(qo);
      let gt = loadDO(qo);
      let lse = L[lbase + t];
      let dl = Dlt[lbase + t];
      accA = kv_step(accA, kA, vA, qt, gt, lse, dl, dims.pos0 + t, keysA, nA);
      if (nB > 0u) { accB = kv_step(accB, kB, vB, qt, gt, lse, dl, dims.pos0 + t, keysB, nB); }
      qo += qstride4;
    }
  }
  store_kv(accA, koA, s0, nA);
  if (nB > 0u) { store_kv(accB, koB, s0 + 4u, nB); }
}
