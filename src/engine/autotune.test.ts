import { describe, expect, it } from 'vitest';
import { matmul } from '../reference/matmul';
import { expectClose, sumTolerance } from '../test/compare';
import { testGpu, withValidation } from '../test/gpu';
import { Rng } from '../util/random';
import { adapterKey, autotuneMatmuls, isSoftwareAdapter, modelMatmulShapes, scaledShape, shapeClasses, tuneMatmuls, type MatmulTuning, type OpTimer, type TuneShape, type TuningStore } from './autotune';
import type { GpuContext } from './gpu';
import { matmulShapeClass, type MatmulChoice, type MatmulShapeClass } from './kernel-choices';
import { matmulOp } from './kernels/matmul';
import { runOps } from './op';
import { createTensor, readTensor } from './tensor';

// Timing is injected: the fake timer reads the class and candidate from the op's label
// ("autotune <class> <candidate>") and answers from a table, and the fake clock advances by what
// it answered, so the budget is spent deterministically. Only the nt layout with vec4-aligned shapes
// and two candidates (the fixed kernel and tiled-32x32): two pipelines to compile in this file.
const SHAPES: TuneShape[] = [
  { label: 'wide', M: 64, N: 64, K: 64, transB: true, count: 4 },
  { label: 'thin', M: 64, N: 8, K: 64, transB: true, count: 1 },
  { label: 'row', M: 1, N: 64, K: 64, transB: true, count: 1 },
];
const CANDIDATES: MatmulChoice[] = ['fixed', 'tiled-32x32'];

function fakeTiming(table: Partial<Record<MatmulShapeClass, Partial<Record<MatmulChoice, number>>>>) {
  const clock = { t: 0 };
  const calls: string[] = [];
  const timer: OpTimer = (_ctx, op, repeat) => {
    const [, cls, cand] = op.label.split(' ') as [string, MatmulShapeClass, MatmulChoice];
    calls.push(`${cls} ${cand}`);
    const ms = (table[cls]?.[cand] ?? 1) * repeat;
    clock.t += ms;
    return Promise.resolve(ms);
  };
  return { timer, now: () => clock.t, calls, clock };
}

function memoryStore(): TuningStore & { data: Map<string, MatmulTuning>; saves: number } {
  const data = new Map<string, MatmulTuning>();
  const s = {
    data,
    saves: 0,
    load: (key: string) => Promise.resolve(data.get(key) ?? null),
    save: (key: string, t: MatmulTuning) => {
      s.saves++;
      data.set(key, structuredClone(t));
      return Promise.resolve();
    },
  };
  return s;
}

// Read through a call: after `ctx.kernels = undefined` the compiler would take it to stay undefined.
const kernelsOf = (ctx: GpuContext) => ctx.kernels;

async function freshCtx(): Promise<GpuContext> {
  const ctx = await testGpu();
  return { ...ctx, kernels: undefined };
}

