/**
 * Dispatchers for shaders/embedding.wgsl, the token embedding:
 *
 *   embeddingForwardOp   ids u32 [M], E [V, C] -> out [M, C]        out[m] = E[ids[m]] (overwrite;
 *                                                                    an id >= V gives zeros)
 *   embeddingBackwardOp  dout [M, C] + CSR plan -> dE [V, C]         dE[ids[m]] += dout[m] (accumulate)
 *
 * The backward needs a plan of the batch's ids, built on the CPU where the ids are known when the
 * batch is made (embeddingBackwardPlan). Per batch:
 *
 *   const plan = embeddingBackwardPlan(ids);   // CPU, O(M log M)
 *   writeTensor(ctx, idsTensor, ids);           // for the forward
 *   backwardOp.setPlan(plan);                   // uploads tokens/offsets/positions and U
 *
 * The op is built once for at most M rows and maxU distinct ids (tensors from
 * embeddingPlanTensors) and dispatches maxU*C invocations; U, the actual count, is a uniform that
 * setPlan rewrites (queue.writeBuffer: it takes effect at the next queue.submit, so every dispatch
 * of the op in one submission uses the plan set last). Invocations past U return at once.
 * Uniforms: M, C, V, U.
 */
import type { GpuContext } from '../gpu';
import { ceilDiv, createOp, grid1d, type Op, setUniforms } from '../op';
import type { ShaderSource } from '../pipelines';
import code from '../../../shaders/embedding.wgsl?raw';
import { createTensor, type Tensor } from '../tensor';
import { checkSizes, needTensor } from './checks';

const SHADER: ShaderSource = { name: 'embedding', code };

const WG = 256;

/** CSR grouping of a batch's rows by token id. */
export interface EmbeddingBackwardPlan {
  /** The U distinct ids, ascending. */
  tokens: Uint32Array;
  /** U + 1 entries: rows of tokens[u] are positions[offsets[u] .. offsets[u + 1]). */
  offsets: Uint32Array;
  /** M row indices, grouped by token, ascending within a token. */
  positions: Uint32Array;
}

/** Groups the rows of `ids` [M] by id (a counting of the scatter dE[ids[m]] += dout[m]). */
export function embeddingBackwardPlan(ids: Uint32Array): EmbeddingBackwardPlan {
  const M = ids.length;
  const order = Array.from({ length: M }, (_, m) => m).sort((a, b) => ids[a] - ids[b] || a - b);
  const positions = Uint32Array.from(order);
  const tokens: number[] = [];
  const offsets: number[] = [];
  for (let j = 0; j < M; j++) {
    const id = ids[positions[j]];
    if (j === 0 || id !== ids[positions[j - 1]]) {
      tokens.push(id);
      offsets.push(j);
    }
  }
  offsets.push(M);
  return { tokens: Uint32Array.from(tokens), offsets: Uint32Array.from(offsets), positions };
}

export interface EmbeddingPlanTensors {
  tokens: Tensor<'u32'>;
  offsets: Tensor<'u32'>;
  positions: Tensor<'u32'>;
}

/** u32 tensors for plans of up to M rows and maxU distinct ids (maxU defaults to M). */
export function embeddingPlanTensors(ctx: GpuContext, M: number, maxU = M, prefix = 'embedding plan'): EmbeddingPlanTensors {
  return {
    tokens: createTensor(ctx, `${prefix} tokens`, [maxU], 'u32'),
    offsets: createTensor(ctx, `${prefix} offsets`, [maxU + 1], 'u32'),
    positions: createTensor(ctx, `${prefix} positions`, [M], 'u32'),
  };
}

interface Dims {
  M: number;
  C: number;
  V: number;
  label?: string;
  /** Largest workgroup count per grid dimension (tests lower it to exercise the folded grid). */
  maxGridDim?: number;
}

export interface EmbeddingForwardArgs extends Dims {
  ids: Tensor;
  E: Tensor;
  out: Tensor;
}

export interface EmbeddingBackwardArgs extends Dims, EmbeddingPlanTensors {
  dout: Tensor;
  dE: Tensor;
  /** Largest U the op serves; defaults to the tokens tensor's size. */
  maxU?: number;
  /** First plan to upload (else U = 0 until setPlan). */
  plan?: EmbeddingBackwardPlan;
}

export interface EmbeddingBackwardOp extends Op {
  /** Uploads a batch's plan (tokens, offsets, positions) and sets U. */
  setPlan(plan: EmbeddingBackwardPlan): void;
}

const checkDims = (op: string, d: Dims) => checkSizes(op, { M: d.M, C: d.C, V: d.V });

function gridFor(ctx: GpuContext, invocations: number, maxGridDim: number | undefined): [number, number] {
  return grid1d(ceilDiv(invocations, WG), Math.min(maxGridDim ?? 65535, ctx.adapter.limits.maxComputeWorkgroupsPerDimension));
}

