/**
 * Generation with the KV cache (src/model/generate.ts) on a tiny random Llama with grouped
 * key/value heads and a LoRAMoE adapter on every projection (non-zero B, so the adapter moves the
 * logits), checked three ways:
 *   - against the same GPU model without a cache (LlamaGraph's forward re-run on the whole prefix
 *     each step, an independent schedule): same greedy tokens, logits equal to float32 rounding;
 *   - against the float64 reference (ReferenceLlama.forward on the prefix, last row): the logits of
 *     every step (prefill and decode) and the router weights of every adapted projection;
 *   - the sampler's contract: stop ids, maxNewTokens, capacity, callback, top-k = 1 = greedy, seeds.
 *
 * Tolerance on logits: float32 throughout, two layers of sums over at most max(C, F, H*D) = 20
 * terms plus the head (C = 12 terms), with softmaxes in attention and the routers. The expected
 * error is a few float32 ulps of the activations, ~1e-6 of the logits' magnitude; the test allows
 * 2e-5 · max(1, max |logit|) (the same relative bound llama.test.ts uses for gradients), far below
 * what a wrong position, cache row or missing adapter term gives (O(0.1) and above, see the on/off
 * difference logged below). Router weights are in [0, 1] and sum to 1: absolute 2e-6.
 */
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../engine/gpu';
import { roundToDtype } from '../io/dtypes';
import { defaultAdapterConfig } from '../loramoe/config';
import { PROJECTIONS } from '../method/shapes';
import { ReferenceLlama } from '../reference/llama';
import { compare, expectClose, maxAbs } from '../test/compare';
import { testGpu, withValidation } from '../test/gpu';
import { randomAdapter, randomWeights, TINY_SHAPE, tinyMoe, toRefAdapter, toRefWeights } from '../test/tiny-llama';
import { Rng } from '../util/random';
import { argmax, type GenerateParams, type GenerateResult, Generator, logSoftmaxAt, sampleToken, samplingDistribution } from './generate';
import { GpuWeights } from './weights';

const CAP = 16;
const PROMPT = [3, 7, 1, 19, 4];
const V = TINY_SHAPE.vocabSize;

const MOE = tinyMoe({ targets: [...PROJECTIONS] });

interface Setup {
  ctx: GpuContext;
  /** Backbone + adapter. */
  gen: Generator;
  /** The same backbone with no adapter (mode none): the no-cache oracle for useAdapter false. */
  plain: Generator;
  ref: ReferenceLlama;
  refPlain: ReferenceLlama;
}

let pending: Promise<Setup> | undefined;
function setup(): Promise<Setup> {
  pending ??= (async () => {
    const ctx = await testGpu();
    const host = randomWeights(TINY_SHAPE, 31);
    const adapter = randomAdapter(TINY_SHAPE, MOE, 32);
    const none = defaultAdapterConfig('none');
    const weights = new GpuWeights(ctx, TINY_SHAPE, host, MOE, adapter, CAP);
    const plainWeights = new GpuWeights(ctx, TINY_SHAPE, host, none, null, CAP);
    return {
      ctx,
      gen: new Generator(ctx, weights, { maxLength: CAP }),
      plain: new Generator(ctx, plainWeights, { maxLength: CAP }),
      ref: new ReferenceLlama(TINY_SHAPE, toRefWeights(host), MOE, toRefAdapter(adapter), CAP),
      refPlain: new ReferenceLlama(TINY_SHAPE, toRefWeights(host), none, new Map(), CAP),
    };
  })();
  return pending;
}

function params(over: Partial<GenerateParams> = {}): GenerateParams {
  return {
    maxNewTokens: 8,
    temperature: 0,
    topK: 0,
    topP: 1,
    seed: 1,
    stopIds: [],
    useAdapter: true,
    returnRouting: false,
    ...over,
  };
}

async function run(s: Setup, gen: Generator, prompt: number[], p: GenerateParams, onToken?: Parameters<Generator['generate']>[2]): Promise<GenerateResult> {
  return withValidation(s.ctx, () => gen.generate(prompt, p, onToken));
}

/** Last row of the reference forward on `ids`: logits [V] and router weights [N] per projection. */
function refLast(ref: ReferenceLlama, ids: number[]): { logits: Float64Array; routing: Map<string, Float64Array> } {
  const T = ids.length;
  const f = ref.forward({ B: 1, T, ids, targets: new Int32Array(T), valid: new Uint32Array(T).fill(1), types: [-1] }, { dropout: 0, seed: 0 });
  const routing = new Map<string, Float64Array>();
  for (const [key, w] of f.routing) {
    const N = w.length / T;
    routing.set(key, w.slice((T - 1) * N, T * N));
  }
  return { logits: f.logits.slice((T - 1) * V, T * V), routing };
}

