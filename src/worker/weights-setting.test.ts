/**
 * The `weights` setting in the worker (Node, Dawn on SwiftShader): auto keeps f32 on a software
 * adapter; f16 stores the frozen backbone's matrices again at once when no run holds them, with
 * the adapter kept; a run trains on f16 matrices; full fine-tuning and the comparison's runs keep f32.
 */
import { describe, expect, it } from 'vitest';
import { asFileEntries, tinyHfFiles } from '../test/hf-dir';
import { testGpu } from '../test/gpu';
import { tinyRunSettings } from '../test/run-settings';
import { runSpecOf } from '../train/run-settings';
import type { RunStatus, WorkerEvent } from './protocol';
import { readTensor } from '../engine/tensor';
import { defaultAdapterConfig } from '../loramoe/config';
import { GpuWeights } from '../model/weights';
import { Session } from './session';

const bytes = (text: string) => new TextEncoder().encode(text).buffer as ArrayBuffer;
const train = () =>
  Array.from({ length: 12 }, (_, i) =>
    JSON.stringify({ instruction: `what is ${i} ?`, input: '', output: i % 2 ? 'cat' : 'dog', type: i % 3 ? 'task' : 'world knowledge' }),
  ).join('\n');

describe('the weights setting', () => {
  it('stores the backbone matrices as the setting says, now when idle, and in the next run', async () => {
    const hf = tinyHfFiles({ seed: 5 });
    const events: WorkerEvent[] = [];
    let status: RunStatus | null = null;
    const session = new Session(await testGpu(), (ev) => {
      events.push(ev);
      if (ev.type === 'runStatus') status = ev.status;
    });
    const files = asFileEntries(hf.files);
    await session.loadBackbone({ kind: 'files', ref: { kind: 'local', name: 'tiny' }, files });
    await session.loadDataset('train', 'train.jsonl', bytes(train()));

    // auto on a software adapter: f32.
    expect(session.model.weightSetting).toBe('auto');
    const f32 = session.model.weights!;
    expect(f32.precision).toBe('f32');
    const f32Bytes = f32.bytes;

    // f16 while idle: stored again now; matrices halve, so the weights take well under f32's bytes.
    await session.setWeightSetting('f16');
    const half = session.model.weights!;
    expect(half).not.toBe(f32);
    expect(half.precision).toBe('f16');
    expect(half.get('model.embed_tokens.weight').dtype).toBe('f16');
    expect(half.get('model.norm.weight').dtype).toBe('f32');
    expect(half.bytes).toBeLessThan(0.6 * f32Bytes);
    const memory = events.flatMap((e) => (e.type === 'adapter' ? [e.memory] : []));
    expect(memory.at(-1)).toMatchObject({ weights: half.bytes, precision: 'f16' });

    // A LoRAMoE run trains on f16 matrices, and its adapter survives a change back to f32 after it.
    const spec = runSpecOf(tinyRunSettings({ steps: 3, seed: 2, checkpointEvery: 0, routingEvery: 3 }));
    await session.startRun(spec, false);
    expect(session.model.weights!.precision).toBe('f16');
    // The checkpoints carry it: a resumed run (after a reload or a lost device) keeps its precision.
    expect((session as unknown as { run: { meta: { weights?: string } } }).run.meta.weights).toBe('f16');
    while (status !== 'done' && status !== 'error') await new Promise((r) => setTimeout(r, 10));
    expect(status).toBe('done');
    const trained = await session.model.weights!.readAdapter();
    // The run holds the weights (Continue, the run's chat): the change waits for the next rebuild,
    // and the page is told the weights on the GPU are still f16.
    await session.setWeightSetting('f32');
    expect(session.model.weights!.precision).toBe('f16');
    expect(events.flatMap((e) => (e.type === 'adapter' ? [e.memory.precision] : [])).at(-1)).toBe('f16');
    const again = await session.model.weights!.readAdapter();
    for (const [key, t] of trained) expect(again.get(key)!.a).toEqual(t.a);

    // Full fine-tuning keeps f32 even when f16 is asked for.
    await session.setWeightSetting('f16');
    status = null;
    await session.startRun({ ...spec, mode: 'full' }, false);
    expect(session.model.weights!.precision).toBe('f32');
    while (status !== 'done' && status !== 'error') await new Promise((r) => setTimeout(r, 10));
    expect(status).toBe('done');

    // A compared method runs on f32 too, so every method of a comparison starts from the same backbone.
    status = null;
    await session.startRun({ ...spec, method: 'loramoe' }, false);
    expect(session.model.weights!.precision).toBe('f32');
    while (status !== 'done' && status !== 'error') await new Promise((r) => setTimeout(r, 10));
    expect(status).toBe('done');
  });

  it('runs share the backbone on the GPU; full fine-tuning trains a copy of its own', async () => {
    const hf = tinyHfFiles({ seed: 6 });
    let status: RunStatus | null = null;
    const session = new Session(await testGpu(), (ev) => {
      if (ev.type === 'runStatus') status = ev.status;
    });
    await session.loadBackbone({ kind: 'files', ref: { kind: 'local', name: 'tiny' }, files: asFileEntries(hf.files) });
    await session.loadDataset('train', 'train.jsonl', bytes(train()));
    const spec = runSpecOf(tinyRunSettings({ steps: 2, seed: 3, checkpointEvery: 0, routingEvery: 2 }));
    const run = async (s: typeof spec) => {
      status = null;
      await session.startRun(s, false);
      while (status !== 'done' && status !== 'error') await new Promise((r) => setTimeout(r, 10));
      expect(status).toBe('done');
    };
    const embedding = () => session.model.weights!.get('model.embed_tokens.weight');
    const frozen = embedding();
    await run(spec);
    expect(embedding()).toBe(frozen); // the LoRAMoE run uploaded only its adapter
    await run({ ...spec, mode: 'full' });
    const trained = embedding();
    expect(trained).not.toBe(frozen);
    // The fine-tuned copy moved; the backbone the next run gets is the file's again.
    const host = hf.weights.get('model.embed_tokens.weight')!;
    expect(await readTensor(session.gpu, trained)).not.toEqual(host);
    await run(spec);
    expect(await readTensor(session.gpu, embedding())).toEqual(host);
    // Sharing is refused where it would let training write into the shared tensors.
    const b = session.model.sharedBackbone('f32');
    expect(() => new GpuWeights(session.gpu, b.shape, hf.weights, defaultAdapterConfig('full'), null, 8, 'f32', b)).toThrow(/cannot share/);
  });
});
