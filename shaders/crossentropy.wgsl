// Cross-entropy over the vocabulary with PyTorch's semantics:
//   F.cross_entropy(logits, labels, ignore_index = -100, reduction = 'mean')
//   loss = sum over counted rows m of (lse[m] - logits[m, labels[m]]) / count
// where lse[m] = log(sum_v exp(logits[m, v])) and count = number of counted rows.
//
//   logits:  [rows, V]  f32   the rows of this call (rows = M, or a chunk of M, see rowOffset)
//   labels:  [M]        i32   target token per row, already shifted by the caller; -100 = ignored
//   lse:     [M]        f32   saved by ce_forward for ce_backward
//   rowLoss: [M]        f32   lse - logits[label], 0 for ignored rows
//   stats:   [4]        f32   written by ce_reduce: [loss, count, invalid, 0]
//   dlogits: [rows, V]  f32   written by ce_backward (overwrite); ce_backward_inplace reads the
//                             logits from it and overwrites them with their gradient
//
// Row chunking: every entry point that touches logits processes `rows` rows starting at global row
// `rowOffset`: logits/dlogits are indexed by the local row, labels/lse/rowLoss by rowOffset + row.
// A caller short of memory (V = 49152 makes one [M, V] f32 buffer 192 KiB per row) can compute
// logits for one chunk at a time; with rowOffset = 0 and rows = M it is the plain whole-batch case.
//
// Labels outside 0..V-1 other than -100 are a caller bug (a tokenizer / vocabulary mismatch). They
// must never index logits out of bounds, so every entry point treats them as ignored; ce_reduce
// counts them into stats[2] ("invalid") so the caller sees the bug in its metrics readback instead
// of a silently lower loss. Counting in ce_reduce (which reads all labels anyway) keeps the flag
// race free: WGSL has no float atomics and ce_forward runs one workgroup per row.
//
// WebGPU forbids binding one buffer both read-only and writable in one dispatch, so ce_backward
// (logits read-only, dlogits written) needs a second [rows, V] buffer, 4 * rows * V bytes (192 MiB
// for M = 1024 at V = 49152). ce_backward_inplace binds only the writable one: it reads each logit
// from dlogits and overwrites it with its gradient in the same invocation, so a training graph that
// no longer needs the logits after the backward keeps one [rows, V] buffer instead of two.
//
// WG (threads per workgroup) must be a power of two: the workgroup reductions halve it.
//
// ce_forward comes in two variants (src/engine/kernels/crossentropy.ts picks one from V, see
// chooseCeForwardVariant): ce_forward runs a workgroup per row with a tree reduction (long rows,
// large vocabularies); ce_forward_rows runs an invocation per row with two serial passes (max,
// then sum of exp), no workgroup memory and no barriers (small vocabularies: on software adapters
// the 256-thread workgroup's barriers cost ~0.7 ms per row, far more than the row's arithmetic).

override WG: u32 = 256;

// ce_forward and ce_backward. gradScale is used by ce_backward only (1 normally, 1/accumulation
// steps when accumulating micro-batches: the upstream gradient of the mean loss).
struct RowDims {
  rows: u32, V: u32, rowOffset: u32, gradScale: f32,
}

// ce_reduce.
struct ReduceDims {
  M: u32, V: u32,
}

@group(0) @binding(0) var<uniform> dims: RowDims;
@group(0) @binding(0) var<uniform> rdims: ReduceDims;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> rowLoss: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> dlogits: array<f32>;

var<workgroup> redA: array<f32, WG>;
var<workgroup> redB: array<f32, WG>;

// Finite stand-in for -inf as the running max: exp(x - (-inf)) would be exp(+inf) = inf and
// exp(-inf - (-inf)) NaN, while exp(x - FLT_LOWEST) underflows cleanly to 0.
const LOWEST: f32 = -3.4028234663852886e38;

fn isCounted(label: i32, V: u32) -> bool {
  return label >= 0 && u32(label) < V;
}

// One workgroup per row (grid folded into y past 65535 rows). Each thread walks the row with
// stride WG keeping an online (max, sum of exp(x - max)) pair, so logits are read once; the pairs
// are then merged by a tree reduction. Thread 0 writes lse and the row's loss.
@compute @workgroup_size(WG)
fn ce_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= dims.rows) { return; } // workgroup-uniform: the whole group leaves together
  let V = dims.V;
  let base = row * V;

  var mx = LOWEST;
  var s = 0.0;
  for (var v = lid; v < V; v += WG) {
    let x = logits[base + v];
    if (x > mx) {
      s = s * exp(mx - x) + 1.0;
      mx = x;
    } else {
      s += exp(x - mx);
    }
  }
  redA[lid] = mx;
  redB[lid] = s;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (lid < half) {
      let m1 = redA[lid];
      let m2 = redA[lid + half];
      let m = max(m1, m2);
      redB[lid] = redB[lid] * exp(m1 - m) + redB[lid + half] * exp(m2 - m);
      redA[lid] = m;
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let g = dims.rowOffset + row;
    let l = redA[0] + log(redB[0]);
    lse[g] = l;
    let label = labels[g];
    var loss = 0.0;
    if (isCounted(label, V)) { loss = l - logits[base + u32(label)]; }
    rowLoss[g] = loss;
  }
}

