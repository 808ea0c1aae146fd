/**
 * The settings table drives URL parsing and serialising: every setting round-trips, invalid values
 * are reported and replaced by their defaults, and foreign parameters are left alone.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PROJECTIONS } from '../method/shapes';
import { Rng } from '../util/random';
import {
  changedSettings,
  defaultSettings,
  parseSetting,
  parseSettingsQuery,
  sanitizeSettings,
  serializeSettingsQuery,
  SETTING_KEYS,
  SETTINGS,
  type Settings,
} from './settings-table';

/** A random valid value for every setting. */
function randomSettings(seed: number): Settings {
  const rng = new Rng(seed);
  const out = defaultSettings() as Record<string, unknown>;
  for (const k of SETTING_KEYS) {
    const d = SETTINGS[k];
    switch (d.kind) {
      case 'int': {
        const hi = Math.min(d.max, d.min + 10_000);
        out[k] = d.min + (d.minExclusive ? 1 : 0) + rng.int(hi - d.min);
        break;
      }
      case 'float': {
        const hi = Math.min(d.max, 100);
        let v = d.min + rng.next() * (hi - d.min);
        if (v <= d.min && d.minExclusive) v = d.min + 1e-3;
        if (v >= d.max && d.maxExclusive) v = d.max / 2;
        out[k] = v;
        break;
      }
      case 'choice':
        out[k] = d.options[rng.int(d.options.length)];
        break;
      case 'list': {
        const picked = d.options.filter(() => rng.next() < 0.5);
        out[k] = picked.length > 0 ? picked : [d.options[0]];
        break;
      }
      case 'text':
        out[k] = ['', 'world knowledge=0-3; *=4-7', 'a b/c&d=e?f#g', 'ünïcödé=1'][rng.int(4)];
        break;
    }
  }
  return out as Settings;
}

describe('settings table', () => {
  it("has the default preset's settings as its defaults (src/presets/default.json, read here as plain JSON)", () => {
    const preset = JSON.parse(readFileSync('src/presets/default.json', 'utf8')) as { settings: Record<string, unknown> };
    const d = defaultSettings();
    expect(Object.keys(preset.settings).length).toBeGreaterThan(15);
    for (const [k, v] of Object.entries(preset.settings)) expect(d[k as keyof typeof d], k).toEqual(v);
    for (const k of SETTING_KEYS) {
      expect(SETTINGS[k].help.length, `${k} has a one-line explanation`).toBeGreaterThan(10);
      // Every default is itself valid.
      expect(parseSetting(k, SETTINGS[k].format(SETTINGS[k].default as never))).toEqual(SETTINGS[k].default);
    }
  });

  it('uses distinct URL parameters', () => {
    const urls = SETTING_KEYS.map((k) => SETTINGS[k].url);
    expect(new Set(urls).size).toBe(urls.length);
  });

  it('round-trips every setting through the URL, seed included', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const s = randomSettings(seed);
      const q = serializeSettingsQuery(s);
      const back = parseSettingsQuery(q);
      expect(back.errors).toEqual([]);
      expect(back.settings).toEqual(s);
      expect(back.present.length).toBe(SETTING_KEYS.length);
      expect(new URLSearchParams(q).get('seed')).toBe(String(s.seed));
    }
  });

  it('takes defaults for absent parameters and keeps foreign ones when serialising', () => {
    const { settings, errors, present } = parseSettingsQuery('?views-demo&foo=bar&rank=16');
    expect(errors).toEqual([]);
    expect(present).toEqual(['rank']);
    expect(settings).toEqual({ ...defaultSettings(), rank: 16 });
    const q = new URLSearchParams(serializeSettingsQuery(settings, '?views-demo&foo=bar&rank=2'));
    expect(q.get('foo')).toBe('bar');
    expect(q.has('views-demo')).toBe(true);
    expect(q.getAll('rank')).toEqual(['16']);
    expect(changedSettings(settings)).toEqual(['rank']);
  });

  it('reports invalid values and replaces them with defaults', () => {
    const { settings, errors } = parseSettingsQuery(
      '?lr=abc&experts=1000&rank=2.5&dropout=1&mode=moe&targets=gate_proj,attn&steps=&seed=-1&batch=0x10&temp=Infinity&topp=0&alpha=32',
    );
    const byKey = Object.fromEntries(errors.map((e) => [e.key, e]));
    expect(Object.keys(byKey).sort()).toEqual(['batch', 'dropout', 'experts', 'lr', 'mode', 'rank', 'seed', 'steps', 'targets', 'temperature', 'topP'].sort());
    expect(byKey.lr.message).toMatch(/not a number/);
    expect(byKey.experts.message).toMatch(/out of range.*<= 64/);
    expect(byKey.rank.message).toMatch(/not an integer/);
    expect(byKey.dropout.message).toMatch(/< 1/);
    expect(byKey.mode.message).toMatch(/loramoe, lora, full/);
    expect(byKey.targets.message).toMatch(/"attn" not known/);
    expect(byKey.topP.message).toMatch(/> 0/);
    expect(byKey.lr.param).toBe('lr');
    expect(byKey.lr.raw).toBe('abc');
    const d = defaultSettings();
    for (const k of Object.keys(byKey) as (keyof Settings)[]) expect(settings[k]).toEqual(d[k]);
    expect(settings.alpha).toBe(32);
  });

  it('canonicalises lists (option order, no duplicates)', () => {
    expect(parseSetting('targets', 'down_proj, q_proj,down_proj')).toEqual(['q_proj', 'down_proj']);
    expect(() => parseSetting('targets', ' , ')).toThrow(/names nothing/);
    expect(PROJECTIONS).toContain('q_proj');
  });

  it('accepts exponent notation and keeps the exact value', () => {
    expect(parseSetting('lr', '2e-4')).toBe(2e-4);
    expect(parseSetting('lr', '.001')).toBe(0.001);
    const s = { ...defaultSettings(), lr: 0.1 + 0.2 };
    expect(parseSettingsQuery(serializeSettingsQuery(s)).settings.lr).toBe(0.1 + 0.2);
  });

  it('keeps only valid known fields of stored settings', () => {
    expect(sanitizeSettings({ rank: 8, lr: 'x', targets: ['q_proj', 'down_proj'], mode: 'lora', old: 1, seed: -3, groups: 'a=1' })).toEqual({
      rank: 8,
      targets: ['q_proj', 'down_proj'],
      mode: 'lora',
      groups: 'a=1',
    });
    expect(sanitizeSettings(null)).toEqual({});
    expect(sanitizeSettings('x')).toEqual({});
  });
});
