/**
 * The kernel benchmark's page (tools/bench/kernels.html, driven by tools/bench/kernels.ts): times
 * the project's WGSL kernels against TensorFlow.js's WebGPU backend on the model's shapes, in one
 * page, on one GPUDevice, after checking both against a float64 CPU reference.
 *
 * Same device: TF.js runs on the project's own GPUDevice (tools/bench/tfjs-device.ts), so both
 * sides use the same adapter, queue and limits, and `device.queue.onSubmittedWorkDone()` waits for
 * the work of both.
 *
 * Timing (both sides the same way): wall time from the first API call of a run to the GPU being
 * done with it, readback excluded. The queue is drained first, then
 *   project: runOps(ops) (encode the prepared dispatches, one submit), await onSubmittedWorkDone();
 *   TF.js:   tf.tidy(run) (TF.js records its dispatches, creating its uniform buffers and bind
 *            groups as it always does), flush its pending command encoder (backend.submitQueue(),
 *            which a readback would otherwise trigger), await onSubmittedWorkDone().
 * So each side includes its own CPU-side encoding cost, as in real use, and neither includes a
 * readback (tensor.data() would add a copy and a map to TF.js only). tf.time()'s kernelMs is not
 * used: it needs timestamp queries between passes, which the project's single-pass runs do not
 * have, so the two sides would not be measured the same way. Each row: one correctness run per
 * side (compiles pipelines, uploads TF.js's inputs), one untimed warm-up each, then `reps` timed
 * runs alternating project / TF.js so both see the same machine load; the median counts.
 *
 * Correctness: every row's output, from both sides, is compared with the CPU reference of
 * kernels-ref.ts on the same inputs (a float32 tolerance scaled by the magnitude of the summed
 * terms). A mismatch on either side marks the row failed and the driver exits non-zero.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import { describeAdapter, requestGpu, type GpuContext } from '../../src/engine/gpu';
import { destroyOps, runOps, type Op } from '../../src/engine/op';
import { createTensor, readTensor, type Tensor } from '../../src/engine/tensor';
import { matmulOp } from '../../src/engine/kernels/matmul';
import { expertDownForwardOp, routerForwardOp } from '../../src/engine/kernels/loramoe';
import { attentionForwardOp } from '../../src/engine/kernels/attention';
import { Rng } from '../../src/util/random';
import { attentionRef, checkAgainst, loraRef, matmulRef, routerRef, type Reference } from './kernels-ref';
import { tfjsOnDevice } from './tfjs-device';
import { optionsFromQuery, type BenchGroup, type BenchModel, type BenchOptions, type BenchResult, type BenchRow } from './kernels-shared';
import { errorMessage } from '../../src/util/errors';

/** Batch * sequence of the benchmark: one sequence of 256 tokens. */
const SEQ = 256;
/** LoRAMoE defaults (src/loramoe/config.ts): 8 experts; alpha 32 (scale alpha / r). */
const EXPERTS = 8;
const ALPHA = 32;
const RANKS = [4, 8, 16];

interface ModelShape {
  name: BenchModel;
  C: number;
  F: number;
  H: number;
  KVH: number;
  V: number;
}

/** The demo backbone's shapes, from its shipped config (public/models/demo/config.json). */
async function demoShape(): Promise<ModelShape> {
  const res = await fetch('/models/demo/config.json');
  if (!res.ok) throw new Error(`could not load /models/demo/config.json: HTTP ${res.status}`);
  const c = (await res.json()) as Record<string, unknown>;
  const num = (k: string): number => {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error(`demo config: ${k} must be a positive integer, got ${String(v)}`);
    return v;
  };
  return { name: 'demo', C: num('hidden_size'), F: num('intermediate_size'), H: num('num_attention_heads'), KVH: num('num_key_value_heads'), V: num('vocab_size') };
}

/** SmolLM2-135M (30 layers; the per-layer shapes are what matter here). */
const SMOLLM2: ModelShape = { name: 'smollm2', C: 576, F: 1536, H: 9, KVH: 3, V: 49152 };

