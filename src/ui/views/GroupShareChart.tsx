import { Bar, BarChart, CartesianGrid, ReferenceLine, Text, Tooltip, XAxis, type XAxisTickContentProps, YAxis } from 'recharts';
import { usePointerInside } from './pointer';
import { TableScroll } from './TableScroll';
import type { ExpertGroup, RoutingSummary } from './types';
import './views.css';

export interface GroupShareChartProps {
  summary: RoutingSummary;
  groups: ExpertGroup[];
}

function pct(v: number): string {
  return Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '—';
}

/** The share of router weight an expert group would hold if routing were uniform. */
function uniformShare(group: ExpertGroup, experts: number): number {
  return experts > 0 ? group.experts.length / experts : 0;
}

/** "world knowledge (1,234 tokens)": a type with the number of tokens its shares were measured on. */
export function typeLabel(summary: RoutingSummary, t: number): string {
  const n = summary.tokens[t] ?? 0;
  return `${summary.types[t]} (${n.toLocaleString()} token${n === 1 ? '' : 's'})`;
}

/** A type's label under its bars, wrapped to the width of its band, so that neighbouring labels never overlap or get dropped. */
function TypeTick({ x, y, payload, width, visibleTicksCount }: XAxisTickContentProps) {
  const band = payload.offset ? 2 * payload.offset : Number(width) / Math.max(1, visibleTicksCount);
  return (
    <Text x={Number(x)} y={Number(y)} width={Math.max(40, band - 6)} maxLines={4} textAnchor="middle" verticalAnchor="start" fontSize={11} fill="#1d2330">
      {String(payload.value)}
    </Text>
  );
}

/** For each type, the index of the shown group that holds it (its own group), or -1. */
function ownGroupIndex(summary: RoutingSummary, groups: readonly ExpertGroup[]): number[] {
  return summary.types.map((type) => groups.findIndex((g) => g.types?.includes(type) ?? false));
}

/**
 * The paper's routing figure: for each data type, the share of router weight held by each expert
 * group (averaged over layers and adapted projections), against the uniform share.
 */
