// Token embedding lookup and its gradient.
//
//   ids:       [M]          u32 token ids (M = B*T rows)
//   E:         [V, C]       embedding table (frozen in LoRAMoE, but its gradient is provided);
//                           f32, or f16 packed two per word (forward_f16, see matmul_f16w.wgsl)
//   out:       [M, C]       out[m, c] = E[ids[m], c]; an id >= V gives a zero row (overwritten)
//   dout:      [M, C]       gradient of out
//   tokens:    [maxU]       the batch's U distinct ids (first U entries valid)
//   offsets:   [maxU + 1]   rows of token u are positions[offsets[u] .. offsets[u + 1])
//   positions: [M]          row indices grouped by token (a CSR plan built on the CPU)
//   dE:        [V, C]       gradient of E (accumulated: parameter gradient)
//
// The backward is a scatter-add (dE[ids[m]] += dout[m]) and WGSL has no float atomics, so it runs
// as a gather over the CPU-built plan: the invocation for (u, c) sums dout[pos, c] over the rows of
// token u and adds the sum to dE[tokens[u], c]. Distinct u write distinct rows of dE, so no two
// invocations touch one element. The dispatch is sized for maxU; the actual U is a uniform the
// dispatcher rewrites per batch, and invocations past U return.
//
// Ids >= V are skipped (forward writes zeros, backward adds nothing), so a bad id can never make
// the kernel read or write outside E or dE; the data layer rejects such ids before this point.
// One invocation per output element (m, c) or (u, c) on a 1-D grid that may fold into y.

struct Dims {
  M: u32,
  C: u32,
  V: u32,
  U: u32,  // distinct ids in this batch (backward)
}

override WG: u32 = 256;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> E: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> tokens: array<u32>;
@group(0) @binding(6) var<storage, read> offsets: array<u32>;
@group(0) @binding(7) var<storage, read> positions: array<u32>;
@group(0) @binding(8) var<storage, read_write> dE: array<f32>;
// The same table stored in f16, two halves per word (forward_f16 only; frozen, so no backward).
@group(0) @binding(2) var<storage, read> EH: array<u32>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid.x;
  if (idx >= dims.M * dims.C) { return; }
  let m = idx / dims.C;
  let c = idx % dims.C;
  let id = ids[m];
  var v = 0.0;
  if (id < dims.V) { v = E[id * dims.C + c]; }
  out[idx] = v;
}

@compute @workgroup_size(WG)
fn forward_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid.x;
  if (idx >= dims.M * dims.C) { return; }
  let m = idx / dims.C;
  let c = idx % dims.C;
  let id = ids[m];
  var v = 0.0;
  if (id < dims.V) {
    let e = id * dims.C + c;
    let pair = unpack2x16float(EH[e >> 1u]);
    v = select(pair.x, pair.y, (e & 1u) == 1u);
  }
  out[idx] = v;
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid.x;
  let u = idx / dims.C;
  let c = idx % dims.C;
  if (u >= dims.U) { return; }
  let token = tokens[u];
  if (token >= dims.V) { return; }
  var acc = 0.0;
  for (var j = offsets[u]; j < offsets[u + 1u]; j++) {
    let pos = positions[j];
    if (pos < dims.M) { acc += dout[pos * dims.C + c]; }
  }
  let k = token * dims.C + c;
  dE[k] = dE[k] + acc;
}