/** out[m, c] = E[ids[m], c] (0 when ids[m] >= V). out is overwritten. */
export function embeddingForwardOp(ctx: GpuContext, args: EmbeddingForwardArgs): Op {
  const op = 'embedding forward';
  checkDims(op, args);
  const { M, C, V } = args;
  needTensor(op, 'ids', args.ids, M, `[M=${M}]`, 'u32');
  // A frozen table may be stored in f16 (src/model/weights.ts); forward_f16 widens it to f32.
  const half = args.E.dtype === 'f16';
  needTensor(op, 'E', args.E, V * C, `[V=${V}, C=${C}]`, half ? 'f16' : 'f32');
  needTensor(op, 'out', args.out, M * C, `[M=${M}, C=${C}]`, 'f32');
  if (args.out.buffer === args.E.buffer) throw new Error(`${op}: out ${args.out.name} shares its buffer with E ${args.E.name}`);
  return createOp(ctx, {
    label: args.label ?? `${op} ${args.out.name}`,
    shader: SHADER,
    entryPoint: half ? 'forward_f16' : 'forward',
    constants: { WG },
    uniforms: [['M', 'u32', M], ['C', 'u32', C], ['V', 'u32', V], ['U', 'u32', 0]],
    bindings: { 1: args.ids, 2: args.E, 3: args.out },
    workgroups: gridFor(ctx, M * C, args.maxGridDim),
  });
}

/**
 * dE[tokens[u], c] += sum over j in offsets[u] .. offsets[u + 1] of dout[positions[j], c], for
 * u < U (set by setPlan). dE accumulates: zero it first for a fresh gradient.
 */
export function embeddingBackwardOp(ctx: GpuContext, args: EmbeddingBackwardArgs): EmbeddingBackwardOp {
  const op = 'embedding backward';
  checkDims(op, args);
  const { M, C, V } = args;
  const maxU = args.maxU ?? args.tokens.size;
  if (!Number.isInteger(maxU) || maxU < 0) throw new Error(`${op}: maxU must be a non-negative integer, got ${maxU}`);
  needTensor(op, 'dout', args.dout, M * C, `[M=${M}, C=${C}]`, 'f32');
  needTensor(op, 'dE', args.dE, V * C, `[V=${V}, C=${C}]`, 'f32');
  needTensor(op, 'tokens', args.tokens, maxU, `[maxU=${maxU}]`, 'u32');
  needTensor(op, 'offsets', args.offsets, maxU + 1, `[maxU+1=${maxU + 1}]`, 'u32');
  needTensor(op, 'positions', args.positions, M, `[M=${M}]`, 'u32');
  if (args.dE.buffer === args.dout.buffer) throw new Error(`${op}: dE ${args.dE.name} shares its buffer with dout ${args.dout.name}`);
  const base = createOp(ctx, {
    label: args.label ?? `${op} ${args.dE.name}`,
    shader: SHADER,
    entryPoint: 'backward',
    constants: { WG },
    uniforms: [['M', 'u32', M], ['C', 'u32', C], ['V', 'u32', V], ['U', 'u32', 0]],
    bindings: { 4: args.dout, 5: args.tokens, 6: args.offsets, 7: args.positions, 8: args.dE },
    workgroups: gridFor(ctx, maxU * C, args.maxGridDim),
  });
  const write = (t: Tensor, data: Uint32Array) => {
    if (data.length > 0) ctx.device.queue.writeBuffer(t.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  };
  const setPlan = (plan: EmbeddingBackwardPlan) => {
    const U = plan.tokens.length;
    const rows = plan.positions.length;
    if (U > maxU) throw new Error(`${op}: the plan has ${U} distinct ids, the op was built for at most maxU=${maxU}`);
    if (rows > M) throw new Error(`${op}: the plan covers ${rows} rows, the op was built for at most M=${M}`);
    if (plan.offsets.length !== U + 1) throw new Error(`${op}: plan offsets has ${plan.offsets.length} entries, expected U+1 = ${U + 1}`);
    if (plan.offsets[0] !== 0 || plan.offsets[U] !== rows) {
      throw new Error(`${op}: plan offsets must run from 0 to positions.length=${rows}, got ${plan.offsets[0]} .. ${plan.offsets[U]}`);
    }
    for (let u = 0; u < U; u++) {
      if (plan.offsets[u + 1] < plan.offsets[u]) throw new Error(`${op}: plan offsets decrease at ${u}`);
      // Two entries for one id would have two invocations add into the same dE row: a race.
      if (u > 0 && plan.tokens[u] <= plan.tokens[u - 1]) throw new Error(`${op}: plan tokens must be strictly increasing (distinct ids), see ${plan.tokens[u]} after ${plan.tokens[u - 1]}`);
    }
    for (let j = 0; j < rows; j++) {
      if (plan.positions[j] >= M) throw new Error(`${op}: plan position ${plan.positions[j]} at ${j} is outside M=${M} rows`);
    }
    write(args.tokens, plan.tokens);
    write(args.offsets, plan.offsets);
    write(args.positions, plan.positions);
    if (base.uniformBuffer) setUniforms(ctx, base, { U });
  };
  if (args.plan) setPlan(args.plan);
  return { ...base, setPlan };
}
