import { useEffect } from 'react';
import { type ColumnMapping, DEFAULT_DATASET_TYPE, mappingProblem } from '../data/columns';
import { HubError } from '../io/hub';
import { parseDatasetRef } from '../io/hub-datasets';
import { addHubData, cancelHubData, deleteHubDataCache, downloadMix, inspectHubData, mixLines, mixName, refreshHubDataCache, removeHubPart, setHubDataName, setHubMapping, setHubRows, setHubToken } from '../store/hub-data-actions';
import { rowLimit, useHubDataStore } from '../store/hub-data';
import { useDatasetStore } from '../store/dataset';
import { isTraining, useRunStore } from '../store/run';
import { formatBytes } from './format';
import { TableScroll } from './views/TableScroll';
import { ErrorBox } from './ErrorBox';

const LAYOUTS: Record<ColumnMapping['layout'], string> = {
  official: 'official LoRAMoE (instruction, input, output, task_type)',
  dolly: 'Dolly (instruction, context, response, category)',
  alpaca: 'Alpaca (instruction, input, output)',
  chat: 'chat messages',
  custom: 'mapped by hand',
};

/** Why the typed name is not a dataset name, or null. */
function nameProblem(name: string): string | null {
  if (name.trim() === '') return null;
  try {
    parseDatasetRef(name);
    return null;
  } catch (e) {
    return e instanceof HubError ? e.message : String(e);
  }
}

/**
 * "From the Hub": a dataset by name (owner/name[:config][@split]), its columns mapped and typed,
 * the rows read with progress, cancel and the cache, several datasets mixed into the training data.
 */
export function HubDataSection() {
  const s = useHubDataStore();
  const running = useRunStore((r) => isTraining(r.status));
  const loadingData = useDatasetStore((d) => d.loading.train !== undefined);
  useEffect(() => {
    void refreshHubDataCache();
  }, []);
  const problem = nameProblem(s.name);
  const busy = s.busy !== null || loadingData;
  return (
    <details className="group" data-testid="hub-data" open={s.parts.length > 0 || s.info !== null || undefined}>
      <summary>From the Hub</summary>
      <div className="fields">
        <label className="field">
          <span>Dataset</span>
          <input
            type="text"
            data-testid="hub-data-name"
            value={s.name}
            spellCheck={false}
            placeholder="tatsu-lab/alpaca"
            onChange={(e) => setHubDataName(e.target.value)}
          />
          {problem ? <small className="field-error">{problem}</small> : <small className="help">owner/name, optionally :config and @split (default: the only config, "train")</small>}
        </label>
        <label className="field">
          <span>Access token</span>
          <input
            type="password"
            data-testid="hub-data-token"
            value={s.token}
            autoComplete="off"
            placeholder="hf_… (gated or private datasets)"
            onChange={(e) => setHubToken(e.target.value)}
          />
          <small className="help">Kept in this tab only: never in the link, a run or an export.</small>
        </label>
      </div>
      <div className="buttons">
        <button type="button" data-testid="hub-data-inspect" disabled={busy || running || problem !== null || s.name.trim() === ''} onClick={() => void inspectHubData()}>
          Look up
        </button>
        {s.busy === 'inspecting' && <span className="muted small">Reading the file list…</span>}
      </div>
      {s.info && s.mapping && <MappingForm busy={busy || running} />}
      {s.progress && (
        <div className="progress-block" data-testid="hub-data-progress">
          <div className="progress" role="progressbar" aria-label="Dataset download" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round((100 * s.progress.loaded) / Math.max(1, s.progress.total))}>
            <div style={{ width: `${((100 * s.progress.loaded) / Math.max(1, s.progress.total)).toFixed(1)}%` }} />
          </div>
          <small className="muted">
            {s.progress.stage === 'rows' ? `${s.progress.fromCache ? 'From cache' : 'Downloading'} ${formatBytes(s.progress.loaded)} of ${formatBytes(s.progress.total)} · ${s.progress.rows.toLocaleString()} rows` : 'Reading the file list and footers…'}
          </small>
        </div>
      )}
      <ErrorBox message={s.error} testId="hub-data-error" />
      {s.notes.map((n, i) => (
        <p key={i} className="warn small" data-testid="hub-data-note">
          {n}
        </p>
      ))}
      <MixList busy={busy || running} />
      <details className="cache" data-testid="hub-data-cache">
        <summary>
          Datasets cached in this browser ({s.cached.length}, {formatBytes(s.cached.reduce((n, c) => n + c.bytes, 0))})
        </summary>
        {s.cached.length === 0 ? (
          <p className="muted small">Nothing cached yet.</p>
        ) : (
          <ul className="cache-list">
            {s.cached.map((c) => (
              <li key={c.repo} data-testid="hub-data-cache-entry" data-repo={c.repo}>
                {c.repo} <span className="muted">{formatBytes(c.bytes)}</span>{' '}
                <button type="button" className="small danger" data-testid="hub-data-cache-delete" onClick={() => void deleteHubDataCache(c.repo)}>
                  Delete
                </button>
              </li>
            ))}
          </ul>
        )}
      </details>
    </details>
  );
}

