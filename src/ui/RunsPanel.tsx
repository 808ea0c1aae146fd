import { continueRun } from '../store/run-actions';
import { exportRunFolder, importRunFolder } from '../store/run-folder-actions';
import { DropZone } from './DropZone';
import { holdsModel, useRunStore } from '../store/run';
import { openRunWithModel } from '../store/model-actions';
import { deleteRun, downloadRunAdapter, finalLoss, type LibraryState, type LibraryEntry, toggleOverlay, useLibraryStore } from '../store/run-library';
import { useOwnershipStore } from '../store/run-ownership';
import { formatBytes } from './format';
import { ReasonButton } from './ReasonButton';
import { RunsOverlay } from './views/RunsOverlay';
import { TableScroll } from './views/TableScroll';
import { ErrorBox } from './ErrorBox';

const dateFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

const pct = (v: number | undefined) => (v === undefined ? '—' : `${(v * 100).toFixed(1)}%`);

/** Probe accuracy before and after: the probe panel's results, or a comparison run's held-out scores at its first and last point. */
function probeCell(r: LibraryEntry): string {
  const curve = r.evalCurve ?? [];
  const before = r.probe.before?.accuracy ?? curve[0]?.probe;
  const after = r.probe.after?.accuracy ?? (curve.length > 1 ? curve[curve.length - 1].probe : undefined);
  if (before === undefined && after === undefined) return '—';
  return `${pct(before)} → ${pct(after)}`;
}

/** Whether the browser keeps the runs under storage pressure, and what to do when it does not. */
function persistenceText(p: LibraryState['persistence']): string {
  if (p.persisted === true) return 'Storage is persistent: the browser keeps these runs until you delete them.';
  if (p.persisted === null) return 'This browser does not say whether it keeps this site\'s storage: download the adapters you want to keep.';
  if (!p.asked) return 'Storage is not persistent yet: the playground asks the browser to keep it when the first run or dataset is stored.';
  return (
    'The browser declined to make storage persistent: under storage pressure it may delete these runs. To keep them, bookmark this site or install it as an app ' +
    '(Chrome and Edge grant persistence to sites you bookmark, install or use often; Firefox asks, allow it), and download the adapters you want to keep.'
  );
}

/**
 * The runs library: every run and imported adapter kept in this browser until deleted. Open one to
 * see its curves and routing, continue it from its checkpoint, download the adapter it ended with,
 * overlay the loss curves of several, delete. Shows the storage the library and the site use.
 */
