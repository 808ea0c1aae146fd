/**
 * Pipeline cache: each (shader, entry point, override constants) compiles once. Shapes never enter
 * the key; they travel in uniforms, so one pipeline serves every layer and every batch size.
 */
export interface ShaderSource {
  /** Stable name, used in cache keys and error messages (e.g. "matmul"). */
  name: string;
  code: string;
}

export type OverrideConstants = Record<string, number | boolean>;

/** One pipeline's creation, as timed on the CPU (where Dawn compiles; a browser may defer to first use). */
export interface PipelineCompile {
  key: string;
  ms: number;
}

export class PipelineCache {
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** Every pipeline created, in order, with its creation time: what a cold start pays. */
  readonly compiles: PipelineCompile[] = [];
  /** Called on every get() while set, with the key and whether this call compiled it: a build's pipelines are counted with it. */
  onGet: ((key: string, compiled: boolean) => void) | null = null;

  constructor(private readonly device: GPUDevice) {}

  get size(): number {
    return this.pipelines.size;
  }

  /** The pipeline of this key (as onGet reports it) is compiled. */
  has(key: string): boolean {
    return this.pipelines.has(key);
  }

  get(shader: ShaderSource, entryPoint: string, constants: OverrideConstants = {}): GPUComputePipeline {
    const constKey = Object.keys(constants)
      .sort()
      .map((k) => `${k}=${Number(constants[k])}`)
      .join(',');
    const key = `${shader.name}:${entryPoint}:${constKey}`;
    const hit = this.pipelines.get(key);
    if (hit) {
      this.onGet?.(key, false);
      return hit;
    }
    const t0 = performance.now();
    let module = this.modules.get(shader.name);
    if (!module) {
      module = this.device.createShaderModule({ label: shader.name, code: shader.code });
      this.modules.set(shader.name, module);
    }
    const numeric: Record<string, number> = {};
    for (const [k, v] of Object.entries(constants)) numeric[k] = Number(v);
    const pipeline = this.device.createComputePipeline({
      label: key,
      layout: 'auto',
      compute: { module, entryPoint, constants: numeric },
    });
    this.pipelines.set(key, pipeline);
    this.compiles.push({ key, ms: performance.now() - t0 });
    this.onGet?.(key, true);
    return pipeline;
  }
}
