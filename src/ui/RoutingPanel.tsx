import { useMemo } from 'react';
import type { LbcDirection, LbcImportance } from '../method/adapter';
import { useRunStore } from '../store/run';
import { useSettingsStore } from '../store/settings';
import { useShallow } from 'zustand/react/shallow';
import { setView, useViewStore } from '../store/view';
import { withColors } from './colors';
import { GroupShareChart } from './views/GroupShareChart';
import { RoutingHeatmap } from './views/RoutingHeatmap';

/**
 * One sentence on which way the balancing constraint pushes, with its optimum for two equal groups
 * (the general optimum, per data type, is in the chart; see src/reference/lbc.ts).
 */
export function constraintSentence(c: { direction: LbcDirection; importance: LbcImportance; delta: number; beta: number }): string {
  if (c.beta === 0) return 'The balancing constraint is off (beta 0): the router is free to send any data type anywhere.';
  const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;
  const importance = c.importance === 'mean' ? 'every sample counts alike (mean over its tokens)' : 'longer samples weigh more (sum over tokens), which shifts the optimum by length';
  return c.direction === 'official'
    ? `Balancing constraint, official direction: it pushes each sample's router weight away from its own data type's expert group, to ${pct((1 - c.delta) / 2)} with two equal groups at delta ${c.delta}; ${importance}.`
    : `Balancing constraint, own-group direction: it pushes each sample's router weight toward its own data type's expert group, to ${pct((1 + c.delta) / 2)} with two equal groups at delta ${c.delta}; ${importance}.`;
}

/** Expert utilisation by data type, updated every routing window while training. */
export function RoutingPanel() {
  const routing = useRunStore((s) => s.routing);
  const step = useRunStore((s) => s.routingStep);
  const groups = useRunStore((s) => s.groups);
  const mode = useRunStore((s) => s.adapter.cfg?.mode ?? null);
  const projection = useViewStore((s) => s.projection);
  const settingsConstraint = useSettingsStore(
    useShallow((s) => ({ direction: s.values.lbcDirection, importance: s.values.lbcImportance, delta: s.values.lbcDelta, beta: s.values.lbcBeta })),
  );
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
            : `Start a LoRAMoE run: the mean router weight of every expert, per layer and data type, appears here every few steps. ${constraintSentence(settingsConstraint)}`}
        </p>
      ) : (
        <>
          <p className="small muted">Mean router weight over the tokens of the last routing window (training batches, dropout on).</p>
          <p className="small" data-testid="constraint-direction">
            {constraintSentence(routing.constraint)}
          </p>
          <GroupShareChart summary={routing} groups={colored} />
          <RoutingHeatmap summary={routing} groups={colored} projection={projection} onProjectionChange={(p) => setView({ projection: p })} />
        </>
      )}
    </section>
  );
}
