import { applyPreset, matchingPreset } from '../store/presets';
import { holdsModel, useRunStore } from '../store/run';
import { useSettingsStore } from '../store/settings';
import { PRESETS } from '../train/presets';

const CUSTOM = '';

/**
 * Named run settings (src/presets/): picking one sets every training setting and loads its
 * backbone and data (Apply does it again, e.g. for the preset the form already holds). Shows the
 * preset the form matches, or "Custom settings" once a setting was changed.
 */
export function PresetPicker() {
  const values = useSettingsStore((s) => s.values);
  const locked = holdsModel(useRunStore((s) => s.status));
  const current = matchingPreset(PRESETS, values);
  return (
    <div className="preset-picker" data-testid="preset-picker">
      <label>
        Preset{' '}
        <select
          data-testid="preset-select"
          value={current?.name ?? CUSTOM}
          disabled={locked}
          title={locked ? 'Stop the run to change its settings' : undefined}
          onChange={(e) => {
            const d = PRESETS.find((p) => p.name === e.target.value);
            if (d) void applyPreset(d);
          }}
        >
          {current === null && <option value={CUSTOM}>Custom settings</option>}
          {PRESETS.map((p) => (
            <option key={p.name} value={p.name}>
              {p.name}
            </option>
          ))}
        </select>
      </label>{' '}
      <button
        type="button"
        data-testid="preset-apply"
        disabled={locked || current === null}
        title={locked ? 'Stop the run to change its settings' : current === null ? 'Pick a preset first' : `Set the form to ${current.name} and load its backbone and data`}
        onClick={() => current && void applyPreset(current)}
      >
        Apply
      </button>
      <p className="small muted" data-testid="preset-summary">
        {current ? current.summary : 'The settings below are your own; pick a preset to start from a known run.'}
      </p>
    </div>
  );
}