/** A row's prepared work: project ops, the TF.js function, and how to judge both outputs. */
interface Prepared {
  ops: Op[];
  /** Read after the first (correctness) run of `ops`. */
  out: Tensor;
  /** Builds the TF.js result from tensors made in `prepare` (runs inside tf.tidy). */
  tfRun: () => tf.Tensor;
  reference: () => Reference;
  dispose: () => void;
}

interface Case {
  model: BenchModel;
  group: BenchGroup;
  op: string;
  shape: string;
  tfjs: string;
  flops: number;
  prepare: (ctx: GpuContext, rng: Rng) => Prepared;
}

const status = (text: string) => {
  const el = document.getElementById('status');
  if (el) el.textContent = text;
};

/** "matmul:main_vec4:TRANS_A=0,TRANS_B=1,WG_X=8,WG_Y=8" -> "matmul vec4 tB" (the kernel actually chosen). */
function kernelName(op: Op): string {
  const [shader, entry, consts = ''] = op.pipeline.label.split(':');
  if (shader !== 'matmul') return entry;
  const flags = [consts.includes('TRANS_A=1') ? 'tA' : '', consts.includes('TRANS_B=1') ? 'tB' : ''].filter((s) => s).join(' ');
  const variant = entry === 'main_vec4' ? 'vec4' : entry === 'main_ragged' ? 'ragged' : 'scalar';
  return `matmul ${variant}${flags ? ` ${flags}` : ''}`;
}

/** Tensors of one row, destroyed together. */
class Pool {
  private readonly gpu: Tensor[] = [];
  private readonly tfs: tf.Tensor[] = [];
  constructor(private readonly ctx: GpuContext) {}
  /** The same values as a project tensor and a TF.js tensor. */
  both(name: string, shape: [number, number], d: Float32Array): { g: Tensor; t: tf.Tensor2D; d: Float32Array } {
    const g = createTensor(this.ctx, name, shape, 'f32', d);
    const t = tf.tensor2d(d, shape, 'float32');
    this.gpu.push(g);
    this.tfs.push(t);
    return { g, t, d };
  }
  /** A project-only tensor (outputs, scratch), zero-filled. */
  out(name: string, shape: readonly number[]): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    const g = createTensor(this.ctx, name, shape, 'f32', new Float32Array(size));
    this.gpu.push(g);
    return g;
  }
  dispose(ops: Op[]): void {
    destroyOps(ops);
    for (const g of this.gpu) g.destroy();
    for (const t of this.tfs) t.dispose();
  }
}

