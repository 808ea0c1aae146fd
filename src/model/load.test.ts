import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { roundToDtype } from '../io/dtypes';
import { MemorySource } from '../io/files';
import { DirectorySource } from '../io/node-files';
import { jsonBytes, rewriteSafetensorsHeader, shardName, tinyHfFiles, type TinyHfOptions, writeFiles } from '../test/hf-dir';
import { tinyConfigJson } from '../test/tiny-llama';
import { expectedTensorNames } from './config';
import { loadBackbone } from './load';

let root: string;
let dirCount = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'loramoe-load-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Writes the files to a fresh folder and returns a DirectorySource on it. */
async function onDisk(files: Map<string, Uint8Array>): Promise<DirectorySource> {
  const dir = join(root, `m${dirCount++}`);
  await writeFiles(dir, files);
  return new DirectorySource(dir);
}

const mem = (files: Map<string, Uint8Array>) => new MemorySource('tiny', files);

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** Loads from disk and from memory; both must give the same weights. */
async function loadBoth(opts: TinyHfOptions) {
  const hf = tinyHfFiles(opts);
  const fromDisk = await loadBackbone(await onDisk(hf.files));
  const fromMem = await loadBackbone(mem(hf.files));
  expect([...fromDisk.weights.keys()]).toEqual([...fromMem.weights.keys()]);
  for (const [k, v] of fromDisk.weights) expect(bits(v)).toEqual(bits(fromMem.weights.get(k)!));
  return { hf, bb: fromDisk, fromMem };
}

