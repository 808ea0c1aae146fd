/**
 * The runner's expert knockout: `eval --mask-experts` gives the float64 reference's loss with the
 * same experts off and names them in its JSON; `generate --mask-experts` puts no router weight on
 * them; bad lists are refused with a message naming the problem.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeBatch } from '../data/batch';
import { encodeOfficial } from '../data/template';
import { loadTokenizer } from '../data/tokenizer';
import { DirectorySource } from '../io/node-files';
import { loadAdapter } from '../loramoe/files';
import { ReferenceLlama } from '../reference/llama';
import { RUNNER_RECORDS, runnerFolder, tinyTokenizerConfig, tinyTokenizerJson } from '../test/hf-dir';
import { toRefAdapter, toRefWeights } from '../test/tiny-llama';
import { main } from './main';
import { captureLog } from '../test/console';

describe('runner --mask-experts', () => {
  afterEach(() => vi.restoreAllMocks());

  it('eval and generate with an expert group off; bad lists refused', async () => {
    const { dir, model, data, hf } = await runnerFolder('loramoe-knockout-', 5);
    const out = join(dir, 'adapter');
    await captureLog(() => main(['train', '--model', model, '--data', data, '--out', out, '--experts', '4', '--rank', '2', '--alpha', '4', '--steps', '3', '--batch', '2', '--max-length', '16', '--lr', '2e-2']));

    const adapter = await loadAdapter(new DirectorySource(out), hf.config);
    const typeNames = adapter.dataTypes!;
    const wkExperts = adapter.cfg.groups[typeNames.indexOf('world knowledge')];
    expect(wkExperts).toEqual([0, 1]);
    const tok = loadTokenizer(tinyTokenizerJson(), tinyTokenizerConfig());
    const samples = RUNNER_RECORDS.map((r) => encodeOfficial(tok, { ...r, type: typeNames[r.task_type] }, 256));
    const T = Math.max(...samples.map((s) => s.ids.length));
    const b = makeBatch(samples, samples.length, T, tok.padId, (t) => typeNames.indexOf(t));
    const ref = (expertMask: number[]) =>
      new ReferenceLlama(hf.config, toRefWeights(hf.weights), adapter.cfg, toRefAdapter(adapter.set), T).forward(
        { B: b.B, T: b.T, ids: b.ids, targets: b.targets, valid: b.valid, types: b.types },
        { dropout: 0, seed: 0, expertMask },
      );

    type EvalOut = { ce: number; expertMask: number[]; routing: { groupMean: number[][] } };
    const evalRun = async (...extra: string[]) => JSON.parse(await captureLog(() => main(['eval', '--model', model, '--adapter', out, '--data', data, ...extra]))) as EvalOut;
    const plain = await evalRun();
    expect(plain.expertMask).toEqual([]);
    const byName = await evalRun('--mask-experts', 'world knowledge');
    const byList = await evalRun('--mask-experts', '0-1');
    const refOn = ref([]);
    const refOff = ref([0, 1]);
    console.log(`[check] runner eval --mask-experts: ce ${byName.ce} (reference ${refOff.ce}; no knockout ${plain.ce}, reference ${refOn.ce})`);
    expect(byName.expertMask).toEqual([0, 1]);
    expect(byList.expertMask).toEqual([0, 1]);
    expect(Math.abs(byName.ce - refOff.ce)).toBeLessThan(1e-5 * refOff.ce);
    expect(byList.ce).toBe(byName.ce);
    expect(Math.abs(refOff.ce - refOn.ce)).toBeGreaterThan(1e-4 * refOn.ce);
    // Every data type's router weight on the world-knowledge group is 0.
    const wk = typeNames.indexOf('world knowledge');
    for (const row of byName.routing.groupMean) expect(row[wk]).toBe(0);

    const gen = await captureLog(() => main(['generate', '--model', model, '--adapter', out, '--prompt', 'what color is the sky ?', '--max-new-tokens', '2', '--routing', '--mask-experts', '1,0']));
    const rows = gen.split('\n').slice(1);
    expect(rows.length).toBeGreaterThanOrEqual(1);
    // Token, then the share of each group (groups in type order: downstream task, world knowledge).
    for (const l of rows) expect(l).toMatch(/^".*"\t1\.000\t0\.000$/);

    const bad = (list: string, msg: RegExp) => expect(main(['eval', '--model', model, '--adapter', out, '--data', data, '--mask-experts', list])).rejects.toThrow(msg);
    await bad('0-3', /--mask-experts: it switches off all 4 experts; at least one must stay on/);
    await bad('2,7', /--mask-experts: expert 7 is outside 0\.\.3/);
    await bad('', /--mask-experts: the list of experts is empty/);
    await bad('3-1', /--mask-experts: range 3-1 runs backwards/);
    await bad('arithmetic', /--mask-experts: "arithmetic" is neither an expert list \(e\.g\. 0-3 or 1,5\) nor a group's data type \("downstream task", "world knowledge"\)/);
    await expect(main(['eval', '--model', model, '--data', data, '--mask-experts', '0'])).rejects.toThrow(/--mask-experts needs a LoRAMoE adapter \(--adapter DIR\); this run's adapter is none/);
    await expect(main(['generate', '--model', model, '--adapter', out, '--prompt', 'x', '--no-adapter', '--mask-experts', '0'])).rejects.toThrow(/cannot go with --no-adapter/);
    const help = await captureLog(() => main(['help']));
    expect(help).toMatch(/--mask-experts LIST/);
  });
});
