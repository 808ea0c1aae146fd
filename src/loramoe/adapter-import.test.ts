/**
 * Adapters written by PyTorch (src/loramoe/fixtures/, made by tools/fixtures/make_torch_adapters.py
 * with torch.save): every tensor loads as the value PyTorch reports (expected.json, written by
 * Python, never by this code), the official LoRAMoE and PEFT layouts reach the GPU layouts of
 * AdapterSet, PEFT's use_rslora gives the scale lora_alpha / sqrt(r), and each refusal says what is
 * refused and where.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { zipSync } from 'fflate';
import { BlobSource, entriesFromZip } from '../io/browser-files';
import { MemorySource } from '../io/files';
import { DirectorySource } from '../io/node-files';
import { parseSafetensors, writeSafetensors } from '../io/safetensors';
import { parseTorchFile } from '../io/torch-file';
import { projectionShape, projectionWeightName, type Projection } from '../method/shapes';
import { ReferenceLlama } from '../reference/llama';
import { randomWeights, TINY_SHAPE, toRefAdapter, toRefWeights } from '../test/tiny-llama';
import { ADAPTER_BIN_FILE, normalizePeftConfig } from './adapter-import';
import { defaultAdapterConfig } from './config';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, loadAdapter } from './files';
import { adapterKey, type AdapterSet } from './init';

const FIXTURES = fileURLToPath(new URL('./fixtures', import.meta.url));

interface ExpectedTensor {
  dtype: 'F32' | 'F16' | 'BF16';
  shape: number[];
  values: number[];
}
type Expected = Record<string, Record<string, ExpectedTensor>> & { scales: Record<string, number> };
const EXPECTED = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as Expected;

/** PyTorch's float32 values of a tensor (expected.json holds shortest decimals of float32 values). */
const f32 = (t: ExpectedTensor) => Float32Array.from(t.values);
const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** The folder's files in memory, with edits. */
function folder(name: string, edit: (files: Map<string, Uint8Array>) => void = () => undefined): MemorySource {
  const files = new Map<string, Uint8Array>();
  for (const f of readdirSync(join(FIXTURES, name))) files.set(f, new Uint8Array(readFileSync(join(FIXTURES, name, f))));
  edit(files);
  return new MemorySource(name, files);
}

function editConfig(files: Map<string, Uint8Array>, edit: (c: Record<string, unknown>) => void): void {
  const c = JSON.parse(new TextDecoder().decode(files.get(ADAPTER_CONFIG_FILE))) as Record<string, unknown>;
  edit(c);
  files.set(ADAPTER_CONFIG_FILE, new TextEncoder().encode(JSON.stringify(c)));
}

