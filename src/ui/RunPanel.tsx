import { useState } from 'react';
import { useModelStore } from '../store/model';
import { useRunStore } from '../store/run';
import { useSettingsStore } from '../store/settings';
import { dismissUrlErrors } from '../store/settings';
import { SETTINGS } from '../store/settings-table';
import { discardCheckpoint, resumeFromCheckpoint, stopRun } from '../store/run-actions';
import { isTraining } from '../store/run';
import { formatBytes, formatTime } from './format';
import { ErrorBox } from './ErrorBox';

/** Events shown at once (the rest behind "show all"). */
const EVENTS_SHOWN = 6;

/**
 * What the banner says of a run the reload interrupted: which run, the step the page had shown, the
 * checkpoint it continues from, and which steps are trained again ("steps 11-12").
 */
export function resumedSentence(a: { name: string; seenStep: number; fromStep: number; redone: number; state: string }): string {
  const verb = a.state === 'resuming' ? 'Resuming' : 'Resumed';
  const from = `from its checkpoint at step ${a.fromStep}`;
  if (a.redone <= 0) return `${verb} ${a.name}, which the reload interrupted at step ${a.seenStep}, ${from}: no step is trained again.`;
  const again = a.redone === 1 ? `step ${a.seenStep} is` : `steps ${a.fromStep + 1}-${a.seenStep} are`;
  return `${verb} ${a.name}, which the reload interrupted at step ${a.seenStep}, ${from}: ${again} trained again.`;
}

/**
 * Run messages: a saved run to resume, errors, storage problems, what happened to the run (skipped
 * steps with non-finite numbers, rollbacks, a lost GPU device), checkpoints, and the memory the run
 * really uses.
 */
export function RunPanel() {
  const { status, message, storageError, resumable, autoResumed, checkpoint, memory, seqLen, busy, runId, events } = useRunStore();
  const urlErrors = useSettingsStore((s) => s.urlErrors);
  const backbone = useModelStore((s) => s.info);
  const [allEvents, setAllEvents] = useState(false);
  const nothing = !autoResumed && !resumable && !message && !storageError && urlErrors.length === 0 && !memory && !checkpoint && events.length === 0;
  if (nothing) return null;
  return (
    <section className="panel run-panel" data-testid="run-panel">
      {urlErrors.length > 0 && (
        <div className="warn-box" data-testid="url-errors" role="alert">
          <strong>Some settings in the link were invalid and were replaced by their defaults:</strong>
          <ul>
            {urlErrors.map((e) => (
              <li key={e.key} data-testid="url-error" data-param={e.param}>
                <code>
                  {e.param}={e.raw}
                </code>{' '}
                ({SETTINGS[e.key].label}): {e.message}
              </li>
            ))}
          </ul>
          <button type="button" className="small" onClick={dismissUrlErrors}>
            Dismiss
          </button>
        </div>
      )}
      {autoResumed && autoResumed.state !== 'failed' && (
        <div
          className="info-box resumed-banner"
          data-testid="resumed-banner"
          data-from-step={autoResumed.fromStep}
          data-seen-step={autoResumed.seenStep}
          data-redone={autoResumed.redone}
          role="status"
        >
          <span>{resumedSentence(autoResumed)}</span>
          {isTraining(status) && (
            <button type="button" className="small" data-testid="resumed-stop" onClick={stopRun}>
              Stop
            </button>
          )}
        </div>
      )}
      {resumable && !(autoResumed && autoResumed.state !== 'failed') && (
        <div className="resume-box" data-testid="resume-box">
          <p>
            A run saved in this browser can continue from <strong data-testid="resumable-step">step {resumable.step}</strong> of {resumable.totalSteps} (
            {resumable.meta.backbone.kind === 'hub' ? resumable.meta.backbone.repo : resumable.meta.backbone.kind === 'local' ? resumable.meta.backbone.name : 'demo backbone'},{' '}
            {resumable.meta.dataset.name}, saved {formatTime(resumable.savedAt)}).
          </p>
          <div className="buttons">
            <button type="button" className="primary" data-testid="resume-checkpoint" disabled={busy !== null} onClick={() => void resumeFromCheckpoint()}>
              {busy === 'restoring' ? 'Restoring…' : 'Resume this run'}
            </button>
            <button type="button" data-testid="discard-checkpoint" disabled={busy !== null} onClick={() => void discardCheckpoint()}>
              Discard
            </button>
          </div>
        </div>
      )}
      {message && (
        <p className={status === 'error' ? 'error-box' : 'warn-box'} data-testid="run-message" role="alert">
          {message}
        </p>
      )}
      <ErrorBox message={storageError} testId="storage-error" />
      {events.length > 0 && (
        <div className="run-events" data-testid="run-events" data-count={events.length}>
          <ul aria-live="polite" style={{ listStyle: 'none', paddingLeft: 0, margin: 0 }}>
            {(allEvents ? events : events.slice(-EVENTS_SHOWN)).map((e, i) => (
              <li
                key={`${e.at}-${i}`}
                className={e.severity === 'error' ? 'error-box' : e.severity === 'warning' ? 'warn-box' : 'muted small'}
                data-testid="run-event"
                data-kind={e.kind}
                data-step={e.step}
                data-to-step={e.toStep ?? ''}
              >
                <span className="small muted">{formatTime(e.at)} · </span>
                {e.message}
              </li>
            ))}
          </ul>
          {events.length > EVENTS_SHOWN && (
            <button type="button" className="small" onClick={() => setAllEvents(!allEvents)}>
              {allEvents ? 'Show the latest only' : `Show all ${events.length}`}
            </button>
          )}
        </div>
      )}
      <div className="run-facts">
        {runId && (
          <span className="muted small">
            {runId}
            {seqLen ? ` · sequences padded to ${seqLen} tokens` : ''}
          </span>
        )}
        {checkpoint && (
          <span className="small" data-testid="checkpoint-info" data-step={checkpoint.step}>
            ✓ checkpoint at step {checkpoint.step} ({formatBytes(checkpoint.bytes)}, {formatTime(checkpoint.savedAt)})
          </span>
        )}
        {memory && backbone && memory.graph > 0 && (
          <span className="small" data-testid="memory-measured" data-value={memory.weights + memory.graph + memory.optimizer}>
            GPU memory in use: {formatBytes(memory.weights + memory.graph + memory.optimizer)} (weights {formatBytes(memory.weights)}, graph {formatBytes(memory.graph)}, optimizer{' '}
            {formatBytes(memory.optimizer)})
          </span>
        )}
      </div>
    </section>
  );
}