// One invocation per row (invocation index = (wid.x + wid.y * nwg.x) * WG + lid): the max of the
// row, then the sum of exp(x - max), both read straight from logits. Same outputs as ce_forward.
@compute @workgroup_size(WG)
fn ce_forward_rows(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = (wid.x + wid.y * nwg.x) * WG + lid;
  if (row >= dims.rows) { return; }
  let V = dims.V;
  let base = row * V;
  var mx = LOWEST;
  for (var v = 0u; v < V; v++) { mx = max(mx, logits[base + v]); }
  var s = 0.0;
  for (var v = 0u; v < V; v++) { s += exp(logits[base + v] - mx); }
  let g = dims.rowOffset + row;
  let l = mx + log(s);
  lse[g] = l;
  let label = labels[g];
  var loss = 0.0;
  if (isCounted(label, V)) { loss = l - logits[base + u32(label)]; }
  rowLoss[g] = loss;
}

// One workgroup over all M rows: stats = [sum rowLoss / count, count, invalid, 0]. count = 0 (every
// row ignored) gives loss 0, never 0/0. rowLoss of uncounted rows is 0 by construction, but the sum
// still skips them so a stale buffer cannot leak in.
@compute @workgroup_size(WG)
fn ce_reduce(@builtin(local_invocation_index) lid: u32) {
  var sum = 0.0;
  var count = 0.0;
  var invalid = 0.0;
  for (var m = lid; m < rdims.M; m += WG) {
    let label = labels[m];
    if (isCounted(label, rdims.V)) {
      sum += rowLoss[m];
      count += 1.0;
    } else if (label != -100) {
      invalid += 1.0;
    }
  }
  // Three sums, two arrays: reduce (sum, count) first, then invalid reusing redA.
  redA[lid] = sum;
  redB[lid] = count;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (lid < half) {
      redA[lid] += redA[lid + half];
      redB[lid] += redB[lid + half];
    }
    workgroupBarrier();
  }
  let total = redA[0];
  let n = redB[0];
  workgroupBarrier();
  redA[lid] = invalid;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (lid < half) { redA[lid] += redA[lid + half]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    stats[0] = select(0.0, total / n, n > 0.0);
    stats[1] = n;
    stats[2] = redA[0];
    stats[3] = 0.0;
  }
}

// One row of the backward: where it starts in logits / dlogits, whether it is counted, its lse and
// the factor k = gradScale / count. Reads lse even for ignored rows: every entry point must use all
// of its bindings statically.
struct GradRow { base: u32, counted: bool, lse: f32, k: f32, tgt: u32 }

fn gradRow(row: u32) -> GradRow {
  let label = labels[dims.rowOffset + row];
  let count = stats[1];
  let counted = isCounted(label, dims.V) && count > 0.0;
  return GradRow(row * dims.V, counted, lse[dims.rowOffset + row], dims.gradScale / count, u32(max(label, 0)));
}

// The gradient of one logit x at vocabulary index v of a counted row.
fn gradAt(r: GradRow, x: f32, v: u32) -> f32 {
  return r.k * (exp(x - r.lse) - select(0.0, 1.0, v == r.tgt));
}

// dlogits[r, v] = gradScale * (softmax(logits[r])[v] - [v == label]) / count for counted rows, 0
// for ignored (and invalid) rows; overwrites. softmax = exp(x - lse) with lse saved by ce_forward,
// so no second reduction is needed. count comes from ce_reduce's stats on the GPU (no readback).
@compute @workgroup_size(WG)
fn ce_backward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= dims.rows) { return; }
  let r = gradRow(row);
  // Ignored rows (prompt tokens: most rows of instruction data) write zeros without reading logits.
  if (!r.counted) {
    for (var v = lid; v < dims.V; v += WG) { dlogits[r.base + v] = 0.0; }
    return;
  }
  for (var v = lid; v < dims.V; v += WG) {
    dlogits[r.base + v] = gradAt(r, logits[r.base + v], v);
  }
}

// ce_backward with the logits in dlogits (overwritten by their gradient): each element is read
// and written by the same invocation, so no other invocation sees a half-updated row.
@compute @workgroup_size(WG)
fn ce_backward_inplace(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= dims.rows) { return; }
  let r = gradRow(row);
  // Ignored rows (prompt tokens: most rows of instruction data) write zeros without reading logits.
  if (!r.counted) {
    for (var v = lid; v < dims.V; v += WG) { dlogits[r.base + v] = 0.0; }
    return;
  }
  for (var v = lid; v < dims.V; v += WG) {
    dlogits[r.base + v] = gradAt(r, dlogits[r.base + v], v);
  }
}
