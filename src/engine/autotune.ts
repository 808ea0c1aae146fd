/**
 * The matmul autotuner: times the candidate kernels (the fixed register-tiled choice and the
 * workgroup-memory tiled variants) on a model's own matmul shapes, within a time budget, and picks
 * the fastest per shape class (./kernel-choices.ts). The result is kept per adapter identity
 * (vendor, architecture, device, description, limits) by a TuningStore: IndexedDB in the page's
 * worker, a JSON file for the runner. A tuning the budget cut short is saved as far as it got and
 * resumed on the next load, so every class is eventually measured.
 *
 * Rules that keep the tuned choice from losing to the fixed one: a class not measured keeps the fixed
 * choice; a variant replaces it only when it was faster by the margin (10% by default), so timing
 * noise does not flip a class; a variant that lost by more than 2x on a class is not tried on the
 * later (lighter) classes of the same tuning, whose budget then goes to the candidates still in the
 * running.
 */
import type { AdapterSummary, GpuContext } from './gpu';
import { matmulOp } from './kernels/matmul';
import { tiledMatmulFits } from './kernels/matmul-tiled';
import {
  defaultKernelChoices,
  matmulShapeClass,
  MATMUL_CHOICES,
  type KernelChoices,
  type MatmulChoice,
  type MatmulShapeClass,
  type MatmulShapeLike,
} from './kernel-choices';
import { destroyOps, type Op, recordOps, runOps } from './op';
import { createTensor } from './tensor';
import { type LlamaShape, type Projection, PROJECTIONS, projectionShape } from '../method/shapes';
import { errorMessage } from '../util/errors';

/** Bumped whenever a kernel changes enough that a stored tuning no longer says anything. */
export const TUNING_VERSION = 1;

/** A matmul the model runs, `count` times per training step (or per generated token). */
export interface TuneShape extends MatmulShapeLike {
  label: string;
  count: number;
}

interface ClassTiming {
  /** The kernel chosen for the class. */
  choice: MatmulChoice;
  /** The shape timed (the class's heaviest, scaled down to the size cap), "MxNxK". */
  shape: string;
  /** Milliseconds of one dispatch per candidate timed (the best of its runs). */
  ms: Partial<Record<MatmulChoice, number>>;
}

/** What the autotuner found on one adapter: stored, and shown in the GPU panel. */
export interface MatmulTuning {
  version: number;
  /** The adapter, in words (describeAdapter-like, for people; the store's key identifies it). */
  adapter: string;
  /** The measured classes. */
  classes: Partial<Record<MatmulShapeClass, ClassTiming>>;
  /** Variants that lost by more than 2x on a class and were not tried again. */
  dropped: MatmulChoice[];
  /** Classes of the last tuned model still unmeasured when the budget ran out. */
  pending: MatmulShapeClass[];
  /** The candidates those classes had timed so far (the next tuning goes on from there). */
  partial: Partial<Record<MatmulShapeClass, Omit<ClassTiming, 'choice'>>>;
  /** Wall time of the tuning sessions, summed (compiling the candidates included). */
  ms: number;
  /** How the dispatches were timed: GPU timestamps, or wall time to onSubmittedWorkDone. */
  timer: 'timestamp' | 'wall';
}

export interface TuningStore {
  load(key: string): Promise<MatmulTuning | null>;
  save(key: string, tuning: MatmulTuning): Promise<void>;
}

/** Times `repeat` back-to-back runs of a recorded op in one submission: milliseconds for all of them. */
export type OpTimer = (ctx: GpuContext, op: Op, repeat: number) => Promise<number>;

export interface TuneOptions {
  /** Wall time allowed, compiling included (default 2000 ms). */
  budgetMs?: number;
  /** The kernels to try (default: 'fixed' and every tiled variant the adapter's limits allow). */
  candidates?: readonly MatmulChoice[];
  /** Default: GPU timestamps when the device has them, else wall time to onSubmittedWorkDone. */
  timer?: OpTimer;
  /** The clock the budget is kept on (default performance.now). */
  now?: () => number;
  /** A variant must take at most this fraction of the fixed kernel's time to replace it (0.9). */
  margin?: number;
  /** Largest product timed, in multiply-adds (default 2^23): bigger shapes are scaled down. */
  maxMacs?: number;
  /**
   * Tune on a software adapter too (default false: a CPU-emulated GPU keeps the fixed kernels
   * untimed; see isSoftwareAdapter). Tests and the bench set it to measure there anyway.
   */
  tuneSoftware?: boolean;
}