function matmulCases(m: ModelShape, smolLmHead: boolean): Case[] {
  const { C, F, H, KVH } = m;
  const kv = (C / H) * KVH;
  const projections: { name: string; K: number; N: number }[] = [
    { name: 'q/o', K: C, N: C },
    { name: 'k/v', K: C, N: kv },
    { name: 'gate/up', K: C, N: F },
    { name: 'down', K: F, N: C },
  ];
  if (m.name === 'demo' || smolLmHead) projections.push({ name: 'lm head', K: C, N: m.V });
  const M = SEQ;
  const cases: Case[] = [];
  for (const p of projections) {
    const { K, N } = p;
    const flops = 2 * M * N * K;
    // Forward, as projForward: y [M, N] = x [M, K] · W [N, K]ᵀ.
    cases.push({
      model: m.name, group: 'matmul', op: `${p.name} fwd`, shape: `[${M},${K}]·[${N},${K}]ᵀ`, tfjs: 'matMul(x, W, false, true)', flops,
      prepare: (ctx, rng) => {
        const pool = new Pool(ctx);
        const x = pool.both('x', [M, K], rng.f32Array(M * K));
        const w = pool.both('W', [N, K], rng.f32Array(N * K));
        const y = pool.out('y', [M, N]);
        const ops = [matmulOp(ctx, { a: x.g, b: w.g, c: y, M, N, K, transB: true, label: `${p.name} fwd` })];
        return {
          ops, out: y, dispose: () => pool.dispose(ops),
          tfRun: () => tf.matMul(x.t, w.t, false, true),
          reference: () => matmulRef(x.d, w.d, M, N, K, false, true),
        };
      },
    });
    // Input gradient, as projBackward: dX [M, K] = dY [M, N] · W [N, K] (overwrite).
    cases.push({
      model: m.name, group: 'matmul', op: `${p.name} dX`, shape: `[${M},${N}]·[${N},${K}]`, tfjs: 'matMul(dY, W)', flops,
      prepare: (ctx, rng) => {
        const pool = new Pool(ctx);
        const dy = pool.both('dY', [M, N], rng.f32Array(M * N));
        const w = pool.both('W', [N, K], rng.f32Array(N * K));
        const dx = pool.out('dX', [M, K]);
        const ops = [matmulOp(ctx, { a: dy.g, b: w.g, c: dx, M, N: K, K: N, label: `${p.name} dX` })];
        return {
          ops, out: dx, dispose: () => pool.dispose(ops),
          tfRun: () => tf.matMul(dy.t, w.t),
          reference: () => matmulRef(dy.d, w.d, M, K, N, false, false),
        };
      },
    });
    // Weight gradient, as projBackward: gW [N, K] += dY [M, N]ᵀ · x [M, K] (beta 1, from zero
    // here). TF.js gets the plain product (no accumulate): the ratio is conservative.
    cases.push({
      model: m.name, group: 'matmul', op: `${p.name} dW`, shape: `[${M},${N}]ᵀ·[${M},${K}]`, tfjs: 'matMul(dY, x, true, false)', flops,
      prepare: (ctx, rng) => {
        const pool = new Pool(ctx);
        const dy = pool.both('dY', [M, N], rng.f32Array(M * N));
        const x = pool.both('x', [M, K], rng.f32Array(M * K));
        const gw = pool.out('gW', [N, K]);
        const ops = [matmulOp(ctx, { a: dy.g, b: x.g, c: gw, M: N, N: K, K: M, transA: true, beta: 1, label: `${p.name} dW` })];
        return {
          ops, out: gw, dispose: () => pool.dispose(ops),
          tfRun: () => tf.matMul(dy.t, x.t, true, false),
          reference: () => matmulRef(dy.d, x.d, N, K, M, true, false),
        };
      },
    });
  }
  return cases;
}

/**
 * The experts of one adapted projection, forward (dropout off), as projForward: expert down
 * projection + gating in one dispatch (expert_down_forward), then y += g · Bcatᵀ (matmul, beta 1,
 * from zero here). The router weights w are an input (the router has its own row). TF.js: the
 * stacked experts as one einsum-like matMul each way (h = x · Acatᵀ, y = g · Bcatᵀ) with the router
 * weighting between them (mul of [M, N, R] by [M, N, 1]), its fastest form.
 */
