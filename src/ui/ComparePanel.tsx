import { useRef, useState } from 'react';
import { downloadBlob } from '../io/download';
import { cancelComparison, comparisonProgress, MAX_COMPARISON_SEEDS, setComparisonForm, startComparison, useComparisonStore } from '../store/comparison';
import { useDatasetStore } from '../store/dataset';
import { useModelStore } from '../store/model';
import { holdsModel, useRunStore } from '../store/run';
import { useSettingsStore } from '../store/settings';
import type { SettingKey } from '../store/settings-table';
import { formatDuration } from './format';
import { SettingField } from './SettingField';
import { comparisonCsv, ComparisonView, methodColor, svgPng } from './views/ComparisonView';
import { errorMessage } from '../util/errors';
import { ErrorBox } from './ErrorBox';

/**
 * The Training panel's settings the comparison takes (src/store/comparison.ts startComparison):
 * shown and editable here so that none is used unseen.
 */
const SHARED_KEYS: SettingKey[] = ['batch', 'accum', 'maxLength', 'seed', 'schedule', 'warmup', 'experts', 'rank', 'alpha', 'dropout', 'lbcDelta', 'lbcBeta', 'lbcImportance', 'targets'];

const STATE_TEXT: Record<string, string> = { waiting: 'waiting', running: 'training', done: 'done', stopped: 'stopped', failed: 'failed' };

/**
 * Compare methods: full fine-tuning, LoRA, LoRAMoE without the constraint and with it in each
 * direction, trained one after another on the loaded backbone and data with the same seed, data
 * order and steps; the forgetting and learning curves live, the table at the end.
 */