function logitTol(want: ArrayLike<number>) {
  return { abs: 2e-5 * Math.max(1, maxAbs(want)) };
}

/** Gap between the best and second-best logit: how far a greedy choice is from a tie. */
function margin(logits: ArrayLike<number>): number {
  const sorted = Array.from(logits).sort((a, b) => b - a);
  return sorted[0] - sorted[1];
}

describe('Generator: KV cache against the uncached forward', () => {
  for (const useAdapter of [true, false]) {
    it(`greedy tokens and logits equal re-running the whole sequence (adapter ${useAdapter ? 'on' : 'off'})`, async () => {
      const s = await setup();
      const res = await run(s, s.gen, PROMPT, params({ useAdapter, maxNewTokens: 8, returnLogits: true }));
      expect(res.finishReason).toBe('length');
      expect(res.ids).toHaveLength(8);
      // Uncached greedy decoding: the full forward of prompt + generated so far, every step.
      const oracle = useAdapter ? s.gen : s.plain;
      const seq = [...PROMPT];
      let minMargin = Infinity;
      for (let i = 0; i < res.tokens.length; i++) {
        const all = await oracle.forwardLogitsNoCache(seq);
        const last = all.slice((seq.length - 1) * V, seq.length * V);
        minMargin = Math.min(minMargin, margin(last));
        expectClose(`adapter ${useAdapter ? 'on' : 'off'} step ${i} logits, cache vs no cache`, res.tokens[i].logits!, last, logitTol(last));
        const id = argmax(last);
        expect(res.tokens[i].id, `step ${i}`).toBe(id);
        expect(res.tokens[i].step).toBe(i);
        seq.push(id);
      }
      console.log(`[check] adapter ${useAdapter ? 'on' : 'off'}: greedy ${res.ids.join(' ')}; smallest top-2 logit gap ${minMargin.toExponential(2)}`);
    });
  }

  it('with no adapter in the weights, useAdapter true and false are the same backbone', async () => {
    const s = await setup();
    const a = await run(s, s.plain, PROMPT, params({ useAdapter: true }));
    const b = await run(s, s.gen, PROMPT, params({ useAdapter: false }));
    expect(a.ids).toEqual(b.ids);
  });
});

describe('Generator: every step against the float64 reference', () => {
  for (const prompt of [PROMPT, [9]]) {
    it(`logits (adapter on and off) and routing per token, prompt of ${prompt.length}`, async () => {
      const s = await setup();
      const on = await run(s, s.gen, prompt, params({ maxNewTokens: 6, returnLogits: true, returnRouting: true }));
      const off = await run(s, s.gen, prompt, params({ maxNewTokens: 6, returnLogits: true, useAdapter: false, returnRouting: true }));
      let worstLogit = 0;
      let worstRouting = 0;
      let onOffDiff = Infinity;
      for (const [res, ref, label] of [[on, s.ref, 'on'], [off, s.refPlain, 'off']] as const) {
        const seq = [...prompt];
        for (const tok of res.tokens) {
          const want = refLast(ref, seq);
          const r = expectClose(`adapter ${label} step ${tok.step} (position ${seq.length - 1}) logits vs reference`, tok.logits!, want.logits, logitTol(want.logits));
          worstLogit = Math.max(worstLogit, r.maxAbs / Math.max(1, maxAbs(want.logits)));
          expect(Math.abs(tok.logprob - logSoftmaxAt(want.logits, tok.id))).toBeLessThan(1e-4);
          if (label === 'on') {
            expect(tok.routing, 'routing').toBeDefined();
            expect([...tok.routing!.keys()].sort()).toEqual([...want.routing.keys()].sort());
            expect(tok.routing!.size).toBe(TINY_SHAPE.numLayers * PROJECTIONS.length);
            for (const [key, w] of want.routing) {
              const got = tok.routing!.get(key)!;
              expect(got).toHaveLength(MOE.numExperts);
              const r2 = compare(got, w, { abs: 2e-6 });
              expect(r2.failures, `routing ${key} at position ${seq.length - 1}: got ${Array.from(got).join(', ')}, want ${Array.from(w).join(', ')}`).toBe(0);
              worstRouting = Math.max(worstRouting, r2.maxAbs);
            }
            // The adapter matters: the backbone alone gives clearly different logits here.
            const plainLogits = refLast(s.refPlain, seq).logits;
            let d = 0;
            for (let i = 0; i < V; i++) d = Math.max(d, Math.abs(plainLogits[i] - want.logits[i]));
            onOffDiff = Math.min(onOffDiff, d);
          } else {
            expect(tok.routing, 'no routing with the adapter off').toBeUndefined();
          }
          seq.push(tok.id);
        }
      }
      console.log(
        `[check] prompt ${prompt.length}: worst logit error ${worstLogit.toExponential(2)} (relative to max(1, max|logit|)), ` +
          `worst router weight error ${worstRouting.toExponential(2)}, smallest adapter on/off logit difference ${onOffDiff.toExponential(2)}`,
      );
      expect(onOffDiff).toBeGreaterThan(1e-2);
    });
  }
});