/** The recognised layout, or selects to map the columns by hand; where the type comes from; the rows; Add. */
function MappingForm({ busy }: { busy: boolean }) {
  const info = useHubDataStore((s) => s.info)!;
  const m = useHubDataStore((s) => s.mapping)!;
  const rowsText = useHubDataStore((s) => s.rowsText);
  const rows = rowLimit(rowsText);
  const reading = useHubDataStore((s) => s.busy === 'reading');
  const problem = mappingProblem(m, info.columns);
  // Choosing a column by hand makes the mapping the user's own.
  const setColumn = (field: 'instruction' | 'input' | 'output', column: string) => setHubMapping({ ...m, [field]: column === '' ? undefined : column, layout: 'custom' });
  const columnSelect = (field: 'instruction' | 'input' | 'output', optional: boolean) => (
    <label className="field">
      <span>{field}</span>
      <select data-testid={`hub-data-col-${field}`} value={m[field] ?? ''} disabled={busy} onChange={(e) => setColumn(field, e.target.value)}>
        <option value="">{optional ? '(none)' : '(choose)'}</option>
        {info.columns.map((c) => (
          <option key={c}>{c}</option>
        ))}
      </select>
    </label>
  );
  return (
    <div data-testid="hub-data-info" data-layout={m.layout}>
      <p className="small">
        <strong>{info.repo}</strong> · config {info.config}, split {info.split} · {info.urls.length} Parquet file{info.urls.length === 1 ? '' : 's'} ({info.firstFileRows.toLocaleString()} rows in the first) · columns{' '}
        {info.columns.join(', ')}
      </p>
      <p className="small" data-testid="hub-data-layout">
        Layout: {LAYOUTS[m.layout]}
      </p>
      <div className="fields">
        {m.messages === undefined && (
          <>
            {columnSelect('instruction', false)}
            {columnSelect('input', true)}
            {columnSelect('output', false)}
          </>
        )}
        <label className="field">
          <span>Data type</span>
          <select
            data-testid="hub-data-type-source"
            value={'column' in m.type ? `column:${m.type.column}` : 'name'}
            disabled={busy}
            onChange={(e) => setHubMapping({ ...m, type: e.target.value === 'name' ? { name: DEFAULT_DATASET_TYPE } : { column: e.target.value.slice('column:'.length) } })}
          >
            <option value="name">one type for the whole dataset</option>
            {info.columns.map((c) => (
              <option key={c} value={`column:${c}`}>
                from the column {c}
              </option>
            ))}
          </select>
        </label>
        {'name' in m.type && (
          <label className="field">
            <span>Type name</span>
            <input type="text" data-testid="hub-data-type-name" value={m.type.name} disabled={busy} onChange={(e) => setHubMapping({ ...m, type: { name: e.target.value } })} />
          </label>
        )}
        <label className="field">
          <span>Rows</span>
          <input
            type="text"
            inputMode="numeric"
            data-testid="hub-data-rows"
            value={rowsText}
            disabled={busy}
            onChange={(e) => setHubRows(e.target.value)}
          />
          {rows === null && <small className="field-error">a whole number of rows, at least 1</small>}
        </label>
      </div>
      {problem && (
        <p className="field-error" data-testid="hub-data-mapping-error">
          {problem}
        </p>
      )}
      <div className="buttons">
        <button type="button" className="primary" data-testid="hub-data-add" disabled={busy || problem !== null || rows === null} onClick={() => void addHubData()}>
          Add {rows?.toLocaleString() ?? ''} rows to the training data
        </button>
        {reading && (
          <button type="button" data-testid="hub-data-cancel" onClick={cancelHubData}>
            Cancel
          </button>
        )}
      </div>
    </div>
  );
}

/** The datasets mixed into the training data, each with its type, rows and lines in the mix's file. */
function MixList({ busy }: { busy: boolean }) {
  const stored = useHubDataStore((s) => s.parts);
  const trainName = useDatasetStore((d) => d.train?.name);
  // A file or the demo loaded since replaced the mix: it is no longer the training data.
  const parts = stored.length > 0 && trainName === mixName(stored) ? stored : [];
  if (parts.length === 0) return null;
  const lines = mixLines(parts);
  return (
    <>
      <TableScroll label="Datasets mixed into the training data">
        <table className="data-table compact-table" data-testid="hub-data-mix">
          <thead>
            <tr>
              <th scope="col">dataset</th>
              <th scope="col" className="num">
                rows
              </th>
              <th scope="col">
                <span className="visually-hidden">Remove</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {parts.map((p, i) => (
              <tr key={i} data-testid="hub-data-part" data-label={p.label} data-rows={p.records.length}>
                <th scope="row">
                  {p.label}
                  <br />
                  <small className="muted">
                    {p.typeText} · lines {lines[i].first}–{lines[i].last} of the file
                  </small>
                </th>
                <td className="num">
                  {p.records.length.toLocaleString()}
                  {p.records.length < p.asked ? ' (all)' : ''}
                </td>
                <td>
                  <button type="button" className="small danger" data-testid="hub-data-remove" disabled={busy} onClick={() => void removeHubPart(i)}>
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableScroll>
      <div className="buttons">
        <button type="button" data-testid="hub-data-download" onClick={downloadMix}>
          Download the mix (JSON Lines)
        </button>
        <small className="help">The same file trains in the runner: --data {mixName(parts)}</small>
      </div>
    </>
  );
}
