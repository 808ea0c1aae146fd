import { useModelStore } from '../store/model';
import { holdsModel, useRunStore } from '../store/run';
import { useDatasetStore } from '../store/dataset';
import { exportAdapter, exportOfficialRun, importAdapter } from '../store/model-actions';
import { exportMetrics } from '../store/run-actions';
import { useSettingsStore } from '../store/settings';
import { useViewStore } from '../store/view';
import { DropZone } from './DropZone';

/** The adapter as files (download a zip in the official layout, import a zip or folder) and the run's metrics. */
export function AdapterPanel() {
  const ready = useModelStore((s) => s.info !== null);
  const { adapter, metrics, busy, status } = useRunStore();
  const running = holdsModel(status);
  const cfg = adapter.cfg;
  const hasData = useDatasetStore((s) => s.train !== null);
  const mode = useSettingsStore((s) => s.values.mode);
  const importNote = useViewStore((s) => s.importNote);
  const officialBlocked = !hasData ? 'Load training data first: the hand-off carries it.' : mode === 'full' ? 'The official trainer trains adapters only (LoRAMoE or, with one expert, LoRA).' : null;
  return (
    <section className="panel" data-testid="adapter-panel">
      <h2>Adapter and results</h2>
      <p data-testid="adapter-state" data-origin={adapter.origin}>
        {adapter.origin === 'none' ? (
          <span className="muted">No adapter: the model is the frozen backbone.</span>
        ) : (
          <>
            <strong>{adapter.origin === 'imported' ? 'Imported' : 'Trained'}</strong> {cfg?.mode}
            {cfg && cfg.mode !== 'full' && (
              <span className="muted">
                {' '}
                · {cfg.mode === 'loramoe' ? `${cfg.numExperts} experts, ` : ''}rank {cfg.rank}, alpha {cfg.alpha}, on {cfg.targets.join(', ')}
              </span>
            )}{' '}
            <span className="muted">({adapter.label})</span>
          </>
        )}
      </p>
      {adapter.note && (
        <p className="small info-box" data-testid="adapter-note">
          {adapter.note}
        </p>
      )}
      {importNote && (
        <p className="small info-box" data-testid="import-settings-note" role="status">
          {importNote}
        </p>
      )}
      <div className="buttons">
        <button type="button" className="primary" data-testid="download-adapter" disabled={!ready || adapter.origin === 'none' || busy !== null} onClick={() => void exportAdapter()}>
          {busy === 'exporting' ? 'Packing…' : cfg?.mode === 'full' ? 'Download the model (zip)' : 'Download adapter (zip)'}
        </button>
        <button
          type="button"
          data-testid="export-official"
          disabled={officialBlocked !== null || busy !== null}
          title={officialBlocked ?? 'The training data in the official format, a run_loramoe.sh with these settings, and a note of what does not map'}
          onClick={() => void exportOfficialRun()}
        >
          For the official trainer (zip)
        </button>
        <button type="button" data-testid="export-metrics-csv" disabled={metrics.length === 0} onClick={() => exportMetrics('csv')}>
          Metrics CSV
        </button>
        <button type="button" data-testid="export-metrics-json" disabled={metrics.length === 0} onClick={() => exportMetrics('json')}>
          Metrics JSON
        </button>
      </div>
      <DropZone testid="adapter-drop" accept=".zip,.json,.safetensors,.bin" multiple disabled={!ready || running || busy !== null} onFiles={(entries, name) => void importAdapter(entries, name)}>
        <strong>Import an adapter</strong>: drop a zip or a folder with adapter_config.json and adapter_model.safetensors or adapter_model.bin, or click to pick files
      </DropZone>
      {officialBlocked && (
        <p className="small muted" data-testid="export-official-reason">
          Hand-off to the official trainer: {officialBlocked}
        </p>
      )}
      <p className="small muted">
        To train at scale, "For the official trainer" packs the training data in the official JSON format with a <code>run_loramoe.sh</code> that carries these settings; the official
        trainer's <code>adapter_model.bin</code> then imports here. The adapter zip holds <code>adapter_model.safetensors</code> with the official LoRAMoE tensor names (<code>…mlp.gate_proj.lora_A0.weight</code>, <code>lora_route</code>) and{' '}
        <code>adapter_config.json</code> (PEFT's fields plus <code>lora_nums</code>, <code>blc_alpha</code>, <code>blc_weight</code>). Import also reads the
        official LoRAMoE code's and PEFT's <code>adapter_model.bin</code> (PyTorch's format, read without running anything it holds) and plain PEFT LoRA
        adapters (<code>lora_A.weight</code> / <code>lora_B.weight</code>, <code>use_rslora</code> included).
      </p>
    </section>
  );
}
