import { useEffect, useState } from 'react';
import { useModelStore } from '../store/model';
import { setSetting, useSettingsStore } from '../store/settings';
import { formatSetting, parseSetting, SETTINGS, type SettingKey, type Settings } from '../store/settings-table';
import { errorMessage } from '../util/errors';

/**
 * One setting from the typed table: its label, input, one-line explanation and validation error.
 * Text is parsed by the table on every edit; the store only ever holds valid values.
 */
export function SettingField({ k, disabled, idPrefix = '' }: { k: SettingKey; disabled?: boolean; /** Where one setting shows twice (the comparison's fields): its ids and test ids start with this. */ idPrefix?: string }) {
  const def = SETTINGS[k];
  const value = useSettingsStore((s) => s.values[k]);
  const id = `${idPrefix}setting-${k}`;
  const help = (
    <small className="help" id={`${id}-help`}>
      {def.help}
    </small>
  );

  if (def.kind === 'choice') {
    return (
      <div className="field">
        <label htmlFor={id}>{def.label}</label>
        <select id={id} data-testid={id} value={value as string} disabled={disabled} aria-describedby={`${id}-help`} onChange={(e) => setSetting(k, parseSetting(k, e.target.value))}>
          {def.options.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
        {help}
      </div>
    );
  }
  if (def.kind === 'list') {
    const list = value as string[];
    return (
      <fieldset className="field" data-testid={id} disabled={disabled}>
        <legend>{def.label}</legend>
        <div className="checks">
          {def.options.map((o) => (
            <label key={o} className="check">
              <input
                type="checkbox"
                data-testid={`${id}-${o}`}
                checked={list.includes(o)}
                onChange={(e) => {
                  const next = e.target.checked ? [...list, o] : list.filter((x) => x !== o);
                  if (next.length > 0) setSetting(k, parseSetting(k, next.join(',')));
                }}
              />
              {o}
            </label>
          ))}
        </div>
        {help}
      </fieldset>
    );
  }
  return <TextSetting k={k} id={id} disabled={disabled} value={value} help={help} />;
}

function TextSetting({ k, id, disabled, value, help }: { k: SettingKey; id: string; disabled?: boolean; value: Settings[SettingKey]; help: React.ReactNode }) {
  const def = SETTINGS[k];
  const canonical = formatSetting(k, value as never);
  const [text, setText] = useState(canonical);
  const [error, setError] = useState<string | null>(null);
  // Follow outside changes (an imported adapter, restored settings) unless the user is mid-edit on an error.
  useEffect(() => {
    setText((t) => {
      try {
        return formatSetting(k, parseSetting(k, t) as never) === canonical ? t : canonical;
      } catch {
        return canonical;
      }
    });
    setError(null);
  }, [k, canonical]);
  return (
    <div className={`field${error ? ' invalid' : ''}`}>
      <label htmlFor={id}>{def.label}</label>
      <input
        id={id}
        data-testid={id}
        type="text"
        inputMode={def.kind === 'int' ? 'numeric' : def.kind === 'float' ? 'decimal' : 'text'}
        spellCheck={false}
        value={text}
        disabled={disabled}
        aria-invalid={error !== null}
        aria-describedby={`${id}-help`}
        placeholder={def.kind === 'text' ? placeholderOf(k) : undefined}
        onChange={(e) => {
          setText(e.target.value);
          try {
            setSetting(k, parseSetting(k, e.target.value));
            setError(null);
          } catch (err) {
            setError(errorMessage(err));
          }
        }}
      />
      {error ? (
        <small className="field-error" data-testid={`${id}-error`}>
          {error}
        </small>
      ) : (
        help
      )}
      <BackboneLimit k={k} id={id} value={value} />
    </div>
  );
}

/**
 * Where the loaded backbone allows less than the field's own range, say so beside the value: the
 * run uses the backbone's limit (the worker clamps the maximum length to the model's positions).
 */
function BackboneLimit({ k, id, value }: { k: SettingKey; id: string; value: Settings[SettingKey] }) {
  const positions = useModelStore((s) => s.info?.maxPositions ?? null);
  if (k !== 'maxLength' || positions === null) return null;
  const over = typeof value === 'number' && value > positions;
  return (
    <small className={over ? 'help warn' : 'help'} data-testid={`${id}-limit`} data-limit={positions}>
      {over ? `This backbone holds ${positions} positions: samples are cut to ${positions} tokens.` : `This backbone holds up to ${positions} positions.`}
    </small>
  );
}

function placeholderOf(k: SettingKey): string | undefined {
  return k === 'groups' ? 'official binary grouping' : undefined;
}
