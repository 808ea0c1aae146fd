/**
 * Worker entry points of src/fuzz/torch.fuzz.test.ts (called by name through IsolatedRunner, plain
 * data in and out): the restricted unpickler, the torch.save archive reader and loadAdapter on a
 * folder with adapter_model.bin. Each returns a summary the test checks against the input.
 */

/** What a loaded pickle or archive held. */
export interface TorchSummary {
  tensors: { name: string; dtype: string; shape: number[]; stride: number[]; offset: number; numel: number; storageKey: string; storageNumel: number; read: number }[];
}

/** unpickleStateDict on raw pickle bytes. */
export async function fuzzUnpickle(bytes: Uint8Array, fileName: string): Promise<TorchSummary> {
  const { unpickleStateDict } = await import('../io/torch-pickle');
  const sd = unpickleStateDict(bytes, fileName);
  return {
    tensors: [...sd].map(([name, t]) => ({
      name,
      dtype: t.storage.dtype,
      shape: t.shape,
      stride: t.stride,
      offset: t.offset,
      numel: t.shape.reduce((a, b) => a * b, 1),
      storageKey: t.storage.key,
      storageNumel: t.storage.numel,
      read: -1,
    })),
  };
}

/** parseTorchFile on a whole archive, then read every tensor (read = values returned). */
export async function fuzzParseTorchFile(bytes: Uint8Array, fileName: string): Promise<TorchSummary> {
  const { parseTorchFile } = await import('../io/torch-file');
  const sd = parseTorchFile(bytes, fileName);
  return {
    tensors: [...sd.tensors].map(([name, t]) => {
      const v = sd.read(name);
      if (!(v instanceof Float32Array)) throw new TypeError(`read(${name}) did not return a Float32Array`);
      return {
        name,
        dtype: t.dtype,
        shape: t.shape,
        stride: t.ref.stride,
        offset: t.ref.offset,
        numel: t.shape.reduce((a, b) => a * b, 1),
        storageKey: t.ref.storage.key,
        storageNumel: t.ref.storage.numel,
        read: v.length,
      };
    }),
  };
}

/** loadAdapter from in-memory files: the number of floats it built per adapter module. */
export async function fuzzLoadTorchAdapter(label: string, files: [string, Uint8Array][], shape: unknown): Promise<{ floats: number; modules: number; weightsFile: string }> {
  const { MemorySource } = await import('../io/files');
  const { loadAdapter } = await import('../loramoe/files');
  const loaded = await loadAdapter(new MemorySource(label, new Map(files)), shape as Parameters<typeof loadAdapter>[1]);
  let floats = 0;
  for (const t of loaded.set.values()) floats += t.a.length + t.b.length + (t.wr?.length ?? 0);
  return { floats, modules: loaded.set.size, weightsFile: loaded.weightsFile };
}
