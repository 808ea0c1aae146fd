import { describe, expect, test } from 'vitest';
import { roundToDtype } from '../io/dtypes';
import { MemorySource } from '../io/files';
import { parseSafetensors, writeSafetensors } from '../io/safetensors';
import { jsonBytes, rewriteSafetensorsHeader } from '../test/hf-dir';
import { randomAdapter, TINY_SHAPE, tinyShape } from '../test/tiny-llama';
import { defaultAdapterConfig } from './config';
import { type AdapterConfig } from '../method/adapter';
import { PROJECTIONS } from '../method/shapes';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  adapterConfigJson,
  adapterFiles,
  adapterTensors,
  adapterToSafetensors,
  loadAdapter,
  parseAdapterConfig,
} from './files';
import { adapterKey, type AdapterSet } from './init';

const bytesOf = (a: Float32Array | null) => (a === null ? null : new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

function moeCfg(over: Partial<AdapterConfig> = {}): AdapterConfig {
  return { ...defaultAdapterConfig('loramoe'), numExperts: 4, rank: 2, groups: [[2, 3], [0, 1]], ...over };
}
/** The files of a random LoRAMoE adapter (moeCfg, seed 1) for `shape`, under the model name "m". */
function moeFiles(shape = TINY_SHAPE): Map<string, Uint8Array> {
  const cfg = moeCfg();
  return adapterFiles(cfg, shape, randomAdapter(shape, cfg, 1), 'm');
}
function loraCfg(over: Partial<AdapterConfig> = {}): AdapterConfig {
  return { ...defaultAdapterConfig('lora'), rank: 3, ...over };
}

const source = (files: Map<string, Uint8Array>) => new MemorySource('adapter', files);

function expectSameSet(got: AdapterSet, want: AdapterSet): void {
  expect([...got.keys()]).toEqual([...want.keys()]);
  for (const [k, w] of want) {
    const g = got.get(k)!;
    expect(bytesOf(g.wr), `${k} router`).toEqual(bytesOf(w.wr));
    expect(bytesOf(g.a), `${k} A`).toEqual(bytesOf(w.a));
    expect(bytesOf(g.b), `${k} B`).toEqual(bytesOf(w.b));
  }
}

async function fails(files: Map<string, Uint8Array>, shape = TINY_SHAPE): Promise<string> {
  let err: unknown;
  try {
    await loadAdapter(source(files), shape);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(Error);
  return (err as Error).message;
}

function editConfig(files: Map<string, Uint8Array>, edit: (c: Record<string, unknown>) => void): void {
  const c = JSON.parse(new TextDecoder().decode(files.get(ADAPTER_CONFIG_FILE))) as Record<string, unknown>;
  edit(c);
  files.set(ADAPTER_CONFIG_FILE, jsonBytes(c));
}

describe('adapter files: round trip', () => {
  const cases: [string, AdapterConfig][] = [
    ['LoRAMoE on the FFN projections', moeCfg()],
    ['LoRAMoE on all 7 projections', moeCfg({ targets: [...PROJECTIONS], numExperts: 6, groups: [[3, 4, 5], [0, 1, 2]] })],
    ['LoRAMoE, own-group direction, sum importance', moeCfg({ lbcDirection: 'own-group', lbcImportance: 'sum' })],
    ['plain LoRA', loraCfg({ targets: ['q_proj', 'v_proj', 'down_proj'] })],
  ];
  for (const [label, cfg] of cases) {
    test(`${label}: save then load is bit-exact`, async () => {
      const set = randomAdapter(TINY_SHAPE, cfg, 11);
      const files = adapterFiles(cfg, TINY_SHAPE, set, 'tiny/llama', ['downstream', 'knowledge']);
      const loaded = await loadAdapter(source(files), TINY_SHAPE);
      expect(loaded.cfg).toEqual(cfg);
      expect(loaded.baseModel).toBe('tiny/llama');
      expect(loaded.dataTypes).toEqual(['downstream', 'knowledge']);
      expectSameSet(loaded.set, set);
    });
  }

  test('the balancing constraint as trained: written, read back, and filled in for older files', () => {
    const cfg = moeCfg({ lbcDirection: 'own-group', lbcImportance: 'sum' });
    const json = adapterConfigJson(cfg, 'tiny/llama');
    expect(json.loramoe_playground).toMatchObject({ lbcDirection: 'own-group', lbcImportance: 'sum' });
    // A playground file from before the settings: the official direction and the sum it used.
    const older = { ...json, loramoe_playground: { version: 1, mode: 'loramoe', groups: cfg.groups } };
    expect(parseAdapterConfig(older).cfg).toMatchObject({ lbcDirection: 'official', lbcImportance: 'sum' });
    // The official code's file (no playground object): official direction, "mean" (its batch of one).
    const official = { ...json };
    delete official.loramoe_playground;
    expect(parseAdapterConfig(official).cfg).toMatchObject({ lbcDirection: 'official', lbcImportance: 'mean' });
    expect(() => parseAdapterConfig({ ...json, loramoe_playground: { mode: 'loramoe', lbcDirection: 'up' } })).toThrow(
      /loramoe_playground.lbcDirection must be "official" or "own-group", found "up"/,
    );
    expect(() => parseAdapterConfig({ ...json, loramoe_playground: { mode: 'loramoe', lbcImportance: 2 } })).toThrow(/lbcImportance must be "sum" or "mean", found 2/);
  });

  test('the GPU layouts are split into per-expert tensors (A rows, B columns)', () => {
    const cfg = moeCfg();
    const set = randomAdapter(TINY_SHAPE, cfg, 3);
    const byName = new Map(adapterTensors(cfg, TINY_SHAPE, set).map((t) => [t.name, t]));
    const t = set.get(adapterKey(1, 'down_proj'))!;
    const N = 4, R = 2, K = 20, Nout = 12;
    const p = 'base_model.model.model.layers.1.mlp.down_proj';
    for (let j = 0; j < N; j++) {
      const A = byName.get(`${p}.lora_A${j}.weight`)!;
      const B = byName.get(`${p}.lora_B${j}.weight`)!;
      expect(A.shape).toEqual([R, K]);
      expect(B.shape).toEqual([Nout, R]);
      for (let r = 0; r < R; r++) for (let k = 0; k < K; k++) expect(A.data[r * K + k]).toBe(t.a[(j * R + r) * K + k]);
      for (let o = 0; o < Nout; o++) for (let r = 0; r < R; r++) expect(B.data[o * R + r]).toBe(t.b[o * N * R + j * R + r]);
    }
    expect(byName.get(`${p}.lora_route.weight`)!.shape).toEqual([N, K]);
  });

  test('key names follow the official pattern; __metadata__ format pt', () => {
    const cfg = moeCfg({ targets: ['q_proj', 'gate_proj', 'up_proj', 'down_proj'] });
    const bytes = adapterToSafetensors(cfg, TINY_SHAPE, randomAdapter(TINY_SHAPE, cfg, 5));
    const st = parseSafetensors(bytes);
    expect(st.metadata).toEqual({ format: 'pt' });
    const names = [...st.tensors.keys()];
    for (const name of [
      'base_model.model.model.layers.1.mlp.down_proj.lora_B3.weight',
      'base_model.model.model.layers.0.mlp.gate_proj.lora_route.weight',
      'base_model.model.model.layers.0.mlp.up_proj.lora_A0.weight',
      'base_model.model.model.layers.1.self_attn.q_proj.lora_A2.weight',
    ]) {
      expect(names).toContain(name);
    }
    expect(st.tensors.get('base_model.model.model.layers.1.mlp.down_proj.lora_B3.weight')).toMatchObject({ dtype: 'F32', shape: [12, 2] });
    expect(st.tensors.get('base_model.model.model.layers.0.mlp.gate_proj.lora_route.weight')).toMatchObject({ shape: [4, 12] });
    // 2 layers x 4 modules x (1 router + 4 A + 4 B)
    expect(names).toHaveLength(2 * 4 * 9);
  });

  test('plain LoRA uses the PEFT names, without router or expert index', () => {
    const cfg = loraCfg();
    const st = parseSafetensors(adapterToSafetensors(cfg, TINY_SHAPE, randomAdapter(TINY_SHAPE, cfg, 5)));
    expect([...st.tensors.keys()].sort()).toEqual(
      [0, 1]
        .flatMap((l) => ['gate_proj', 'up_proj', 'down_proj'].map((p) => `base_model.model.model.layers.${l}.mlp.${p}`))
        .flatMap((p) => [`${p}.lora_A.weight`, `${p}.lora_B.weight`])
        .sort(),
    );
    expect(st.tensors.get('base_model.model.model.layers.0.mlp.gate_proj.lora_B.weight')).toMatchObject({ shape: [20, 3] });
  });

  test('adapter_config.json has the official fields', () => {
    const cfg = moeCfg();
    expect(adapterConfigJson(cfg, 'HuggingFaceTB/SmolLM2-135M', ['task', 'knowledge'])).toEqual({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M',
      r: 2,
      lora_alpha: 32,
      lora_nums: 4,
      blc_alpha: 0.1,
      blc_weight: 0.1,
      lora_dropout: 0.05,
      target_modules: ['gate_proj', 'up_proj', 'down_proj'],
      bias: 'none',
      fan_in_fan_out: false,
      inference_mode: true,
      loramoe_playground: { version: 1, mode: 'loramoe', groups: [[2, 3], [0, 1]], dataTypes: ['task', 'knowledge'], lbcDirection: 'official', lbcImportance: 'mean' },
    });
    const lora = adapterConfigJson(loraCfg(), 'm');
    expect(lora).not.toHaveProperty('lora_nums');
    expect(lora.loramoe_playground).toEqual({ version: 1, mode: 'lora', groups: [[0]] });
  });

  test('an official config without the playground object loads with the official grouping', async () => {
    const cfg = moeCfg({ groups: [[2, 3], [0, 1]] });
    const set = randomAdapter(TINY_SHAPE, cfg, 2);
    const files = adapterFiles(cfg, TINY_SHAPE, set, 'm');
    editConfig(files, (c) => delete c.loramoe_playground);
    const loaded = await loadAdapter(source(files), TINY_SHAPE);
    expect(loaded.cfg).toEqual(cfg);
    expect(loaded.dataTypes).toBeUndefined();
    expectSameSet(loaded.set, set);
  });

  test('BF16 and F16 adapter files load as the rounded values', async () => {
    const cfg = moeCfg();
    const set = randomAdapter(TINY_SHAPE, cfg, 4);
    for (const dtype of ['BF16', 'F16'] as const) {
      const files = adapterFiles(cfg, TINY_SHAPE, set, 'm');
      const tensors = adapterTensors(cfg, TINY_SHAPE, set).map((t) => ({ ...t, dtype }));
      files.set(ADAPTER_WEIGHTS_FILE, writeSafetensors(tensors));
      const loaded = await loadAdapter(source(files), TINY_SHAPE);
      for (const [k, w] of set) {
        const g = loaded.set.get(k)!;
        expect(bytesOf(g.a)).toEqual(bytesOf(roundToDtype(dtype, w.a)));
        expect(bytesOf(g.b)).toEqual(bytesOf(roundToDtype(dtype, w.b)));
        expect(bytesOf(g.wr)).toEqual(bytesOf(roundToDtype(dtype, w.wr!)));
      }
    }
  });
});

describe('adapter files: rejections say what differs', () => {
  test('adapter for a model with more layers', async () => {
    const big = tinyShape({ num_hidden_layers: 3 });
    const files = moeFiles(big);
    expect(await fails(files)).toBe(
      'adapter/adapter_model.safetensors: the adapter has tensors for layer 2 but the backbone has 2 layers (0..1): ' +
        'the adapter is for a model with more layers',
    );
  });

  test('adapter for a model with fewer layers', async () => {
    const small = tinyShape({ num_hidden_layers: 1 });
    const files = moeFiles(small);
    expect(await fails(files)).toBe(
      'adapter/adapter_model.safetensors: no tensors for layer(s) 1: the backbone has 2 layers, the adapter covers 1 of them ' +
        '(it is for a model with fewer layers)',
    );
  });

  test('different expert count', async () => {
    const files = moeFiles();
    editConfig(files, (c) => {
      c.lora_nums = 6;
      delete c.loramoe_playground;
    });
    expect(await fails(files)).toBe(
      'adapter/adapter_model.safetensors: lora_nums is 6 in adapter_config.json but layer 0 gate_proj has 4 experts ' +
        '(lora_A0..lora_A3): the adapter has a different expert count',
    );
  });

  test('different rank', async () => {
    const files = moeFiles();
    editConfig(files, (c) => {
      c.r = 4;
    });
    expect(await fails(files)).toBe(
      'adapter/adapter_model.safetensors: r is 4 in adapter_config.json but tensor ' +
        'base_model.model.model.layers.0.mlp.gate_proj.lora_A0.weight has shape [2, 12] (rank 2): the adapter has a different rank',
    );
  });

  test('wrong hidden size: the shape mismatch names the tensor', async () => {
    const wide = tinyShape({ hidden_size: 16 });
    const files = moeFiles(wide);
    expect(await fails(files)).toBe(
      'adapter/adapter_model.safetensors: tensor base_model.model.model.layers.0.mlp.gate_proj.lora_route.weight has shape [4, 16], ' +
        'expected [4, 12] for this backbone (hidden_size 12, intermediate_size 20)',
    );
  });

  test('missing tensor', async () => {
    const cfg = moeCfg();
    const set = randomAdapter(TINY_SHAPE, cfg, 1);
    const files = adapterFiles(cfg, TINY_SHAPE, set, 'm');
    const gone = 'base_model.model.model.layers.1.mlp.up_proj.lora_B2.weight';
    files.set(ADAPTER_WEIGHTS_FILE, writeSafetensors(adapterTensors(cfg, TINY_SHAPE, set).filter((t) => t.name !== gone)));
    expect(await fails(files)).toBe(`adapter/adapter_model.safetensors: 1 tensor(s) missing: ${gone} [20, 2]`);
  });

  test('config missing r', async () => {
    const files = moeFiles();
    editConfig(files, (c) => delete c.r);
    expect(await fails(files)).toBe('adapter/adapter_config.json: r is missing (expected a positive integer)');
  });

  test('config missing target_modules, and missing blc_alpha for LoRAMoE', async () => {
    const files = moeFiles();
    editConfig(files, (c) => delete c.blc_alpha);
    expect(await fails(files)).toBe('adapter/adapter_config.json: blc_alpha is missing (expected a number in [0, 1))');
    editConfig(files, (c) => {
      c.blc_alpha = 0.1;
      delete c.target_modules;
    });
    expect(await fails(files)).toMatch(/^adapter\/adapter_config\.json: target_modules is missing/);
  });

  test('target modules present vs declared', async () => {
    const files = moeFiles();
    editConfig(files, (c) => {
      c.target_modules = ['q_proj', 'gate_proj', 'up_proj'];
    });
    expect(await fails(files)).toBe(
      'adapter/adapter_model.safetensors: target_modules declares q_proj, gate_proj, up_proj but the tensors adapt ' +
        'gate_proj, up_proj, down_proj (not declared: down_proj) (no tensors: q_proj)',
    );
  });

  test('unknown extra tensors are refused by name', async () => {
    const cfg = moeCfg();
    const set = randomAdapter(TINY_SHAPE, cfg, 1);
    const files = adapterFiles(cfg, TINY_SHAPE, set, 'm');
    const extra = { name: 'base_model.model.lm_head.weight', dtype: 'F32' as const, shape: [2], data: new Float32Array(2) };
    files.set(ADAPTER_WEIGHTS_FILE, writeSafetensors([...adapterTensors(cfg, TINY_SHAPE, set), extra]));
    expect(await fails(files)).toMatch(/^adapter\/adapter_model\.safetensors: 1 unknown tensor\(s\): base_model\.model\.lm_head\.weight /);
  });

  test('non-float adapter tensor', async () => {
    const cfg = loraCfg();
    const files = adapterFiles(cfg, TINY_SHAPE, randomAdapter(TINY_SHAPE, cfg, 1), 'm');
    const name = 'base_model.model.model.layers.0.mlp.up_proj.lora_A.weight';
    files.set(ADAPTER_WEIGHTS_FILE, rewriteSafetensorsHeader(files.get(ADAPTER_WEIGHTS_FILE)!, (h) => void (h[name].dtype = 'I32')));
    expect(await fails(files)).toBe(`adapter/adapter_model.safetensors: tensor ${name} has dtype I32; adapter tensors must be F32, F16 or BF16`);
  });

  test('LoRAMoE tensors with a plain LoRA config', async () => {
    const files = moeFiles();
    editConfig(files, (c) => {
      delete c.lora_nums;
      delete c.loramoe_playground;
    });
    expect(await fails(files)).toMatch(/is a router, but the config is plain LoRA/);
  });

  test('missing files', async () => {
    const cfg = loraCfg();
    const files = adapterFiles(cfg, TINY_SHAPE, randomAdapter(TINY_SHAPE, cfg, 1), 'm');
    files.delete(ADAPTER_WEIGHTS_FILE);
    expect(await fails(files)).toBe(
      'adapter: adapter_model.safetensors is missing (an adapter folder holds adapter_config.json and adapter_model.safetensors or adapter_model.bin)',
    );
  });

  test('saving refuses a set that does not match the config', () => {
    const cfg = moeCfg();
    const set = randomAdapter(TINY_SHAPE, cfg, 1);
    set.delete(adapterKey(1, 'up_proj'));
    expect(() => adapterToSafetensors(cfg, TINY_SHAPE, set)).toThrow('adapter files: no adapter tensors for layer 1 up_proj');
    expect(() => adapterToSafetensors(defaultAdapterConfig('full'), TINY_SHAPE, new Map())).toThrow('mode "full" has no adapter to save');
  });
});
