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
// WGSL has no float atomics, so each backward entry point is a gather: backward_query owns one
// query row (b, h, t) per workgroup, backward_keyvalue owns one key row (b, kvh, s) per workgroup.
// Binding numbers are global to this file; each entry point uses (and its dispatcher passes) only
// its own subset, and statically uses all of it:
//   forward            1 Q, 2 K, 3 V, 4 O (write), 5 L (write)
//   backward_delta     4 O, 6 dO, 7 Dlt (write)
//   backward_query     1 Q, 2 K, 3 V, 5 L, 6 dO, 7 Dlt, 8 dQ (write)
//   backward_keyvalue  1 Q, 2 K, 3 V, 5 L, 6 dO, 7 Dlt, 9 dK (write), 10 dV (write)

struct Dims {
  B: u32, Tq: u32, Tk: u32, pos0: u32,
  H: u32, KVH: u32, D: u32,
  scale: f32,
}

// Threads per workgroup; must be a power of two (tree reductions halve it).
override WG: u32 = 64u;
// Longest softmax row the forward holds in workgroup memory (MAX_KEYS * 4 bytes); the dispatcher
// rejects pos0 + Tq past it. The backward streams keys in chunks of WG and has no such limit.
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
