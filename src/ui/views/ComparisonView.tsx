import { CartesianGrid, Line, LineChart, Tooltip, XAxis, YAxis } from 'recharts';
import { csvField } from './export';
import { usePointerInside } from './pointer';
import { TableScroll } from './TableScroll';
import './views.css';

/** One point of a method's curves (src/train/comparison.ts CurvePoint). */
export interface ComparisonPoint {
  step: number;
  samples: number;
  probe: number;
  probeLogLikelihood: number;
  tasks: Record<string, number>;
  taskMean: number;
}

/** A compared method as the view shows it. */
export interface ComparisonMethodView {
  key: string;
  name: string;
  runId: string | null;
  state: string;
  step: number;
  curve: ComparisonPoint[];
  finalLoss: number | null;
  ownGroup: { type: string; share: number; target: number | null }[] | null;
}

export interface ComparisonViewProps {
  methods: ComparisonMethodView[];
  /** Show the table (the comparison has ended, or was cancelled with results). */
  table: boolean;
}

const COLORS: Record<string, string> = { full: '#7a3fa0', lora: '#b0562f', loramoe: '#5b6b2f', 'lbc-official': '#2f6fb0', 'lbc-own': '#2f8f7a' };
const color = (key: string, i: number) => COLORS[key] ?? ['#2f6fb0', '#b0562f', '#2f8f7a', '#7a3fa0', '#5b6b2f'][i % 5];
const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '—' : `${(v * 100).toFixed(1)}%`);

/** Task names scored by any method, sorted. */
export function comparisonTasks(methods: readonly ComparisonMethodView[]): string[] {
  return [...new Set(methods.flatMap((m) => m.curve.flatMap((p) => Object.keys(p.tasks))))].sort();
}

function ownGroupTypes(methods: readonly ComparisonMethodView[]): string[] {
  return [...new Set(methods.flatMap((m) => (m.ownGroup ?? []).map((g) => g.type)))];
}

/** The table as CSV: per method, probe before and after, gold-answer log-likelihood, each task, final loss, and own-group shares. */
export function comparisonCsv(methods: readonly ComparisonMethodView[]): string {
  const tasks = comparisonTasks(methods);
  const types = ownGroupTypes(methods);
  const head = ['method', 'run', 'steps', 'probe before', 'probe after', 'probe log-likelihood after', ...tasks.map((t) => `task: ${t}`), 'task mean', 'final loss', ...types.map((t) => `own-group share: ${t}`)];
  const num = (v: number | undefined | null) => (v === undefined || v === null || !Number.isFinite(v) ? '' : v.toFixed(4));
  const rows = methods.map((m) => {
    const first = m.curve[0];
    const last = m.curve[m.curve.length - 1];
    return [
      csvField(m.name),
      csvField(m.runId ?? ''),
      String(m.step),
      num(first?.probe),
      num(last?.probe),
      num(last?.probeLogLikelihood),
      ...tasks.map((t) => num(last?.tasks[t])),
      num(last?.taskMean),
      num(m.finalLoss),
      ...types.map((t) => num(m.ownGroup?.find((g) => g.type === t)?.share)),
    ].join(',');
  });
  return `${head.map(csvField).join(',')}\n${rows.join('\n')}\n`;
}

/**
 * Draws a chart's SVG (as laid out on the page) onto a white canvas and encodes a PNG. The SVG is
 * serialised with its computed size; recharts sets its text styles inline, so it renders alone.
 */