/**
 * A GPU emulated on the CPU (SwiftShader, llvmpipe/lavapipe, WARP). There the workgroup-memory
 * kernels lose to the fixed register-tiled ones on every shape class measured (2 to 27 times
 * slower on SwiftShader, tools/bench/autotune.ts), and each tiled pipeline takes 1.5 to 3 s to
 * compile, so timing them would only delay the first backbone load by 6 to 10 s.
 */
export function isSoftwareAdapter(a: Pick<AdapterSummary, 'vendor' | 'architecture' | 'device' | 'description'>): boolean {
  return /swiftshader|llvmpipe|lavapipe|software|microsoft basic render|\bwarp\b/i.test(`${a.vendor} ${a.architecture} ${a.device} ${a.description}`);
}

/** The store's key for an adapter: everything that identifies it and bounds what kernels it can run. */
export function adapterKey(a: AdapterSummary): string {
  return JSON.stringify({ v: TUNING_VERSION, vendor: a.vendor, architecture: a.architecture, device: a.device, description: a.description, limits: a.limits });
}

function adapterWords(a: AdapterSummary): string {
  return [a.vendor, a.architecture, a.device, a.description].filter((s) => s.length > 0).join(' / ') || 'unnamed adapter';
}

/**
 * The model's matmuls (as src/model/llama.ts and generate.ts call them) at `rows` tokens per step:
 * per layer and projection the forward x · Wᵀ (nt), the input gradient dy · W (nn) and the weight
 * gradient dyᵀ · x (tn, full fine-tuning), the LM head's three, one decode step's projections and
 * head (M = 1), and with an adapter the experts' combine, its gradients and the router's.
 * Shapes: forward [M, Nout] = [M, K] · [Nout, K]ᵀ with [K, Nout] = projectionShape.
 */
export function modelMatmulShapes(s: LlamaShape, rows: number, adapter?: { experts: number; rank: number; targets: readonly Projection[] }): TuneShape[] {
  const L = s.numLayers;
  const M = rows;
  const C = s.hiddenSize;
  const V = s.vocabSize;
  const out: TuneShape[] = [];
  for (const p of PROJECTIONS) {
    const [K, Nout] = projectionShape(s, p);
    out.push({ label: `${p} forward`, M, N: Nout, K, transB: true, count: L });
    out.push({ label: `${p} input gradient`, M, N: K, K: Nout, count: L });
    out.push({ label: `${p} weight gradient`, M: Nout, N: K, K: M, transA: true, count: L });
    out.push({ label: `${p} decode`, M: 1, N: Nout, K, transB: true, count: L });
  }
  out.push({ label: 'lm head forward', M, N: V, K: C, transB: true, count: 1 });
  out.push({ label: 'lm head input gradient', M, N: C, K: V, count: 1 });
  out.push({ label: 'lm head weight gradient', M: V, N: C, K: M, transA: true, count: 1 });
  out.push({ label: 'lm head decode', M: 1, N: V, K: C, transB: true, count: 1 });
  if (adapter) {
    const NR = adapter.experts * adapter.rank;
    for (const p of adapter.targets) {
      const [K, Nout] = projectionShape(s, p);
      out.push({ label: `${p} experts combine`, M, N: Nout, K: NR, transB: true, count: L });
      out.push({ label: `${p} grad B`, M: Nout, N: NR, K: M, transA: true, count: L });
      out.push({ label: `${p} d experts g`, M, N: NR, K: Nout, count: L });
      out.push({ label: `${p} grad router`, M: adapter.experts, N: K, K: M, transA: true, count: L });
      out.push({ label: `${p} d input via router`, M, N: K, K: adapter.experts, count: L });
    }
  }
  return out;
}

