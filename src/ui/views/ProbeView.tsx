import { useState } from 'react';
import { TableScroll } from './TableScroll';
import { rangeText } from '../../run/groups';
import type { ProbeResult } from './types';
import './views.css';

export interface ProbeViewProps {
  before: ProbeResult | null;
  after: ProbeResult | null;
}

type ProbeItem = ProbeResult['items'][number];

function pct(v: number | undefined): string {
  return v !== undefined && Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '—';
}

function signed(v: number, digits: number, unit = ''): string {
  return `${v > 0 ? '+' : v < 0 ? '−' : '±'}${Math.abs(v).toFixed(digits)}${unit}`;
}

/** Change class for colouring: better, worse or the same. */
function trend(delta: number): string {
  return delta > 1e-12 ? 'better' : delta < -1e-12 ? 'worse' : 'same';
}

/**
 * The knowledge probe before and after training: accuracy and its change, mean log-likelihood of
 * the gold answers, accuracy per data type, and every question with its outcome.
 */
export function ProbeView({ before, after }: ProbeViewProps) {
  const [changedOnly, setChangedOnly] = useState(false);
  if (!before && !after) {
    return (
      <section className="view probe-view" data-testid="probe-view">
        <p className="view-empty">The knowledge probe has not run yet.</p>
      </section>
    );
  }
  const both = before !== null && after !== null;
  const n = Math.max(before?.items.length ?? 0, after?.items.length ?? 0);
  const rows = Array.from({ length: n }, (_, i) => ({ i, b: before?.items[i], a: after?.items[i] }));
  const isChanged = (r: { b?: ProbeItem; a?: ProbeItem }) => r.b !== undefined && r.a !== undefined && r.b.correct !== r.a.correct;
  const shown = both && changedOnly ? rows.filter(isChanged) : rows;
  const changedCount = rows.filter(isChanged).length;
  return (
    <section className="view probe-view" data-testid="probe-view">
      <ProbeSummary before={before} after={after} />
      <TypeAccuracy before={before} after={after} />
      <div className="view-toolbar">
        <span className="muted">
          {n} question{n === 1 ? '' : 's'}{both && `, ${changedCount} changed`}
        </span>
        <span className="view-spacer" />
        <label>
          <input type="checkbox" data-testid="probe-changed-only" checked={changedOnly} disabled={!both} onChange={(e) => setChangedOnly(e.target.checked)} /> changed only
        </label>
      </div>
      <TableScroll label="Probe questions and answers">
        <table className="data-table probe-table" data-testid="probe-table">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">question</th>
              <th scope="col">gold</th>
              <th scope="col">type</th>
              <th scope="col">before</th>
              <th scope="col">after</th>
              <th scope="col" title="change of log p(gold answer)">Δ log p</th>
              <th scope="col">greedy answer (when wrong)</th>
            </tr>
          </thead>
          <tbody>
            {shown.map(({ i, b, a }) => (
              <ProbeRow key={i} index={i} before={b} after={a} />
            ))}
            {shown.length === 0 && (
              <tr>
                <td colSpan={8} className="view-empty">
                  No question changed its outcome.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </TableScroll>
    </section>
  );
}

function ProbeSummary({ before, after }: ProbeViewProps) {
  const delta = before && after ? after.accuracy - before.accuracy : null;
  const llDelta = before && after ? after.meanLogLikelihood - before.meanLogLikelihood : null;
  return (
    <dl className="probe-summary">
      <div>
        <dt>accuracy before</dt>
        <dd data-testid="probe-accuracy-before">{before ? pct(before.accuracy) : 'not run'}</dd>
      </div>
      <div>
        <dt>accuracy after</dt>
        <dd data-testid="probe-accuracy-after" data-mask={after?.expertMask?.join(',') ?? ''}>
          {after ? pct(after.accuracy) : 'not run'}
          {after?.expertMask && after.expertMask.length > 0 && <span className="muted"> (experts {rangeText(after.expertMask)} off)</span>}
        </dd>
      </div>
      <div>
        <dt>change</dt>
        <dd data-testid="probe-accuracy-change" className={delta !== null ? trend(delta) : undefined}>
          {delta !== null ? signed(delta * 100, 1, ' pp') : '—'}
        </dd>
      </div>
      <div>
        <dt>mean log p(gold)</dt>
        <dd data-testid="probe-loglik" data-after={after ? after.meanLogLikelihood : ''}>
          {before ? before.meanLogLikelihood.toFixed(3) : '—'} → {after ? after.meanLogLikelihood.toFixed(3) : '—'}
          {llDelta !== null && <span className={`delta ${trend(llDelta)}`}> ({signed(llDelta, 3)})</span>}
        </dd>
      </div>
    </dl>
  );
}

function TypeAccuracy({ before, after }: ProbeViewProps) {
  const types = [...new Set([...Object.keys(before?.byType ?? {}), ...Object.keys(after?.byType ?? {})])];
  if (types.length === 0) return null;
  return (
    <table className="data-table" data-testid="probe-by-type">
      <thead>
        <tr>
          <th scope="col">data type</th>
          <th scope="col">questions</th>
          <th scope="col">before</th>
          <th scope="col">after</th>
          <th scope="col">change</th>
        </tr>
      </thead>
      <tbody>
        {types.map((type) => {
          const b = before?.byType[type];
          const a = after?.byType[type];
          const d = a && b ? a.accuracy - b.accuracy : null;
          return (
            <tr key={type}>
              <th scope="row">{type}</th>
              <td className="num">{a?.n ?? b?.n ?? 0}</td>
              <td className="num">{pct(b?.accuracy)}</td>
              <td className="num">{pct(a?.accuracy)}</td>
              <td className={`num ${d !== null ? trend(d) : ''}`}>{d !== null ? signed(d * 100, 1, ' pp') : '—'}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function Mark({ item }: { item: ProbeItem | undefined }) {
  if (!item) return <span className="muted">—</span>;
  return item.correct ? (
    <span className="mark ok" aria-label="correct">
      ✓
    </span>
  ) : (
    <span className="mark bad" aria-label="wrong">
      ✗
    </span>
  );
}

function Greedy({ label, item }: { label: string; item: ProbeItem | undefined }) {
  if (!item || item.correct) return null;
  return (
    <div className="greedy">
      <span className="muted">{label}: </span>
      <code>{item.greedyPrefix === '' ? '(empty)' : item.greedyPrefix}</code>
    </div>
  );
}

function ProbeRow({ index, before, after }: { index: number; before?: ProbeItem; after?: ProbeItem }) {
  const item = after ?? before;
  if (!item) return null;
  const changed = before !== undefined && after !== undefined && before.correct !== after.correct;
  const dll = before && after ? after.logLikelihood - before.logLikelihood : null;
  return (
    <tr data-testid={`probe-row-${index}`} data-changed={changed ? 'true' : 'false'} className={changed ? (after?.correct ? 'row-gained' : 'row-lost') : undefined}>
      <td className="num muted">{index + 1}</td>
      <td className="text">{item.question}</td>
      <td className="text">{item.gold}</td>
      <td className="nowrap">{item.type}</td>
      <td className="center" data-testid={`probe-before-${index}`}>
        <Mark item={before} />
      </td>
      <td className="center" data-testid={`probe-after-${index}`}>
        <Mark item={after} />
      </td>
      <td className={`num ${dll !== null ? trend(dll) : ''}`}>{dll !== null ? signed(dll, 2) : '—'}</td>
      <td className="text">
        <Greedy label="before" item={before} />
        <Greedy label="after" item={after} />
      </td>
    </tr>
  );
}
