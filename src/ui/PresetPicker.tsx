import { useEffect } from 'react';
import { applyPreset, loadPresets, matchingPreset, usePresetsStore } from '../store/presets';
import { holdsModel, useRunStore } from '../store/run';
import { useSettingsStore } from '../store/settings';

const CUSTOM = '';

/**
 * Named run settings (public/presets/): picking one sets every training setting and loads its
 * backbone and data. Shows the preset the form matches, or "Custom" once a setting was changed.
 */
export function PresetPicker() {
  const presets = usePresetsStore((s) => s.presets);
  const error = usePresetsStore((s) => s.error);
  const values = useSettingsStore((s) => s.values);
  const locked = holdsModel(useRunStore((s) => s.status));
  useEffect(() => {
    if (usePresetsStore.getState().presets.length === 0) void loadPresets();
  }, []);
  const current = matchingPreset(presets, values);
  return (
    <div className="preset-picker" data-testid="preset-picker">
      <label>
        Preset{' '}
        <select
          data-testid="preset-select"
          value={current?.name ?? CUSTOM}
          disabled={locked || presets.length === 0}
          title={locked ? 'Stop the run to change its settings' : undefined}
          onChange={(e) => {
            const d = presets.find((p) => p.name === e.target.value);
            if (d) void applyPreset(d);
          }}
        >
          {current === null && <option value={CUSTOM}>Custom settings</option>}
          {presets.map((p) => (
            <option key={p.name} value={p.name}>
              {p.name}
            </option>
          ))}
        </select>
      </label>
      <p className="small muted" data-testid="preset-summary">
        {current ? current.summary : 'The settings below are your own; pick a preset to start from a known run.'}
      </p>
      {error && (
        <p className="small error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
