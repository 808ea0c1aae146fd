import { useDatasetStore } from '../store/dataset';
import { useModelStore } from '../store/model';
import { useProbeStore } from '../store/probe';
import { useRunStore } from '../store/run';
import { useLibraryStore } from '../store/run-library';
import { loadDemoProbe, uploadDatasetFile } from '../store/data-actions';
import { runProbe } from '../store/model-actions';
import { setView, useViewStore } from '../store/view';
import { DropZone } from './DropZone';
import { effectiveMask, ExpertSwitches } from './ExpertSwitches';
import { count } from './format';
import { ProbeView } from './views/ProbeView';
import { ErrorBox } from './ErrorBox';

/** Closed-book questions held out of training: exact-match accuracy of the frozen backbone and of the trained model. */
export function ProbePanel() {
  const { before, after, running, error } = useProbeStore();
  const probe = useDatasetStore((s) => s.probe);
  const loading = useDatasetStore((s) => s.loading.probe);
  const probeError = useDatasetStore((s) => s.errors.probe);
  const ready = useModelStore((s) => s.info !== null);
  const adapter = useRunStore((s) => s.adapter);
  const modelRun = useRunStore((s) => s.modelRun);
  const shownRun = useRunStore((s) => s.runId);
  const busy = useRunStore((s) => s.busy);
  const runs = useLibraryStore((s) => s.runs);
  const can = ready && probe !== null && running === null && busy === null;
  // "After" scores the model the worker holds: say whose it is, and refuse while another run is on screen.
  const modelName = adapter.origin === 'none' ? null : (runs.find((r) => r.id === modelRun)?.name ?? adapter.label);
  const afterWhy = adapter.origin === 'none' ? 'Train or import an adapter first' : shownRun !== null && modelRun !== shownRun ? "The run on screen is not the loaded model: open it from the runs library to load it" : '';
  const routed = adapter.origin !== 'none' && adapter.cfg?.mode === 'loramoe';
  const off = useViewStore((s) => s.probeExpertsOff);
  const mask = routed ? effectiveMask(adapter.groups, off) : [];
  return (
    <section className="panel" data-testid="probe-panel">
      <h2>Knowledge probe</h2>
      <p className="small muted">
        Does fine-tuning erase what the backbone knew? Greedy exact match on closed-book questions that are not in the training data, before training (the frozen
        backbone) and after (with the adapter).
      </p>
      <div className="probe-source">
        <button type="button" data-testid="use-demo-probe" disabled={loading !== undefined} onClick={() => void loadDemoProbe()}>
          Use the demo probe
        </button>
        <DropZone
          testid="probe-drop"
          accept=".json,.jsonl,.ndjson,.csv,.tsv,.parquet"
          disabled={loading !== undefined}
          onFiles={(entries) => {
            void uploadDatasetFile('probe', entries[0]);
          }}
        >
          or drop / pick a question file
        </DropZone>
      </div>
      {probe && (
        <p className="small" data-testid="probe-data" data-count={probe.counts.good}>
          <strong>{probe.name}</strong>: {count(probe.counts.good, 'question')}
        </p>
      )}
      <ErrorBox message={probeError} alert={false} />
      <div className="buttons">
        <button type="button" data-testid="probe-before" disabled={!can} onClick={() => void runProbe('before')}>
          {running === 'before' ? 'Probing…' : 'Probe the frozen backbone'}
        </button>
        <button type="button" data-testid="probe-after" disabled={!can || afterWhy !== ''} onClick={() => void runProbe('after', mask)} title={afterWhy}>
          {running === 'after' ? 'Probing…' : mask.length > 0 ? 'Probe the trained model, groups off' : 'Probe the trained model'}
        </button>
      </div>
      {routed && <ExpertSwitches groups={adapter.groups} off={mask} onChange={(o) => setView({ probeExpertsOff: o })} testid="probe-experts" disabled={running !== null} />}
      <p className="small muted" data-testid="probe-model" data-run={modelRun ?? ''}>
        {modelName ? `"After" scores ${modelName}.` : '"After" needs an adapter: train a run or import one.'}
        {afterWhy && modelName ? ` ${afterWhy}.` : ''}
      </p>
      <ErrorBox message={error} testId="probe-error" alert={false} />
      <ProbeView before={before} after={after} />
    </section>
  );
}