const macs = (s: MatmulShapeLike): number => s.M * s.N * s.K;

/** Halves a dimension, keeping whether it is a multiple of 4 (so vec4 loads stay or stay out). */
function halve(x: number): number {
  const h = Math.ceil(x / 2);
  if (x % 4 === 0) return Math.ceil(h / 4) * 4;
  return h % 4 === 0 ? h + 1 : h;
}

/**
 * The shape timed for a class: scaled down, largest dimension first, until it has at most `max`
 * multiply-adds; a dimension is halved only while it is at least 64, so the class stays the same.
 */
export function scaledShape<S extends MatmulShapeLike>(s: S, max: number): S {
  const r = { ...s };
  for (;;) {
    if (macs(r) <= max) return r;
    const dims = (['M', 'N', 'K'] as const).filter((d) => r[d] >= 64 && !(d === 'M' && r.M <= 4));
    if (dims.length === 0) return r;
    const d = dims.reduce((a, b) => (r[b] > r[a] ? b : a));
    r[d] = halve(r[d]);
  }
}

/** One dispatch timed with GPU timestamps (the compute pass's start and end), in milliseconds. */
function timestampTimer(): OpTimer {
  return async (ctx, op, repeat) => {
    const d = ctx.device;
    const querySet = d.createQuerySet({ type: 'timestamp', count: 2 });
    const resolve = d.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const read = d.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    try {
      const enc = d.createCommandEncoder();
      const pass = enc.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
      recordOps(pass, Array<Op>(repeat).fill(op));
      pass.end();
      enc.resolveQuerySet(querySet, 0, 2, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, read, 0, 16);
      d.queue.submit([enc.finish()]);
      await read.mapAsync(GPUMapMode.READ);
      const [t0, t1] = new BigUint64Array(read.getMappedRange());
      read.unmap();
      return Number(t1 - t0) / 1e6;
    } finally {
      querySet.destroy();
      resolve.destroy();
      read.destroy();
    }
  };
}

