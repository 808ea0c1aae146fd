/**
 * The whole-model reference backward against central finite differences of the whole loss
 * (cross-entropy + LBC), for every adapter tensor of every adapted projection, and in full
 * fine-tuning mode for every backbone weight. Float64 throughout: agreement to ~1e-7 relative.
 */
import { describe, expect, it } from 'vitest';
import { type AdapterConfig } from '../method/adapter';
import { PROJECTIONS } from '../method/shapes';
import { defaultAdapterConfig, randomAdapter, randomWeights, TINY_SHAPE, tinyMoe, toRefAdapter, toRefWeights } from '../test/tiny-llama';
import { numericGradient, probeIndices } from './gradcheck';
import { ReferenceLlama, type RefBatch } from './llama';

const B = 2;
const T = 5;

function tinyBatch(V: number): RefBatch {
  // Sample 0: 5 real tokens, prompt of 2. Sample 1: 3 real tokens + 2 padding, prompt of 1.
  const ids = [3, 7, 1, 19, 4, 5, 11, 2, 0, 0];
  const valid = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
  const targets = [-100, 1, 19, 4, -100, 11, 2, -100, -100, -100];
  for (const id of ids) if (id >= V) throw new Error('test batch id out of range');
  return { B, T, ids, targets, valid, types: [1, 0] };
}

function check(label: string, analytic: Float64Array, numeric: Map<number, number>): number {
  let worst = 0;
  for (const [i, num] of numeric) {
    const ana = analytic[i];
    const err = Math.abs(ana - num) / Math.max(1e-3, Math.abs(num));
    worst = Math.max(worst, err);
    expect(err, `${label}[${i}]: analytic ${ana}, numeric ${num}`).toBeLessThan(2e-6);
  }
  return worst;
}

function run(shape: typeof TINY_SHAPE, cfg: AdapterConfig, dropout: number) {
  const weights = toRefWeights(randomWeights(shape, 11));
  const adapter = toRefAdapter(randomAdapter(shape, cfg, 12));
  const model = new ReferenceLlama(shape, weights, cfg, adapter, T);
  const batch = tinyBatch(shape.vocabSize);
  const opts = { dropout, seed: 99 };
  const loss = () => model.forward(batch, opts).loss;
  const f = model.forward(batch, opts);
  const grads = model.backward(batch, f);
  return { model, weights, adapter, batch, loss, f, grads };
}

describe('reference Llama + LoRAMoE backward vs finite differences', () => {
  const cases: Array<[string, AdapterConfig, number]> = [
    ['loramoe, FFN targets, dropout 0', tinyMoe(), 0],
    ['loramoe, all targets, dropout 0.3 (fixed mask)', tinyMoe({ dropout: 0.3, targets: [...PROJECTIONS] }), 0.3],
    ['loramoe, own-group direction, sum importance', tinyMoe({ lbcDirection: 'own-group', lbcImportance: 'sum' }), 0],
    ['plain lora, all targets', { ...defaultAdapterConfig('lora'), rank: 3, alpha: 6, dropout: 0, targets: [...PROJECTIONS] }, 0],
  ];
  for (const [label, cfg, dropout] of cases) {
    it(label, () => {
      const { adapter, loss, f, grads } = run(TINY_SHAPE, cfg, dropout);
      expect(f.count).toBe(5);
      if (cfg.mode === 'loramoe') expect(f.lbc).toBeGreaterThan(0);
      let worst = 0;
      for (const [key, t] of adapter) {
        const g = grads.adapter.get(key);
        expect(g, `gradient for ${key}`).toBeDefined();
        for (const part of ['wr', 'a', 'b'] as const) {
          const x = t[part];
          const gx = g![part];
          if (!x) {
            expect(gx).toBeNull();
            continue;
          }
          worst = Math.max(worst, check(`${key}.${part}`, gx!, numericGradient(loss, x, probeIndices(x.length, 6))));
        }
      }
      console.log(`[check] ${label}: worst relative error vs finite differences ${worst.toExponential(2)}`);
    });
  }

  it('full fine-tuning: every backbone weight, untied head and attention biases', () => {
    const shape: typeof TINY_SHAPE = { ...TINY_SHAPE, tieWordEmbeddings: false, attentionBias: true, attentionOutBias: true };
    const { weights, loss, grads } = run(shape, defaultAdapterConfig('full'), 0);
    let worst = 0;
    for (const [name, w] of weights) {
      const g = grads.weights.get(name);
      expect(g, `gradient for ${name}`).toBeDefined();
      worst = Math.max(worst, check(name, g!, numericGradient(loss, w, probeIndices(w.length, 5))));
    }
    expect(grads.weights.size).toBe(weights.size);
    console.log(`[check] full fine-tuning: worst relative error vs finite differences ${worst.toExponential(2)}`);
  });

  it('tied embeddings get the head and the embedding gradient', () => {
    const { weights, loss, grads } = run(TINY_SHAPE, defaultAdapterConfig('full'), 0);
    const E = weights.get('model.embed_tokens.weight')!;
    check('embed (tied)', grads.weights.get('model.embed_tokens.weight')!, numericGradient(loss, E, probeIndices(E.length, 12)));
  });

  it('the initial adapter (B = 0) leaves the backbone output unchanged', () => {
    const cfg = { ...defaultAdapterConfig('loramoe'), numExperts: 4, groups: [[2, 3], [0, 1]], lbcBeta: 0 };
    const weights = toRefWeights(randomWeights(TINY_SHAPE, 11));
    const batch = tinyBatch(TINY_SHAPE.vocabSize);
    const base = new ReferenceLlama(TINY_SHAPE, weights, defaultAdapterConfig('none'), new Map(), T).forward(batch, { dropout: 0, seed: 0 });
    const init = toRefAdapter(randomAdapter(TINY_SHAPE, cfg, 3));
    for (const t of init.values()) t.b.fill(0);
    const withAdapter = new ReferenceLlama(TINY_SHAPE, weights, cfg, init, T).forward(batch, { dropout: 0, seed: 0 });
    expect(withAdapter.ce).toBe(base.ce);
  });
});
