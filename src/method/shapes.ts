/**
 * The Llama projections and their shapes: which linear layers a block has, what they are called in
 * a Hugging Face checkpoint, and their [in, out] features. Shared by the CPU reference, the GPU
 * model, the adapter's initialisation and files, and the memory estimate.
 *
 * Dimension letters (docs/ARCHITECTURE.md, "Dimension letters"): C hidden size, F FFN width,
 * H heads, KVH key/value heads, D head dim.
 */

/** Every projection of a Llama block, in the order adapters, files and the views list them. */
export const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type Projection = (typeof PROJECTIONS)[number];

/** The model shape these helpers and the CPU reference need (src/model/config.ts ModelConfig extends it). */
export interface LlamaShape {
  /** C */
  hiddenSize: number;
  /** F */
  intermediateSize: number;
  /** L */
  numLayers: number;
  /** H */
  numHeads: number;
  /** KVH (defaults to H) */
  numKvHeads: number;
  /** D (`head_dim`, else C / H) */
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** V */
  vocabSize: number;
  /** lm_head shares model.embed_tokens.weight. */
  tieWordEmbeddings: boolean;
  /** q_proj, k_proj and v_proj have biases (qwen2; llama with attention_bias). */
  attentionBias: boolean;
  /** o_proj has a bias too (Llama with attention_bias). */
  attentionOutBias?: boolean;
}

export function layerPrefix(l: number): string {
  return `model.layers.${l}`;
}

export function projectionWeightName(l: number, p: Projection): string {
  const block = p.endsWith('_proj') && ['gate_proj', 'up_proj', 'down_proj'].includes(p) ? 'mlp' : 'self_attn';
  return `${layerPrefix(l)}.${block}.${p}.weight`;
}

/** Whether a projection has a bias: q/k/v with attentionBias (Qwen2), o_proj with attentionOutBias. */
export function hasBias(s: LlamaShape, p: Projection): boolean {
  if (p === 'q_proj' || p === 'k_proj' || p === 'v_proj') return s.attentionBias;
  return p === 'o_proj' && (s.attentionOutBias ?? false);
}

/** [in, out] features of a projection: [C, H*D] for q, [C, KVH*D] for k and v, [H*D, C] for o, [C, F] for gate and up, [F, C] for down. */
export function projectionShape(s: LlamaShape, p: Projection): [number, number] {
  const C = s.hiddenSize;
  const qd = s.numHeads * s.headDim;
  const kvd = s.numKvHeads * s.headDim;
  switch (p) {
    case 'q_proj':
      return [C, qd];
    case 'k_proj':
    case 'v_proj':
      return [C, kvd];
    case 'o_proj':
      return [qd, C];
    case 'gate_proj':
    case 'up_proj':
      return [C, s.intermediateSize];
    case 'down_proj':
      return [s.intermediateSize, C];
  }
}
