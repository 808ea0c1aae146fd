/**
 * The model on the engine worker's GPU: the weights (the backbone with the adapter in use), the
 * frozen backbone that the weights of LoRA and LoRAMoE runs share, what the adapter is (trained,
 * imported or none) and an imported adapter's host copy, and the `weights` setting that decides how
 * the backbone's matrices are stored. The worker's shared state (./state.ts) holds one; runs, chat,
 * the probe, adapter files and a device change build on it.
 */
import { isSoftwareAdapter } from '../engine/autotune';
import type { GpuContext } from '../engine/gpu';
import { defaultAdapterConfig } from '../loramoe/config';
import type { AdapterSet } from '../loramoe/init';
import type { AdapterConfig } from '../method/adapter';
import type { Backbone } from '../model/load';
import { resolvePrecision, usablePrecision, type WeightPrecision, type WeightSetting } from '../model/tensor-plan';
import { GpuBackbone, GpuWeights } from '../model/weights';
import { type AdapterState, noAdapter } from './protocol';

/** What the model needs of the worker: its device, backbone and positions, and the chat to drop when the weights change. */
export interface ModelHost {
  readonly ctx: GpuContext;
  readonly maxPositions: number;
  readonly chat: { drop(): void };
  requireBackbone(): Backbone;
}

export class GpuModel {
  weights: GpuWeights | null = null;
  /** The backbone on the GPU that the weights of LoRA and LoRAMoE runs share (see sharedBackbone). */
  private gpuBackbone: GpuBackbone | null = null;
  adapter: AdapterState = noAdapter();
  /** The host copy of an imported adapter (rebuilt onto a new device after a device loss). */
  imported: { cfg: AdapterConfig; set: AdapterSet | null } | null = null;
  /** How the backbone's matrices are stored (the `weights` setting; precisionFor resolves it). */
  weightSetting: WeightSetting = 'auto';

  constructor(private readonly host: ModelHost) {}

  /** Everything on the GPU goes (a new backbone is coming). */
  drop(): void {
    this.imported = null;
    this.weights?.destroy();
    this.weights = null;
    this.dropSharedBackbone();
  }

  /** The precision the weight setting gives on this adapter (f32 for full fine-tuning). */
  precisionFor(cfg: Pick<AdapterConfig, 'mode'>): WeightPrecision {
    return usablePrecision(cfg, resolvePrecision(this.weightSetting, isSoftwareAdapter(this.host.ctx.adapter)));
  }

  /** New GPU weights for the backbone with this adapter (the generator reading the old ones goes). */
  rebuildWeights(cfg: AdapterConfig, set: AdapterSet | null, precision: WeightPrecision = this.precisionFor(cfg)): GpuWeights {
    const b = this.host.requireBackbone();
    this.host.chat.drop();
    this.weights?.destroy();
    this.weights = null;
    // Full fine-tuning trains its own copy: the shared one goes first, so two never sit side by side.
    const shared = cfg.mode === 'full' ? (this.dropSharedBackbone(), null) : this.sharedBackbone(precision);
    this.weights = new GpuWeights(this.host.ctx, b.config, b.weights, cfg, set, this.host.maxPositions, precision, shared);
    return this.weights;
  }

  /**
   * The frozen backbone on the GPU in this precision, uploaded on first use and kept for the next
   * runs (model/weights.ts GpuBackbone); a new one after a device, backbone or precision change.
   */
  sharedBackbone(precision: WeightPrecision): GpuBackbone {
    const b = this.host.requireBackbone();
    const cur = this.gpuBackbone;
    if (cur && cur.ctx === this.host.ctx && cur.shape === b.config && cur.precision === precision) return cur;
    this.dropSharedBackbone();
    this.gpuBackbone = new GpuBackbone(this.host.ctx, b.config, b.weights, precision);
    return this.gpuBackbone;
  }

  /**
   * New weights of the frozen backbone alone (no adapter; the caller destroys them): on the shared
   * backbone when it is in the setting's precision, else on a copy of their own, since the shared
   * one may hold a run's weights in another precision.
   */
  frozenWeights(): GpuWeights {
    const b = this.host.requireBackbone();
    const precision = this.precisionFor({ mode: 'none' });
    const cur = this.gpuBackbone;
    const shared = cur && cur.ctx === this.host.ctx && cur.shape === b.config && cur.precision === precision ? cur : null;
    return new GpuWeights(this.host.ctx, b.config, b.weights, defaultAdapterConfig('none'), null, this.host.maxPositions, precision, shared);
  }

  /** Frees the shared backbone (the weights built on it must be gone or about to go). */
  dropSharedBackbone(): void {
    this.gpuBackbone?.destroy();
    this.gpuBackbone = null;
  }

  /** The frozen backbone alone on the GPU, and no adapter. */
  useFrozenBackbone(): void {
    this.rebuildWeights(defaultAdapterConfig('none'), null);
    this.adapter = noAdapter();
  }

}