function loraCases(m: ModelShape): Case[] {
  const M = SEQ;
  const N = EXPERTS;
  const cases: Case[] = [];
  for (const p of [{ name: 'gate/up', K: m.C, Nout: m.F }, { name: 'down', K: m.F, Nout: m.C }]) {
    for (const R of RANKS) {
      const { K, Nout } = p;
      const NR = N * R;
      const scale = ALPHA / R;
      cases.push({
        model: m.name, group: 'lora', op: `${p.name} experts r${R}`, shape: `N=${N} R=${R}: [${M},${K}]·[${NR},${K}]ᵀ → ·[${Nout},${NR}]ᵀ`,
        tfjs: 'matMul(x, A, f, t); mul(h, w·s); matMul(g, B, f, t)', flops: 2 * M * K * NR + 2 * M * NR * Nout,
        prepare: (ctx, rng) => {
          const pool = new Pool(ctx);
          const x = pool.both('x', [M, K], rng.f32Array(M * K));
          const a = pool.both('A', [NR, K], rng.f32Array(NR * K));
          const wData = new Float32Array(M * N);
          for (let r = 0; r < M; r++) {
            let s = 0;
            for (let i = 0; i < N; i++) s += wData[r * N + i] = rng.uniform(0.01, 1);
            for (let i = 0; i < N; i++) wData[r * N + i] /= s; // a softmax output: rows sum to 1
          }
          const w = pool.both('w', [M, N], wData);
          const b = pool.both('B', [Nout, NR], rng.f32Array(Nout * NR));
          const h = pool.out('h', [M, NR]);
          const g = pool.out('g', [M, NR]);
          const y = pool.out('y', [M, Nout]);
          const ops = [
            expertDownForwardOp(ctx, { x: x.g, a: a.g, w: w.g, h, g, M, K, N, R, scale, routed: true, p: 0, seed: 0, stream: 0 }),
            matmulOp(ctx, { a: g, b: b.g, c: y, M, N: Nout, K: NR, transB: true, beta: 1, label: 'experts combine' }),
          ];
          const ws = tf.tidy(() => tf.reshape(tf.mul(w.t, scale), [M, N, 1]));
          return {
            ops, out: y,
            dispose: () => {
              ws.dispose();
              pool.dispose(ops);
            },
            tfRun: () => {
              const hh = tf.reshape(tf.matMul(x.t, a.t, false, true), [M, N, R]);
              const gg = tf.reshape(tf.mul(hh, ws), [M, NR]);
              return tf.matMul(gg, b.t, false, true);
            },
            reference: () => loraRef(x.d, a.d, wData, b.d, M, K, N, R, Nout, scale),
          };
        },
      });
    }
  }
  return cases;
}

/** The router of one adapted projection: w = softmax(x · Wrᵀ), one dispatch (router_forward). */
function routerCases(m: ModelShape): Case[] {
  const M = SEQ;
  const N = EXPERTS;
  return [{ name: 'gate/up', K: m.C }, { name: 'down', K: m.F }].map(({ name, K }): Case => ({
    model: m.name, group: 'router', op: `${name} router`, shape: `softmax([${M},${K}]·[${N},${K}]ᵀ)`, tfjs: 'softmax(matMul(x, Wr, false, true))', flops: 2 * M * N * K,
    prepare: (ctx, rng) => {
      const pool = new Pool(ctx);
      const x = pool.both('x', [M, K], rng.f32Array(M * K));
      const wr = pool.both('Wr', [N, K], rng.f32Array(N * K, -1 / Math.sqrt(K), 1 / Math.sqrt(K)));
      const w = pool.out('w', [M, N]);
      const ops = [routerForwardOp(ctx, { x: x.g, wr: wr.g, w, M, K, N })];
      return {
        ops, out: w, dispose: () => pool.dispose(ops),
        tfRun: () => tf.softmax(tf.matMul(x.t, wr.t, false, true)),
        reference: () => routerRef(x.d, wr.d, M, K, N),
      };
    },
  }));
}

/**
 * Causal attention forward, one sequence of SEQ tokens, grouped key/value heads (one dispatch).
 * TF.js: heads to the front, key/value heads tiled to H (TF.js has no grouped matMul), scores
 * with a precomputed causal mask added, softmax, · V, heads back. FLOPs: the causal half only.
 */