export function GroupShareChart({ summary, groups }: GroupShareChartProps) {
  const own = ownGroupIndex(summary, groups);
  const pointer = usePointerInside();
  const targetOf = (t: number): number | null => {
    const v = summary.ownGroup[t]?.target;
    return v !== null && v !== undefined && Number.isFinite(v) ? v : null;
  };
  const anyTarget = summary.types.some((_, t) => targetOf(t) !== null && own[t] >= 0);
  const rows = summary.types.map((type, t) => {
    // The token count behind each type's bars, in its axis label.
    const row: Record<string, string | number | null> = { type, label: typeLabel(summary, t) };
    groups.forEach((_, g) => {
      const v = summary.groupMean[t]?.[g] ?? NaN;
      row[`g${g}`] = Number.isFinite(v) ? v : null;
    });
    // Beside the bars: where the balancing constraint alone would put this type's own-group share.
    row.target = own[t] >= 0 ? targetOf(t) : null;
    return row;
  });
  const uniforms = groups.map((g) => uniformShare(g, summary.experts));
  const sameUniform = uniforms.every((u) => Math.abs(u - uniforms[0]) < 1e-12);
  const anyTokens = summary.tokens.some((n) => n > 0);
  const described = summary.types
    .map((type, t) => `${type}: ${groups.map((g, i) => `${g.name} ${pct(summary.groupMean[t]?.[i] ?? NaN)}`).join(', ')}`)
    .join('; ');
  return (
    <section className="view group-share" data-testid="group-share-chart" {...pointer.handlers}>
      {anyTokens ? (
        <>
          <BarChart
            responsive
            data={rows}
            style={{ width: '100%', height: 250 }}
            margin={{ top: 12, right: 8, bottom: 4, left: 0 }}
            barCategoryGap="25%"
            aria-label={`Share of router weight per expert group and data type (${described}); the left and right arrow keys step through the types`}
          >
            <CartesianGrid stroke="#eceef2" vertical={false} />
            <XAxis dataKey="label" tick={TypeTick} interval={0} height={72} label={{ value: 'data type', position: 'insideBottom', offset: 0, fontSize: 11, fill: '#4a5366' }} />
            <YAxis domain={[0, 1]} tickFormatter={(v: number) => `${Math.round(v * 100)}%`} tick={{ fontSize: 11 }} width={44} />
            <Tooltip active={pointer.inside ? undefined : false} isAnimationActive={false} formatter={(v) => (typeof v === 'number' ? pct(v) : 'no tokens')} contentStyle={{ fontSize: 12, padding: '4px 8px' }} />
            {groups.map((g, i) => (
              <Bar key={i} dataKey={`g${i}`} name={g.name} fill={g.color} isAnimationActive={false} />
            ))}
            {anyTarget && <Bar dataKey="target" name="own group at the constraint's optimum" fill="#ffffff" stroke="#1d2330" strokeDasharray="3 2" isAnimationActive={false} />}
            {sameUniform && uniforms.length > 0 ? (
              <ReferenceLine y={uniforms[0]} stroke="#1d2330" strokeDasharray="4 3" />
            ) : (
              groups.map((g, i) => <ReferenceLine key={i} y={uniforms[i]} stroke={g.color} strokeDasharray="4 3" />)
            )}
          </BarChart>
          {/* The legend in the bars' order (left to right), with the dashed line's meaning. */}
          <ul className="chart-legend" data-testid="group-share-legend">
            {groups.map((g, i) => (
              <li key={i}>
                <span className="swatch" style={{ background: g.color }} />
                {g.name}
              </li>
            ))}
            {anyTarget && (
              <li>
                <span className="swatch target" />
                own group at the constraint's optimum
              </li>
            )}
            {sameUniform && uniforms.length > 0 ? (
              <li data-testid="group-share-uniform">
                <span className="dash" style={{ borderColor: '#1d2330' }} />
                uniform routing: {pct(uniforms[0])}
              </li>
            ) : (
              groups.map((g, i) => (
                <li key={`u${i}`} data-testid="group-share-uniform">
                  <span className="dash" style={{ borderColor: g.color }} />
                  uniform routing, {g.name}: {pct(uniforms[i])}
                </li>
              ))
            )}
          </ul>
        </>
      ) : (
        <p className="chart-placeholder">No routed tokens yet.</p>
      )}
      <p className="muted small share-note">
        Bold: the type's own group{anyTarget ? "; beside it, where the balancing constraint alone would put the own group's share" : ''}; last row: uniform routing.
      </p>
      <TableScroll className="share-scroll" label="Share of router weight per expert group and data type">
        <table className="data-table group-share-table" data-testid="group-share-table">
          <caption className="muted">Share of router weight per expert group</caption>
          <thead>
            <tr>
              <th scope="col">data type</th>
              <th scope="col">tokens</th>
              {groups.map((g, i) => (
                <th scope="col" key={i}>
                  <span className="swatch" style={{ background: g.color }} /> {g.name}
                </th>
              ))}
              {anyTarget && (
                <th scope="col" title="The share of router weight on the type's own group where the balancing constraint alone is lowest, for the samples measured">
                  own group: constraint's optimum
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {summary.types.map((type, t) => (
              <tr key={t}>
                <th scope="row">{type}</th>
                <td className="num" data-testid={`group-share-tokens-${t}`} data-value={summary.tokens[t] ?? 0}>
                  {(summary.tokens[t] ?? 0).toLocaleString()}
                </td>
                {groups.map((_, g) => {
                  const v = summary.groupMean[t]?.[g] ?? NaN;
                  return (
                    <td className={g === own[t] ? 'num own-group' : 'num'} key={g} data-testid={`group-share-${t}-${g}`} data-value={Number.isFinite(v) ? String(v) : 'NaN'}>
                      {pct(v)}
                    </td>
                  );
                })}
                {anyTarget && (
                  <td className="num" data-testid={`group-share-target-${t}`} data-value={String(own[t] >= 0 ? (targetOf(t) ?? NaN) : NaN)}>
                    {own[t] >= 0 && targetOf(t) !== null ? pct(targetOf(t)!) : '—'}
                  </td>
                )}
              </tr>
            ))}
            <tr className="muted">
              <th scope="row">uniform</th>
              <td />
              {uniforms.map((u, g) => (
                <td className="num" key={g}>
                  {pct(u)}
                </td>
              ))}
              {anyTarget && <td />}
            </tr>
          </tbody>
        </table>
      </TableScroll>
    </section>
  );
}
