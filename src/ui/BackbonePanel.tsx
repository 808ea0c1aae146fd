import { useEffect, useRef } from 'react';
import { entriesFromFiles } from '../io/browser-files';
import { repoIdProblem } from '../io/hub';
import { type SourceKind, useModelStore } from '../store/model';
import { setSetting, useSettingsStore } from '../store/settings';
import { holdsModel, useRunStore } from '../store/run';
import { chooseSource, deleteCachedRepo, inspectHub, loadDemoBackbone, loadHubBackbone, loadLocalBackbone, refreshHubCache, setLocalFiles } from '../store/backbone-actions';
import { DropZone } from './DropZone';
import { formatBytes } from './format';
import { MemoryEstimate } from './MemoryEstimate';
import { ErrorBox } from './ErrorBox';

const SOURCES: { key: SourceKind; label: string }[] = [
  { key: 'demo', label: 'Demo' },
  { key: 'hub', label: 'Hugging Face Hub' },
  { key: 'local', label: 'Local files' },
];

/** Backbone picker: the shipped demo, a Hub repository (downloaded on request, cached), or local files. */
export function BackbonePanel() {
  const { source, preview, status, info, error, progress } = useModelStore();
  const runStatus = useRunStore((s) => s.status);
  const busy = status === 'loading' || status === 'downloading' || status === 'inspecting';
  const training = holdsModel(runStatus);

  useEffect(() => {
    if (source === 'demo' && !preview) chooseSource('demo');
    void refreshHubCache();
  }, [source, preview]);

  const config = preview?.config ?? (info && info.ref.kind === preview?.ref.kind ? info.config : null);
  return (
    <section className="panel" data-testid="backbone-panel">
      <h2>
        <span className="step-no">1</span> Backbone
      </h2>
      <div className="segmented" role="tablist" aria-label="Backbone source">
        {SOURCES.map((s) => (
          <button key={s.key} type="button" role="tab" aria-selected={source === s.key} data-testid={`source-${s.key}`} className={source === s.key ? 'active' : ''} onClick={() => chooseSource(s.key)} disabled={busy}>
            {s.label}
          </button>
        ))}
      </div>
      {source === 'demo' && <DemoSource />}
      {source === 'hub' && <HubSource busy={busy} />}
      {source === 'local' && <LocalSource busy={busy} />}
      {preview?.error && (
        <p className="field-error" data-testid="backbone-preview-error">
          {preview.error}
        </p>
      )}
      {config && <MemoryEstimate config={config} />}
      {progress && <LoadProgressBar />}
      <ErrorBox message={error} testId="backbone-error" />
      {info && (
        <div className="loaded" data-testid="backbone-loaded" data-name={info.name}>
          <strong>Loaded:</strong> {info.name} <span className="muted">({info.vocabulary.toLocaleString()} tokens, {info.maxPositions} positions)</span>
          {info.warnings.length > 0 && (
            <ul className="notes">
              {info.warnings.map((w, i) => (
                <li key={i}>{w}</li>
              ))}
            </ul>
          )}
        </div>
      )}
      {training && <p className="muted small">Stop the run to load another backbone.</p>}
    </section>
  );
}

function DemoSource() {
  const status = useModelStore((s) => s.status);
  const training = useRunStore((s) => holdsModel(s.status));
  return (
    <div className="source">
      <p className="muted small">A small Llama pretrained on world facts, shipped with the playground (no download).</p>
      <button type="button" className="primary" data-testid="load-demo" disabled={status === 'loading' || training} onClick={() => void loadDemoBackbone().catch(() => undefined /* shown: the model store holds the error */)}>
        {status === 'loading' ? 'Loading…' : 'Load demo backbone'}
      </button>
    </div>
  );
}