export function RunsPanel() {
  const { runs, overlay, usage, persistence, error, loaded } = useLibraryStore();
  // Runs another tab of this browser trains: shown read-only here.
  const elsewhere = useOwnershipStore((s) => s.elsewhere);
  const elsewhereNames = runs.filter((r) => elsewhere.includes(r.id)).map((r) => r.name);
  const shown = useRunStore((s) => s.runId);
  const status = useRunStore((s) => s.status);
  const training = holdsModel(status);
  const busy = useRunStore((s) => s.busy);
  const overlaid = runs.filter((r) => overlay.includes(r.id) && r.metrics.length > 0);
  return (
    <section className="panel runs-panel" data-testid="runs-panel" aria-labelledby="runs-title">
      <h2 id="runs-title">Runs</h2>
      {elsewhereNames.length > 0 && (
        <p className="small" data-testid="runs-elsewhere" role="status">
          {elsewhereNames.join(', ')} {elsewhereNames.length === 1 ? 'is' : 'are'} training in another tab of this browser: switch to that tab to watch or stop{' '}
          {elsewhereNames.length === 1 ? 'it' : 'them'}. This tab shows {elsewhereNames.length === 1 ? 'it' : 'them'} read-only, and can continue{' '}
          {elsewhereNames.length === 1 ? 'it' : 'them'} once that tab stops {elsewhereNames.length === 1 ? 'it' : 'them'}; if that tab closes mid-run, one open tab resumes it.
        </p>
      )}
      {!loaded ? (
        <p className="muted">Reading the runs library…</p>
      ) : runs.length === 0 ? (
        <p className="muted" data-testid="runs-empty">
          No runs yet. Every run you train (and every adapter you import) is kept here, with its curves, routing, probe results, chat and adapter, until you delete it.
        </p>
      ) : (
        <TableScroll label="Runs in this browser">
          <table className="data-table runs-table" data-testid="runs-table">
            <thead>
              <tr>
                <th scope="col">
                  <span className="visually-hidden">Overlay</span>
                </th>
                <th scope="col">Run</th>
                <th scope="col">Steps</th>
                <th scope="col">Final loss</th>
                <th scope="col">Probe before → after</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => {
                const loss = finalLoss(r);
                const isShown = r.id === shown;
                const otherTab = elsewhere.includes(r.id);
                const canContinue = r.origin === 'trained' && r.checkpoint !== null && r.step < r.totalSteps && !training && !otherTab;
                return (
                  <tr
                    key={r.id}
                    data-testid="run-row"
                    data-run={r.id}
                    data-origin={r.origin}
                    data-status={r.status}
                    data-owner={otherTab ? 'other-tab' : 'none'}
                    data-adapter={r.adapter ? 'kept' : 'none'}
                    aria-current={isShown ? 'true' : undefined}
                  >
                    <td>
                      <input type="checkbox" aria-label={`Overlay the loss of ${r.name}`} checked={overlay.includes(r.id)} disabled={r.metrics.length === 0} onChange={() => toggleOverlay(r.id)} />
                    </td>
                    <th scope="row" className="run-name">
                      {r.name}
                      {isShown && <span className="badge">on screen</span>}
                      {otherTab && (
                        <span className="badge" data-testid="run-other-tab">
                          training in another tab
                        </span>
                      )}
                      <span className="run-sub small muted">
                        {r.origin === 'imported' ? `${r.method || 'adapter'} · imported` : r.method} · {dateFormat.format(r.createdAt)}
                      </span>
                    </th>
                    <td data-testid="run-row-steps">{r.origin === 'imported' ? '—' : `${r.step} / ${r.totalSteps}`}</td>
                    <td>{loss === null ? '—' : loss.toFixed(4)}</td>
                    <td>{probeCell(r)}</td>
                    <td className="run-actions">
                      <ReasonButton className="small" data-testid="run-open" reason={isShown ? 'This run is on screen' : training ? 'Stop the current run to open another' : null} onClick={() => void openRunWithModel(r.id)}>
                        Open
                      </ReasonButton>
                      {r.origin === 'trained' && (
                        <ReasonButton
                          className="small"
                          data-testid="run-continue"
                          reason={canContinue ? null : otherTab ? 'Another tab trains this run: it can be continued here once that tab stops it' : r.step >= r.totalSteps ? 'This run finished all its steps' : training ? 'Stop the current run first' : 'This run keeps no checkpoint'}
                          onClick={() => void continueRun(r.id)}
                        >
                          Continue
                        </ReasonButton>
                      )}
                      {r.origin === 'trained' && (
                        <ReasonButton
                          className="small"
                          data-testid="run-export-folder"
                          reason={otherTab ? 'Another tab trains this run' : r.checkpoint ? null : 'This run keeps no checkpoint'}
                          title="A zip of the run's folder (checkpoint, metrics, training data): the runner continues it with train --resume"
                          onClick={() => void exportRunFolder(r.id)}
                        >
                          Folder
                        </ReasonButton>
                      )}
                      <ReasonButton
                        className="small"
                        data-testid="run-download"
                        reason={r.adapter ? null : 'A run keeps its adapter once it stops or finishes'}
                        title={r.adapter ? `${r.adapter.name}, ${formatBytes(r.adapter.bytes)}` : undefined}
                        onClick={() => void downloadRunAdapter(r.id)}
                      >
                        Adapter
                      </ReasonButton>
                      <ReasonButton
                        className="small"
                        data-testid="run-delete"
                        reason={otherTab ? 'Stop the run in the tab that trains it before deleting it' : isShown && training ? 'Stop the run before deleting it' : null}
                        onClick={() => {
                          if (window.confirm(`Delete ${r.name} with its checkpoint and adapter?`)) void deleteRun(r.id);
                        }}
                      >
                        Delete
                      </ReasonButton>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableScroll>
      )}
      <DropZone testid="run-folder-drop" accept=".zip,.json,.jsonl,.safetensors" multiple disabled={training || busy !== null} onFiles={(entries, name) => void importRunFolder(entries, name)}>
        <strong>Import a run folder</strong>: drop a folder the runner wrote (<code>train --out DIR</code>) or a run folder&apos;s zip, or click to pick its run.json,
        checkpoint.safetensors and metrics.jsonl; the run is listed here and Continue goes on with it
      </DropZone>
      {overlaid.length > 0 && <RunsOverlay series={overlaid.map((r) => ({ id: r.id, name: r.name, points: r.metrics.map((m) => ({ step: m.step, loss: m.loss })) }))} />}
      {usage && (
        <p className="small muted" data-testid="storage-used">
          The library holds {formatBytes(usage.library)}
          {usage.used !== null && usage.quota !== null ? `; this site uses ${formatBytes(usage.used)} of the ${formatBytes(usage.quota)} the browser allows it.` : '.'}
        </p>
      )}
      {loaded && (
        <p className="small muted" data-testid="storage-persistence" data-persisted={persistence.persisted === null ? 'unknown' : String(persistence.persisted)} data-asked={String(persistence.asked)}>
          {persistenceText(persistence)}
        </p>
      )}
      <ErrorBox message={error} testId="runs-error" />
    </section>
  );
}