describe('Generator with f16 backbone matrices', () => {
  it('every step matches the reference run on the same rounded weights', async () => {
    const ctx = await testGpu();
    const host = randomWeights(TINY_SHAPE, 31);
    const adapter = randomAdapter(TINY_SHAPE, MOE, 32);
    const weights = new GpuWeights(ctx, TINY_SHAPE, host, MOE, adapter, CAP, 'f16');
    const gen = new Generator(ctx, weights, { maxLength: CAP });
    const rounded = new Map([...host].map(([name, v]) => [name, weights.get(name).dtype === 'f16' ? roundToDtype('F16', v) : v]));
    const ref = new ReferenceLlama(TINY_SHAPE, toRefWeights(rounded), MOE, toRefAdapter(adapter), CAP);
    try {
      const res = await withValidation(ctx, () => gen.generate(PROMPT, params({ maxNewTokens: 4, returnLogits: true })));
      const seq = [...PROMPT];
      for (const tok of res.tokens) {
        const want = refLast(ref, seq).logits;
        expectClose(`f16 weights, step ${tok.step} logits vs reference`, tok.logits!, want, logitTol(want));
        seq.push(tok.id);
      }
      expect(res.tokens).toHaveLength(4);
    } finally {
      gen.destroy();
      weights.destroy();
    }
  });
});

describe('Generator: stopping', () => {
  it('stops on a stop id (returned as the last token), respects maxNewTokens and the callback', async () => {
    const s = await setup();
    const free = await run(s, s.gen, PROMPT, params({ maxNewTokens: 8 }));
    // The first step at which a token appears that did not appear before: stopping on it ends there.
    const k = free.ids.findIndex((id, i) => i >= 2 && !free.ids.slice(0, i).includes(id));
    const at = k >= 0 ? k : 0;
    const eos = free.ids[at];
    const stopped = await run(s, s.gen, PROMPT, params({ maxNewTokens: 8, stopIds: [eos] }));
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.ids).toEqual(free.ids.slice(0, at + 1));

    for (const n of [1, 3]) {
      const r = await run(s, s.gen, PROMPT, params({ maxNewTokens: n }));
      expect(r.finishReason).toBe('length');
      expect(r.ids).toEqual(free.ids.slice(0, n));
    }
    const none = await run(s, s.gen, PROMPT, params({ maxNewTokens: 0 }));
    expect(none.ids).toEqual([]);

    const seen: number[] = [];
    const cb = await run(s, s.gen, PROMPT, params({ maxNewTokens: 8 }), (t) => {
      seen.push(t.id);
      return t.step < 2;
    });
    expect(cb.finishReason).toBe('callback');
    expect(cb.ids).toEqual(free.ids.slice(0, 3));
    expect(seen).toEqual(cb.ids);
  });

  it('stops when the KV cache is full and refuses prompts it cannot hold', async () => {
    const s = await setup();
    const prompt = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
    // Positions 13, 14, 15 take fed tokens: the prefill's token plus three decode steps.
    const r = await run(s, s.gen, prompt, params({ maxNewTokens: 10 }));
    expect(r.finishReason).toBe('capacity');
    expect(r.ids).toHaveLength(CAP - prompt.length + 1);
    await expect(s.gen.generate(new Array(CAP + 1).fill(1), params())).rejects.toThrow(/KV cache holds 16/);
    await expect(s.gen.generate([], params())).rejects.toThrow(/empty/);
    await expect(s.gen.generate([V], params())).rejects.toThrow(/outside the vocabulary/);
    await expect(s.gen.generate(PROMPT, params({ topP: 0 }))).rejects.toThrow(/topP/);
    expect(() => new Generator(s.ctx, s.gen.weights, { maxLength: CAP + 1 })).toThrow(/RoPE tables/);
  });
});