function HubSource({ busy }: { busy: boolean }) {
  const repo = useSettingsStore((s) => s.values.hubRepo);
  const cache = useModelStore((s) => s.hubCache);
  const cacheError = useModelStore((s) => s.cacheError);
  const notes = useModelStore((s) => s.cacheNotes);
  const training = useRunStore((s) => holdsModel(s.status));
  const problem = repoIdProblem(repo);
  const cached = cache.find((c) => c.repo === repo.trim());
  return (
    <div className="source">
      <label className="field">
        <span>Repository</span>
        <input type="text" data-testid="hub-repo" value={repo} spellCheck={false} onChange={(e) => setSetting('hubRepo', e.target.value)} placeholder="HuggingFaceTB/SmolLM2-135M" />
        {problem ? <small className="field-error">{problem}</small> : <small className="help">Files are fetched from huggingface.co only when you press a button below.</small>}
      </label>
      <div className="buttons">
        <button type="button" data-testid="hub-inspect" disabled={busy || problem !== null} onClick={() => void inspectHub(repo)}>
          Check size
        </button>
        <button type="button" className="primary" data-testid="hub-download" disabled={busy || problem !== null || training} onClick={() => void loadHubBackbone(repo)}>
          {cached ? 'Load from cache' : 'Download and load'}
        </button>
      </div>
      {notes.map((n, i) => (
        <p key={i} className="warn small" data-testid="cache-note">
          {n}
        </p>
      ))}
      <details className="cache" data-testid="hub-cache" open={cache.length > 0 || cacheError !== null}>
        <summary>
          Cached in this browser ({cache.length} {cache.length === 1 ? 'model' : 'models'}, {formatBytes(cache.reduce((n, c) => n + c.bytes, 0))})
        </summary>
        {cacheError && (
          <p className="field-error" data-testid="hub-cache-error" role="alert">
            {cacheError}
          </p>
        )}
        {cache.length === 0 ? (
          cacheError ? null : (
            <p className="muted small">Nothing cached yet.</p>
          )
        ) : (
          <ul className="cache-list">
            {cache.map((c) => (
              <li key={c.repo} data-testid="hub-cache-entry" data-repo={c.repo}>
                <button type="button" className="link" onClick={() => setSetting('hubRepo', c.repo)}>
                  {c.repo}
                </button>{' '}
                <span className="muted">
                  {c.files.length} files, {formatBytes(c.bytes)}
                </span>{' '}
                <button type="button" className="small danger" data-testid="hub-cache-delete" onClick={() => void deleteCachedRepo(c.repo)}>
                  Delete
                </button>
              </li>
            ))}
          </ul>
        )}
      </details>
    </div>
  );
}

function LocalSource({ busy }: { busy: boolean }) {
  const files = useRef<HTMLInputElement>(null);
  const preview = useModelStore((s) => s.preview);
  const training = useRunStore((s) => holdsModel(s.status));
  const local = preview?.ref.kind === 'local' ? preview : null;
  return (
    <div className="source">
      <DropZone testid="model-drop" directory disabled={busy} onFiles={(entries, name) => void setLocalFiles(entries, name)}>
        <strong>Drop a model folder</strong> or click to pick one
        <br />
        <small className="muted">config.json, model.safetensors (or shards + index), tokenizer.json, tokenizer_config.json</small>
      </DropZone>
      <button type="button" className="link small" onClick={() => files.current?.click()} disabled={busy}>
        or pick the files one by one
      </button>
      <input
        ref={files}
        type="file"
        hidden
        multiple
        data-testid="model-files-input"
        accept=".json,.safetensors"
        onChange={(e) => {
          const list = e.currentTarget.files;
          if (list && list.length > 0) void setLocalFiles(entriesFromFiles(list), 'local model');
          e.currentTarget.value = '';
        }}
      />
      {local && (
        <p className="small" data-testid="local-files">
          {local.ref.kind === 'local' ? local.ref.name : ''}: {local.files.length} files{local.weightFileBytes ? `, ${formatBytes(local.weightFileBytes)} of weights` : ''}
        </p>
      )}
      <button type="button" className="primary" data-testid="load-local" disabled={busy || !local?.config || training} onClick={() => void loadLocalBackbone()}>
        Load these files
      </button>
    </div>
  );
}

function LoadProgressBar() {
  const p = useModelStore((s) => s.progress);
  const status = useModelStore((s) => s.status);
  if (!p) return null;
  const frac = p.fileTotal > 0 ? p.fileLoaded / p.fileTotal : 0;
  return (
    <div className="progress-block" data-testid="backbone-progress">
      <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(frac * 100)}>
        <div style={{ width: `${(frac * 100).toFixed(1)}%` }} />
      </div>
      <small className="muted">
        {status === 'downloading' ? (p.fromCache ? 'From cache' : 'Downloading') : 'Reading'} {p.file}: {formatBytes(p.fileLoaded)}
        {p.fileTotal > 0 ? ` of ${formatBytes(p.fileTotal)}` : ''} · file {Math.min(p.filesDone + 1, p.filesTotal)} of {p.filesTotal} · {formatBytes(p.loaded)} in all
      </small>
    </div>
  );
}