function attentionCase(m: ModelShape): Case {
  const T = SEQ;
  const { H, KVH } = m;
  const D = m.C / H;
  const G = H / KVH;
  const scale = 1 / Math.sqrt(D);
  return {
    model: m.name, group: 'attention', op: 'attention fwd', shape: `T=${T} H=${H} KVH=${KVH} D=${D}`,
    tfjs: 'transpose, tile, matMul, add mask, softmax, matMul', flops: 2 * D * H * T * (T + 1),
    prepare: (ctx, rng) => {
      const pool = new Pool(ctx);
      const q = pool.both('q', [T, H * D], rng.f32Array(T * H * D));
      const k = pool.both('k', [T, KVH * D], rng.f32Array(T * KVH * D));
      const v = pool.both('v', [T, KVH * D], rng.f32Array(T * KVH * D));
      const o = pool.out('o', [T, H * D]);
      const l = pool.out('lse', [H, T]);
      const ops: Op[] = [attentionForwardOp(ctx, { q: q.g, k: k.g, v: v.g, o, l, dims: { B: 1, Tq: T, Tk: T, H, KVH, D } })];
      const maskData = new Float32Array(T * T);
      for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) maskData[i * T + j] = -1e30;
      const mask = tf.tensor2d(maskData, [T, T]);
      const heads = (x: tf.Tensor2D, n: number) => tf.transpose(tf.reshape(x, [T, n, D]), [1, 0, 2]);
      const grouped = (x: tf.Tensor2D) => tf.reshape(tf.tile(tf.reshape(heads(x, KVH), [KVH, 1, T, D]), [1, G, 1, 1]), [H, T, D]);
      return {
        ops, out: o,
        dispose: () => {
          mask.dispose();
          pool.dispose(ops);
        },
        tfRun: () => {
          const s = tf.add(tf.mul(tf.matMul(heads(q.t, H), grouped(k.t), false, true), scale), mask);
          const out = tf.matMul(tf.softmax(s), grouped(v.t));
          return tf.reshape(tf.transpose(out, [1, 0, 2]), [T, H * D]);
        },
        reference: () => attentionRef(q.d, k.d, v.d, T, H, KVH, D, scale),
      };
    },
  };
}

