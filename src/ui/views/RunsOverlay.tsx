import { CartesianGrid, Legend, Line, LineChart, Tooltip, XAxis, YAxis } from 'recharts';
import { usePointerInside } from './pointer';
import './views.css';

export interface OverlaySeries {
  id: string;
  name: string;
  /** (step, loss) per step; non-finite losses are gaps. */
  points: { step: number; loss: number }[];
}

interface RunsOverlayProps {
  series: OverlaySeries[];
}

const COLORS = ['#2f6fb0', '#b0562f', '#2f8f7a', '#7a3fa0', '#5b6b2f', '#a03f6b', '#3f8fa0', '#8a6d1f'];

/** At most this many points per run are drawn (an even stride, keeping the last step). */
const MAX_POINTS = 400;

/**
 * The loss curves of several runs on one chart (x: optimizer step). Rows are keyed by step, one
 * column per run, so runs of different lengths share the axis.
 */
export function RunsOverlay({ series }: RunsOverlayProps) {
  const pointer = usePointerInside();
  const byStep = new Map<number, Record<string, number | null>>();
  for (const s of series) {
    const stride = Math.max(1, Math.ceil(s.points.length / MAX_POINTS));
    s.points.forEach((p, i) => {
      if (i % stride !== 0 && i !== s.points.length - 1) return;
      const row = byStep.get(p.step) ?? {};
      row[s.id] = Number.isFinite(p.loss) ? p.loss : null;
      byStep.set(p.step, row);
    });
  }
  const rows = [...byStep.entries()].sort((a, b) => a[0] - b[0]).map(([step, r]) => ({ step, ...r }));
  return (
    <figure className="small-chart" data-testid="runs-overlay" data-runs={series.length} {...pointer.handlers} aria-label={`Loss of ${series.length} runs by step`} role="img">
      <figcaption>
        <span>
          Loss by step, {series.length} run{series.length === 1 ? '' : 's'}
        </span>
      </figcaption>
      <LineChart responsive data={rows} style={{ width: '100%', height: 220 }} margin={{ top: 6, right: 12, bottom: 18, left: 0 }} accessibilityLayer={false}>
        <CartesianGrid strokeDasharray="3 3" />
        <XAxis dataKey="step" type="number" domain={[0, 'dataMax']} tick={{ fontSize: 11 }} allowDecimals={false} label={{ value: 'step', position: 'insideBottom', offset: -8, fontSize: 11 }} />
        <YAxis tick={{ fontSize: 11 }} width={46} tickFormatter={(v: number) => v.toFixed(2)} domain={['auto', 'auto']} />
        <Tooltip active={pointer.inside ? undefined : false} isAnimationActive={false} formatter={(v) => (typeof v === 'number' ? v.toFixed(4) : String(v))} labelFormatter={(l) => `step ${String(l)}`} contentStyle={{ fontSize: 12, padding: '4px 8px' }} />
        <Legend verticalAlign="top" height={24} wrapperStyle={{ fontSize: 12 }} />
        {series.map((s, i) => (
          <Line key={s.id} dataKey={s.id} name={s.name} stroke={COLORS[i % COLORS.length]} dot={false} isAnimationActive={false} connectNulls={false} />
        ))}
      </LineChart>
    </figure>
  );
}