export function ComparePanel() {
  const c = useComparisonStore();
  const modelReady = useModelStore((s) => s.info !== null);
  const train = useDatasetStore((s) => s.train);
  const probe = useDatasetStore((s) => s.probe);
  const status = useRunStore((s) => s.status);
  const settings = useSettingsStore((s) => s.values);
  const [exportError, setExportError] = useState<string | null>(null);
  const viewRef = useRef<HTMLDivElement>(null);
  const running = c.status === 'running' || c.status === 'cancelling';
  const why = !modelReady ? 'Load a backbone first' : !train ? 'Load a training dataset first' : !probe ? 'Load probe questions first (the knowledge probe panel)' : holdsModel(status) && !running ? 'Stop the current run first' : '';
  const progress = comparisonProgress(c);
  const elapsed = running ? (performance.now() - c.startedAt) / 1000 : 0;
  const eta = running && progress > 0.01 ? (elapsed * (1 - progress)) / progress : null;
  const hasResults = c.methods.some((m) => m.curve.length > 0);

  async function exportPng(): Promise<void> {
    setExportError(null);
    try {
      // The plot's own surface, not the legend's icons (also svg.recharts-surface, 14 px wide).
      const charts = viewRef.current?.querySelectorAll<SVGSVGElement>('.comparison-chart .recharts-wrapper > svg.recharts-surface') ?? [];
      const titles = ['knowledge-probe', 'task-accuracy'];
      const legend = c.methods.map((m, k) => ({ name: m.name, color: methodColor(m.key, k) }));
      let i = 0;
      for (const svg of charts) {
        const title = titles[i] ?? `chart-${i}`;
        downloadBlob(await svgPng(svg, i === 0 ? 'Knowledge probe (held-out facts) by instruction samples seen' : 'Held-out task accuracy by instruction samples seen', legend), `comparison-${c.id ?? 'run'}-${title}.png`);
        i++;
      }
      if (i === 0) throw new Error('no chart is drawn yet');
    } catch (e) {
      setExportError(errorMessage(e));
    }
  }

  return (
    <section className="panel compare-panel" data-testid="compare-panel" data-status={c.status} aria-labelledby="compare-title">
      <h2 id="compare-title">Compare methods</h2>
      <p className="small muted">
        Trains five methods one after another on the loaded backbone and data, with the same seed ({settings.seed}), data order, batch ({settings.batch}) and steps: full
        fine-tuning, LoRA at the same trainable size (rank {settings.experts * settings.rank}), LoRAMoE ({settings.experts} experts of rank {settings.rank}) without the
        balancing constraint, and with it in the official and in the own-group direction. Every tenth of the run it scores the knowledge probe (held-out facts) and the
        held-out task examples (the routing set's tasks, never trained on). Each method's run is kept in the runs library.
      </p>
      <div className="compare-form">
        <label>
          Steps per method
          <input type="number" min={1} max={100000} step={1} value={c.form.steps} disabled={running} data-testid="compare-steps" onChange={(e) => setComparisonForm({ steps: Number(e.target.value) })} />
        </label>
        <label title="Each method runs once per seed: the training settings' seed and the next ones">
          Seeds
          <input type="number" min={1} max={MAX_COMPARISON_SEEDS} step={1} value={c.form.seeds} disabled={running} data-testid="compare-seeds" onChange={(e) => setComparisonForm({ seeds: Number(e.target.value) })} />
        </label>
        <label>
          Learning rate (LoRA, LoRAMoE)
          <input type="number" min={0} step="any" value={c.form.lrAdapter} disabled={running} data-testid="compare-lr" onChange={(e) => setComparisonForm({ lrAdapter: Number(e.target.value) })} />
        </label>
        <label>
          Learning rate (full fine-tuning)
          <input type="number" min={0} step="any" value={c.form.lrFull} disabled={running} data-testid="compare-lr-full" onChange={(e) => setComparisonForm({ lrFull: Number(e.target.value) })} />
        </label>
      </div>
      <details className="group compare-settings" data-testid="compare-settings" open>
        <summary>The settings every method uses (shared with the Training panel: a change here changes them there)</summary>
        <div className="fields">
          {SHARED_KEYS.map((k) => (
            <SettingField key={k} k={k} idPrefix="compare-" disabled={holdsModel(status)} />
          ))}
        </div>
      </details>
      <div className="buttons">
        {running ? (
          <button type="button" data-testid="compare-cancel" disabled={c.status === 'cancelling'} onClick={cancelComparison}>
            {c.status === 'cancelling' ? 'Cancelling…' : 'Cancel'}
          </button>
        ) : (
          <button type="button" className="primary" data-testid="compare-start" disabled={why !== '' || !(c.form.steps >= 1) || !(c.form.seeds >= 1 && c.form.seeds <= MAX_COMPARISON_SEEDS)} title={why || 'Start the comparison'} onClick={() => void startComparison()}>
            Compare the five methods
          </button>
        )}
        {hasResults && !running && (
          <>
            <button type="button" data-testid="compare-csv" onClick={() => downloadBlob(new Blob([comparisonCsv(c.methods)], { type: 'text/csv' }), `comparison-${c.id ?? 'run'}.csv`)}>
              Table (CSV)
            </button>
            <button type="button" data-testid="compare-png" onClick={() => void exportPng()}>
              Charts (PNG)
            </button>
          </>
        )}
      </div>
      {why && !running && <p className="small muted">{why}.</p>}
      {c.methods.length > 0 && (
        <>
          <div className="compare-progress">
            <progress max={1} value={progress} aria-label="Comparison progress" data-testid="compare-progress" data-value={progress.toFixed(3)} />
            <span className="small">
              {Math.round(progress * 100)}%{running && eta !== null ? ` · about ${formatDuration(eta)} left` : ''}
              {c.status === 'done' && ' · done'}
              {c.status === 'cancelled' && ' · cancelled'}
            </span>
          </div>
          <ol className="compare-methods small">
            {c.methods.map((m) => (
              <li key={m.key} data-testid="compare-method" data-method={m.key} data-state={m.state} data-points={m.curve.length}>
                <strong>{m.name}</strong>: {STATE_TEXT[m.state]}
                {m.state === 'running' && c.seeds.length > 1 ? ` (seed ${c.seeds[Math.min(c.seeds.length - 1, Math.floor(m.step / c.steps))]}, step ${m.step % c.steps} of ${c.steps})` : ''}
                {m.state === 'running' && c.seeds.length <= 1 ? ` (step ${m.step} of ${c.steps})` : ''}
              </li>
            ))}
          </ol>
          <p className="small muted">
            Scored every {c.evalEvery} step{c.evalEvery === 1 ? '' : 's'}; x axis: instruction samples seen (steps × batch × accumulation).
            {c.seeds.length > 1 &&
              ` Seeds ${c.seeds.join(', ')}: each line is the mean of a method's runs in a band of its 95% confidence interval over the seeds (Student t), and the tables give mean ± that interval.`}
          </p>
          <div ref={viewRef}>
            <ComparisonView methods={c.methods} table={!running && hasResults} />
          </div>
        </>
      )}
      <ErrorBox message={c.error} testId="compare-error" />
      <ErrorBox message={exportError} />
    </section>
  );
}