describe('matmul autotuner', () => {
  it('classes the model shapes (forward nt, input gradient nn, weight gradient tn, decode rows, thin adapter products), heaviest first', () => {
    const cfg = { hiddenSize: 96, intermediateSize: 256, numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 24, rmsNormEps: 1e-5, ropeTheta: 1e4, vocabSize: 841, tieWordEmbeddings: true, attentionBias: false };
    const shapes = modelMatmulShapes(cfg, 256, { experts: 8, rank: 4, targets: ['gate_proj'] });
    const classes = shapeClasses(shapes).map((c) => c.cls);
    expect(new Set(classes)).toEqual(new Set(['nt-wide', 'nn-wide', 'tn-wide', 'nt-row', 'tn-thin', 'nn-thin']));
    expect(matmulShapeClass({ M: 256, N: 96, K: 32, transB: true })).toBe('nt-wide');
    expect(matmulShapeClass({ M: 8, N: 96, K: 256, transA: true })).toBe('tn-thin');
    const weights = shapeClasses(shapes).map((c) => c.weight);
    expect([...weights].sort((a, b) => b - a)).toEqual(weights);
    // Scaling keeps the class and whether each dimension is a multiple of 4.
    const big = { M: 256, N: 49152, K: 576, transB: true };
    const s = scaledShape(big, 2 ** 22);
    expect(s.M * s.N * s.K).toBeLessThanOrEqual(2 ** 22);
    expect(matmulShapeClass(s)).toBe('nt-wide');
    expect([s.M % 4, s.N % 4, s.K % 4]).toEqual([0, 0, 0]);
    const ragged = scaledShape({ M: 256, N: 841, K: 96 }, 2 ** 20);
    expect(ragged.N % 4).not.toBe(0);
  });

  it('picks the fastest candidate per class, keeps the fixed kernel within the margin, drops a variant that lost by 2x', async () => {
    const ctx = await freshCtx();
    const f = fakeTiming({ 'nt-wide': { fixed: 10, 'tiled-32x32': 5 }, 'nt-thin': { fixed: 10, 'tiled-32x32': 9.5 }, 'nt-row': { fixed: 1, 'tiled-32x32': 3 } });
    const t = await tuneMatmuls(ctx, SHAPES, null, { timer: f.timer, now: f.now, candidates: CANDIDATES, budgetMs: 1e6 });
    expect(t.classes['nt-wide']?.choice).toBe('tiled-32x32');
    expect(t.classes['nt-thin']?.choice).toBe('fixed'); // 5% faster is within the 10% margin
    expect(t.classes['nt-row']?.choice).toBe('fixed');
    expect(t.classes['nt-wide']?.ms).toEqual({ fixed: 10, 'tiled-32x32': 5 });
    expect(t.dropped).toEqual(['tiled-32x32']); // 3 ms against 1 on the row class
    expect(t.pending).toEqual([]);
    expect(t.classes['nt-wide']?.shape).toBe('64x64x64');
    expect(ctx.kernels).toBeUndefined(); // timing leaves the device's choices alone
  });

  it('times a fast dispatch as many back-to-back runs and records the time of one', async () => {
    const ctx = await freshCtx();
    const repeats: number[] = [];
    const timer: OpTimer = (_ctx, _op, repeat) => {
      repeats.push(repeat);
      return Promise.resolve(0.01 * repeat);
    };
    const t = await tuneMatmuls(ctx, SHAPES.slice(2), null, { timer, candidates: ['fixed'], budgetMs: 1e6 });
    expect(repeats[0]).toBe(1);
    expect(repeats.slice(1).every((r) => r === 128)).toBe(true); // 0.01 ms: 128 runs make at least 1 ms
    expect(t.classes['nt-row']?.ms.fixed).toBeCloseTo(0.01, 6);
  });

  it('stops at the budget, leaves the rest pending, and a later tuning measures only those', async () => {
    const ctx = await freshCtx();
    const f = fakeTiming({ 'nt-wide': { fixed: 10, 'tiled-32x32': 20 } });
    // The wide class: the fixed kernel's warm-up and three runs (40 ms), the tiled one's warm-up and
    // one run (40 ms, the next would not fit what is left): 80 ms, past the budget of 70.
    const first = await tuneMatmuls(ctx, SHAPES, null, { timer: f.timer, now: f.now, candidates: CANDIDATES, budgetMs: 70 });
    expect(Object.keys(first.classes)).toEqual(['nt-wide']);
    expect(first.pending).toEqual(['nt-thin', 'nt-row']);
    // A class cut short keeps what it timed, and the next tuning goes on from there.
    f.clock.t = 0;
    const cut = await tuneMatmuls(ctx, SHAPES.slice(1), null, { timer: f.timer, now: f.now, candidates: CANDIDATES, budgetMs: 0.5 });
    expect(cut.pending).toEqual(['nt-thin', 'nt-row']);
    expect(cut.partial['nt-thin']?.ms).toEqual({ fixed: 1 });
    f.calls.length = 0;
    const resumed = await tuneMatmuls(ctx, SHAPES.slice(1, 2), cut, { timer: f.timer, now: f.now, candidates: CANDIDATES, budgetMs: 1e6 });
    expect(f.calls.every((c) => c === 'nt-thin tiled-32x32')).toBe(true);
    expect(resumed.classes['nt-thin']?.ms).toEqual({ fixed: 1, 'tiled-32x32': 1 });
    expect(resumed.partial['nt-thin']).toBeUndefined();
    f.calls.length = 0;
    const second = await tuneMatmuls(ctx, SHAPES, first, { timer: f.timer, now: f.now, candidates: CANDIDATES, budgetMs: 1e6 });
    expect(new Set(f.calls.map((c) => c.split(' ')[0]))).toEqual(new Set(['nt-thin', 'nt-row']));
    expect(Object.keys(second.classes).sort()).toEqual(['nt-row', 'nt-thin', 'nt-wide']);
    expect(second.pending).toEqual([]);
    expect(second.ms).toBeGreaterThan(first.ms);
  });

  it('caches the choice per adapter identity: a second load reads it, another adapter tunes anew, a forced kernel skips tuning', async () => {
    const ctx = await freshCtx();
    const store = memoryStore();
    const f = fakeTiming({ 'nt-wide': { fixed: 10, 'tiled-32x32': 5 } });
    const opts = { timer: f.timer, now: f.now, candidates: CANDIDATES, budgetMs: 1e6, tuneSoftware: true };
    const first = await autotuneMatmuls(ctx, SHAPES, store, opts);
    expect(first.source).toBe('tuned');
    expect([...store.data.keys()]).toEqual([adapterKey(ctx.adapter)]);
    expect(ctx.kernels?.matmul['nt-wide']).toBe('tiled-32x32');
    const calls = f.calls.length;
    ctx.kernels = undefined;
    const second = await autotuneMatmuls(ctx, SHAPES, store, opts);
    expect(second.source).toBe('cached');
    expect(f.calls.length).toBe(calls);
    expect(kernelsOf(ctx)?.matmul['nt-wide']).toBe('tiled-32x32');
    // The key names vendor, architecture, device, description and limits.
    const other = { ...ctx, kernels: undefined, adapter: { ...ctx.adapter, description: `${ctx.adapter.description} (another)` } };
    expect(adapterKey(other.adapter)).not.toBe(adapterKey(ctx.adapter));
    expect(adapterKey({ ...ctx.adapter, limits: { ...ctx.adapter.limits, maxComputeWorkgroupStorageSize: 1 } })).not.toBe(adapterKey(ctx.adapter));
    expect((await autotuneMatmuls(other, SHAPES, store, opts)).source).toBe('tuned');
    expect(store.data.size).toBe(2);
    // A stored tuning of another version is ignored.
    const stale = { ...store.data.get(adapterKey(ctx.adapter))!, version: 0 };
    store.data.set(adapterKey(ctx.adapter), stale);
    expect((await autotuneMatmuls(ctx, SHAPES, store, opts)).source).toBe('tuned');
    const forced = { ...ctx, kernels: { matmul: {}, force: 'ragged' as const } };
    const saves = store.saves;
    expect((await autotuneMatmuls(forced, SHAPES, store, opts)).source).toBe('forced');
    expect(store.saves).toBe(saves);
    expect(forced.kernels.force).toBe('ragged');
  });

  it('keeps the fixed kernels untimed on a software adapter unless asked to tune there', async () => {
    expect(isSoftwareAdapter({ vendor: 'google', architecture: 'swiftshader', device: '', description: '' })).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'mesa', architecture: '', device: 'llvmpipe (LLVM 15.0.6, 256 bits)', description: '' })).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H200', description: '' })).toBe(false);
    expect(isSoftwareAdapter({ vendor: 'apple', architecture: 'metal-3', device: '', description: 'Apple M2' })).toBe(false);
    const ctx = await freshCtx();
    const soft = { ...ctx, kernels: undefined, adapter: { ...ctx.adapter, architecture: 'swiftshader' } };
    const store = memoryStore();
    const f = fakeTiming({ 'nt-wide': { fixed: 10, 'tiled-32x32': 5 } });
    const out = await autotuneMatmuls(soft, SHAPES, store, { timer: f.timer, now: f.now, candidates: CANDIDATES, budgetMs: 1e6 });
    expect(out).toEqual({ source: 'software', tuning: null });
    expect(f.calls).toEqual([]);
    expect(store.saves).toBe(0);
    expect(soft.kernels).toEqual({ matmul: {}, force: null });
  });

  it('auto matmuls take the device choice of their class, a forced kernel everywhere, and still match the reference', async () => {
    const ctx = await freshCtx();
    const keys: string[] = [];
    const rng = new Rng(3);
    const [M, N, K] = [40, 36, 44];
    const a = rng.f32Array(M * K);
    const b = rng.f32Array(N * K);
    const want = matmul(a, b, { M, N, K, transB: true });
    const tA = createTensor(ctx, 'A', [a.length], 'f32', a);
    const tB = createTensor(ctx, 'B', [b.length], 'f32', b);
    const tC = createTensor(ctx, 'C', [M * N]);
    ctx.pipelines.onGet = (key) => keys.push(key);
    try {
      for (const [kernels, entry] of [
        [undefined, 'matmul:main_vec4:'],
        [{ matmul: { 'nt-wide': 'tiled-32x32' as const }, force: null }, 'matmul_tiled:main_vec4:'],
        [{ matmul: { 'nn-wide': 'tiled-32x32' as const }, force: null }, 'matmul:main_vec4:'],
        [{ matmul: { 'nt-wide': 'tiled-32x32' as const }, force: 'ragged' as const }, 'matmul:main_ragged:'],
      ] as const) {
        ctx.kernels = kernels;
        keys.length = 0;
        const op = matmulOp(ctx, { a: tA, b: tB, c: tC, M, N, K, transB: true });
        expect(keys[0]?.startsWith(entry), `${JSON.stringify(kernels)}: ${keys[0]}`).toBe(true);
        await withValidation(ctx, () => runOps(ctx, [op]));
        expectClose(`auto matmul as ${entry}`, await readTensor(ctx, tC), want, { abs: sumTolerance(K, K) });
      }
    } finally {
      ctx.pipelines.onGet = null;
    }
  });
});
