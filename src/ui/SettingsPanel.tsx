import { holdsModel, useRunStore } from '../store/run';
import { setSetting, useSettingsStore } from '../store/settings';
import type { SettingKey, TrainMode } from '../store/settings-table';
import { setView, useViewStore } from '../store/view';
import { PresetPicker } from './PresetPicker';
import { SettingField } from './SettingField';

const MODES: { key: TrainMode; label: string; help: string }[] = [
  { key: 'loramoe', label: 'LoRAMoE', help: 'Experts + router + balancing constraint; the backbone stays frozen.' },
  { key: 'lora', label: 'LoRA', help: 'One low-rank adapter per projection; the baseline the paper compares with.' },
  { key: 'full', label: 'Full', help: 'Every weight trains (small backbones only): the forgetting baseline.' },
];

const ADAPTER_KEYS: SettingKey[] = ['experts', 'rank', 'alpha', 'dropout', 'targets', 'lbcDelta', 'lbcBeta', 'lbcDirection', 'lbcImportance'];
/** The settings only LoRAMoE has (the router's experts and the balancing constraint). */
const LORAMOE_ONLY: SettingKey[] = ['experts', 'lbcDelta', 'lbcBeta', 'lbcDirection', 'lbcImportance'];
const TRAINING_KEYS: SettingKey[] = ['lr', 'schedule', 'warmup', 'batch', 'accum', 'maxLength', 'steps', 'seed'];
const MORE_KEYS: SettingKey[] = ['weightDecay', 'clip', 'checkpointEvery', 'faultLimit', 'routingEvery', 'weights'];

/** What trains and how: the mode, the adapter's and the optimizer's settings, each with its one-line explanation. */
export function SettingsPanel() {
  const mode = useSettingsStore((s) => s.values.mode);
  const status = useRunStore((s) => s.status);
  const adapter = useRunStore((s) => s.adapter);
  const continueAdapter = useViewStore((s) => s.continueAdapter);
  const locked = holdsModel(status);
  const shown = (k: SettingKey) => mode === 'loramoe' || (mode === 'lora' && !LORAMOE_ONLY.includes(k));
  return (
    <section className="panel" data-testid="settings-panel">
      <h2>
        <span className="step-no">3</span> Training
      </h2>
      <PresetPicker />
      <div className="segmented modes" role="radiogroup" aria-label="Mode">
        {MODES.map((m) => (
          <button
            key={m.key}
            type="button"
            role="radio"
            aria-checked={mode === m.key}
            className={mode === m.key ? 'active' : ''}
            data-testid={`mode-${m.key}`}
            disabled={locked}
            title={m.help}
            onClick={() => setSetting('mode', m.key)}
          >
            {m.label}
          </button>
        ))}
      </div>
      <p className="small muted">{MODES.find((m) => m.key === mode)?.help}</p>
      {locked && <p className="small warn">Settings are locked while a run is going; stop it to change them.</p>}
      {mode !== 'full' && (
        <fieldset className="group" disabled={locked}>
          <legend>{mode === 'loramoe' ? 'Experts and balancing' : 'Adapter'}</legend>
          <div className="fields">
            {ADAPTER_KEYS.filter(shown).map((k) => (
              <SettingField key={k} k={k} disabled={locked} />
            ))}
          </div>
        </fieldset>
      )}
      <fieldset className="group" disabled={locked}>
        <legend>Optimizer and data</legend>
        <div className="fields">
          {TRAINING_KEYS.map((k) => (
            <SettingField key={k} k={k} disabled={locked} />
          ))}
        </div>
      </fieldset>
      <details className="group">
        <summary>More: weight decay, clipping, checkpoints, faults, routing window, backbone weights</summary>
        <div className="fields">
          {MORE_KEYS.map((k) => (
            <SettingField key={k} k={k} disabled={locked && k !== 'checkpointEvery'} />
          ))}
        </div>
      </details>
      {adapter.origin !== 'none' && adapter.cfg && adapter.cfg.mode !== 'full' && mode !== 'full' && (
        <label className="check" data-testid="continue-adapter-label">
          <input type="checkbox" data-testid="continue-adapter" checked={continueAdapter} disabled={locked} onChange={(e) => setView({ continueAdapter: e.target.checked })} />
          Start from the current adapter ({adapter.origin === 'imported' ? `imported: ${adapter.label}` : 'trained in this session'}) instead of a fresh one
        </label>
      )}
    </section>
  );
}