async function refusal(src: MemorySource): Promise<string> {
  let err: unknown;
  try {
    await loadAdapter(src, TINY_SHAPE);
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a refusal').toBeInstanceOf(Error);
  return (err as Error).message;
}

const prefix = (l: number, p: Projection) => `base_model.model.model.layers.${l}.${['gate_proj', 'up_proj', 'down_proj'].includes(p) ? 'mlp' : 'self_attn'}.${p}`;

/**
 * Checks an AdapterSet against PyTorch's per-expert tensors, through the layouts documented in
 * files.ts: A stacked [N*R, K] (expert j = rows j*R..), Bcat [Nout, N*R] with Bcat[o, j*R + r] =
 * B_j[o, r], the router [N, K]; plain LoRA: A [R, K], B [Nout, R].
 */
function expectSetMatches(set: AdapterSet, tensors: Record<string, ExpectedTensor>, targets: Projection[], N: number, R: number, routed: boolean): void {
  expect(set.size).toBe(TINY_SHAPE.numLayers * targets.length);
  for (let l = 0; l < TINY_SHAPE.numLayers; l++) {
    for (const p of targets) {
      const t = set.get(adapterKey(l, p))!;
      const [K, Nout] = projectionShape(TINY_SHAPE, p);
      const pre = prefix(l, p);
      const wantA = new Float32Array(N * R * K);
      const wantB = new Float32Array(Nout * N * R);
      for (let j = 0; j < N; j++) {
        const a = f32(tensors[routed ? `${pre}.lora_A${j}.weight` : `${pre}.lora_A.weight`]);
        const b = f32(tensors[routed ? `${pre}.lora_B${j}.weight` : `${pre}.lora_B.weight`]);
        wantA.set(a, j * R * K);
        for (let o = 0; o < Nout; o++) for (let r = 0; r < R; r++) wantB[o * N * R + j * R + r] = b[o * R + r];
      }
      expect(bits(t.a), `${pre} A`).toEqual(bits(wantA));
      expect(bits(t.b), `${pre} B`).toEqual(bits(wantB));
      if (routed) expect(bits(t.wr!), `${pre} router`).toEqual(bits(f32(tensors[`${pre}.lora_route.weight`])));
      else expect(t.wr).toBeNull();
    }
  }
}

describe('PyTorch files: every tensor as PyTorch reads it', () => {
  for (const [file, tensors] of Object.entries(EXPECTED)) {
    if (file === 'scales') continue;
    test(file, () => {
      const bytes = new Uint8Array(readFileSync(join(FIXTURES, file)));
      const names = Object.keys(tensors);
      if (file.endsWith('.bin')) {
        const sd = parseTorchFile(bytes, file);
        expect([...sd.tensors.keys()]).toEqual(names);
        for (const [name, want] of Object.entries(tensors)) {
          expect(sd.tensors.get(name)).toMatchObject({ dtype: want.dtype, shape: want.shape });
          expect(bits(sd.read(name)), name).toEqual(bits(f32(want)));
        }
      } else {
        expect([...parseSafetensors(bytes, file).tensors.keys()].sort()).toEqual([...names].sort());
      }
    });
  }

  test('the bfloat16 fixture exercises storage offsets (experts sliced from one storage)', () => {
    const sd = parseTorchFile(new Uint8Array(readFileSync(join(FIXTURES, 'official-bf16', ADAPTER_BIN_FILE))), 'bf16');
    const offsets = [...sd.tensors.values()].map((t) => t.ref.offset);
    expect(offsets.some((o) => o > 0)).toBe(true);
    const keys = new Set([...sd.tensors.values()].map((t) => t.ref.storage.key));
    expect(keys.size).toBeLessThan(sd.tensors.size);
  });
});

describe('loadAdapter on PyTorch adapters', () => {
  const MOE_TARGETS: Projection[] = ['q_proj', 'gate_proj', 'up_proj', 'down_proj'];
  for (const name of ['official-f32', 'official-f16', 'official-bf16']) {
    test(`${name}: the official LoRAMoE layout reaches the GPU layouts with PyTorch's values`, async () => {
      const loaded = await loadAdapter(new DirectorySource(join(FIXTURES, name)), TINY_SHAPE);
      expect(loaded.weightsFile).toBe(ADAPTER_BIN_FILE);
      expect(loaded.cfg).toMatchObject({ mode: 'loramoe', numExperts: 2, rank: 2, alpha: 4, dropout: 0.05, targets: MOE_TARGETS, lbcDelta: 0.1, lbcBeta: 0.1, groups: [[1], [0]] });
      expect(loaded.cfg.alpha / loaded.cfg.rank).toBe(EXPECTED.scales.official);
      expect(loaded.baseModel).toBe('tiny/llama');
      expectSetMatches(loaded.set, EXPECTED[`${name}/${ADAPTER_BIN_FILE}`], MOE_TARGETS, 2, 2, true);
    });
  }

  const LORA_TARGETS: Projection[] = ['q_proj', 'v_proj', 'down_proj'];
  test('PEFT LoRA: adapter_model.bin and adapter_model.safetensors give the same adapter, with PyTorch values', async () => {
    const bin = await loadAdapter(folder('peft-lora'), TINY_SHAPE);
    const st = await loadAdapter(folder('peft-lora-st'), TINY_SHAPE);
    expect(bin.weightsFile).toBe(ADAPTER_BIN_FILE);
    expect(st.weightsFile).toBe(ADAPTER_WEIGHTS_FILE);
    expect(bin.cfg).toMatchObject({ mode: 'lora', numExperts: 1, rank: 4, alpha: 8, dropout: 0, targets: LORA_TARGETS, groups: [[0]] });
    expect(st.cfg).toEqual(bin.cfg);
    expectSetMatches(bin.set, EXPECTED[`peft-lora/${ADAPTER_BIN_FILE}`], LORA_TARGETS, 1, 4, false);
    expectSetMatches(st.set, EXPECTED[`peft-lora-st/${ADAPTER_WEIGHTS_FILE}`], LORA_TARGETS, 1, 4, false);
  });

  test('the playground\'s import path: a zipped folder holding adapter_model.bin (itself a zip) loads through BlobSource', async () => {
    const files: Record<string, Uint8Array> = {};
    for (const f of readdirSync(join(FIXTURES, 'official-f16'))) files[`my-adapter/${f}`] = new Uint8Array(readFileSync(join(FIXTURES, 'official-f16', f)));
    const loaded = await loadAdapter(new BlobSource('my-adapter.zip', entriesFromZip(zipSync(files), 'my-adapter.zip')), TINY_SHAPE);
    expect(loaded.weightsFile).toBe(ADAPTER_BIN_FILE);
    expectSetMatches(loaded.set, EXPECTED[`official-f16/${ADAPTER_BIN_FILE}`], ['q_proj', 'gate_proj', 'up_proj', 'down_proj'], 2, 2, true);
  });

  test('both weights files present: the safetensors file is read (as PEFT does)', async () => {
    const loaded = await loadAdapter(
      folder('peft-lora-st', (f) => f.set(ADAPTER_BIN_FILE, new Uint8Array([1, 2, 3]))),
      TINY_SHAPE,
    );
    expect(loaded.weightsFile).toBe(ADAPTER_WEIGHTS_FILE);
  });

  test('use_rslora: scale lora_alpha / sqrt(r), as the alpha of a scale alpha / r', async () => {
    const plain = await loadAdapter(folder('peft-lora'), TINY_SHAPE);
    const rs = await loadAdapter(folder('peft-rslora'), TINY_SHAPE);
    expect(plain.cfg.alpha / plain.cfg.rank).toBe(EXPECTED.scales['peft-lora']);
    expect(rs.cfg.alpha / rs.cfg.rank).toBeCloseTo(EXPECTED.scales['peft-rslora'], 14);
    expect(rs.peft.rsLora).toEqual({ loraAlpha: 8, rank: 4, alpha: 16 });
    expect(plain.peft.rsLora).toBeUndefined();
  });

  /**
   * Through the float64 CPU reference: the backbone with the adapter gives the logits of the
   * backbone whose projections are merged, W' = W + s * B A, with s from the formula (PyTorch's
   * scales in expected.json) and A, B as PyTorch read them. Merging is computed here, not by the
   * code under test; the two scales must give different logits, so the check sees the scale.
   */
  test('a PEFT adapter runs through the CPU reference as W + s B A predicts, use_rslora off and on', async () => {
    const weights = randomWeights(TINY_SHAPE, 5);
    const T = 7;
    const ids = [1, 4, 6, 15, 16, 21, 22];
    const batch = { B: 1, T, ids, targets: [...ids.slice(1), 2], valid: new Array(T).fill(1), types: [0] };
    const tensors = EXPECTED[`peft-lora/${ADAPTER_BIN_FILE}`];
    const logitsOf = (folderName: string, scale: number, loaded: Awaited<ReturnType<typeof loadAdapter>>) => {
      const viaAdapter = new ReferenceLlama(TINY_SHAPE, toRefWeights(weights), loaded.cfg, toRefAdapter(loaded.set), T).forward(batch, { dropout: 0, seed: 0 }).logits;
      const merged = toRefWeights(weights);
      for (let l = 0; l < TINY_SHAPE.numLayers; l++) {
        for (const p of LORA_TARGETS) {
          const [K, Nout] = projectionShape(TINY_SHAPE, p);
          // float32 values as PyTorch holds them (the decimals in expected.json round to them).
          const a = f32(tensors[`${prefix(l, p)}.lora_A.weight`]);
          const b = f32(tensors[`${prefix(l, p)}.lora_B.weight`]);
          const w = merged.get(projectionWeightName(l, p))!;
          for (let o = 0; o < Nout; o++) {
            for (let k = 0; k < K; k++) {
              let s = 0;
              for (let r = 0; r < 4; r++) s += b[o * 4 + r] * a[r * K + k];
              w[o * K + k] += scale * s;
            }
          }
        }
      }
      const viaMerge = new ReferenceLlama(TINY_SHAPE, merged, defaultAdapterConfig('none'), new Map(), T).forward(batch, { dropout: 0, seed: 0 }).logits;
      let worst = 0;
      let size = 0;
      for (let i = 0; i < viaMerge.length; i++) {
        worst = Math.max(worst, Math.abs(viaAdapter[i] - viaMerge[i]));
        size = Math.max(size, Math.abs(viaMerge[i]));
      }
      console.log(`[check] ${folderName}: scale ${scale}, adapter vs merged logits differ by ${worst.toExponential(2)} (max |logit| ${size.toFixed(3)})`);
      expect(worst).toBeLessThan(1e-10 * Math.max(1, size));
      return viaMerge;
    };
    const off = logitsOf('peft-lora', EXPECTED.scales['peft-lora'], await loadAdapter(folder('peft-lora'), TINY_SHAPE));
    const on = logitsOf('peft-rslora', EXPECTED.scales['peft-rslora'], await loadAdapter(folder('peft-rslora'), TINY_SHAPE));
    const base = new ReferenceLlama(TINY_SHAPE, toRefWeights(weights), defaultAdapterConfig('none'), new Map(), T).forward(batch, { dropout: 0, seed: 0 }).logits;
    let offVsOn = 0;
    let offVsBase = 0;
    for (let i = 0; i < on.length; i++) {
      offVsOn = Math.max(offVsOn, Math.abs(on[i] - off[i]));
      offVsBase = Math.max(offVsBase, Math.abs(off[i] - base[i]));
    }
    expect(offVsOn).toBeGreaterThan(1e-2);
    expect(offVsBase).toBeGreaterThan(1e-2);
  });
});

describe('refusals', () => {
  test('a pickle calling os.system: refused by name and byte offset, nothing run', async () => {
    const msg = await refusal(folder('peft-lora', (f) => f.set(ADAPTER_BIN_FILE, new Uint8Array(readFileSync(join(FIXTURES, 'bad/forbidden-global.bin'))))));
    expect(msg).toBe(
      'peft-lora/adapter_model.bin: forbidden-global/data.pkl: global posix.system is not allowed: a state dict of tensors names only ' +
        'collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch.FloatStorage, torch.HalfStorage, torch.BFloat16Storage ' +
        '(nothing in the file is imported or run) (at byte 231)',
    );
  });

  test('a transposed tensor and a float64 tensor, as torch.save wrote them', () => {
    const load = (f: string) => () => parseTorchFile(new Uint8Array(readFileSync(join(FIXTURES, 'bad', f))), f);
    expect(load('strided.bin')).toThrow('strided.bin: tensor "w" has size [3, 2] with stride [1, 3], not a contiguous row-major layout (stride [2, 1]); save it with .contiguous()');
    expect(load('double.bin')).toThrow(/^double\.bin: double\/data\.pkl: global torch\.DoubleStorage is not allowed: float64 tensors cannot be adapter weights \(float32, float16 or bfloat16 only\) \(at byte \d+\)$/);
  });

  test('modules_to_save: a non-empty list is refused by name; null and [] are nothing to save', async () => {
    const msg = await refusal(folder('peft-lora', (f) => editConfig(f, (c) => void (c.modules_to_save = ['lm_head', 'embed_tokens']))));
    expect(msg).toBe(
      'peft-lora/adapter_config.json: modules_to_save lists lm_head, embed_tokens: whole trained copies of modules are not supported ' +
        '(the backbone stays frozen; only LoRA / LoRAMoE weights of the projections load)',
    );
    await expect(loadAdapter(folder('peft-lora', (f) => editConfig(f, (c) => void (c.modules_to_save = []))), TINY_SHAPE)).resolves.toBeDefined();
  });

  test('target_modules naming a layer the playground does not adapt', async () => {
    const msg = await refusal(folder('peft-lora', (f) => editConfig(f, (c) => void (c.target_modules = ['q_proj', 'v_proj', 'down_proj', 'lm_head']))));
    expect(msg).toMatch(/^peft-lora\/adapter_config\.json: target_modules names "lm_head", not a Llama projection/);
  });

  test('LoRA weights of lm_head and embed_tokens in the file: the modules are named', async () => {
    const st = folder('peft-lora-st');
    const bytes = await st.readBytes(ADAPTER_WEIGHTS_FILE);
    const parsed = parseSafetensors(bytes, 'x');
    const list = [...parsed.tensors].map(([name, info]) => ({ name, dtype: 'F32' as const, shape: info.shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset + parsed.dataOffset + info.begin, bytes.byteOffset + parsed.dataOffset + info.end)) }));
    list.push({ name: 'base_model.model.lm_head.lora_A.weight', dtype: 'F32', shape: [4, 12], data: new Float32Array(48) });
    list.push({ name: 'base_model.model.model.embed_tokens.lora_embedding_A', dtype: 'F32', shape: [4, 23], data: new Float32Array(92) });
    const msg = await refusal(folder('peft-lora-st', (f) => f.set(ADAPTER_WEIGHTS_FILE, writeSafetensors(list))));
    expect(msg).toBe(
      'peft-lora-st/adapter_model.safetensors: the adapter has LoRA weights for 2 module(s) the playground cannot adapt: ' +
        'base_model.model.lm_head, base_model.model.model.embed_tokens ' +
        '(only the projections q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj of base_model.model.model.layers.{L}.{mlp|self_attn})',
    );
  });

  test('target_modules "all-linear" means every projection; a regular expression is refused', async () => {
    const all = await refusal(folder('peft-lora', (f) => editConfig(f, (c) => void (c.target_modules = 'all-linear'))));
    expect(all).toBe(
      'peft-lora/adapter_model.bin: target_modules declares q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj but the tensors adapt ' +
        'q_proj, v_proj, down_proj (no tensors: k_proj, o_proj, gate_proj, up_proj)',
    );
    const re = await refusal(folder('peft-lora', (f) => editConfig(f, (c) => void (c.target_modules = '.*\\.(q|v)_proj'))));
    expect(re).toBe('peft-lora/adapter_config.json: target_modules is the pattern ".*\\\\.(q|v)_proj"; give a list of module names (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)');
  });

  test('no weights file', async () => {
    const msg = await refusal(folder('peft-lora', (f) => f.delete(ADAPTER_BIN_FILE)));
    expect(msg).toBe('peft-lora: adapter_model.safetensors is missing (an adapter folder holds adapter_config.json and adapter_model.safetensors or adapter_model.bin)');
  });

  test('use_rslora with an invalid r is left to the config reader, which names r', async () => {
    const msg = await refusal(folder('peft-rslora', (f) => editConfig(f, (c) => void (c.r = 0))));
    expect(msg).toBe('peft-rslora/adapter_config.json: r must be a positive integer, found 0');
  });

  test('normalizePeftConfig does not modify its input', () => {
    const c = { r: 4, lora_alpha: 8, use_rslora: true, modules_to_save: null, target_modules: 'all-linear' };
    const copy = JSON.parse(JSON.stringify(c)) as unknown;
    const { json } = normalizePeftConfig(c, 'x');
    expect(c).toEqual(copy);
    expect(json).toEqual({ r: 4, lora_alpha: 16, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] });
  });
});
