import { useEffect, useMemo, useState } from 'react';
import { useDatasetStore } from '../store/dataset';
import { useModelStore } from '../store/model';
import { isTraining, secondsPerStep, useRunStore } from '../store/run';
import { shareableUrl, useSettingsStore } from '../store/settings';
import { pauseRun, resumeRun, startRun, stopRun } from '../store/run-actions';
import { resolveGroups } from '../train/run-settings';
import { describeStartup, formatDuration } from './format';

/** The run's controls and progress, always in view at the top (start, pause, resume, stop, ETA, tokens/s). */
export function RunBar() {
  const { status, step, totalSteps, metrics, busy, startup } = useRunStore();
  const modelReady = useModelStore((s) => s.info !== null);
  const names = useDatasetStore((s) => s.train?.typeNames ?? null);
  const hasData = names !== null;
  const { mode, experts, groups } = useSettingsStore((s) => s.values);
  const groupError = useMemo(() => (names && mode === 'loramoe' ? resolveGroups(names, experts, groups).error : null), [names, mode, experts, groups]);
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    if (!copied) return;
    const t = setTimeout(() => setCopied(false), 2000);
    return () => clearTimeout(t);
  }, [copied]);

  const active = isTraining(status);
  const why = !modelReady ? 'Load a backbone first' : !hasData ? 'Load a dataset first' : groupError ? `Expert groups: ${groupError}` : '';
  const canStart = why === '' && !active && status !== 'paused' && busy === null;
  const frac = totalSteps > 0 ? Math.min(1, step / totalSteps) : 0;
  const sps = secondsPerStep(metrics);
  const eta = sps !== null && active ? (totalSteps - step) * sps : null;
  const last = metrics[metrics.length - 1];
  const tps = last && active ? last.tokensPerSecond : null;
  // From Train to the first step: what the start is doing (a start that failed shows its message instead).
  const starting = busy === 'starting' || busy === 'restoring';
  const startupShown = starting || (startup !== null && startup.phase === 'firstStep' && status === 'running');
  return (
    <div className="runbar" data-testid="run-bar" data-status={status}>
      <div className="run-buttons">
        {status === 'paused' || status === 'pausing' ? (
          <button type="button" className="primary round" data-testid="resume-run" onClick={resumeRun} title="Resume">
            ▶ Resume
          </button>
        ) : (
          <button type="button" className="primary round" data-testid="start-run" disabled={!canStart} onClick={() => void startRun()} title={why || 'Start a new run'}>
            {busy === 'starting' ? 'Starting…' : '▶ Train'}
          </button>
        )}
        <button type="button" data-testid="pause-run" disabled={status !== 'running'} onClick={pauseRun} title="Pause after the current step">
          ❚❚ Pause
        </button>
        <button type="button" data-testid="stop-run" disabled={!(active || status === 'paused')} onClick={stopRun} title="End the run (the adapter stays loaded)">
          ■ Stop
        </button>
      </div>
      <div className="run-progress">
        <div className="run-line">
          <span className="status-pill" data-testid="run-status">
            {starting && !active ? 'starting' : status}
          </span>
          <span>
            step <strong data-testid="run-step" data-value={step}>{step}</strong> / <span data-testid="run-total">{totalSteps || '—'}</span>
          </span>
          {last && (
            <span className="muted">
              loss <strong>{last.loss.toFixed(3)}</strong>
            </span>
          )}
          <span className="muted" data-testid="run-eta">
            ETA {eta !== null ? formatDuration(eta) : '—'}
          </span>
          <span className="muted" data-testid="run-throughput">
            {tps !== null ? `${tps.toFixed(0)} tokens/s` : '— tokens/s'}
          </span>
        </div>
        <div className="progress" role="progressbar" aria-label="Training progress" aria-valuemin={0} aria-valuemax={totalSteps} aria-valuenow={step} data-testid="run-progress">
          <div style={{ width: `${(frac * 100).toFixed(2)}%` }} />
        </div>
        {startupShown && (
          <div className="startup" data-testid="run-startup" data-phase={startup?.phase ?? 'starting'} aria-live="polite">
            <small>{startup ? describeStartup(startup) : busy === 'restoring' ? 'Restoring the run…' : 'Starting…'}</small>
            {startup && startup.total > 0 ? (
              <progress aria-label="Start-up progress" max={startup.total} value={startup.done} />
            ) : (
              <progress aria-label="Start-up progress" />
            )}
          </div>
        )}
        {!active && status !== 'paused' && why && (
          <small className={groupError ? 'field-error' : 'muted'} data-testid="start-blocked">
            {why}.
          </small>
        )}
      </div>
      <button
        type="button"
        className="share"
        data-testid="share-link"
        title="Copy a link that reproduces these settings (seed included)"
        onClick={() => {
          const url = shareableUrl();
          void navigator.clipboard?.writeText(url).then(
            () => setCopied(true),
            () => window.prompt('Copy this link', url),
          );
        }}
      >
        {copied ? 'Link copied' : 'Share link'}
      </button>
    </div>
  );
}
