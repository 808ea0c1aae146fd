import { CartesianGrid, Line, LineChart, Tooltip, XAxis, YAxis } from 'recharts';
import { usePointerInside } from './pointer';
import type { StepMetrics } from './types';
import './views.css';

export interface LossChartsProps {
  points: StepMetrics[];
}

/** Above this many steps the charts draw an evenly strided subset (always keeping the last step). */
const MAX_POINTS = 1000;

interface Row {
  step: number;
  ce: number | null;
  lbc: number | null;
  lr: number | null;
  gradNorm: number | null;
  throughput: number | null;
}

type SeriesKey = Exclude<keyof Row, 'step'>;

interface SeriesSpec {
  key: SeriesKey;
  testid: string;
  title: string;
  color: string;
  format(v: number): string;
}

const SERIES: SeriesSpec[] = [
  { key: 'ce', testid: 'chart-ce', title: 'Cross-entropy', color: '#2f6fb0', format: (v) => v.toFixed(3) },
  { key: 'lbc', testid: 'chart-lbc', title: 'Balance loss (LBC)', color: '#b0562f', format: (v) => v.toFixed(4) },
  { key: 'lr', testid: 'chart-lr', title: 'Learning rate', color: '#5b6b2f', format: (v) => expo(v, 2) },
  { key: 'gradNorm', testid: 'chart-grad-norm', title: 'Gradient norm', color: '#7a3fa0', format: (v) => v.toFixed(3) },
  { key: 'throughput', testid: 'chart-throughput', title: 'Throughput (tokens/s)', color: '#2f8f7a', format: (v) => v.toFixed(0) },
];

function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

function toRow(p: StepMetrics): Row {
  return { step: p.step, ce: finite(p.ce), lbc: finite(p.lbc), lr: finite(p.lr), gradNorm: finite(p.gradNorm), throughput: finite(p.tokensPerSecond) };
}

/** Every k-th point so that at most about `max` remain, plus the last one. */
function downsample<T>(points: readonly T[], max: number): T[] {
  if (points.length <= max) return points.slice();
  const stride = Math.ceil(points.length / max);
  const out: T[] = [];
  for (let i = 0; i < points.length; i += stride) out.push(points[i]);
  if ((points.length - 1) % stride !== 0) out.push(points[points.length - 1]);
  return out;
}

/** Exponent form without a needless ".0": 2e-4, 1.5e-4. */
function expo(v: number, digits: number): string {
  if (v === 0) return '0';
  const [m, e] = v.toExponential(digits).split('e');
  return `${String(Number(m))}e${e.replace('+', '')}`;
}

function compact(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-2) return expo(v, 1);
  if (a >= 100) return v.toFixed(0);
  return String(Number(v.toPrecision(3)));
}

/** Training curves as small multiples: cross-entropy, LBC, learning rate, gradient norm, throughput. */
export function LossCharts({ points }: LossChartsProps) {
  const rows = downsample(points, MAX_POINTS).map(toRow);
  const last = points.length > 0 ? toRow(points[points.length - 1]) : null;
  const lbcOff = points.length > 0 && points.every((p) => p.lbc === 0);
  const skipped = points.filter((p) => p.skipped).length;
  return (
    <section className="view loss-charts" data-testid="loss-charts" data-points={points.length} data-drawn={rows.length}>
      <p className="view-note muted">
        {points.length === 0 ? 'No training steps yet.' : `${points.length.toLocaleString()} step${points.length === 1 ? '' : 's'}`}
        {points.length > MAX_POINTS && ` (drawing ${rows.length.toLocaleString()})`}
        {skipped > 0 && (
          <span className="view-warn" data-testid="skipped-steps">
            {' '}
            · {skipped} skipped (non-finite gradients)
          </span>
        )}
      </p>
      <div className="chart-grid">
        {SERIES.map((s) => (
          <SmallChart key={s.key} spec={s} rows={rows} latest={last ? last[s.key] : null} off={s.key === 'lbc' && lbcOff} />
        ))}
      </div>
    </section>
  );
}

function SmallChart({ spec, rows, latest, off }: { spec: SeriesSpec; rows: Row[]; latest: number | null; off: boolean }) {
  const pointer = usePointerInside();
  return (
    <figure className="small-chart" data-testid={spec.testid} data-off={off ? 'true' : undefined} {...pointer.handlers}>
      <figcaption>
        <span>{spec.title}</span>
        {off ? (
          <span className="badge" data-testid={`${spec.testid}-off`}>
            LBC off
          </span>
        ) : (
          latest !== null && <span className="latest">{spec.format(latest)}</span>
        )}
      </figcaption>
      {off ? (
        <p className="chart-placeholder">LBC off: this run has no balancing constraint (plain LoRA, full fine-tuning, or β = 0).</p>
      ) : rows.length === 0 ? (
        <p className="chart-placeholder">waiting for the first step</p>
      ) : (
        <LineChart
          responsive
          data={rows}
          style={{ width: '100%', height: 170 }}
          margin={{ top: 6, right: 12, bottom: 4, left: 0 }}
          aria-label={`${spec.title} per training step, ${rows.length} point${rows.length === 1 ? '' : 's'}${latest !== null ? `, latest ${spec.format(latest)}` : ''}; the left and right arrow keys step through the values`}
        >
          <CartesianGrid stroke="#eceef2" vertical={false} />
          <XAxis
            dataKey="step"
            type="number"
            domain={[0, 'dataMax']}
            tick={{ fontSize: 11 }}
            tickCount={5}
            allowDecimals={false}
            height={36}
            label={{ value: 'step', position: 'insideBottom', offset: 0, fontSize: 11, fill: '#4a5366' }}
          />
          <YAxis tick={{ fontSize: 11 }} width={46} tickFormatter={compact} domain={['auto', 'auto']} />
          <Tooltip
            active={pointer.inside ? undefined : false}
            isAnimationActive={false}
            formatter={(v) => (typeof v === 'number' ? spec.format(v) : String(v))}
            labelFormatter={(l) => `step ${String(l)}`}
            contentStyle={{ fontSize: 12, padding: '4px 8px' }}
          />
          <Line type="linear" dataKey={spec.key} name={spec.title} stroke={spec.color} strokeWidth={1.5} dot={false} isAnimationActive={false} connectNulls={false} />
        </LineChart>
      )}
    </figure>
  );
}