describe('loadBackbone: checkpoints that load', () => {
  for (const dtype of ['F32', 'BF16', 'F16'] as const) {
    test(`${dtype} weights equal the written values rounded to ${dtype}`, async () => {
      const { hf, bb } = await loadBoth({ dtype });
      expect(bb.config.hiddenSize).toBe(12);
      expect(bb.config.numLayers).toBe(2);
      const names = expectedTensorNames(bb.config).map((t) => t.name);
      expect([...bb.weights.keys()].sort()).toEqual([...names].sort());
      for (const name of names) {
        const want = roundToDtype(dtype, hf.weights.get(name)!);
        expect(bits(bb.weights.get(name)!), name).toEqual(bits(want));
      }
      if (dtype !== 'F32') {
        // Rounding really happened: some value differs from the float32 original.
        const e = hf.weights.get('model.embed_tokens.weight')!;
        expect(bits(bb.weights.get('model.embed_tokens.weight')!)).not.toEqual(bits(e));
      }
      expect(bb.warnings).toEqual([]);
    });
  }

  test('tokenizer, tokenizer config and name come along', async () => {
    const hf = tinyHfFiles();
    const src = await onDisk(hf.files);
    const bb = await loadBackbone(src);
    expect(bb.name).toBe(src.label);
    expect(bb.tokenizer.size).toBe(23);
    expect(bb.tokenizer.eosId).toBe(2);
    expect(bb.tokenizer.bosId).toBe(1);
    expect(bb.tokenizer.padId).toBe(3);
    expect(bb.tokenizer.encode('the cat sat on the mat.')).toEqual([4, 6, 8, 9, 4, 10, 21]);
    expect((bb.tokenizerConfig as Record<string, unknown>).eos_token).toBe('</s>');
  });

  test('a tokenizer smaller than the vocabulary is fine (Hugging Face pads vocab_size)', async () => {
    const bb = await loadBackbone(mem(tinyHfFiles({ config: { vocab_size: 32 } }).files));
    expect(bb.tokenizer.size).toBe(23);
    expect(bb.weights.get('model.embed_tokens.weight')!.length).toBe(32 * 12);
  });

  test('sharded: index with 2 shards, each shard read once', async () => {
    const { hf, bb } = await loadBoth({ shards: 2, dtype: 'BF16' });
    expect(hf.files.has('model.safetensors')).toBe(false);
    expect(hf.files.has(shardName(0, 2)) && hf.files.has(shardName(1, 2))).toBe(true);
    for (const [name, w] of hf.weights) expect(bits(bb.weights.get(name)!), name).toEqual(bits(roundToDtype('BF16', w)));

    const reads: string[] = [];
    const src = mem(hf.files);
    const counting = { label: src.label, has: (p: string) => src.has(p), readBytes: (p: string) => (reads.push(p), src.readBytes(p)) };
    const progress: [number, number, string][] = [];
    await loadBackbone(counting, { onProgress: (a, b, f) => progress.push([a, b, f]) });
    expect(reads.filter((r) => r.endsWith('.safetensors')).sort()).toEqual([shardName(0, 2), shardName(1, 2)]);
    expect(new Set(reads).size).toBe(reads.length);
    // One progress report per file, with its size.
    expect(progress.map((p) => p[2]).sort()).toEqual([...reads].sort());
    for (const [a, b, f] of progress) {
      expect(a).toBe(b);
      expect(a).toBe(hf.files.get(f)!.byteLength);
    }
  });

  test('untied: lm_head.weight is loaded', async () => {
    const { hf, bb } = await loadBoth({ config: { tie_word_embeddings: false } });
    expect(bb.config.tieWordEmbeddings).toBe(false);
    expect(bits(bb.weights.get('lm_head.weight')!)).toEqual(bits(hf.weights.get('lm_head.weight')!));
  });

  test('tied with an lm_head.weight in the file: ignored, with a note; inv_freq buffers dropped silently', async () => {
    const hf = tinyHfFiles({
      mutate: (ts) => [
        ...ts,
        { name: 'lm_head.weight', dtype: 'F32', shape: [23, 12], data: new Float32Array(23 * 12) },
        { name: 'model.layers.0.self_attn.rotary_emb.inv_freq', dtype: 'F32', shape: [2], data: new Float32Array(2) },
        { name: 'model.extra.scale', dtype: 'F32', shape: [3], data: new Float32Array(3) },
      ],
    });
    const bb = await loadBackbone(mem(hf.files));
    expect(bb.weights.has('lm_head.weight')).toBe(false);
    expect(bb.weights.has('model.layers.0.self_attn.rotary_emb.inv_freq')).toBe(false);
    expect(bb.warnings).toHaveLength(2);
    expect(bb.warnings[0]).toMatch(/lm_head\.weight ignored: tie_word_embeddings is true/);
    expect(bb.warnings[1]).toBe('1 unknown tensor(s) ignored: model.extra.scale [3]');
  });

  test('a mistral config with a sliding window loads and the window is recorded', async () => {
    const bb = await loadBackbone(mem(tinyHfFiles({ config: { model_type: 'mistral', sliding_window: 16 } }).files));
    expect(bb.config.slidingWindow).toEqual({ size: 16, layers: [0, 1] });
    expect(bb.warnings.join('\n')).toMatch(/sliding-window attention of 16 tokens in 2 of 2 layers/);
  });

  test('rope_scaling of type "default" is plain RoPE and loads', async () => {
    const bb = await loadBackbone(mem(tinyHfFiles({ config: { rope_scaling: { rope_type: 'default' } } }).files));
    expect(bb.config.ropeScaling).toBeNull();
  });
});

