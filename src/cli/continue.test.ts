/**
 * `train --adapter DIR`: the configuration training continues with (the adapter's structure wins,
 * contradicting flags are refused by name, training settings and groups as documented in
 * continue.ts), and the runner end to end on a tiny Llama from the PyTorch fixtures: an official
 * LoRAMoE adapter_model.bin and a PEFT use_rslora adapter are trained on, and the adapter written
 * back starts from the file's values (PyTorch's, from expected.json).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DirectorySource } from '../io/node-files';
import { defaultAdapterConfig } from '../loramoe/config';
import { loadAdapter } from '../loramoe/files';
import { runnerFolder } from '../test/hf-dir';
import { TINY_SHAPE } from '../test/tiny-llama';
import { continueAdapterConfig } from './continue';
import { main } from './main';

const FIXTURES = fileURLToPath(new URL('../loramoe/fixtures', import.meta.url));
const EXPECTED = JSON.parse(await readFile(join(FIXTURES, 'expected.json'), 'utf8')) as Record<string, Record<string, { values: number[] }>>;

const NAMES = ['downstream task', 'world knowledge'];

async function quiet<T>(fn: () => Promise<T>): Promise<{ value: T; err: string }> {
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
  try {
    return { value: await fn(), err: lines.join('\n') };
  } finally {
    log.mockRestore();
    err.mockRestore();
  }
}

describe('continueAdapterConfig', () => {
  const moe = { ...defaultAdapterConfig('loramoe'), numExperts: 4, rank: 2, alpha: 4, dropout: 0.05, targets: ['gate_proj' as const, 'down_proj' as const], groups: [[2, 3], [0, 1]] };
  const loaded = { cfg: moe, peft: {} };
  /** A stand-in for the runner's flag parser: the parts the merge reads. */
  const fresh = (f: Record<string, string | boolean | undefined>) => ({
    ...moe,
    mode: f.mode as typeof moe.mode,
    dropout: f.dropout !== undefined ? Number(f.dropout) : 0.05,
    lbcBeta: f['lbc-beta'] !== undefined ? Number(f['lbc-beta']) : 0.1,
    groups: f.groups === '*=0-3' ? [[0, 1, 2, 3], [0, 1, 2, 3]] : f.groups === 'world knowledge=0;*=1-3' ? [[1, 2, 3], [0]] : [[2, 3], [0, 1]],
  });

  it('keeps the adapter when flags repeat it or are absent; training settings come from flags', () => {
    const out = continueAdapterConfig('a', loaded, { rank: '2', experts: '4', alpha: '4.0', targets: 'down_proj,gate_proj', dropout: '0.2' }, NAMES, fresh);
    expect(out).toMatchObject({ mode: 'loramoe', numExperts: 4, rank: 2, alpha: 4, targets: ['gate_proj', 'down_proj'], dropout: 0.2, lbcBeta: 0.1, groups: [[2, 3], [0, 1]] });
    expect(continueAdapterConfig('a', { ...loaded, cfg: { ...moe, lbcBeta: 0.3 } }, {}, NAMES, fresh).lbcBeta).toBe(0.3);
    expect(continueAdapterConfig('a', { ...loaded, cfg: { ...moe, lbcBeta: 0.3 } }, { 'lbc-beta': '0.5' }, NAMES, fresh).lbcBeta).toBe(0.5);
  });

  it('refuses flags that contradict the adapter, naming the flag and the adapter value', () => {
    const tail = "when continuing, the adapter's mode, experts, rank, alpha and target modules are kept; leave";
    expect(() => continueAdapterConfig('a', loaded, { rank: '8' }, NAMES, fresh)).toThrow(`--rank 8 contradicts the adapter in a (rank 2): ${tail} --rank out or give the adapter's value`);
    expect(() => continueAdapterConfig('a', loaded, { experts: '8' }, NAMES, fresh)).toThrow('--experts 8 contradicts the adapter in a (4 expert(s))');
    expect(() => continueAdapterConfig('a', loaded, { alpha: '32' }, NAMES, fresh)).toThrow('--alpha 32 contradicts the adapter in a (alpha 4)');
    expect(() => continueAdapterConfig('a', loaded, { targets: 'gate_proj' }, NAMES, fresh)).toThrow('--targets gate_proj contradicts the adapter in a (target modules gate_proj,down_proj)');
    expect(() => continueAdapterConfig('a', loaded, { mode: 'lora' }, NAMES, fresh)).toThrow('--mode lora contradicts the adapter in a (mode loramoe)');
    expect(() => continueAdapterConfig('a', loaded, { mode: 'full' }, NAMES, fresh)).toThrow('--mode full trains every backbone weight and has no adapter to continue; --adapter a continues its loramoe adapter');
    const rs = { cfg: { ...defaultAdapterConfig('lora'), rank: 4, alpha: 16 }, peft: { rsLora: { loraAlpha: 8, rank: 4, alpha: 16 } } };
    expect(() => continueAdapterConfig('p', rs, { alpha: '8' }, NAMES, fresh)).toThrow('--alpha 8 contradicts the adapter in p (alpha 16: lora_alpha 8 with use_rslora, i.e. 8 * sqrt(4))');
  });

  it('groups: --groups, else the adapter\'s by type name, by index, or the binary grouping over the data', () => {
    expect(continueAdapterConfig('a', loaded, { groups: 'world knowledge=0;*=1-3' }, NAMES, fresh).groups).toEqual([[1, 2, 3], [0]]);
    // Named types, in another order in the adapter: matched by name.
    const named = { ...loaded, cfg: { ...moe, groups: [[0, 1], [2, 3]] }, dataTypes: ['world knowledge', 'downstream task'] };
    expect(continueAdapterConfig('a', named, {}, NAMES, fresh).groups).toEqual([[2, 3], [0, 1]]);
    expect(() => continueAdapterConfig('a', named, {}, [...NAMES, 'arithmetic'], fresh)).toThrow(
      'the data has type(s) "arithmetic" that the adapter in a has no expert group for (it was trained on "world knowledge", "downstream task"); give --groups to map every type to its experts',
    );
    // No names, three groups, two data types: the binary grouping over the data (fresh's).
    const three = { ...loaded, cfg: { ...moe, groups: [[0], [1], [2, 3]] } };
    expect(continueAdapterConfig('a', three, {}, NAMES, fresh).groups).toEqual([[2, 3], [0, 1]]);
  });
});

