/**
 * Live GPU buffer accounting for leak checks and memory figures (src/worker/reliability.test.ts,
 * tools/soak.ts, tools/bench/step-stats.ts): wraps a device's createBuffer, and the destroy of
 * every buffer it makes, to count the buffers alive and their bytes. A buffer that is dropped without destroy() stays counted: WebGPU frees
 * its memory only when it is garbage-collected, which is exactly the leak this looks for.
 */
export interface BufferCount {
  /** Buffers created and not destroyed. */
  readonly live: number;
  readonly liveBytes: number;
  /** The most bytes alive at once since counting began. */
  readonly peakBytes: number;
  /** Buffers created since counting began. */
  readonly created: number;
  /** Live buffers by label (the tensor name), most first: what a leak is made of. */
  byLabel(): [string, number][];
  /** Puts the device's own createBuffer back. */
  stop(): void;
}

export function countBuffers(device: GPUDevice): BufferCount {
  const live = new Map<GPUBuffer, { label: string; size: number }>();
  let created = 0;
  let liveBytes = 0;
  let peakBytes = 0;
  const original = device.createBuffer;
  const wrapped = function (this: GPUDevice, desc: GPUBufferDescriptor): GPUBuffer {
    const buf = original.call(this, desc);
    created++;
    live.set(buf, { label: desc.label ?? '', size: desc.size });
    liveBytes += desc.size;
    peakBytes = Math.max(peakBytes, liveBytes);
    const destroy = buf.destroy;
    buf.destroy = function (this: GPUBuffer): undefined {
      if (live.delete(buf)) liveBytes -= desc.size;
      return destroy.call(this);
    };
    return buf;
  };
  device.createBuffer = wrapped;
  return {
    get live() {
      return live.size;
    },
    get liveBytes() {
      return liveBytes;
    },
    get peakBytes() {
      return peakBytes;
    },
    get created() {
      return created;
    },
    byLabel() {
      const m = new Map<string, number>();
      for (const { label } of live.values()) m.set(label, (m.get(label) ?? 0) + 1);
      return [...m].sort((a, b) => b[1] - a[1]);
    },
    stop() {
      if (device.createBuffer === wrapped) device.createBuffer = original;
    },
  };
}
