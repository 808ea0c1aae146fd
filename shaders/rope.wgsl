// Rotary position embedding, Hugging Face convention (rotate_half over the two halves of a head):
// for a head vector x of length D, half = D/2, i < half and position p:
//   out[i]        = x[i]        * cos[p, i] - x[i + half] * sin[p, i]
//   out[i + half] = x[i + half] * cos[p, i] + x[i]        * sin[p, i]
// i.e. HF's q * cos + rotate_half(q) * sin with cos/sin tables whose two halves are equal.
//
//   src (x or dy):  [M, nHeads * D]   rows are tokens; row m has position p = pos0 + (m % T)
//   cos, sin:       [maxPos, D/2]     computed on the CPU (ropeTables in src/reference/rope.ts)
//   dst (out or dx):[M, nHeads * D]   overwritten; the *_inplace entry points read it as src too
//
// nHeads is H for queries and KVH for keys. pos0 is 0 for training and prefill and the cache length
// for a KV-cache decode step (then T = 1 and M = B).
//
// forward applies the rotation R(p); backward applies its transpose R(p)^T = R(-p) to dy:
//   dx[i]        =  dy[i] * cos + dy[i + half] * sin
//   dx[i + half] = -dy[i] * sin + dy[i + half] * cos
// Both read src and write dst at the same pair of indices, so they share one binding set, and an
// invocation reads its pair before writing it: forward_inplace / backward_inplace rotate dst in
// place (WebGPU cannot bind one buffer as src and dst), which saves the model a pre-rope copy of
// q and k per layer and of their gradients.
//
// One invocation per (row, head, i < half) pair; the 1-D grid may fold into y past 65535
// workgroups. A position past the table (which the dispatcher rules out) writes zeros rather than
// reading out of bounds.

struct Dims {
  M: u32,
  nHeads: u32,
  D: u32,
  T: u32,
  pos0: u32,
  maxPos: u32,
}

override WG: u32 = 64;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> cosTable: array<f32>;
@group(0) @binding(3) var<storage, read> sinTable: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

// The pair (lo, hi) = (i, i + half) of one head that invocation idx rotates, and the rotation's
// cos and sign * sin; ok is false for a position past the tables.
struct Rotation { lo: u32, hi: u32, c: f32, s: f32, ok: bool }

fn rotation(idx: u32, sign: f32) -> Rotation {
  let half = dims.D / 2u;
  let i = idx % half;
  let rest = idx / half;
  let head = rest % dims.nHeads;
  let m = rest / dims.nHeads;
  let p = dims.pos0 + m % dims.T;
  let lo = (m * dims.nHeads + head) * dims.D + i;
  if (p >= dims.maxPos) { return Rotation(lo, lo + half, 0.0, 0.0, false); }
  return Rotation(lo, lo + half, cosTable[p * half + i], sign * sinTable[p * half + i], true);
}

// Rotates the pair (i, i + half) of one head by +angle (sign = 1) or -angle (sign = -1).
fn rotatePair(idx: u32, sign: f32) {
  let r = rotation(idx, sign);
  if (!r.ok) {
    dst[r.lo] = 0.0;
    dst[r.hi] = 0.0;
    return;
  }
  let a = src[r.lo];
  let b = src[r.hi];
  dst[r.lo] = a * r.c - b * r.s;
  dst[r.hi] = b * r.c + a * r.s;
}

// rotatePair with dst as its own source.
fn rotatePairInPlace(idx: u32, sign: f32) {
  let r = rotation(idx, sign);
  if (!r.ok) {
    dst[r.lo] = 0.0;
    dst[r.hi] = 0.0;
    return;
  }
  let a = dst[r.lo];
  let b = dst[r.hi];
  dst[r.lo] = a * r.c - b * r.s;
  dst[r.hi] = b * r.c + a * r.s;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid.x;
  if (idx >= dims.M * dims.nHeads * (dims.D / 2u)) { return; }
  rotatePair(idx, 1.0);
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid.x;
  if (idx >= dims.M * dims.nHeads * (dims.D / 2u)) { return; }
  rotatePair(idx, -1.0);
}

@compute @workgroup_size(WG)
fn forward_inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid.x;
  if (idx >= dims.M * dims.nHeads * (dims.D / 2u)) { return; }
  rotatePairInPlace(idx, 1.0);
}

@compute @workgroup_size(WG)
fn backward_inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid.x;
  if (idx >= dims.M * dims.nHeads * (dims.D / 2u)) { return; }
  rotatePairInPlace(idx, -1.0);
}
