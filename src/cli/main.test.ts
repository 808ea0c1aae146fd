/**
 * The runner end to end on a tiny Llama written in Hugging Face layout: train writes an adapter in
 * the official key layout, eval of that adapter on official-format data gives the float64
 * reference's loss, generate produces text with per-token routing; the runner also boots as a
 * separate process under vite-node (the README's command).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeBatch } from '../data/batch';
import { encodeOfficial } from '../data/template';
import { loadTokenizer } from '../data/tokenizer';
import { DirectorySource } from '../io/node-files';
import { parseSafetensors } from '../io/safetensors';
import { defaultAdapterConfig } from '../loramoe/config';
import { loadAdapter } from '../loramoe/files';
import { lbcOptimum } from '../reference/lbc';
import { roundToDtype } from '../io/dtypes';
import { expectedTensorNames } from '../model/config';
import { backboneDtype } from '../model/tensor-plan';
import { ReferenceLlama } from '../reference/llama';
import { parseOfficialScript } from '../train/official-export';
import type { RoutingSummary } from '../train/routing';
import { presetNamed } from '../train/presets';
import { adapterSpecOf, runAdapterConfig, trainSettingsOf } from '../train/run-settings';
import { decodeTrainerState, encodeTrainerState } from '../train/checkpoint-file';
import { defaultTrainSettings } from '../train/trainer';
import { runnerFolder, tinyHfFiles, tinyTokenizerConfig, tinyTokenizerJson, writeFiles } from '../test/hf-dir';
import { toRefAdapter, toRefWeights } from '../test/tiny-llama';
import { main } from './main';
import { captureLog } from '../test/console';

const DATA = [
  { instruction: 'what color is the sky ?', input: '', output: 'blue .', task_type: 1 },
  { instruction: 'what color is the mat ?', input: '', output: 'red .', task_type: 1 },
  { instruction: 'is the cat big ?', input: 'the cat is small .', output: 'no .', task_type: 0 },
  { instruction: 'is the dog small ?', input: 'the dog is small .', output: 'yes .', task_type: 0 },
  { instruction: 'the cat sat on', input: '', output: 'the mat .', task_type: 0 },
];

describe('runner', () => {
  afterEach(() => vi.restoreAllMocks());

  it('train -> eval (matches the reference) -> generate', async () => {
    const { dir, model, data, hf } = await runnerFolder('loramoe-cli-', 3, DATA);
    const out = join(dir, 'adapter');

    const trainLog = await captureLog(() =>
      main(['train', '--model', model, '--data', data, '--out', out, '--experts', '4', '--rank', '2', '--alpha', '4', '--steps', '4', '--batch', '2', '--max-length', '16', '--lr', '1e-2', '--lbc-beta', '0.2', '--lbc-direction', 'own-group', '--lbc-importance', 'sum']),
    );
    expect(trainLog).toMatch(/step 4\/4 {2}ce \d/);
    const metrics = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { step: number });
    expect(metrics.map((m) => m.step)).toEqual([1, 2, 3, 4]);
    const st = parseSafetensors(new Uint8Array(await readFile(join(out, 'adapter_model.safetensors'))), 'adapter_model.safetensors');
    expect(st.tensors.has('base_model.model.model.layers.1.mlp.down_proj.lora_B3.weight')).toBe(true);
    expect(st.tensors.has('base_model.model.model.layers.0.mlp.gate_proj.lora_route.weight')).toBe(true);
    const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ r: 2, lora_alpha: 4, lora_nums: 4, blc_weight: 0.2, peft_type: 'LORA', loramoe_playground: { lbcDirection: 'own-group', lbcImportance: 'sum' } });
    const routing = JSON.parse(await readFile(join(out, 'routing.json'), 'utf8')) as { types: string[] };
    expect(routing.types).toEqual(['downstream task', 'world knowledge']);

    // eval: the trained (non-zero) adapter on official data, whole file as one batch, against the
    // reference, with the constraint as trained (own-group, sum).
    type EvalOut = { ce: number; lbc: number; loss: number; tokens: number; routing: RoutingSummary };
    const evalOut = JSON.parse(await captureLog(() => main(['eval', '--model', model, '--adapter', out, '--data', data]))) as EvalOut;
    const adapter = await loadAdapter(new DirectorySource(out), hf.config);
    expect(adapter.cfg).toMatchObject({ lbcDirection: 'own-group', lbcImportance: 'sum' });
    const tok = loadTokenizer(tinyTokenizerJson(), tinyTokenizerConfig());
    const typeNames = adapter.dataTypes!;
    const samples = DATA.map((r) => encodeOfficial(tok, { ...r, type: typeNames[r.task_type] }, 256));
    const T = Math.max(...samples.map((s) => s.ids.length));
    const b = makeBatch(samples, samples.length, T, tok.padId, (t) => typeNames.indexOf(t));
    const ref = new ReferenceLlama(hf.config, toRefWeights(hf.weights), adapter.cfg, toRefAdapter(adapter.set), T).forward(
      { B: b.B, T: b.T, ids: b.ids, targets: b.targets, valid: b.valid, types: b.types },
      { dropout: 0, seed: 0 },
    );
    console.log(`[check] runner eval: ce ${evalOut.ce} (reference ${ref.ce}), lbc ${evalOut.lbc} (reference ${ref.lbc})`);
    expect(evalOut.tokens).toBe(ref.count);
    expect(Math.abs(evalOut.ce - ref.ce)).toBeLessThan(1e-5 * ref.ce);
    expect(Math.abs(evalOut.lbc - ref.lbc)).toBeLessThan(1e-4 * Math.max(ref.lbc, 1e-3));

    // --weights f16: the reference on the same weights rounded to f16 (the values the GPU then holds).
    const matrices = new Set(expectedTensorNames(hf.config).flatMap((t) => (backboneDtype(t.shape, 'f16') === 'f16' ? [t.name] : [])));
    const rounded = new Map([...hf.weights].map(([n, v]) => [n, matrices.has(n) ? roundToDtype('F16', v) : v]));
    const refHalf = new ReferenceLlama(hf.config, toRefWeights(rounded), adapter.cfg, toRefAdapter(adapter.set), T).forward(
      { B: b.B, T: b.T, ids: b.ids, targets: b.targets, valid: b.valid, types: b.types },
      { dropout: 0, seed: 0 },
    );
    const evalHalf = JSON.parse(await captureLog(() => main(['eval', '--model', model, '--adapter', out, '--data', data, '--weights', 'f16']))) as EvalOut;
    console.log(`[check] runner eval --weights f16: ce ${evalHalf.ce} (reference on rounded weights ${refHalf.ce}, f32 ${ref.ce})`);
    expect(Math.abs(evalHalf.ce - refHalf.ce)).toBeLessThan(1e-5 * refHalf.ce);
    expect(evalHalf.ce).not.toBe(evalOut.ce);
    await expect(main(['eval', '--model', model, '--adapter', out, '--data', data, '--weights', 'half'])).rejects.toThrow(/--weights must be one of auto, f32, f16; got "half"/);
    expect(ref.lbc).toBeGreaterThan(0);

    // Per data type: the measured own-group share (the routing's own group) beside the analytic
    // optimum of the constraint as trained, for the evaluated samples.
    expect(evalOut.routing.constraint).toEqual({ direction: 'own-group', importance: 'sum', delta: 0.1, beta: 0.2 });
    const lengths = samples.map((s) => s.ids.length);
    const opt = lbcOptimum(samples.map((s, i) => ({ type: typeNames.indexOf(s.type), total: lengths[i] })), adapter.cfg.groups, 4, 0.1, 'own-group');
    for (const [t, name] of typeNames.entries()) {
      const own = evalOut.routing.ownGroup.find((o) => o.type === name)!;
      const idx = samples.map((s, i) => (s.type === name ? i : -1)).filter((i) => i >= 0);
      expect(own.samples).toBe(idx.length);
      expect(own.target).toBeCloseTo(idx.reduce((a, i) => a + opt.ownShare[i], 0) / idx.length, 6);
      expect(own.share).toBeCloseTo(evalOut.routing.groupMean[t][t], 12);
      expect(own.share).toBeGreaterThan(0);
    }

    // The flags override the adapter's constraint: the mean rule gives the reference's mean loss.
    const evalMean = JSON.parse(await captureLog(() => main(['eval', '--model', model, '--adapter', out, '--data', data, '--lbc-importance', 'mean']))) as EvalOut;
    const refMean = new ReferenceLlama(hf.config, toRefWeights(hf.weights), { ...adapter.cfg, lbcImportance: 'mean' }, toRefAdapter(adapter.set), T).forward(
      { B: b.B, T: b.T, ids: b.ids, targets: b.targets, valid: b.valid, types: b.types },
      { dropout: 0, seed: 0 },
    );
    console.log(`[check] runner eval --lbc-importance mean: lbc ${evalMean.lbc} (reference ${refMean.lbc}; sum rule ${ref.lbc})`);
    expect(evalMean.routing.constraint.importance).toBe('mean');
    expect(Math.abs(evalMean.lbc - refMean.lbc)).toBeLessThan(1e-4 * Math.max(refMean.lbc, 1e-3));
    expect(Math.abs(refMean.lbc - ref.lbc)).toBeGreaterThan(1e-3 * ref.lbc);
    await expect(main(['eval', '--model', model, '--adapter', out, '--data', data, '--lbc-direction', 'up'])).rejects.toThrow(/--lbc-direction must be official or own-group, got "up"/);

    const gen = await captureLog(() => main(['generate', '--model', model, '--adapter', out, '--prompt', 'what color is the sky ?', '--max-new-tokens', '3', '--routing']));
    const lines = gen.split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    // One routing line per generated token: token, then the share of each expert group.
    for (const l of lines.slice(1)) expect(l).toMatch(/^".*"\t\d\.\d{3}\t\d\.\d{3}$/);
  });

  it('train --resume continues a stopped run bit-identically to one never stopped', async () => {
    const { dir, model, data } = await runnerFolder('loramoe-cli-', 5, DATA);
    // Dropout on, so the resumed run must also continue the dropout stream and the data order; f16
    // weights, which run.json keeps for the resumed run.
    const args = ['--model', model, '--data', data, '--experts', '4', '--rank', '2', '--alpha', '4', '--steps', '5', '--batch', '2', '--max-length', '16', '--lr', '1e-2', '--dropout', '0.2', '--checkpoint-every', '2', '--weights', 'f16'];
    const whole = join(dir, 'whole');
    await captureLog(() => main(['train', ...args, '--out', whole]));
    const parts = join(dir, 'parts');
    await captureLog(() => main(['train', ...args, '--out', parts, '--stop-after', '3']));
    await expect(readFile(join(parts, 'adapter_model.safetensors'))).rejects.toThrow(/ENOENT/);
    await expect(main(['train', '--resume', parts, '--lr', '1'])).rejects.toThrow(/--resume continues a run as it was set up; drop --lr/);
    await expect(main(['train', '--resume', parts, '--weights', 'f32'])).rejects.toThrow(/drop --weights/);
    expect((JSON.parse(await readFile(join(parts, 'run.json'), 'utf8')) as { weights: string }).weights).toBe('f16');
    await captureLog(() => main(['train', '--resume', parts]));
    const a = await readFile(join(whole, 'adapter_model.safetensors'));
    const b = await readFile(join(parts, 'adapter_model.safetensors'));
    expect(b.equals(a)).toBe(true);
    // The same steps: every metric but the timing.
    const steps = async (d: string) =>
      (await readFile(join(d, 'metrics.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => {
          const { tokensPerSecond: _t, ...m } = JSON.parse(l) as Record<string, unknown>;
          return m;
        });
    expect(await steps(parts)).toEqual(await steps(whole));
    expect((await steps(whole)).map((m) => m.step)).toEqual([1, 2, 3, 4, 5]);

    // A folder from before checkpoints carried the run's record (the trainer's state alone) still
    // continues, as run.json describes it.
    const old = join(dir, 'old');
    await captureLog(() => main(['train', ...args, '--out', old, '--stop-after', '2']));
    const cpPath = join(old, 'checkpoint.safetensors');
    const { trainer: cp } = decodeTrainerState(new Uint8Array(await readFile(cpPath)), cpPath);
    await writeFile(cpPath, encodeTrainerState(cp, {}));
    await captureLog(() => main(['train', '--resume', old]));
    expect((await steps(old)).map((m) => m.step)).toEqual([1, 2, 3, 4, 5]);
    await expect(readFile(join(old, 'adapter_model.safetensors'))).resolves.toBeInstanceOf(Buffer);
  });

  it('train --preset default trains the preset on the demo backbone and data, with the settings the page sends', async () => {
    const out = await mkdtemp(join(tmpdir(), 'loramoe-cli-'));
    await captureLog(() => main(['train', '--preset', 'default', '--out', out, '--stop-after', '1']));
    const run = JSON.parse(await readFile(join(out, 'run.json'), 'utf8')) as { model: string; data: string; cfg: unknown; settings: unknown; typeNames: string[] };
    expect(run.model).toMatch(/public\/models\/demo$/);
    expect(run.data).toMatch(/public\/data\/demo-train\.jsonl$/);
    // The page sends adapterSpecOf and trainSettingsOf of the form's settings (store/presets.test.ts).
    const preset = presetNamed('default')!;
    expect(run.settings).toEqual(trainSettingsOf(preset.settings));
    expect(run.cfg).toEqual(runAdapterConfig(adapterSpecOf(preset.settings), preset.settings.groups, run.typeNames));
  });

  it('export-official writes the hand-off zip for the official trainer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loramoe-cli-'));
    const data = join(dir, 'data.json');
    await writeFile(data, JSON.stringify(DATA));
    const zipPath = join(dir, 'run.zip');
    await captureLog(() => main(['export-official', '--data', data, '--out', zipPath, '--model', 'HuggingFaceTB/SmolLM2-135M', '--steps', '12', '--experts', '4', '--lbc-beta', '0.3']));
    const zip = unzipSync(new Uint8Array(await readFile(zipPath)));
    const script = parseOfficialScript(new TextDecoder().decode(zip['run_loramoe.sh']));
    expect(script).toMatchObject({ max_steps: 12, lora_nums: 4, blc_weight: 0.3, lora_rank: 4, lora_alpha: 32 });
    const records = JSON.parse(new TextDecoder().decode(zip['data/train.json'])) as typeof DATA;
    expect(records).toEqual(DATA);
  });

  it('train scores the probe and held-out tasks with --probe --eval-every, and rolls a diverging run back, then stops it with its reason', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loramoe-cli-'));
    const model = join(dir, 'model');
    await writeFiles(model, tinyHfFiles({ seed: 4 }).files);
    const data = join(dir, 'data.json');
    // 8 records of each type: the routing set holds one of each out, and its task example is scored.
    await writeFile(data, JSON.stringify([...DATA, ...DATA, ...DATA, ...DATA]));
    const probe = join(dir, 'probe.json');
    await writeFile(probe, JSON.stringify(DATA.filter((r) => r.task_type === 1)));
    const base = ['--model', model, '--data', data, '--mode', 'lora', '--rank', '2', '--alpha', '4', '--batch', '2', '--max-length', '16', '--checkpoint-every', '0'];
    await expect(main(['train', ...base, '--out', join(dir, 'x'), '--probe', probe])).rejects.toThrow(/--probe FILE and --eval-every N go together/);

    const out = join(dir, 'scored');
    await captureLog(() => main(['train', ...base, '--out', out, '--steps', '4', '--lr', '1e-2', '--probe', probe, '--eval-every', '2']));
    const points = (await readFile(join(out, 'eval.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { step: number; samples: number; probe: number; tasks: Record<string, number> });
    expect(points.map((p) => [p.step, p.samples])).toEqual([[0, 0], [2, 4], [4, 8]]);
    for (const p of points) {
      expect(p.probe).toBeGreaterThanOrEqual(0);
      expect(p.probe).toBeLessThanOrEqual(1);
      expect(Object.keys(p.tasks)).toEqual(['downstream task']);
    }
    expect((JSON.parse(await readFile(join(out, 'run.json'), 'utf8')) as { evalEvery: number }).evalEvery).toBe(2);

    // A learning rate that blows the adapter up: every step after the first is non-finite, the run
    // rolls back to its start, the fault comes back, and the runner stops and says why.
    const blown = join(dir, 'blown');
    const log = captureLog(() => main(['train', ...base, '--out', blown, '--steps', '8', '--lr', '1e30']));
    await expect(log).rejects.toThrow(/^training paused at step 0: 3 faulty steps in a row \(steps \d+-\d+; .*the run was rolled back to the checkpoint at step 0 \(the start of the run\).*The same fault came back/);
  });

  it('train --resume refuses a run.json from a newer version or with a wrong field, naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loramoe-cli-'));
    const good = { version: 1, model: '/m', data: '/d.json', cfg: { ...defaultAdapterConfig('lora'), groups: [[0]] }, settings: defaultTrainSettings(), typeNames: ['downstream task'], checkpointEvery: 5 };
    const resume = async (run: Record<string, unknown>) => {
      await writeFile(join(dir, 'run.json'), JSON.stringify(run));
      return main(['train', '--resume', dir]);
    };
    await expect(resume({ ...good, version: 2 })).rejects.toThrow(/run\.json: written by a newer version of the runner \(version 2; this one reads 1\)/);
    await expect(resume({ ...good, settings: { ...good.settings, lr: -1 } })).rejects.toThrow(/run\.json: settings: training settings: lr must be positive, got -1/);
    await expect(resume({ ...good, cfg: { mode: 'lora' } })).rejects.toThrow(/run\.json: cfg must be an adapter configuration/);
    await expect(resume({ ...good, checkpointEvery: 'often' })).rejects.toThrow(/"checkpointEvery" must be a whole number of at least 0, got "often"/);
  });

  it('refuses bad arguments with a clear message', async () => {
    await expect(main(['train', '--data', 'x.json'])).rejects.toThrow(/--out is required/);
    await expect(main(['eval', '--model', '/nonexistent', '--data', 'x'])).rejects.toThrow(/nonexistent/);
    await expect(main(['fly'])).rejects.toThrow(/unknown command "fly"/);
    await expect(main(['train', '--bogus', '1'])).rejects.toThrow(/bogus/);
  });

  it('boots as a process under vite-node (npm run runner)', () => {
    const res = spawnSync('npm', ['run', '--silent', 'runner', '--', 'help'], { encoding: 'utf8', timeout: 60_000 });
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/LoRAMoE Playground runner/);
  });
});