/** One dispatch timed on the CPU: from its submission to onSubmittedWorkDone, the queue drained first. */
function wallTimer(): OpTimer {
  return async (ctx, op, repeat) => {
    await ctx.device.queue.onSubmittedWorkDone();
    const t0 = performance.now();
    runOps(ctx, Array<Op>(repeat).fill(op));
    await ctx.device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
}

function defaultTimer(ctx: GpuContext): { timer: OpTimer; kind: MatmulTuning['timer'] } {
  return ctx.device.features.has('timestamp-query') ? { timer: timestampTimer(), kind: 'timestamp' } : { timer: wallTimer(), kind: 'wall' };
}

/** The classes of `shapes`, heaviest first (multiply-adds times count), each with its heaviest shape. */
export function shapeClasses(shapes: readonly TuneShape[]): Array<{ cls: MatmulShapeClass; weight: number; shape: TuneShape }> {
  const by = new Map<MatmulShapeClass, { cls: MatmulShapeClass; weight: number; shape: TuneShape }>();
  for (const s of shapes) {
    const cls = matmulShapeClass(s);
    const w = macs(s) * s.count;
    const e = by.get(cls);
    if (!e) by.set(cls, { cls, weight: w, shape: s });
    else {
      e.weight += w;
      if (w > macs(e.shape) * e.shape.count) e.shape = s;
    }
  }
  return [...by.values()].sort((a, b) => b.weight - a.weight);
}

/**
 * Tunes the classes of `shapes` not yet in `previous` (all of them when there is none), within the
 * budget, and returns the merged tuning. Leaves `ctx.kernels` as it found it.
 */
export async function tuneMatmuls(ctx: GpuContext, shapes: readonly TuneShape[], previous: MatmulTuning | null, opts: TuneOptions = {}): Promise<MatmulTuning> {
  const now = opts.now ?? (() => performance.now());
  const t0 = now();
  const budget = opts.budgetMs ?? 2000;
  const margin = opts.margin ?? 0.9;
  const maxMacs = opts.maxMacs ?? 2 ** 23;
  const timing = opts.timer ? { timer: opts.timer, kind: 'wall' as const } : defaultTimer(ctx);
  const candidates = (opts.candidates ?? MATMUL_CHOICES).filter((c) => c === 'fixed' || tiledMatmulFits(ctx.adapter, c));
  const result: MatmulTuning = {
    version: TUNING_VERSION,
    adapter: adapterWords(ctx.adapter),
    classes: { ...(previous?.classes ?? {}) },
    dropped: [...(previous?.dropped ?? [])],
    pending: [],
    partial: { ...(previous?.partial ?? {}) },
    ms: previous?.ms ?? 0,
    timer: timing.kind,
  };
  const todo = shapeClasses(shapes).filter((c) => !result.classes[c.cls]);
  if (todo.length === 0) return result;
  const timed = todo.map((c) => ({ ...c, shape: scaledShape(c.shape, maxMacs) }));
  // One set of operands for every class, as large as the largest (zeros: speed does not depend on the values).
  const size = (n: number) => Math.max(4, ...timed.map((c) => n === 0 ? c.shape.M * c.shape.K : n === 1 ? c.shape.K * c.shape.N : c.shape.M * c.shape.N));
  const a = createTensor(ctx, 'autotune A', [size(0)]);
  const b = createTensor(ctx, 'autotune B', [size(1)]);
  const c = createTensor(ctx, 'autotune C', [size(2)]);
  // Leave the device's choices alone while timing: every op below names its kernel.
  const saved = ctx.kernels;
  let timedNow = 0;
  try {
    for (const cl of timed) {
      const s = cl.shape;
      const shapeText = `${s.M}x${s.N}x${s.K}`;
      // Go on from an earlier tuning's timings of the same shape (a budget of about 2 s may cover
      // only a candidate or two where compiling is slow).
      const before = result.partial[cl.cls];
      const ms: Partial<Record<MatmulChoice, number>> = before?.shape === shapeText ? { ...before.ms } : {};
      delete result.partial[cl.cls];
      let finished = true;
      for (const cand of candidates) {
        if ((cand !== 'fixed' && result.dropped.includes(cand)) || ms[cand] !== undefined) continue;
        // Every tuning times at least one candidate, so tunings cut short still make progress
        // where compiling one pipeline alone takes longer than the budget (SwiftShader: 1.5-3 s).
        if (timedNow > 0 && now() - t0 > budget) {
          finished = false;
          break;
        }
        const op = matmulOp(ctx, { a, b, c, M: s.M, N: s.N, K: s.K, transA: s.transA, transB: s.transB, label: `autotune ${cl.cls} ${cand}`, variant: cand === 'fixed' ? 'auto' : cand });
        // Compiling may have spent the budget: the pipeline stays in the cache for the next tuning.
        if (timedNow > 0 && now() - t0 > budget) {
          destroyOps([op]);
          finished = false;
          break;
        }
        timedNow++;
        try {
          ctx.kernels = defaultKernelChoices();
          // The first run warms caches and any lazy driver work and says how many runs one
          // measurement needs: at least 1 ms of work (a fast GPU's dispatch is microseconds, below
          // what its timestamps or the wall clock resolve), at most 256 runs. Then the best of up to
          // three measurements, fewer when one is a large part of what the budget has left.
          const first = await timing.timer(ctx, op, 1);
          const repeat = first >= 1 ? 1 : Math.min(256, 2 ** Math.ceil(Math.log2(1 / Math.max(first, 1 / 256))));
          let best = Infinity;
          for (let rep = 0; rep < 3; rep++) {
            best = Math.min(best, (await timing.timer(ctx, op, repeat)) / repeat);
            if (best * repeat * 4 > budget - (now() - t0)) break;
          }
          ms[cand] = best;
        } finally {
          destroyOps([op]);
        }
      }
      if (!finished || ms.fixed === undefined) {
        result.pending.push(cl.cls);
        if (Object.keys(ms).length > 0) result.partial[cl.cls] = { shape: shapeText, ms };
        continue;
      }
      const fixedMs = ms.fixed;
      let choice: MatmulChoice = 'fixed';
      for (const cand of candidates) {
        const t = ms[cand];
        if (cand === 'fixed' || t === undefined) continue;
        if (t <= margin * fixedMs && t < (ms[choice] ?? Infinity)) choice = cand;
      }
      const bestMs = Math.min(...Object.values(ms));
      for (const cand of candidates) {
        const t = ms[cand];
        if (cand !== 'fixed' && t !== undefined && t > 2 * bestMs && !result.dropped.includes(cand)) result.dropped.push(cand);
      }
      result.classes[cl.cls] = { choice, shape: shapeText, ms };
    }
  } finally {
    ctx.kernels = saved;
    a.destroy();
    b.destroy();
    c.destroy();
  }
  result.ms += now() - t0;
  return result;
}

/** The choices a tuning makes: its measured classes' picks (a class it lacks takes the fixed kernel). */
export function choicesOf(t: MatmulTuning | null, force: KernelChoices['force'] = null): KernelChoices {
  const k = defaultKernelChoices();
  k.force = force;
  if (t) for (const [cls, v] of Object.entries(t.classes) as Array<[MatmulShapeClass, ClassTiming]>) k.matmul[cls] = v.choice;
  return k;
}

export interface AutotuneOutcome {
  /**
   * 'cached': every class was in the store; 'tuned': this call measured some; 'forced': a kernel is
   * forced, nothing was timed; 'software': a CPU-emulated adapter keeps the fixed kernels, untimed.
   */
  source: 'cached' | 'tuned' | 'forced' | 'software';
  tuning: MatmulTuning | null;
}

/**
 * On a backbone's first use on this adapter: the stored tuning if it covers every class of
 * `shapes`, else a tuning of the missing classes (saved before it is used). Sets `ctx.kernels`.
 * A forced kernel (`ctx.kernels.force`) skips all of it. A store that fails to load or save costs
 * only the cache: the tuning still applies to this session.
 */
export async function autotuneMatmuls(ctx: GpuContext, shapes: readonly TuneShape[], store: TuningStore | null, opts: TuneOptions = {}): Promise<AutotuneOutcome> {
  const force = ctx.kernels?.force ?? null;
  if (force) return { source: 'forced', tuning: null };
  if (!opts.tuneSoftware && isSoftwareAdapter(ctx.adapter)) {
    ctx.kernels = choicesOf(null, null);
    return { source: 'software', tuning: null };
  }
  const key = adapterKey(ctx.adapter);
  let previous: MatmulTuning | null = null;
  try {
    const got = store ? await store.load(key) : null;
    previous = got && got.version === TUNING_VERSION ? got : null;
  } catch {
    previous = null;
  }
  const needed = shapeClasses(shapes).some((c) => !previous?.classes[c.cls]);
  let tuning = previous;
  if (needed) {
    tuning = await tuneMatmuls(ctx, shapes, previous, opts);
    try {
      await store?.save(key, tuning);
    } catch {
      // The cache is lost, the choice is not.
    }
  }
  ctx.kernels = choicesOf(tuning, null);
  return { source: needed ? 'tuned' : 'cached', tuning };
}


/** What the GPU panel and the runner show: where the device's matmul choices came from, and what they are. */
export interface KernelReport {
  source: AutotuneOutcome['source'] | 'failed';
  force: KernelChoices['force'];
  /** The chosen kernel per measured class (a class not listed takes the fixed kernel). */
  matmul: KernelChoices['matmul'];
  tuning: MatmulTuning | null;
  /** Why tuning failed (source 'failed': every matmul keeps the fixed kernel). */
  error?: string;
}

/** Runs autotuneMatmuls and describes the outcome; a failure leaves the fixed choices and says why. */
export async function autotuneReport(ctx: GpuContext, shapes: readonly TuneShape[], store: TuningStore | null, opts: TuneOptions = {}): Promise<KernelReport> {
  const force = ctx.kernels?.force ?? null;
  try {
    const out = await autotuneMatmuls(ctx, shapes, store, opts);
    return { source: out.source, force, matmul: ctx.kernels?.matmul ?? {}, tuning: out.tuning };
  } catch (e) {
    ctx.kernels = { matmul: {}, force };
    return { source: 'failed', force, matmul: {}, tuning: null, error: errorMessage(e) };
  }
}
