import { useMemo } from 'react';
import { useRunStore } from '../store/run';
import { setView, useViewStore } from '../store/view';
import { withColors } from './colors';
import { GroupShareChart } from './views/GroupShareChart';
import { RoutingHeatmap } from './views/RoutingHeatmap';

/** Expert utilisation by data type, updated every routing window while training. */
export function RoutingPanel() {
  const routing = useRunStore((s) => s.routing);
  const step = useRunStore((s) => s.routingStep);
  const groups = useRunStore((s) => s.groups);
  const mode = useRunStore((s) => s.adapter.cfg?.mode ?? null);
  const projection = useViewStore((s) => s.projection);
  const colored = useMemo(() => withColors(groups), [groups]);
  return (
    <section className="panel" data-testid="routing-panel">
      <h2>
        Expert routing by data type{' '}
        {routing && (
          <span className="badge" data-testid="routing-step" data-value={step}>
            steps up to {step}
          </span>
        )}
      </h2>
      {!routing ? (
        <p className="muted" data-testid="routing-empty">
          {mode && mode !== 'loramoe'
            ? 'Routing exists only in LoRAMoE mode (plain LoRA and full fine-tuning have no router).'
            : 'Start a LoRAMoE run: the mean router weight of every expert, per layer and data type, appears here every few steps. The localized balancing constraint should push world knowledge and downstream tasks to different expert groups.'}
        </p>
      ) : (
        <>
          <p className="small muted">Mean router weight over the tokens of the last routing window (training batches, dropout on).</p>
          <GroupShareChart summary={routing} groups={colored} />
          <RoutingHeatmap summary={routing} groups={colored} projection={projection} onProjectionChange={(p) => setView({ projection: p })} />
        </>
      )}
    </section>
  );
}
