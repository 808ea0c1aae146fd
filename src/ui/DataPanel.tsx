import { useMemo } from 'react';
import { answerlessMessage, formatShare, unknownShare, unknownWarning } from '../data/unknown';
import type { DatasetSummary } from '../data/summary';
import { useDatasetStore } from '../store/dataset';
import { useModelStore } from '../store/model';
import { isTraining, useRunStore } from '../store/run';
import { useSettingsStore } from '../store/settings';
import { binarySpec, rangeText } from '../run/groups';
import { resolveGroups } from '../train/run-settings';
import { loadDemoData, uploadDatasetFile } from '../store/data-actions';
import type { DatasetInfo } from '../worker/protocol';
import { DropZone } from './DropZone';
import { HubDataSection } from './HubDataSection';
import { count, formatBytes } from './format';
import { SettingField } from './SettingField';
import { ClippedText } from './views/ClippedText';
import { TableScroll } from './views/TableScroll';
import { ErrorBox } from './ErrorBox';

const ACCEPT = '.json,.jsonl,.ndjson,.csv,.tsv,.parquet';

/** Training data: upload or the demo, preview, problems by line, counts per data type, and the type-to-experts mapping. */
export function DataPanel() {
  const train = useDatasetStore((s) => s.train);
  const loading = useDatasetStore((s) => s.loading.train);
  const error = useDatasetStore((s) => s.errors.train);
  const restored = useDatasetStore((s) => s.restored.includes('train'));
  const running = useRunStore((s) => isTraining(s.status));
  return (
    <section className="panel" data-testid="data-panel">
      <h2>
        <span className="step-no">2</span> Data
      </h2>
      <DropZone
        testid="data-drop"
        accept={ACCEPT}
        disabled={running || loading !== undefined}
        onFiles={(entries) => {
          void uploadDatasetFile('train', entries[0]);
        }}
      >
        <strong>Drop a dataset</strong> or click to pick one
        <br />
        <small className="muted">JSON, JSON Lines, CSV or Parquet: official LoRAMoE (instruction, input, output, task_type), Alpaca or chat records</small>
      </DropZone>
      <div className="buttons">
        <button type="button" data-testid="use-demo-data" disabled={running || loading !== undefined} onClick={() => void loadDemoData()}>
          Use the demo data
        </button>
        {loading && (
          <span className="muted small" data-testid="data-loading">
            Reading {loading}…
          </span>
        )}
      </div>
      <HubDataSection />
      <ErrorBox message={error} testId="data-error" />
      {train && <DatasetDetails info={train} restored={restored} />}
      <GroupMapping />
    </section>
  );
}