export async function svgPng(svg: SVGSVGElement, title: string, legend: readonly { name: string; color: string }[] = [], scale = 2): Promise<Blob> {
  const box = svg.getBoundingClientRect();
  const width = Math.max(1, Math.round(box.width));
  const height = Math.max(1, Math.round(box.height));
  const clone = svg.cloneNode(true) as SVGSVGElement;
  clone.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  clone.setAttribute('width', String(width));
  clone.setAttribute('height', String(height));
  const url = URL.createObjectURL(new Blob([new XMLSerializer().serializeToString(clone)], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    await new Promise<void>((resolve, reject) => {
      img.onload = () => resolve();
      img.onerror = () => reject(new Error(`the chart "${title}" could not be drawn as an image`));
      img.src = url;
    });
    // Layout in CSS pixels, drawn at `scale` device pixels each: title, legend (the page's is HTML, not in the SVG), chart.
    const titleH = 28;
    const legendH = legend.length > 0 ? 22 : 0;
    const canvas = document.createElement('canvas');
    canvas.width = Math.round((width + 24) * scale);
    canvas.height = Math.round((height + titleH + legendH + 12) * scale);
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('no 2D canvas context');
    ctx.scale(scale, scale);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, width + 24, height + titleH + legendH + 12);
    ctx.fillStyle = '#1d2330';
    ctx.font = 'bold 13px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
    ctx.textBaseline = 'middle';
    ctx.fillText(title, 12, titleH / 2 + 4);
    ctx.font = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
    let x = 12;
    for (const item of legend) {
      ctx.fillStyle = item.color;
      ctx.fillRect(x, titleH + 5, 14, 3);
      ctx.fillStyle = '#1d2330';
      ctx.fillText(item.name, x + 18, titleH + 7);
      x += 18 + ctx.measureText(item.name).width + 16;
    }
    ctx.drawImage(img, 12, titleH + legendH, width, height);
    return await new Promise<Blob>((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the PNG could not be encoded'))), 'image/png'));
  } finally {
    URL.revokeObjectURL(url);
  }
}

interface CurveChartProps {
  methods: ComparisonMethodView[];
  title: string;
  testid: string;
  value(p: ComparisonPoint): number;
}

/** Accuracy against instruction samples seen, one line per method. */
function CurveChart({ methods, title, testid, value }: CurveChartProps) {
  const bySamples = new Map<number, Record<string, number>>();
  for (const m of methods) {
    for (const p of m.curve) {
      const row = bySamples.get(p.samples) ?? {};
      row[m.key] = value(p);
      bySamples.set(p.samples, row);
    }
  }
  const rows = [...bySamples.entries()].sort((a, b) => a[0] - b[0]).map(([samples, r]) => ({ samples, ...r }));
  const points = methods.reduce((n, m) => n + m.curve.length, 0);
  // Legend and tooltip list the methods in the comparison's order (recharts sorts by name otherwise).
  const order = (key: unknown) => methods.findIndex((m) => m.key === key);
  // The tooltip shows only while the pointer is over the chart (recharts keeps the last one otherwise).
  const pointer = usePointerInside();
  return (
    <figure className="small-chart comparison-chart" data-testid={testid} data-points={points} {...pointer.handlers}>
      <figcaption>
        <span>{title}</span>
      </figcaption>
      {/* The legend as HTML above the plot: it wraps on a narrow screen instead of overlapping the lines. */}
      <ul className="chart-legend" data-testid={`${testid}-legend`}>
        {methods.map((m, i) => (
          <li key={m.key}>
            <span className="swatch" style={{ background: color(m.key, i) }} />
            {m.name}
          </li>
        ))}
      </ul>
      <LineChart responsive data={rows} style={{ width: '100%', height: 220 }} margin={{ top: 6, right: 12, bottom: 18, left: 0 }} aria-label={`${title}: one line per method`}>
        <CartesianGrid stroke="#eceef2" vertical={false} />
        <XAxis dataKey="samples" type="number" domain={[0, 'dataMax']} tick={{ fontSize: 11 }} allowDecimals={false} label={{ value: 'instruction samples seen', position: 'insideBottom', offset: -10, fontSize: 11 }} />
        <YAxis tick={{ fontSize: 11 }} width={46} domain={[0, 1]} tickFormatter={(v: number) => `${Math.round(v * 100)}%`} />
        <Tooltip active={pointer.inside ? undefined : false} isAnimationActive={false} itemSorter={(item) => order(item.dataKey)} formatter={(v) => (typeof v === 'number' ? pct(v) : String(v))} labelFormatter={(l) => `${String(l)} samples`} contentStyle={{ fontSize: 12, padding: '4px 8px' }} />
        {methods.map((m, i) => (
          <Line key={m.key} type="linear" dataKey={m.key} name={m.name} stroke={color(m.key, i)} strokeWidth={1.5} dot={{ r: 2 }} isAnimationActive={false} connectNulls />
        ))}
      </LineChart>
    </figure>
  );
}

/**
 * The method comparison: the knowledge probe's accuracy (the paper's forgetting curve) and the
 * held-out task accuracy against instruction samples seen, live, one line per method; at the end,
 * the table of probe before and after, gold-answer log-likelihood, each task and the router's
 * own-group shares.
 */
/** A method's line colour, as the charts draw it (for the PNG's legend). */
export function methodColor(key: string, i: number): string {
  return color(key, i);
}

export function ComparisonView({ methods, table }: ComparisonViewProps) {
  const tasks = comparisonTasks(methods);
  const types = ownGroupTypes(methods);
  return (
    <section className="view comparison-view" data-testid="comparison-view">
      <div className="chart-grid comparison-charts">
        <CurveChart methods={methods} title="Knowledge probe (held-out facts)" testid="comparison-probe-chart" value={(p) => p.probe} />
        <CurveChart methods={methods} title="Held-out task examples" testid="comparison-task-chart" value={(p) => p.taskMean} />
      </div>
      {table && (
        <TableScroll label="Comparison results">
          <table className="data-table comparison-table" data-testid="comparison-table">
            <thead>
              <tr>
                <th scope="col">Method</th>
                <th scope="col">Probe before</th>
                <th scope="col">Probe after</th>
                <th scope="col">Gold log-lik.</th>
                {tasks.map((t) => (
                  <th scope="col" key={t}>
                    {t}
                  </th>
                ))}
                <th scope="col">Tasks mean</th>
                {types.map((t) => (
                  <th scope="col" key={`own-${t}`} title={`Share of router weight on ${t}'s own expert group (routing set, at the end)`}>
                    own group: {t}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {methods.map((m) => {
                const first = m.curve[0];
                const last = m.curve[m.curve.length - 1];
                return (
                  <tr key={m.key} data-testid="comparison-row" data-method={m.key} data-state={m.state}>
                    <th scope="row">{m.name}</th>
                    <td>{pct(first?.probe)}</td>
                    <td>{pct(last?.probe)}</td>
                    <td>{last ? last.probeLogLikelihood.toFixed(3) : '—'}</td>
                    {tasks.map((t) => (
                      <td key={t}>{pct(last?.tasks[t])}</td>
                    ))}
                    <td>{pct(last?.taskMean)}</td>
                    {types.map((t) => {
                      const g = m.ownGroup?.find((x) => x.type === t);
                      return (
                        <td key={`own-${t}`}>
                          {g ? pct(g.share) : '—'}
                          {g && g.target !== null && <span className="optimum">optimum {pct(g.target)}</span>}
                        </td>
                      );
                    })}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableScroll>
      )}
    </section>
  );
}
