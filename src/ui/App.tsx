import { useGpuStore } from '../store/gpu';
import { GpuPanel } from './GpuPanel';
import { WebGpuUnavailable } from './WebGpuUnavailable';

export function App() {
  const status = useGpuStore((s) => s.status);
  return (
    <div className="app">
      <header className="app-header">
        <h1>LoRAMoE Playground</h1>
        <p className="tagline">
          A mixture of LoRA experts learns new tasks while a frozen language model keeps what it knows, trained on your GPU
          in this tab.
        </p>
      </header>
      <main>{status === 'unavailable' ? <WebGpuUnavailable /> : <GpuPanel />}</main>
    </div>
  );
}
