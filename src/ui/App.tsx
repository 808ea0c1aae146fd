import { useEffect, useState } from 'react';
import { holdsModel, useRunStore } from '../store/run';
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

/** The page's parts, in the sidebar's order; each is an element id the sidebar jumps to. */
export const SECTIONS = [
  { id: 'data', label: 'Data' },
  { id: 'train', label: 'Train' },
  { id: 'routing', label: 'Routing' },
  { id: 'compare', label: 'Compare' },
  { id: 'chat', label: 'Chat' },
  { id: 'runs', label: 'Runs' },
] as const;

/**
 * The playground: the run's controls always at the top, a sidebar (a strip of tabs on a phone) that
 * jumps between its parts, and the parts: backbone and data, training (curves, routing, probe beside
 * the settings), the method comparison, chat and the runs library. While a run is going, and while one is on
 * screen with its curves, the training part comes first, so its live curves and heatmaps are the
 * first thing seen; while a run holds the model, the views take the whole width (settings below).
 */
export function App() {
  const status = useGpuStore((s) => s.status);
  // A run going, or one on screen with its curves: its views come first (and stay first when it ends).
  const live = useRunStore((s) => holdsModel(s.status) || s.metrics.length > 0);
  // While a run holds the model its settings are locked: the live views take the whole width (as
  // TensorBoard and W&B show a run), the settings move below them.
  const running = useRunStore((s) => holdsModel(s.status));
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
      <div className="shell">
        <SectionNav />
        <main className="sections" data-live={live ? 'true' : 'false'} data-running={running ? 'true' : 'false'} aria-label="Playground">
          <section id="data" className="page-section data-section" aria-label="Backbone and data">
            <div className="data-grid">
              <div className="column">
                <BackbonePanel />
                <GpuPanel />
              </div>
              <div className="column">
                <DataPanel />
              </div>
            </div>
          </section>
          <section id="train" className="page-section train-section" aria-label="Training">
            <div className="train-grid">
              <div className="column views">
                <RunPanel />
                <ChartsPanel />
                <div id="routing" className="anchor">
                  <RoutingPanel />
                </div>
                <ProbePanel />
              </div>
              <div className="column controls">
                <SettingsPanel />
                <AdapterPanel />
              </div>
            </div>
          </section>
          <section id="compare" className="page-section" aria-label="Compare methods">
            <ComparePanel />
          </section>
          <section id="chat" className="page-section" aria-label="Chat">
            <ChatPanel />
          </section>
          <section id="runs" className="page-section" aria-label="Runs">
            <RunsPanel />
          </section>
        </main>
      </div>
    </div>
  );
}

/** The sidebar: one link per part, the one in view marked (aria-current). */
function SectionNav() {
  const [active, setActive] = useState<string>(SECTIONS[0].id);
  useEffect(() => {
    if (typeof IntersectionObserver === 'undefined') return;
    // The part whose top crossed the upper third of the window last is the one in view.
    const seen = new Map<string, boolean>();
    const io = new IntersectionObserver(
      (entries) => {
        for (const e of entries) seen.set(e.target.id, e.isIntersecting);
        const first = SECTIONS.find((s) => seen.get(s.id));
        if (first) setActive(first.id);
      },
      { rootMargin: '0px 0px -66% 0px' },
    );
    for (const s of SECTIONS) {
      const el = document.getElementById(s.id);
      if (el) io.observe(el);
    }
    return () => io.disconnect();
  }, []);
  return (
    <nav className="sidebar" aria-label="Parts of the playground" data-testid="section-nav">
      <ul>
        {SECTIONS.map((s) => (
          <li key={s.id}>
            <a
              href={`#${s.id}`}
              data-testid={`nav-${s.id}`}
              aria-current={active === s.id ? 'location' : undefined}
              onClick={(e) => {
                // Jump without adding the part to the URL (the query holds the settings; a hash would be shared with them).
                e.preventDefault();
                document.getElementById(s.id)?.scrollIntoView({ block: 'start' });
                setActive(s.id);
              }}
            >
              {s.label}
            </a>
          </li>
        ))}
      </ul>
    </nav>
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
