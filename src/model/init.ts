/**
 * Random initialisation of a Llama-family model, as Hugging Face's LlamaPreTrainedModel does for a
 * model trained from scratch: every Linear and the embedding ~ N(0, initializer_range = 0.02), every
 * RMSNorm weight 1, biases 0. Used to pretrain the demo backbone.
 */
import { Rng } from '../util/random';
import { expectedTensorNames, type ModelConfig } from './config';

export function initLlamaWeights(cfg: ModelConfig, seed: number, std = 0.02): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float32Array>();
  for (const { name, shape } of expectedTensorNames(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const t = new Float32Array(n);
    if (name.endsWith('norm.weight')) t.fill(1);
    else if (!name.endsWith('.bias')) for (let i = 0; i < n; i++) t[i] = std * rng.normal();
    out.set(name, t);
  }
  return out;
}
