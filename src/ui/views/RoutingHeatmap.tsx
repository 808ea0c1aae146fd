import { useState } from 'react';
import { downloadBlob } from '../../io/download';
import { formatWeight, groupOfExpert, heatColor, heatGradient, heatmapPng, heatScale, routingCsv, type HeatScale } from './export';
import { GroupLegend } from './GroupLegend';
import { rangeText } from '../../run/groups';
import type { ExpertGroup, Projection, RoutingSummary } from './types';
import './views.css';
import { errorMessage } from '../../util/errors';

export interface RoutingHeatmapProps {
  summary: RoutingSummary;
  groups: ExpertGroup[];
  projection: Projection;
  onProjectionChange(p: Projection): void;
}

interface Hovered {
  type: number;
  layer: number;
  expert: number;
}

/**
 * Mean router weight per expert (columns) and layer (rows), one heatmap per data type, for one
 * adapted projection. The colour scale is centred on the uniform weight 1/N.
 */
export function RoutingHeatmap({ summary, groups, projection, onProjectionChange }: RoutingHeatmapProps) {
  const [hovered, setHovered] = useState<Hovered | null>(null);
  const [exportError, setExportError] = useState<string | null>(null);
  const found = summary.projections.indexOf(projection);
  const pi = found >= 0 ? found : 0;
  const shown = summary.projections[pi];
  const scale = heatScale(summary, pi);

  const downloadPng = () => {
    setExportError(null);
    heatmapPng(summary, groups, shown ?? projection).then(
      (blob) => downloadBlob(blob, `routing-${shown ?? projection}.png`),
      (e: unknown) => setExportError(`PNG export failed: ${errorMessage(e)}`),
    );
  };
  const downloadCsv = () => downloadBlob(new Blob([routingCsv(summary, groups)], { type: 'text/csv' }), 'routing.csv');

  return (
    <section className="view routing-heatmap" data-testid="routing-heatmap">
      <div className="view-toolbar">
        <label>
          Projection{' '}
          <select data-testid="heatmap-projection" value={shown ?? ''} onChange={(e) => onProjectionChange(e.target.value as Projection)} disabled={summary.projections.length === 0}>
            {summary.projections.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </label>
        <span className="view-spacer" />
        <button type="button" data-testid="heatmap-download-png" onClick={downloadPng} disabled={summary.projections.length === 0}>
          Download PNG
        </button>
        <button type="button" data-testid="heatmap-download-csv" onClick={downloadCsv}>
          Download CSV
        </button>
      </div>
      {exportError && (
        <p className="view-error" role="alert">
          {exportError}
        </p>
      )}
      {summary.projections.length === 0 ? (
        <p className="view-empty">No routed projections: routing is only recorded for a LoRAMoE adapter.</p>
      ) : (
        <div className="heatmaps">
          {summary.types.map((type, t) => (
            <TypeHeatmap key={t} summary={summary} groups={groups} typeIndex={t} typeName={type} pi={pi} scale={scale} hovered={hovered} onHover={setHovered} />
          ))}
        </div>
      )}
      <HeatLegend scale={scale} groups={groups} />
    </section>
  );
}

const pct = (x: number) => `${Math.round(x * 100)}%`;

/**
 * A heatmap's reading in one line: the type's share of router weight on its own expert group (every
 * layer and adapted projection, token mean) and the constraint's optimum for it,
 * "world knowledge → experts 0-3: 69%, target 75%".
 */
export function ownGroupReading(summary: RoutingSummary, groups: readonly ExpertGroup[], t: number): string {
  const type = summary.types[t];
  const own = groups.find((g) => g.types?.includes(type));
  const share = summary.ownGroup[t];
  if (!own || !share) return `${type}: no expert group of its own`;
  const target = share.target === null ? 'no target (constraint off)' : `target ${pct(share.target)}`;
  return `${type} → expert${own.experts.length === 1 ? '' : 's'} ${rangeText(own.experts)}: ${pct(share.share)}, ${target}`;
}

interface TypeHeatmapProps {
  summary: RoutingSummary;
  groups: ExpertGroup[];
  typeIndex: number;
  typeName: string;
  pi: number;
  scale: HeatScale;
  hovered: Hovered | null;
  onHover(h: Hovered | null): void;
}

function TypeHeatmap({ summary, groups, typeIndex: t, typeName, pi, scale, hovered, onHover }: TypeHeatmapProps) {
  const tokens = summary.tokens[t] ?? 0;
  const projection = summary.projections[pi];
  const here = hovered && hovered.type === t ? hovered : null;
  return (
    <figure className="heatmap" data-testid={`heatmap-${t}`} onMouseLeave={() => onHover(null)}>
      <figcaption>
        <strong>{typeName}</strong>{' '}
        <span className="muted" data-testid={`heatmap-tokens-${t}`} data-value={tokens}>
          {tokens.toLocaleString()} token{tokens === 1 ? '' : 's'}
          {summary.ownGroup[t] ? `, ${summary.ownGroup[t].samples.toLocaleString()} sample${summary.ownGroup[t].samples === 1 ? '' : 's'}` : ''}
        </span>
      </figcaption>
      {tokens > 0 && (
        <p className="heatmap-reading small" data-testid={`heatmap-reading-${t}`}>
          {ownGroupReading(summary, groups, t)}
        </p>
      )}
      {tokens > 0 ? (
        <div className="heatmap-body">
          <div className="heatmap-grid" style={{ gridTemplateColumns: `var(--label-w) repeat(${summary.experts}, var(--cell-w))` }} role="table" aria-label={`Mean router weight for ${typeName}, ${projection}`}>
            <div className="heatmap-row" role="row">
              <div className="heatmap-corner" role="columnheader">
                layer
              </div>
              {Array.from({ length: summary.experts }, (_, e) => {
                const g = groupOfExpert(groups, e);
                return (
                  <div
                    key={e}
                    className="heatmap-expert"
                    role="columnheader"
                    data-testid={`expert-header-${t}-${e}`}
                    style={g ? { background: `color-mix(in srgb, ${g.group.color} 35%, transparent)`, borderBottomColor: g.group.color } : undefined}
                    title={g ? `expert ${e}: ${g.group.name}` : `expert ${e}`}
                  >
                    {e}
                  </div>
                );
              })}
            </div>
            {Array.from({ length: summary.layers }, (_, l) => (
              <HeatRow key={l} summary={summary} groups={groups} t={t} layer={l} pi={pi} scale={scale} onHover={onHover} />
            ))}
          </div>
          {here && <CellTooltip summary={summary} groups={groups} typeName={typeName} pi={pi} at={here} />}
        </div>
      ) : (
        <p className="view-empty heatmap-empty" data-testid={`heatmap-empty-${t}`}>
          no tokens yet
        </p>
      )}
    </figure>
  );
}

interface HeatRowProps {
  summary: RoutingSummary;
  groups: ExpertGroup[];
  t: number;
  layer: number;
  pi: number;
  scale: HeatScale;
  onHover(h: Hovered | null): void;
}

function HeatRow({ summary, groups, t, layer, pi, scale, onHover }: HeatRowProps) {
  const row = summary.mean[t]?.[layer]?.[pi] ?? [];
  return (
    <div className="heatmap-row" role="row">
      <div className="heatmap-layer" role="rowheader">
        {layer}
      </div>
      {Array.from({ length: summary.experts }, (_, e) => {
        const v = row[e] ?? NaN;
        const g = groupOfExpert(groups, e);
        return (
          <div
            key={e}
            role="cell"
            className="heatmap-cell"
            data-testid={`cell-${t}-${layer}-${e}`}
            data-value={Number.isFinite(v) ? String(v) : 'NaN'}
            style={{ background: heatColor(v, scale) }}
            title={`${summary.types[t]} · layer ${layer} · ${summary.projections[pi]} · expert ${e}${g ? ` (${g.group.name})` : ''}: ${formatWeight(v)}`}
            onMouseEnter={() => onHover({ type: t, layer, expert: e })}
          />
        );
      })}
    </div>
  );
}

function CellTooltip({ summary, groups, typeName, pi, at }: { summary: RoutingSummary; groups: ExpertGroup[]; typeName: string; pi: number; at: Hovered }) {
  const v = summary.mean[at.type]?.[at.layer]?.[pi]?.[at.expert] ?? NaN;
  const g = groupOfExpert(groups, at.expert);
  const uniform = summary.experts > 0 ? 1 / summary.experts : 0;
  return (
    <div
      className="heatmap-tooltip"
      data-testid="heatmap-tooltip"
      role="status"
      style={{
        // Below the cell in the upper half of the grid, above it in the lower half.
        ...(at.layer < summary.layers / 2
          ? { top: `calc(${at.layer + 3} * var(--cell-h) + 6px)` }
          : { bottom: `calc(${summary.layers - at.layer} * var(--cell-h) + 4px)` }),
        // Right of the cell in the left half, left of it in the right half (the tooltip stays over the grid).
        ...(at.expert < summary.experts / 2
          ? { left: `calc(var(--label-w) + ${at.expert + 1} * var(--cell-w) + 6px)` }
          : { right: `calc(${summary.experts - at.expert} * var(--cell-w) + 6px)` }),
      }}
    >
      <div>
        <strong>{typeName}</strong>, layer {at.layer}, {summary.projections[pi]}
      </div>
      <div>
        expert {at.expert}
        {g && (
          <>
            {' '}
            <span className="swatch" style={{ background: g.group.color }} /> {g.group.name}
          </>
        )}
      </div>
      <div>
        weight <strong>{formatWeight(v)}</strong>
        {Number.isFinite(v) && uniform > 0 && <span className="muted"> ({(v / uniform).toFixed(2)}× uniform)</span>}
      </div>
    </div>
  );
}

function HeatLegend({ scale, groups }: { scale: HeatScale; groups: ExpertGroup[] }) {
  const span = scale.max - scale.min;
  const mid = span > 0 ? ((scale.uniform - scale.min) / span) * 100 : 50;
  return (
    <div className="heat-legend" data-testid="heatmap-legend">
      <div className="heat-scale">
        <div className="heat-bar" style={{ background: heatGradient(scale) }} />
        <div className="heat-ticks">
          <span style={{ left: '0%' }}>{scale.min.toFixed(2)}</span>
          <span style={{ left: `${mid}%` }}>{scale.uniform.toFixed(3)} uniform</span>
          <span style={{ left: '100%' }}>{scale.max.toFixed(2)}</span>
        </div>
      </div>
      <GroupLegend groups={groups} />
    </div>
  );
}
