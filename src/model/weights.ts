/**
 * The model's parameters on the GPU: backbone tensors under their Hugging Face names, adapter
 * tensors per adapted projection, and the RoPE tables (the size table's weights and adapter
 * entries, tensor-plan.ts weightsPlan; tensor-plan.test.ts checks the two agree). Training graphs and the generator share one
 * GpuWeights, so what a run trains is what chat uses.
 */
import type { GpuContext } from '../engine/gpu';
import { createTensor, readTensor, type Tensor } from '../engine/tensor';
import { type AdapterConfig, hasAdapter, isRouted, orderedTargets } from '../method/adapter';
import { adapterKey, type AdapterArrays, type AdapterSet } from '../loramoe/init';
import { projectionShape } from '../method/shapes';
import { ropeTables } from '../reference/rope';
import { expectedTensorNames, type ModelConfig } from './config';
import { adapterTensorName, backboneDtype, usablePrecision, type WeightPrecision } from './tensor-plan';

export interface AdapterTensors {
  /** Router [N, K]; null in plain LoRA. */
  wr: Tensor<'f32'> | null;
  /** Stacked A [N*R, K]. */
  a: Tensor<'f32'>;
  /** Concatenated B [Nout, N*R]. */
  b: Tensor<'f32'>;
}

/** A backbone tensor: f32, or an f16 matrix (WeightPrecision). */
export type BackboneTensor = Tensor<'f32' | 'f16'>;

/**
 * The frozen backbone on the GPU: every tensor under its Hugging Face name, matrices in the given
 * precision. Uploaded once and shared by the GpuWeights of successive runs, whose adapters change
 * while the backbone does not, so a run's start uploads only its adapter (SmolLM2-135M's backbone
 * took 2.4-3.8 s to upload on SwiftShader). Full fine-tuning trains the backbone in place, so its
 * GpuWeights always own theirs.
 */
export class GpuBackbone {
  readonly tensors = new Map<string, BackboneTensor>();

  constructor(
    readonly ctx: GpuContext,
    readonly shape: ModelConfig,
    host: Map<string, Float32Array>,
    readonly precision: WeightPrecision,
  ) {
    for (const { name, shape: dims } of expectedTensorNames(shape)) {
      const data = host.get(name);
      if (!data) throw new Error(`weights: tensor ${name} [${dims.join(', ')}] is missing`);
      const n = dims.reduce((a, b) => a * b, 1);
      if (data.length !== n) throw new Error(`weights: tensor ${name} has ${data.length} values, expected [${dims.join(', ')}] = ${n}`);
      const dtype = backboneDtype(dims, precision);
      if (dtype === 'f16') checkHalfRange(name, data);
      this.tensors.set(name, createTensor(ctx, name, dims, dtype, data));
    }
  }

  destroy(): void {
    for (const t of this.tensors.values()) t.destroy();
  }
}

export class GpuWeights {
  /** The backbone's tensors (shared with other GpuWeights when built on a GpuBackbone). */
  readonly backbone: Map<string, BackboneTensor>;
  readonly adapter = new Map<string, AdapterTensors>();
  /** RoPE tables [maxPositions, D/2]. */
  readonly cos: Tensor<'f32'>;
  readonly sin: Tensor<'f32'>;
  /** The backbone these weights uploaded themselves (null: a shared one, never destroyed here). */
  private readonly ownBackbone: GpuBackbone | null;

