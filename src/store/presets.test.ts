/**
 * Presets on the page and in the runner: the form's defaults are the default preset, the picker
 * recognises the preset the form holds, the page sends the preset's adapter and trainer settings
 * (cli/main.test.ts: train --preset builds the same), and the runner refuses a flag beside a preset.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { main } from '../cli/main';
import { parseRunDescription } from '../train/run-description';
import { adapterSpecOf, runSpecOf, trainSettingsOf } from '../train/run-settings';
import { matchingPreset } from './presets';
import { defaultSettings } from './settings-table';

const presets = (JSON.parse(readFileSync('src/presets/index.json', 'utf8')) as string[]).map((n) => parseRunDescription(readFileSync(`src/presets/${n}.json`, 'utf8'), n));

describe('presets', () => {
  it('the picker shows the preset the form holds, and "custom" once a setting differs', () => {
    expect(matchingPreset(presets, defaultSettings())?.name).toBe('default');
    const official = presets.find((p) => p.name === 'official')!;
    expect(matchingPreset(presets, { ...defaultSettings(), ...official.settings })?.name).toBe('official');
    expect(matchingPreset(presets, { ...defaultSettings(), lr: 1e-3 })).toBeNull();
    // Bookkeeping is not part of a preset: changing it keeps the match.
    expect(matchingPreset(presets, { ...defaultSettings(), checkpointEvery: 3 })?.name).toBe('default');
  });

  it("the page's Train click sends the default preset's adapter and trainer settings, as train --preset builds them", () => {
    // cli/main.test.ts checks that train --preset writes runAdapterConfig(adapterSpecOf(..)) and trainSettingsOf(..) into run.json.
    const preset = presets.find((p) => p.name === 'default')!;
    const page = runSpecOf(defaultSettings());
    expect(adapterSpecOf(page)).toEqual(adapterSpecOf(preset.settings));
    expect(page.groups).toBe(preset.settings.groups);
    expect(trainSettingsOf(page)).toEqual(trainSettingsOf(preset.settings));
    // The spec sent is the preset's settings plus the bookkeeping, field for field.
    expect({ ...page, checkpointEvery: undefined, faultLimit: undefined, routingEvery: undefined }).toEqual({ ...preset.settings, checkpointEvery: undefined, faultLimit: undefined, routingEvery: undefined });
  });

  it('train --preset refuses a flag that would change what the preset trains', async () => {
    await expect(main(['train', '--preset', 'default', '--out', '/tmp/unused', '--lr', '1e-3'])).rejects.toThrow(
      "--preset default sets every training setting; drop --lr (or copy the preset's file, edit it and pass its path)",
    );
    await expect(main(['train', '--preset', 'no-such-preset', '--out', '/tmp/unused'])).rejects.toThrow('--preset no-such-preset: no such preset (the presets are default, no-constraint, official-direction, official; or give a path to a .json file)');
    await expect(main(['train', '--preset', '/no/such/file.json', '--out', '/tmp/unused'])).rejects.toThrow(/--preset \/no\/such\/file\.json: cannot read it \(ENOENT/);
  });
});
