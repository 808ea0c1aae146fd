import { useMemo } from 'react';
import type { LbcDirection, LbcImportance } from '../method/adapter';
import type { RoutingSummary } from '../train/routing';
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

/** "world knowledge: 32 samples, 1,234 tokens" per type, for the sentence under the toggle. */
function perTypeCounts(summary: RoutingSummary): string {
  const count = (n: number, what: string) => `${n.toLocaleString()} ${what}${n === 1 ? '' : 's'}`;
  return summary.types.map((type, t) => `${type}: ${count(summary.ownGroup[t]?.samples ?? 0, 'sample')}, ${count(summary.tokens[t] ?? 0, 'token')}`).join('; ');
}

/** What a summary was measured on, in one sentence. */
export function sourceSentence(summary: RoutingSummary): string {
  const src = summary.source;
  if (src?.kind === 'routingSet') {
    const held = src.types.filter((x) => x.heldOut).map((x) => x.type);
    const sampled = src.types.filter((x) => !x.heldOut && x.samples > 0).map((x) => x.type);
    const how =
      sampled.length === 0
        ? 'samples held out of training when the run started (a seeded draw, never trained on)'
        : held.length === 0
          ? 'a seeded sample of the training data (this run held nothing out)'
          : `samples held out of training when the run started (a seeded draw, never trained on); ${sampled.join(', ')} had too few samples to spare and ${sampled.length === 1 ? 'is' : 'are'} measured on training samples`;
    return `Mean router weight on the routing set after step ${src.step}, dropout off: ${how}. ${perTypeCounts(summary)}.`;
  }
  const steps = src?.kind === 'window' ? (src.fromStep === src.toStep ? `step ${src.toStep}` : `steps ${src.fromStep}-${src.toStep}`) : 'the last routing window';
  return `Mean router weight over the training batches of ${steps} (dropout on; a type without tokens there keeps its values from an earlier window). ${perTypeCounts(summary)}. Few tokens make these values noisy.`;
}

/** Expert utilisation by data type: measured on the run's routing set (primary) or over the last training window. */
export function RoutingPanel() {
  const onWindow = useRunStore((s) => s.routing);
  const windowStep = useRunStore((s) => s.routingStep);
  const onSet = useRunStore((s) => s.routingSet);
  const setStep = useRunStore((s) => s.routingSetStep);
  const groups = useRunStore((s) => s.groups);
  const mode = useRunStore((s) => s.adapter.cfg?.mode ?? null);
  const projection = useViewStore((s) => s.projection);
  const view = useViewStore((s) => s.routingView);
  const settingsConstraint = useSettingsStore(
    useShallow((s) => ({ direction: s.values.lbcDirection, importance: s.values.lbcImportance, delta: s.values.lbcDelta, beta: s.values.lbcBeta })),
  );
  const colored = useMemo(() => withColors(groups), [groups]);
  const routing = view === 'routingSet' ? onSet : onWindow;
  const step = view === 'routingSet' ? setStep : windowStep;
  const anyRouting = onSet !== null || onWindow !== null;
  const views = [
    { key: 'routingSet' as const, label: 'routing set (held out, dropout off)', help: 'Routing measured on a fixed set of samples of each data type, held out of training, with dropout off: every routing window and at the end of the run.' },
    { key: 'window' as const, label: 'last training window', help: "Routing averaged over the last routing window's training batches, dropout on: few tokens per type, noisy." },
  ];
  return (
    <section className="panel" data-testid="routing-panel">
      <h2>
        Expert routing by data type{' '}
        {routing && (
          <span className="badge" data-testid="routing-step" data-value={step} data-source={view}>
            {view === 'routingSet' ? `after step ${step}` : `steps up to ${step}`}
          </span>
        )}
      </h2>
      {anyRouting && (
        <div className="segmented" role="radiogroup" aria-label="Routing measured on" data-testid="routing-view">
          {views.map((v) => (
            <button
              key={v.key}
              type="button"
              role="radio"
              aria-checked={view === v.key}
              className={view === v.key ? 'active' : ''}
              data-testid={`routing-view-${v.key}`}
              title={v.help}
              onClick={() => setView({ routingView: v.key })}
            >
              {v.label}
            </button>
          ))}
        </div>
      )}
      {!routing ? (
        <p className="muted" data-testid="routing-empty">
          {mode && mode !== 'loramoe'
            ? 'Routing exists only in LoRAMoE mode (plain LoRA and full fine-tuning have no router).'
            : anyRouting
              ? view === 'routingSet'
                ? 'Not measured on the routing set yet: it is measured at the end of every routing window and of the run.'
                : 'No training window recorded yet.'
              : `Start a LoRAMoE run: the mean router weight of every expert, per layer and data type, appears here every few steps, measured on a routing set of samples of each data type held out of training (dropout off). ${constraintSentence(settingsConstraint)}`}
        </p>
      ) : (
        <>
          <p className="small muted" data-testid="routing-source" data-kind={routing.source?.kind ?? 'window'}>
            {sourceSentence(routing)}
          </p>
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
