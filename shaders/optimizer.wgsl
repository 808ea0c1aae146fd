// Optimizer step: global gradient-norm clipping (torch.nn.utils.clip_grad_norm_) followed by AdamW
// (torch.optim.AdamW, single-tensor path: foreach = False, amsgrad = False, maximize = False).
//
// Every parameter tensor P (any shape, flattened to n values) has:
//   param: [n]  f32   the trainable values (updated in place)
//   grad:  [n]  f32   accumulated gradient (zeroed by adamw when ZERO_GRAD is set)
//   m, v:  [n]  f32   AdamW first and second moments (start at 0)
// Shared by all tensors of one step:
//   partials: [G]  f32   sum of squares of grad chunks; tensor i owns partials[offset_i .. offset_i + groups_i)
//   stats:    [4]  f32   [norm, scale, nonFinite, 0] written by grad_norm_finalize, read by adamw
//
// A step records: grad_sumsq for every tensor, grad_norm_finalize once, adamw for every tensor.
// All per-step numbers stay on the GPU; stats is read back only for metrics.
//
// Non-finite gradients (nonFinite = 1): torch (error_if_nonfinite = False) would multiply every
// gradient by a NaN coefficient and write NaN into every parameter and moment for good. Here adamw
// leaves param, m and v untouched for that step instead (it still zeroes grad when ZERO_GRAD), so
// one bad batch costs one skipped step; the caller reads stats[2] to report it.
//
// WG must be a power of two (the reductions halve it).

override WG: u32 = 256;
// grad_sumsq: values summed per thread; a workgroup covers CHUNK = WG * ITEMS values.
override ITEMS: u32 = 8;
// adamw: also set grad to 0 after reading it (gradients accumulate across micro-batches).
override ZERO_GRAD: bool = false;

struct SumsqDims {
  n: u32,       // values in this grad tensor
  offset: u32,  // first partials slot of this tensor
  groups: u32,  // workgroups (= slots) of this tensor: ceil(n / CHUNK)
}

struct FinalizeDims {
  count: u32,    // partials slots in use (sum of groups over all tensors)
  maxNorm: f32,  // <= 0 disables clipping (scale 1)
}

struct AdamWDims {
  n: u32,
}

// Written by the AdamWHyper object with queue.writeBuffer before each step. Derived values are
// computed on the CPU in float64, as torch computes them in Python floats, then rounded once.
struct Hyper {
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weightDecay: f32,
  step: u32,            // t, 1 for the first step
  decay: f32,           // 1 - lr * weightDecay
  oneMinusBeta1: f32,   // 1 - beta1
  oneMinusBeta2: f32,   // 1 - beta2
  stepSize: f32,        // lr / (1 - beta1^t)
  bc2Sqrt: f32,         // sqrt(1 - beta2^t)
}

@group(0) @binding(0) var<uniform> sdims: SumsqDims;
@group(0) @binding(0) var<uniform> fdims: FinalizeDims;
@group(0) @binding(0) var<uniform> adims: AdamWDims;
@group(0) @binding(1) var<uniform> hyper: Hyper;
// grad_sumsq reads gradR; adamw binds the same slot read_write (it may zero the gradient).
@group(0) @binding(2) var<storage, read> gradR: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> param: array<f32>;
@group(0) @binding(6) var<storage, read_write> m1: array<f32>;
@group(0) @binding(7) var<storage, read_write> m2: array<f32>;

var<workgroup> red: array<f32, WG>;
var<workgroup> bad: array<u32, WG>;

// NaN or +-Inf, from the bits: WGSL lets implementations assume floats are finite, so x != x
// may be folded away; the exponent field test cannot be.
fn nonFinite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

// Sum of squares of one CHUNK of grad per workgroup into partials[offset + group]. The grid may
// be folded into y and hold more workgroups than `groups`: the extra ones must not write, they
// would land in the next tensor's slots.
@compute @workgroup_size(WG)
fn grad_sumsq(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let group = wid.x + wid.y * nwg.x;
  if (group >= sdims.groups) { return; } // workgroup-uniform
  let start = group * WG * ITEMS;
  var s = 0.0;
  for (var k = 0u; k < ITEMS; k++) {
    let i = start + k * WG + lid; // consecutive threads read consecutive values
    if (i < sdims.n) {
      let g = gradR[i];
      s += g * g;
    }
  }
  red[lid] = s;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (lid < half) { red[lid] += red[lid + half]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partials[sdims.offset + group] = red[0]; }
}

// One workgroup: norm = sqrt(sum of partials); scale = min(1, maxNorm / (norm + 1e-6)) as
// clip_grad_norm_ (which multiplies by the clamped coefficient even when it is 1); scale = 1 when
// maxNorm <= 0. nonFinite is checked on every partial as well as on the total, so a NaN cannot
// hide behind a reduction that an implementation assumed finite.
@compute @workgroup_size(WG)
fn grad_norm_finalize(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  var b = 0u;
  for (var i = lid; i < fdims.count; i += WG) {
    let p = partials[i];
    s += p;
    b = b | u32(nonFinite(p));
  }
  red[lid] = s;
  bad[lid] = b;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (lid < half) {
      red[lid] += red[lid + half];
      bad[lid] = bad[lid] | bad[lid + half];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let norm = sqrt(red[0]);
    let isBad = bad[0] != 0u || nonFinite(norm);
    var scale = 1.0;
    if (fdims.maxNorm > 0.0) { scale = min(1.0, fdims.maxNorm / (norm + 1e-6)); }
    stats[0] = norm;
    stats[1] = scale;
    stats[2] = select(0.0, 1.0, isBad);
    stats[3] = 0.0;
  }
}

// One thread per value. torch's order of operations, with g = grad * clip scale:
//   param *= 1 - lr * wd
//   m = lerp(m, g, 1 - beta1) = m + (1 - beta1) * (g - m)
//   v = v * beta2 + (1 - beta2) * g * g
//   param -= stepSize * m / (sqrt(v) / sqrt(1 - beta2^t) + eps),  stepSize = lr / (1 - beta1^t)
@compute @workgroup_size(WG)
fn adamw(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= adims.n) { return; }
  let g = grad[i] * stats[1];
  if (ZERO_GRAD) { grad[i] = 0.0; }
  if (stats[2] != 0.0) { return; } // non-finite gradients: skip the update (see header)
  let p = param[i] * hyper.decay;
  let m = m1[i] + hyper.oneMinusBeta1 * (g - m1[i]);
  let v = m2[i] * hyper.beta2 + hyper.oneMinusBeta2 * g * g;
  m1[i] = m;
  m2[i] = v;
  let denom = sqrt(v) / hyper.bc2Sqrt + hyper.eps;
  param[i] = p - hyper.stepSize * (m / denom);
}
