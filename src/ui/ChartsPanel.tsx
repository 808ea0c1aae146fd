import { useRunStore } from '../store/run';
import { LossCharts } from './views/LossCharts';

/** Live training curves. */
export function ChartsPanel() {
  const metrics = useRunStore((s) => s.metrics);
  return (
    <section className="panel" data-testid="charts-panel">
      <h2>Training curves</h2>
      <LossCharts points={metrics} />
    </section>
  );
}
