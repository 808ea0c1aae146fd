import { useGpuStore } from '../store/gpu';
import { AdapterPanel } from './AdapterPanel';
import { BackbonePanel } from './BackbonePanel';
import { ChartsPanel } from './ChartsPanel';
import { ChatPanel } from './ChatPanel';
import { ComparePanel } from './ComparePanel';
import { DataPanel } from './DataPanel';
import { GpuPanel } from './GpuPanel';
import { ProbePanel } from './ProbePanel';
import { RoutingPanel } from './RoutingPanel';
import { RunBar } from './RunBar';
import { RunPanel } from './RunPanel';
import { RunsPanel } from './RunsPanel';
import { SettingsPanel } from './SettingsPanel';
import { WebGpuUnavailable } from './WebGpuUnavailable';

/** The playground: controls on the left, live views on the right, the run's controls always at the top. */
export function App() {
  const status = useGpuStore((s) => s.status);
  if (status === 'unavailable') {
    return (
      <div className="app narrow">
        <Header />
        <main>
          <WebGpuUnavailable />
        </main>
      </div>
    );
  }
  return (
    <div className="app">
      <div className="top">
        <Header />
        <RunBar />
      </div>
      <div className="layout">
        <aside className="controls" aria-label="Backbone, data and training settings">
          <BackbonePanel />
          <DataPanel />
          <SettingsPanel />
          <GpuPanel />
        </aside>
        <main className="views" aria-label="Live views">
          <RunPanel />
          <ChartsPanel />
          <RoutingPanel />
          <ProbePanel />
          <ChatPanel />
          <AdapterPanel />
          <ComparePanel />
          <RunsPanel />
        </main>
      </div>
    </div>
  );
}

function Header() {
  return (
    <header className="app-header">
      <h1>
        LoRAMoE <span>Playground</span>
      </h1>
      <p className="tagline">
        A mixture of LoRA experts learns new tasks while a frozen language model keeps what it knows, trained on your GPU in this tab.{' '}
        <a href="https://arxiv.org/abs/2312.09979" target="_blank" rel="noreferrer">
          Paper
        </a>
      </p>
    </header>
  );
}