function DatasetDetails({ info, restored }: { info: DatasetInfo; restored: boolean }) {
  const summary = useDatasetStore((s) => s.summary);
  const c = info.counts;
  return (
    <div className="dataset" data-testid="dataset-info" data-name={info.name}>
      <p>
        <strong data-testid="dataset-name">{info.name}</strong>{' '}
        <span className="muted">
          {info.format.toUpperCase()}, {formatBytes(info.bytes)}
          {restored ? ' · restored from this browser' : ''}
        </span>
      </p>
      <p data-testid="dataset-counts" data-good={c.good} data-bad={c.bad}>
        {count(c.good, 'record')} kept{c.bad > 0 ? `, ${c.bad.toLocaleString('en-US')} rejected` : ''}
        {c.defaultedType > 0 ? ` · ${c.defaultedType.toLocaleString('en-US')} without a type (counted as downstream task)` : ''}
      </p>
      <table className="data-table compact-table" data-testid="type-counts">
        <thead>
          <tr>
            <th scope="col">data type</th>
            <th scope="col" className="num">
              records
            </th>
            {summary && (
              <th scope="col" className="num">
                mean tokens
              </th>
            )}
            {summary?.unknown.possible && (
              <th scope="col" className="num">
                unknown
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {info.typeNames.map((t) => {
            const s = summary?.byType.find((b) => b.name === t);
            return (
              <tr key={t} data-testid="type-count" data-type={t} data-count={c.byType[t] ?? 0}>
                <th scope="row">{t}</th>
                <td className="num">{(c.byType[t] ?? 0).toLocaleString()}</td>
                {summary && <td className="num">{s ? s.meanLength.toFixed(1) : '—'}</td>}
                {summary?.unknown.possible && (
                  <td className="num" data-testid="type-unknown" data-share={s ? unknownShare(s) : 0}>
                    {s ? formatShare(unknownShare(s)) : '—'}
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
      {summary && (
        <p className="small muted" data-testid="dataset-summary">
          Sample length: median {summary.length.median}, longest {summary.length.max} tokens; {summary.tokens.toLocaleString()} tokens per epoch
          {summary.truncated > 0 ? `; ${summary.truncated} longer than the maximum length ${summary.maxLength} (cut)` : ''}.
        </p>
      )}
      {summary && summary.noTargetLeft > 0 && (
        <p className="warn-box" data-testid="answerless" data-count={summary.noTargetLeft}>
          {answerlessMessage(summary.noTargetLeft, summary.records, summary.maxLength)}
        </p>
      )}
      {summary && <UnknownTokens summary={summary} />}
      {info.notes.map((n, i) => (
        <p key={i} className="small muted">
          {n}
        </p>
      ))}
      <details>
        <summary>Preview ({count(info.preview.length, 'record')})</summary>
        <TableScroll label="Preview of the first records">
          <table className="data-table" data-testid="dataset-preview">
            <thead>
              <tr>
                <th scope="col">where</th>
                <th scope="col">type</th>
                <th scope="col">instruction</th>
                <th scope="col">input</th>
                <th scope="col">output</th>
              </tr>
            </thead>
            <tbody>
              {info.preview.map((r, i) => (
                <tr key={i} data-testid="preview-row">
                  <td className="nowrap muted">{r.location}</td>
                  <td className="nowrap">{r.type}</td>
                  <td className="text">
                    <ClippedText text={r.instruction} />
                  </td>
                  <td className="text">
                    <ClippedText text={r.input} />
                  </td>
                  <td className="text">
                    <ClippedText text={r.output} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      </details>
      {info.errorCount > 0 && (
        <details open data-testid="dataset-errors">
          <summary className="warn">
            {info.errorCount.toLocaleString()} problem{info.errorCount === 1 ? '' : 's'} (records skipped)
          </summary>
          <ul className="error-list">
            {info.errors.map((e, i) => (
              <li key={i} data-testid="dataset-error">
                <span className="where">{e.where}</span> <code>{e.field}</code>: {e.message}
              </li>
            ))}
            {info.errorCount > info.errors.length && <li className="muted">… and {(info.errorCount - info.errors.length).toLocaleString()} more</li>}
          </ul>
        </details>
      )}
    </div>
  );
}

/** The share of tokens the backbone's tokenizer does not know, the words behind them, and a warning above 1%. */
function UnknownTokens({ summary }: { summary: DatasetSummary }) {
  const backbone = useModelStore((s) => s.info?.name);
  const u = summary.unknown;
  const share = unknownShare(u);
  const warning = unknownWarning(u, backbone);
  return (
    <div data-testid="unknown-tokens" data-share={share} data-possible={u.possible}>
      <p className="small muted">
        {u.possible
          ? `Unknown tokens: ${formatShare(share)} (${u.unknown.toLocaleString()} of ${u.tokens.toLocaleString()}) map to the tokenizer's unknown token${u.unknown === 0 ? '; the vocabulary covers every word' : ''}.`
          : 'Unknown tokens: none; this tokenizer covers any text.'}
      </p>
      {u.topWords.length > 0 && (
        <p className="small" data-testid="unknown-words">
          Most frequent unknown words{u.distinctWords > u.topWords.length ? ` (${u.topWords.length} of ${u.distinctWords.toLocaleString()})` : ''}:{' '}
          {u.topWords.map((w, i) => (
            <span key={w.word}>
              {i > 0 ? ', ' : ''}
              <code>{w.word}</code> ×{w.count.toLocaleString()}
            </span>
          ))}
        </p>
      )}
      {warning && (
        <p className="warn-box" role="status" data-testid="unknown-warning">
          {warning}
        </p>
      )}
    </div>
  );
}

/** The data-type to expert-group mapping of the LBC: a text field, checked live against the dataset's types. */
function GroupMapping() {
  const names = useDatasetStore((s) => s.train?.typeNames ?? null);
  const { mode, experts, groups } = useSettingsStore((s) => s.values);
  const running = useRunStore((s) => isTraining(s.status));
  const resolved = useMemo(() => (names && mode === 'loramoe' ? resolveGroups(names, experts, groups) : null), [names, mode, experts, groups]);
  if (mode !== 'loramoe') return null;
  return (
    <div className="group-mapping" data-testid="group-mapping">
      <SettingField k="groups" disabled={running} />
      {groups.trim() === '' && binarySpec(experts) && (
        <p className="small muted">
          Official binary grouping: <code>{binarySpec(experts)}</code> (world knowledge to the first half of the experts, every other type to the second).
        </p>
      )}
      {resolved?.error && (
        <p className="field-error" data-testid="groups-error">
          {resolved.error}
        </p>
      )}
      {resolved?.groups && names && (
        <table className="data-table compact-table" data-testid="groups-resolved">
          <tbody>
            {names.map((n, t) => (
              <tr key={n}>
                <th scope="row">{n}</th>
                <td>experts {rangeText([...resolved.groups![t]].sort((a, b) => a - b))}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {!names && <p className="small muted">Load a dataset to see which experts each data type is steered to.</p>}
    </div>
  );
}