  constructor(
    readonly ctx: GpuContext,
    readonly shape: ModelConfig,
    host: Map<string, Float32Array>,
    readonly adapterCfg: AdapterConfig,
    adapter: AdapterSet | null,
    readonly maxPositions: number,
    /** How the backbone's matrices are stored (tensor-plan.ts WeightPrecision). */
    readonly precision: WeightPrecision = 'f32',
    /** A backbone already on the GPU to build on (not for full fine-tuning); null: upload `host`. */
    shared: GpuBackbone | null = null,
  ) {
    if (usablePrecision(adapterCfg, precision) !== precision) {
      throw new Error('weights: full fine-tuning updates the backbone, so its weights must be f32, not f16');
    }
    if (shared) {
      if (adapterCfg.mode === 'full') throw new Error('weights: full fine-tuning trains the backbone in place and cannot share one');
      if (shared.ctx !== ctx || shared.shape !== shape || shared.precision !== precision) {
        throw new Error(`weights: the shared backbone was uploaded for another device, model or precision (${shared.precision}, wanted ${precision})`);
      }
    }
    const source = shared ?? new GpuBackbone(ctx, shape, host, precision);
    this.ownBackbone = shared ? null : source;
    this.backbone = source.tensors;
    if (hasAdapter(adapterCfg)) {
      if (!adapter) throw new Error('weights: the adapter configuration needs adapter tensors');
      const N = adapterCfg.numExperts;
      const R = adapterCfg.rank;
      for (let l = 0; l < shape.numLayers; l++) {
        for (const p of orderedTargets(adapterCfg)) {
          const key = adapterKey(l, p);
          const host = adapter.get(key);
          if (!host) throw new Error(`weights: adapter tensors for layer ${l} ${p} are missing`);
          const [K, Nout] = projectionShape(shape, p);
          const make = (part: 'router' | 'A' | 'B', dims: number[], data: Float32Array) => {
            const n = dims[0] * dims[1];
            if (data.length !== n) throw new Error(`weights: adapter ${key}.${part} has ${data.length} values, expected [${dims.join(', ')}] = ${n}`);
            return createTensor(ctx, adapterTensorName(l, p, part), dims, 'f32', data);
          };
          if (isRouted(adapterCfg) && !host.wr) throw new Error(`weights: adapter ${key} has no router`);
          this.adapter.set(key, {
            wr: isRouted(adapterCfg) && host.wr ? make('router', [N, K], host.wr) : null,
            a: make('A', [N * R, K], host.a),
            b: make('B', [Nout, N * R], host.b),
          });
        }
      }
    }
    const t = ropeTables(maxPositions, shape.headDim, shape.ropeTheta);
    this.cos = createTensor(ctx, 'rope cos', [maxPositions, shape.headDim / 2], 'f32', t.cos);
    this.sin = createTensor(ctx, 'rope sin', [maxPositions, shape.headDim / 2], 'f32', t.sin);
  }

  get(name: string): BackboneTensor {
    const t = this.backbone.get(name);
    if (!t) throw new Error(`weights: no backbone tensor ${name}`);
    return t;
  }

  /** The output head: the embedding matrix when tied. [V, C] */
  lmHead(): BackboneTensor {
    return this.get(this.shape.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
  }

  async readAdapter(): Promise<AdapterSet> {
    const out: AdapterSet = new Map();
    for (const [key, t] of this.adapter) {
      const arrays: AdapterArrays = {
        wr: t.wr ? await readTensor(this.ctx, t.wr) : null,
        a: await readTensor(this.ctx, t.a),
        b: await readTensor(this.ctx, t.b),
      };
      out.set(key, arrays);
    }
    return out;
  }

  /** The backbone as float32 (an f16 matrix comes back as its rounded values). */
  async readBackbone(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [name, t] of this.backbone) out.set(name, await readTensor(this.ctx, t));
    return out;
  }

  /** Bytes of all parameters on the GPU. */
  get bytes(): number {
    let n = this.cos.bytes + this.sin.bytes;
    for (const t of this.backbone.values()) n += t.bytes;
    for (const t of this.adapter.values()) n += t.a.bytes + t.b.bytes + (t.wr?.bytes ?? 0);
    return n;
  }

  destroy(): void {
    this.ownBackbone?.destroy();
    for (const t of this.adapter.values()) {
      t.a.destroy();
      t.b.destroy();
      t.wr?.destroy();
    }
    this.cos.destroy();
    this.sin.destroy();
  }
}

/** Largest finite binary16 value. */
const HALF_MAX = 65504;

/**
 * A value past the f16 range would become infinity: refuse with the tensor and the value rather
 * than train on it (no Llama-family checkpoint comes near; a damaged one might).
 */
function checkHalfRange(name: string, data: Float32Array): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (Math.abs(v) > HALF_MAX) {
      throw new Error(`weights: tensor ${name} holds ${v} at index ${i}, past the f16 range (±${HALF_MAX}); use f32 weights for this backbone`);
    }
  }
}
