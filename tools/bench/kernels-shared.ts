/**
 * Types shared by the kernel benchmark's Node driver (tools/bench/kernels.ts) and its page
 * (tools/bench/kernels-page.ts): the page's options travel in the URL query, its result comes
 * back as JSON on `window.__kernelBench`.
 */

export type BenchModel = 'demo' | 'smollm2';
export type BenchGroup = 'matmul' | 'lora' | 'router' | 'attention';

export interface BenchOptions {
  models: BenchModel[];
  /** Timed runs per side per row (alternating project / TF.js); the median counts. */
  reps: number;
  /** Also time the LM head (C x vocab) of SmolLM2 (49152 columns: slow on a software adapter). */
  smolLmHead: boolean;
  /** Regular expression on "model op" that selects rows; empty: all. */
  filter: string;
}

export interface BenchRow {
  model: BenchModel;
  group: BenchGroup;
  /** What the row computes, e.g. "gate/up fwd". */
  op: string;
  /** Operand shapes in words, e.g. "[256,96]·[256,96]ᵀ". */
  shape: string;
  /** The project's kernels (entry points and flags) for this row. */
  kernel: string;
  /** The TF.js ops for this row. */
  tfjs: string;
  /** Useful floating-point operations of one run (2 per multiply-add). */
  flops: number;
  /** Median wall time of a run, submit to GPU done, ms (NaN when not timed). */
  projectMs: number;
  tfjsMs: number;
  projectMinMs: number;
  tfjsMinMs: number;
  projectGflops: number;
  tfjsGflops: number;
  /** tfjsMs / projectMs: > 1 means the project is faster. */
  ratio: number;
  /** Rows of several project dispatches: each dispatch timed alone (median ms), in `kernel` order. */
  projectOpMs: number[];
  ok: boolean;
  /** Worst |got - ref| / tolerance over the output (<= 1 passes), each side. */
  projectErr: number;
  tfjsErr: number;
  note: string;
}

export interface BenchResult {
  adapter: string;
  userAgent: string;
  tfjsVersion: string;
  /** Whether TF.js ran on the project's own GPUDevice (same adapter, same queue). */
  sharedDevice: boolean;
  options: BenchOptions;
  rows: BenchRow[];
  /** The best project matmul throughput measured in this run (for utilization estimates). */
  bestMatmulGflops: { project: number; projectRow: string; tfjs: number; tfjsRow: string };
  /** Uncaptured WebGPU errors seen during the run (any makes the run fail). */
  gpuErrors: string[];
  totalSeconds: number;
}

export type BenchOutcome = { ok: true; result: BenchResult } | { ok: false; error: string };

declare global {
  interface Window {
    __kernelBench?: BenchOutcome;
  }
}

export function optionsToQuery(o: BenchOptions): string {
  const q = new URLSearchParams({ models: o.models.join(','), reps: String(o.reps), smolLmHead: o.smolLmHead ? '1' : '0', filter: o.filter });
  return q.toString();
}

export function optionsFromQuery(search: string): BenchOptions {
  const q = new URLSearchParams(search);
  const models = (q.get('models') ?? 'demo,smollm2').split(',').filter((m): m is BenchModel => m === 'demo' || m === 'smollm2');
  const reps = Number(q.get('reps') ?? '5');
  return {
    models,
    reps: Number.isInteger(reps) && reps >= 1 ? reps : 5,
    smolLmHead: q.get('smolLmHead') === '1',
    filter: q.get('filter') ?? '',
  };
}