describe('loadBackbone: refusals name what is wrong', () => {
  const fails = async (files: Map<string, Uint8Array>) => {
    let err: unknown;
    try {
      await loadBackbone(mem(files));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    return (err as Error).message;
  };

  test('missing tensor', async () => {
    const hf = tinyHfFiles({ mutate: (ts) => ts.filter((t) => t.name !== 'model.layers.1.mlp.up_proj.weight') });
    expect(await fails(hf.files)).toBe('tiny: 1 tensor(s) missing from model.safetensors: model.layers.1.mlp.up_proj.weight [20, 12]');
  });

  test('wrong shape: names the tensor, its file, expected and actual shape', async () => {
    const hf = tinyHfFiles({
      mutate: (ts) =>
        ts.map((t) => (t.name === 'model.layers.0.self_attn.k_proj.weight' ? { ...t, shape: [16, 6], data: new Float32Array(96) } : t)),
    });
    expect(await fails(hf.files)).toBe(
      'tiny/model.safetensors: tensor model.layers.0.self_attn.k_proj.weight has shape [16, 6], expected [8, 12] from config.json',
    );
  });

  test('wrong dtype (I32)', async () => {
    const hf = tinyHfFiles();
    hf.files.set(
      'model.safetensors',
      rewriteSafetensorsHeader(hf.files.get('model.safetensors')!, (h) => {
        h['model.norm.weight'].dtype = 'I32';
      }),
    );
    expect(await fails(hf.files)).toBe('tiny/model.safetensors: tensor model.norm.weight has dtype I32; weights must be F32, F16 or BF16');
  });

  test('index naming a missing shard', async () => {
    const hf = tinyHfFiles({ shards: 2 });
    hf.files.delete(shardName(1, 2));
    expect(await fails(hf.files)).toMatch(
      /^tiny\/model\.safetensors\.index\.json: shard model-00002-of-00002\.safetensors is missing from tiny \(it holds model\.layers\.1\./,
    );
  });

  test('index not mapping an expected tensor', async () => {
    const hf = tinyHfFiles({ shards: 2 });
    const index = JSON.parse(new TextDecoder().decode(hf.files.get('model.safetensors.index.json'))) as { weight_map: Record<string, string> };
    delete index.weight_map['model.norm.weight'];
    hf.files.set('model.safetensors.index.json', jsonBytes(index));
    expect(await fails(hf.files)).toBe('tiny/model.safetensors.index.json: 1 expected tensor(s) are not in weight_map: model.norm.weight');
  });

  test('index mapping a tensor to a shard that lacks it', async () => {
    const hf = tinyHfFiles({ shards: 2 });
    const index = JSON.parse(new TextDecoder().decode(hf.files.get('model.safetensors.index.json'))) as { weight_map: Record<string, string> };
    index.weight_map['model.norm.weight'] = shardName(0, 2);
    hf.files.set('model.safetensors.index.json', jsonBytes(index));
    expect(await fails(hf.files)).toBe(
      'tiny/model-00001-of-00002.safetensors: model.safetensors.index.json maps 1 tensor(s) to this shard but it does not hold them: model.norm.weight',
    );
  });

  test('tokenizer bigger than the vocabulary', async () => {
    const hf = tinyHfFiles({ extraWords: 3 });
    expect(await fails(hf.files)).toBe(
      'tiny: tokenizer.json has 26 token ids (0..25) but the embedding has vocab_size 23 rows in config.json: ids past 22 have no embedding',
    );
  });

  test('unsupported model_type', async () => {
    const hf = tinyHfFiles();
    hf.files.set('config.json', jsonBytes(tinyConfigJson({ model_type: 'gemma' })));
    expect(await fails(hf.files)).toBe('tiny/config.json: model_type "gemma" is not supported (supported: llama, mistral, qwen2)');
  });

  test('rope_scaling present (llama3, and a type the parser does not know)', async () => {
    const hf = tinyHfFiles();
    hf.files.set(
      'config.json',
      jsonBytes(
        tinyConfigJson({
          rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 },
        }),
      ),
    );
    expect(await fails(hf.files)).toBe(
      'tiny/config.json: rope_scaling is set (type "llama3"): RoPE scaling is not supported yet; ' +
        'the model code implements plain RoPE only (rope_scaling must be null or absent)',
    );
    hf.files.set('config.json', jsonBytes(tinyConfigJson({ rope_scaling: { type: 'linear', factor: 2 } })));
    expect(await fails(hf.files)).toMatch(/^tiny\/config\.json: rope_scaling is set \(type "linear"\): RoPE scaling is not supported yet/);
  });

  test('untied without lm_head.weight', async () => {
    const hf = tinyHfFiles({ config: { tie_word_embeddings: false }, mutate: (ts) => ts.filter((t) => t.name !== 'lm_head.weight') });
    expect(await fails(hf.files)).toBe(
      'tiny: lm_head.weight is missing from model.safetensors but tie_word_embeddings is false in config.json ' +
        '(a checkpoint without an output head needs tie_word_embeddings: true)',
    );
  });

  test('no weights file at all', async () => {
    const hf = tinyHfFiles();
    hf.files.delete('model.safetensors');
    expect(await fails(hf.files)).toBe('tiny: no model.safetensors or model.safetensors.index.json');
  });

  test('missing tokenizer_config.json', async () => {
    const hf = tinyHfFiles();
    hf.files.delete('tokenizer_config.json');
    expect(await fails(hf.files)).toBe('tiny: tokenizer_config.json is missing (special tokens and chat template)');
  });
});