async function allCases(o: BenchOptions): Promise<Case[]> {
  const cases: Case[] = [];
  for (const name of o.models) {
    const m = name === 'demo' ? await demoShape() : SMOLLM2;
    cases.push(...matmulCases(m, o.smolLmHead), ...loraCases(m), ...routerCases(m), attentionCase(m));
  }
  const re = o.filter ? new RegExp(o.filter) : null;
  return re ? cases.filter((c) => re.test(`${c.model} ${c.op}`)) : cases;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

async function run(): Promise<BenchResult> {
  const t0 = performance.now();
  const options = optionsFromQuery(location.search);
  const ctx = await requestGpu(navigator.gpu);
  const device = ctx.device;
  const gpuErrors: string[] = [];
  device.addEventListener('uncapturederror', (e) => gpuErrors.push((e as GPUUncapturedErrorEvent).error.message));
  void device.lost.then((info) => gpuErrors.push(`device lost: ${info.reason} ${info.message}`));

  // TF.js on the project's device (see the header).
  const { flush: flushTf } = await tfjsOnDevice(ctx);

  const timeProject = async (ops: Op[]): Promise<number> => {
    await device.queue.onSubmittedWorkDone();
    const start = performance.now();
    runOps(ctx, ops);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - start;
  };
  const timeTf = async (fn: () => tf.Tensor): Promise<number> => {
    flushTf();
    await device.queue.onSubmittedWorkDone();
    const start = performance.now();
    const out = tf.tidy(fn);
    flushTf();
    await device.queue.onSubmittedWorkDone();
    const ms = performance.now() - start;
    out.dispose();
    return ms;
  };

  const adapter = describeAdapter(ctx.adapter);
  console.log(`[kernels] adapter: ${adapter}; TF.js ${tf.version_core} on the same GPUDevice; ${options.reps} reps`);
  const cases = await allCases(options);
  const rows: BenchRow[] = [];
  const rng = new Rng(20240611);
  for (const [i, c] of cases.entries()) {
    status(`${i + 1}/${cases.length}: ${c.model} ${c.op}`);
    const prep = c.prepare(ctx, rng);
    const row: BenchRow = {
      model: c.model, group: c.group, op: c.op, shape: c.shape, kernel: prep.ops.map(kernelName).join(' + '), tfjs: c.tfjs, flops: c.flops,
      projectMs: NaN, tfjsMs: NaN, projectMinMs: NaN, tfjsMinMs: NaN, projectGflops: NaN, tfjsGflops: NaN, ratio: NaN,
      ok: false, projectErr: NaN, tfjsErr: NaN, note: '', projectOpMs: [],
    };
    try {
      // Correctness first (outputs start from zero, so accumulating kernels give the plain product).
      runOps(ctx, prep.ops);
      const got = await readTensor(ctx, prep.out);
      const tfOut = tf.tidy(prep.tfRun);
      const tfGot = await tfOut.data();
      tfOut.dispose();
      const ref = prep.reference();
      row.projectErr = checkAgainst(got, ref);
      row.tfjsErr = checkAgainst(tfGot, ref);
      row.ok = row.projectErr <= 1 && row.tfjsErr <= 1;
      if (!row.ok) row.note = `mismatch vs CPU reference: project ${row.projectErr.toPrecision(3)}x tolerance, TF.js ${row.tfjsErr.toPrecision(3)}x`;
      // Warm-up, then alternate.
      await timeProject(prep.ops);
      await timeTf(prep.tfRun);
      const pms: number[] = [];
      const tms: number[] = [];
      const perOp: number[][] = prep.ops.map(() => []);
      for (let r = 0; r < options.reps; r++) {
        pms.push(await timeProject(prep.ops));
        tms.push(await timeTf(prep.tfRun));
        // Rows of several dispatches: each one alone too, to show where the time goes.
        if (prep.ops.length > 1) for (const [j, op] of prep.ops.entries()) perOp[j].push(await timeProject([op]));
      }
      if (prep.ops.length > 1) row.projectOpMs = perOp.map(median);
      row.projectMs = median(pms);
      row.tfjsMs = median(tms);
      row.projectMinMs = Math.min(...pms);
      row.tfjsMinMs = Math.min(...tms);
      row.projectGflops = c.flops / row.projectMs / 1e6;
      row.tfjsGflops = c.flops / row.tfjsMs / 1e6;
      row.ratio = row.tfjsMs / row.projectMs;
    } catch (e) {
      row.ok = false;
      row.note = `error: ${errorMessage(e)}`;
    } finally {
      prep.dispose();
    }
    if (gpuErrors.length > 0 && row.ok) {
      row.ok = false;
      row.note = `WebGPU error: ${gpuErrors[gpuErrors.length - 1]}`;
    }
    rows.push(row);
    console.log(
      `[kernels] ${i + 1}/${cases.length} ${c.model} ${c.op}: project ${row.projectMs.toFixed(2)} ms, TF.js ${row.tfjsMs.toFixed(2)} ms, ` +
        `ratio ${row.ratio.toFixed(2)}x${row.ok ? '' : ` FAILED (${row.note})`}`,
    );
  }

  const matmuls = rows.filter((r) => r.group === 'matmul' && r.ok);
  const best = (key: 'projectGflops' | 'tfjsGflops') =>
    matmuls.reduce<{ v: number; row: string }>((b, r) => (r[key] > b.v ? { v: r[key], row: `${r.model} ${r.op}` } : b), { v: 0, row: '' });
  const bp = best('projectGflops');
  const bt = best('tfjsGflops');
  status('done');
  return {
    adapter,
    userAgent: navigator.userAgent,
    tfjsVersion: tf.version_core,
    sharedDevice: true,
    options,
    rows,
    bestMatmulGflops: { project: bp.v, projectRow: bp.row, tfjs: bt.v, tfjsRow: bt.row },
    gpuErrors,
    totalSeconds: (performance.now() - t0) / 1000,
  };
}

run().then(
  (result) => {
    window.__kernelBench = { ok: true, result };
  },
  (e: unknown) => {
    const error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    console.error(`[kernels] ${error}`);
    status(`error: ${error}`);
    window.__kernelBench = { ok: false, error };
  },
);
