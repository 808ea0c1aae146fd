/**
 * The run description format: every shipped preset reads, the index lists exactly the files there,
 * and a damaged or newer file is refused with an error naming the file and the field.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PRESETS } from './presets';
import { formatRunDescription, parseRunDescription, RUN_DESCRIPTION_VERSION } from './run-description';

const DIR = 'src/presets';
const read = (name: string) => readFileSync(`${DIR}/${name}.json`, 'utf8');

describe('run descriptions', () => {
  it('reads every preset; the index lists the files of src/presets, the default first, and train/presets.ts loads them in that order', () => {
    const index = JSON.parse(readFileSync(`${DIR}/index.json`, 'utf8')) as string[];
    const files = readdirSync(DIR).filter((f) => f.endsWith('.json') && f !== 'index.json').map((f) => f.slice(0, -5));
    expect([...index].sort()).toEqual(files.sort());
    expect(index[0]).toBe('default');
    expect(PRESETS.map((p) => p.name)).toEqual(index);
    for (const name of index) {
      const d = parseRunDescription(read(name), name);
      expect(d.name).toBe(name);
      expect(d.version).toBe(RUN_DESCRIPTION_VERSION);
      // The file is written as formatRunDescription writes it: fields in order, nothing else.
      expect(formatRunDescription(d)).toBe(read(name));
    }
  });

  it("the official preset holds the official LoRAMoE script's values", () => {
    const s = parseRunDescription(read('official'), 'official').settings;
    expect(s).toMatchObject({ mode: 'loramoe', experts: 8, rank: 4, alpha: 32, dropout: 0.05, lr: 2e-4, schedule: 'cosine', warmup: 0.03, weightDecay: 0, lbcDelta: 0.1, lbcBeta: 0.1, lbcDirection: 'official' });
    expect(s.targets).toEqual(['gate_proj', 'up_proj', 'down_proj']);
  });

  it('refuses a damaged, incomplete or newer file, naming the file and the field', () => {
    const good = JSON.parse(read('default')) as Record<string, unknown> & { settings: Record<string, unknown> };
    const variant = (f: (d: typeof good) => void) => {
      const d = structuredClone(good);
      f(d);
      return JSON.stringify(d);
    };
    expect(() => parseRunDescription('{"version": 1,', 'x.json')).toThrow(/^x\.json: not valid JSON/);
    expect(() => parseRunDescription('[]', 'x.json')).toThrow(/x\.json: expected a JSON object/);
    expect(() => parseRunDescription(variant((d) => (d.version = RUN_DESCRIPTION_VERSION + 1)), 'x.json')).toThrow(
      `x.json: written by a newer version of the playground (run description version ${RUN_DESCRIPTION_VERSION + 1}; this one reads up to ${RUN_DESCRIPTION_VERSION})`,
    );
    expect(() => parseRunDescription(variant((d) => (d.version = '1')), 'x.json')).toThrow('x.json: "version" must be a whole number of at least 1, got "1"');
    expect(() => parseRunDescription(variant((d) => (d.settings.lr = -1)), 'x.json')).toThrow('x.json: settings.lr must be a number above 0, got -1');
    expect(() => parseRunDescription(variant((d) => delete d.settings.seed), 'x.json')).toThrow('x.json: settings.seed must be a whole number of at least 0, got nothing');
    expect(() => parseRunDescription(variant((d) => (d.settings.lbcDirection = 'inward')), 'x.json')).toThrow('x.json: settings.lbcDirection must be one of "official", "own-group", got "inward"');
    expect(() => parseRunDescription(variant((d) => (d.settings.targets = ['q_proj', 'q_proj'])), 'x.json')).toThrow(/settings\.targets must be a non-empty list of distinct projections/);
    expect(() => parseRunDescription(variant((d) => (d.settings.batchSize = 4)), 'x.json')).toThrow('x.json: unknown field "settings.batchSize"');
    expect(() => parseRunDescription(variant((d) => (d.extra = 1)), 'x.json')).toThrow(/x\.json: unknown field "extra"/);
    expect(() => parseRunDescription(variant((d) => (d.backbone = 'hub:someone/model')), 'x.json')).toThrow('x.json: backbone must be "demo", got "hub:someone/model"');
    expect(() => parseRunDescription(variant((d) => (d.name = 'My Preset')), 'x.json')).toThrow(/x\.json: name must be lower-case letters, digits and dashes/);
  });
});