describe('runner: train --adapter', () => {
  afterEach(() => vi.restoreAllMocks());

  it('continues an official LoRAMoE adapter_model.bin and a PEFT use_rslora adapter; refuses contradicting flags', async () => {
    const { dir, model, data } = await runnerFolder('loramoe-continue-', 3);
    const base = ['--model', model, '--data', data, '--batch', '2', '--max-length', '16'];

    // A learning rate far below float32 resolution: after two steps the adapter written must be
    // the file's, bit for bit (a fresh init would have other A and a zero B).
    const official = join(FIXTURES, 'official-f32');
    const same = join(dir, 'same');
    const { err } = await quiet(() => main(['train', ...base, '--adapter', official, '--out', same, '--steps', '2', '--lr', '1e-30']));
    expect(err).toContain(`continuing from ${official}/adapter_model.bin: LoRAMoE, 2 experts, rank 2, alpha 4, scale 2.00000, on q_proj, gate_proj, up_proj, down_proj`);
    const written = await loadAdapter(new DirectorySource(same), TINY_SHAPE);
    const config = JSON.parse(await readFile(join(same, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ r: 2, lora_alpha: 4, lora_nums: 2, lora_dropout: 0.05, target_modules: ['q_proj', 'gate_proj', 'up_proj', 'down_proj'] });
    const want = EXPECTED['official-f32/adapter_model.bin'];
    const pre = 'base_model.model.model.layers.1.mlp.down_proj';
    const t = written.set.get('1.down_proj')!;
    expect([...t.wr!]).toEqual([...Float32Array.from(want[`${pre}.lora_route.weight`].values)]);
    expect([...t.a.subarray(2 * 20)]).toEqual([...Float32Array.from(want[`${pre}.lora_A1.weight`].values)]);

    // PEFT with use_rslora: alpha 8 / sqrt(4) is kept as alpha 16 over r 4; the file written says so.
    const rs = join(dir, 'rs');
    const peft = join(FIXTURES, 'peft-rslora');
    const r2 = await quiet(() => main(['train', ...base, '--adapter', peft, '--out', rs, '--steps', '1', '--lr', '1e-3']));
    expect(r2.err).toContain(`continuing from ${peft}/adapter_model.bin: plain LoRA, rank 4, alpha 16 (use_rslora: lora_alpha 8 / sqrt(4)), scale 4.00000, on q_proj, v_proj, down_proj`);
    const rsConfig = JSON.parse(await readFile(join(rs, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(rsConfig).toMatchObject({ r: 4, lora_alpha: 16, target_modules: ['q_proj', 'v_proj', 'down_proj'] });
    expect(rsConfig).not.toHaveProperty('lora_nums');

    await expect(quiet(() => main(['train', ...base, '--adapter', peft, '--out', join(dir, 'x'), '--rank', '8']))).rejects.toThrow(/^--rank 8 contradicts the adapter in .*peft-rslora \(rank 4\)/);
    await expect(quiet(() => main(['train', ...base, '--adapter', official, '--out', join(dir, 'x'), '--mode', 'full']))).rejects.toThrow(/--mode full trains every backbone weight/);
    await expect(quiet(() => main(['train', ...base, '--adapter', join(FIXTURES, 'bad'), '--out', join(dir, 'x')]))).rejects.toThrow(/bad: adapter_config\.json is missing/);
  });

  it('eval and generate take a PyTorch adapter folder', async () => {
    const { model, data } = await runnerFolder('loramoe-continue-', 3);
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
    const errs: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errs.push(a.map(String).join(' ')));
    await main(['eval', '--model', model, '--adapter', join(FIXTURES, 'official-bf16'), '--data', data]);
    const res = JSON.parse(lines.join('\n')) as { mode: string; ce: number; lbc: number };
    expect(res.mode).toBe('loramoe');
    expect(res.ce).toBeGreaterThan(0);
    expect(res.lbc).toBeGreaterThan(0);
    expect(errs.join('\n')).toContain('official-bf16/adapter_model.bin: LoRAMoE, 2 experts');
    lines.length = 0;
    await main(['generate', '--model', model, '--adapter', join(FIXTURES, 'peft-lora'), '--prompt', 'what color is the sky ?', '--max-new-tokens', '2']);
    expect(lines.length).toBe(1);
  });
});
