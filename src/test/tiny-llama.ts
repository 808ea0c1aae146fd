/**
 * Tiny random Llama models for tests: a shape with grouped key/value heads, float32-rounded random
 * weights under Hugging Face names, and adapters with non-zero B (a zero B would hide bugs in every
 * gradient but dB).
 */
import { type AdapterConfig } from '../loramoe/config';
import { adapterKey, type AdapterSet, initAdapter } from '../loramoe/init';
import { type AdapterWeights, layerPrefix, type LlamaShape, type Weights } from '../reference/llama';
import { Rng } from '../util/random';

export const TINY_SHAPE: LlamaShape = {
  hiddenSize: 12,
  intermediateSize: 20,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 4,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  vocabSize: 23,
  tieWordEmbeddings: true,
  attentionBias: false,
};

/** HF tensor names and shapes of a Llama checkpoint of this shape. */
export function tensorShapes(s: LlamaShape): Map<string, number[]> {
  const C = s.hiddenSize;
  const qd = s.numHeads * s.headDim;
  const kvd = s.numKvHeads * s.headDim;
  const m = new Map<string, number[]>();
  m.set('model.embed_tokens.weight', [s.vocabSize, C]);
  for (let l = 0; l < s.numLayers; l++) {
    const p = layerPrefix(l);
    m.set(`${p}.input_layernorm.weight`, [C]);
    m.set(`${p}.self_attn.q_proj.weight`, [qd, C]);
    m.set(`${p}.self_attn.k_proj.weight`, [kvd, C]);
    m.set(`${p}.self_attn.v_proj.weight`, [kvd, C]);
    if (s.attentionBias) {
      m.set(`${p}.self_attn.q_proj.bias`, [qd]);
      m.set(`${p}.self_attn.k_proj.bias`, [kvd]);
      m.set(`${p}.self_attn.v_proj.bias`, [kvd]);
    }
    m.set(`${p}.self_attn.o_proj.weight`, [C, qd]);
    m.set(`${p}.post_attention_layernorm.weight`, [C]);
    m.set(`${p}.mlp.gate_proj.weight`, [s.intermediateSize, C]);
    m.set(`${p}.mlp.up_proj.weight`, [s.intermediateSize, C]);
    m.set(`${p}.mlp.down_proj.weight`, [C, s.intermediateSize]);
  }
  m.set('model.norm.weight', [C]);
  if (!s.tieWordEmbeddings) m.set('lm_head.weight', [s.vocabSize, C]);
  return m;
}

/** Random float32 weights: norms near 1, matrices U(-0.5, 0.5)/sqrt(fan-in)·2 so activations stay O(1). */
export function randomWeights(s: LlamaShape, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of tensorShapes(s)) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (name.endsWith('norm.weight')) out.set(name, rng.f32Array(n, 0.8, 1.2));
    else if (shape.length === 1) out.set(name, rng.f32Array(n, -0.1, 0.1));
    else if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') out.set(name, rng.f32Array(n, -1, 1));
    else {
      const b = 1.5 / Math.sqrt(shape[1]);
      out.set(name, rng.f32Array(n, -b, b));
    }
  }
  return out;
}

/** The official init, then B filled with random values so every gradient path is exercised. */
export function randomAdapter(s: LlamaShape, cfg: AdapterConfig, seed: number): AdapterSet {
  const set = initAdapter(s, cfg, seed);
  const rng = new Rng(seed + 1);
  for (const t of set.values()) t.b.set(rng.f32Array(t.b.length, -0.3, 0.3));
  return set;
}

export function toRefWeights(w: Map<string, Float32Array>): Weights {
  return new Map([...w].map(([k, v]) => [k, Float64Array.from(v)]));
}

export function toRefAdapter(a: AdapterSet): AdapterWeights {
  return new Map(
    [...a].map(([k, v]) => [k, { wr: v.wr ? Float64Array.from(v.wr) : null, a: Float64Array.from(v.a), b: Float64Array.from(v.b) }]),
  );
}

export { adapterKey };