describe('Generator: sampling', () => {
  it('top-k = 1 equals greedy; a seed reproduces its sequence; different seeds differ', async () => {
    const s = await setup();
    const greedy = await run(s, s.gen, PROMPT, params());
    const topk1 = await run(s, s.gen, PROMPT, params({ temperature: 1, topK: 1, seed: 5 }));
    expect(topk1.ids).toEqual(greedy.ids);
    const sample = (seed: number) => run(s, s.gen, PROMPT, params({ temperature: 1, seed }));
    const a = await sample(1);
    const b = await sample(1);
    const c = await sample(2);
    console.log(`[check] sampled at temperature 1: seed 1 ${a.ids.join(' ')}; seed 2 ${c.ids.join(' ')}; greedy ${greedy.ids.join(' ')}`);
    expect(b.ids).toEqual(a.ids);
    expect(c.ids).not.toEqual(a.ids);
    // The logprob is under the unmodified distribution, whatever the sampler did.
    for (const t of topk1.tokens) expect(t.logprob).toBeCloseTo(greedy.tokens[t.step].logprob, 6);
  });
});

describe('sampling distribution (CPU)', () => {
  const logits = Float32Array.from([1, 3, 2, 0, 2.5]);
  const softmax = (x: number[], temp = 1) => {
    const m = Math.max(...x);
    const e = x.map((v) => Math.exp((v - m) / temp));
    const z = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / z);
  };

  it('temperature scales, 0 is greedy', () => {
    expect(Array.from(samplingDistribution(logits, { temperature: 0, topK: 0, topP: 1 }))).toEqual([0, 1, 0, 0, 0]);
    const p = samplingDistribution(logits, { temperature: 2, topK: 0, topP: 1 });
    softmax(Array.from(logits), 2).forEach((v, i) => expect(p[i]).toBeCloseTo(v, 12));
  });

  it('top-k keeps the k most probable and renormalises', () => {
    const p = samplingDistribution(logits, { temperature: 1, topK: 2, topP: 1 });
    const want = softmax([3, 2.5]);
    expect(p[1]).toBeCloseTo(want[0], 12);
    expect(p[4]).toBeCloseTo(want[1], 12);
    expect(p[0] + p[2] + p[3]).toBe(0);
    // Ties are broken by the lower id, so top-1 is the argmax.
    const tied = samplingDistribution([1, 5, 5, 0], { temperature: 1, topK: 1, topP: 1 });
    expect(Array.from(tied)).toEqual([0, 1, 0, 0]);
  });

  it('top-p keeps the smallest set reaching p, after top-k, and renormalises', () => {
    const full = softmax(Array.from(logits)); // order by probability: 1, 4, 2, 0, 3
    const p1 = samplingDistribution(logits, { temperature: 1, topK: 0, topP: full[1] + 1e-9 });
    expect(Array.from(p1).filter((v) => v > 0)).toHaveLength(2);
    const p2 = samplingDistribution(logits, { temperature: 1, topK: 0, topP: full[1] + full[4] + full[2] - 1e-9 });
    const kept = full[1] + full[4] + full[2];
    expect(p2[1]).toBeCloseTo(full[1] / kept, 12);
    expect(p2[2]).toBeCloseTo(full[2] / kept, 12);
    expect(p2[0] + p2[3]).toBe(0);
    // Within the top-3, 0.6 of the renormalised mass needs the two best.
    const p3 = samplingDistribution(logits, { temperature: 1, topK: 3, topP: 0.6 });
    const top2 = softmax([3, 2.5]);
    expect(p3[1]).toBeCloseTo(top2[0], 12);
    expect(p3[4]).toBeCloseTo(top2[1], 12);
    // A tiny p still keeps one token.
    expect(Array.from(samplingDistribution(logits, { temperature: 1, topK: 0, topP: 1e-6 }))).toEqual([0, 1, 0, 0, 0]);
  });

  it('sampleToken follows the distribution', () => {
    const rng = new Rng(7);
    const counts = new Array(5).fill(0);
    const n = 20000;
    const prm = { temperature: 1, topK: 3, topP: 1 };
    for (let i = 0; i < n; i++) counts[sampleToken(logits, prm, rng)]++;
    const p = samplingDistribution(logits, prm);
    for (let i = 0; i < 5; i++) expect(Math.abs(counts[i] / n - p[i])).toBeLessThan(0.015);
    expect(counts[0] + counts[3]).toBe(0);
  });
});
