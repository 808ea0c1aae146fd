import { Area, CartesianGrid, ComposedChart, ErrorBar, Line, Scatter, ScatterChart, Tooltip, XAxis, YAxis, ZAxis } from 'recharts';
import { formatPercentCI, type MeanCI, meanCI, pairedDifference, type PairedDifference } from '../../util/stats';
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
  /** Scores with each expert group switched off (LoRAMoE runs, last point only). */
  knockout?: { group: string; experts: number[]; probe: number; taskMean: number }[];
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
  /** The finished runs, one per seed: with two or more, figures are their mean ± 95% interval. */
  seedRuns?: { seed: number; curve: ComparisonPoint[]; ownGroup: { type: string; share: number; target: number | null }[] | null }[];
}

/** A curve point over a method's seeds. */
interface SeedPoint {
  step: number;
  samples: number;
  probe: MeanCI;
  probeLogLikelihood: MeanCI;
  tasks: Record<string, MeanCI>;
  taskMean: MeanCI;
  /** Per expert group: the score with it off, and its paired difference from all groups on (seed by seed). */
  knockout: { group: string; probe: MeanCI; taskMean: MeanCI; probeDrop: PairedDifference; taskDrop: PairedDifference }[];
}

/**
 * A method's curves over its seeds: the finished runs once it is not training (each point the mean
 * and 95% Student-t interval over the runs that have it), else the run training now (no interval).
 */
export function seedCurve(m: ComparisonMethodView): { runs: number; points: SeedPoint[] } {
  const curves = m.state !== 'running' && m.seedRuns && m.seedRuns.length > 0 ? m.seedRuns.map((r) => r.curve) : [m.curve];
  const points = curves[0]
    .filter((p) => curves.every((c) => c.some((q) => q.step === p.step)))
    .map((p): SeedPoint => {
      const at = curves.map((c) => c.find((q) => q.step === p.step)!);
      const over = (f: (q: ComparisonPoint) => number) => meanCI(at.map(f));
      const groups = [...new Set(at.flatMap((q) => (q.knockout ?? []).map((k) => k.group)))];
      return {
        step: p.step,
        samples: p.samples,
        probe: over((q) => q.probe),
        probeLogLikelihood: over((q) => q.probeLogLikelihood),
        tasks: Object.fromEntries(Object.keys(p.tasks).map((t) => [t, over((q) => q.tasks[t] ?? NaN)])),
        taskMean: over((q) => q.taskMean),
        knockout: groups.map((g) => {
          const off = at.map((q) => q.knockout?.find((k) => k.group === g));
          return {
            group: g,
            probe: meanCI(off.map((k) => k?.probe ?? NaN)),
            taskMean: meanCI(off.map((k) => k?.taskMean ?? NaN)),
            probeDrop: pairedDifference(at.map((q) => q.probe), off.map((k) => k?.probe ?? NaN)),
            taskDrop: pairedDifference(at.map((q) => q.taskMean), off.map((k) => k?.taskMean ?? NaN)),
          };
        }),
      };
    });
  return { runs: curves.length, points };
}

/** Two methods compared seed by seed at the end of their runs: a - b on the probe and the task mean. */
export interface SeedDifference {
  a: string;
  b: string;
  probe: PairedDifference;
  taskMean: PairedDifference;
}

/**
 * Every pair of methods with finished runs from two or more common seeds, compared seed by seed (a
 * paired t-test across seeds: beyondNoise where the 95% interval of the differences excludes 0).
 */
export function seedDifferences(methods: readonly ComparisonMethodView[]): SeedDifference[] {
  const out: SeedDifference[] = [];
  const finals = methods.map((m) => new Map((m.seedRuns ?? []).flatMap((r) => (r.curve.length > 0 ? [[r.seed, r.curve[r.curve.length - 1]] as const] : []))));
  for (let i = 0; i < methods.length; i++) {
    for (let j = i + 1; j < methods.length; j++) {
      const seeds = [...finals[i].keys()].filter((s) => finals[j].has(s));
      if (seeds.length < 2) continue;
      const pick = (k: number, f: (p: ComparisonPoint) => number) => seeds.map((s) => f(finals[k].get(s)!));
      out.push({
        a: methods[i].name,
        b: methods[j].name,
        probe: pairedDifference(pick(i, (p) => p.probe), pick(j, (p) => p.probe)),
        taskMean: pairedDifference(pick(i, (p) => p.taskMean), pick(j, (p) => p.taskMean)),
      });
    }
  }
  return out;
}

/** Each data type's own-group share over the method's seeds (the finished runs, or the last run). */
function ownGroupOver(m: ComparisonMethodView): { type: string; share: MeanCI; target: number | null }[] | null {
  const runs = m.seedRuns && m.seedRuns.length > 0 ? m.seedRuns.map((r) => r.ownGroup) : [m.ownGroup];
  const first = runs[0];
  if (!first) return null;
  return first.map((g) => ({ type: g.type, target: g.target, share: meanCI(runs.map((r) => r?.find((x) => x.type === g.type)?.share ?? NaN)) }));
}

export interface ComparisonViewProps {
  methods: ComparisonMethodView[];
  /** Show the table (the comparison has ended, or was cancelled with results). */
  table: boolean;
}

const COLORS: Record<string, string> = { full: '#7a3fa0', lora: '#b0562f', loramoe: '#5b6b2f', 'lbc-official': '#2f6fb0', 'lbc-own': '#2f8f7a' };
const color = (key: string, i: number) => COLORS[key] ?? ['#2f6fb0', '#b0562f', '#2f8f7a', '#7a3fa0', '#5b6b2f'][i % 5];
const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '—' : `${(v * 100).toFixed(1)}%`);
/** A share over seeds: "50.0% ± 3.5" (95% interval), or "50.0%" from one run. */
const ci = (c: MeanCI | undefined) => (c ? formatPercentCI(c) : '—');

/** Task names scored by any method, sorted. */
export function comparisonTasks(methods: readonly ComparisonMethodView[]): string[] {
  return [...new Set(methods.flatMap((m) => m.curve.flatMap((p) => Object.keys(p.tasks))))].sort();
}

/** Expert groups switched off in any method's specialisation scores, in first-seen order. */
function knockoutGroups(methods: readonly ComparisonMethodView[]): string[] {
  return [...new Set(methods.flatMap((m) => (seedCurve(m).points.at(-1)?.knockout ?? []).map((k) => k.group)))];
}

function ownGroupTypes(methods: readonly ComparisonMethodView[]): string[] {
  return [...new Set(methods.flatMap((m) => (m.ownGroup ?? []).map((g) => g.type)))];
}

/**
 * The table as CSV: per method, probe before and after, gold-answer log-likelihood, each task, final
 * loss, own-group shares, and (LoRAMoE) probe and task mean with each expert group off. With two or
 * more seeds every figure is the mean over them, and the 95% half-widths of probe after and task
 * mean follow in two more columns.
 */
export function comparisonCsv(methods: readonly ComparisonMethodView[]): string {
  const tasks = comparisonTasks(methods);
  const types = ownGroupTypes(methods);
  const groups = knockoutGroups(methods);
  const seeded = methods.some((m) => (m.seedRuns?.length ?? 0) > 1);
  const head = [
    'method', 'run', 'steps', 'probe before', 'probe after', 'probe log-likelihood after', ...tasks.map((t) => `task: ${t}`), 'task mean', 'final loss',
    ...types.map((t) => `own-group share: ${t}`), ...groups.flatMap((g) => [`probe, ${g} off`, `task mean, ${g} off`]),
    ...(seeded ? ['seeds', 'probe after ±95%', 'task mean ±95%'] : []),
  ];
  const num = (v: number | undefined | null) => (v === undefined || v === null || !Number.isFinite(v) ? '' : v.toFixed(4));
  const rows = methods.map((m) => {
    const { runs, points } = seedCurve(m);
    const first = points[0];
    const last = points[points.length - 1];
    const own = ownGroupOver(m);
    return [
      csvField(m.name),
      csvField(m.runId ?? ''),
      String(m.step),
      num(first?.probe.mean),
      num(last?.probe.mean),
      num(last?.probeLogLikelihood.mean),
      ...tasks.map((t) => num(last?.tasks[t]?.mean)),
      num(last?.taskMean.mean),
      num(m.finalLoss),
      ...types.map((t) => num(own?.find((g) => g.type === t)?.share.mean)),
      ...groups.flatMap((g) => {
        const k = last?.knockout.find((x) => x.group === g);
        return [num(k?.probe.mean), num(k?.taskMean.mean)];
      }),
      ...(seeded ? [String(runs), num(last?.probe.half), num(last?.taskMean.half)] : []),
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
  value(p: SeedPoint): MeanCI;
}

/** The data key of a method's band (its 95% interval over the seeds: [low, high]). */
const bandKey = (key: string) => `${key}:band`;

/**
 * Accuracy against instruction samples seen, one line per method: with two or more seeds the mean
 * over them, in a band of its 95% interval.
 */
function CurveChart({ methods, title, testid, value }: CurveChartProps) {
  const bySamples = new Map<number, Record<string, number | [number, number]>>();
  let points = 0;
  const banded = new Set<string>();
  for (const m of methods) {
    const { points: curve } = seedCurve(m);
    points += curve.length;
    for (const p of curve) {
      const row = bySamples.get(p.samples) ?? {};
      const v = value(p);
      row[m.key] = v.mean;
      if (v.half !== null) {
        row[bandKey(m.key)] = [Math.max(0, v.mean - v.half), Math.min(1, v.mean + v.half)];
        banded.add(m.key);
      }
      bySamples.set(p.samples, row);
    }
  }
  const bands = banded.size;
  const rows = [...bySamples.entries()].sort((a, b) => a[0] - b[0]).map(([samples, r]) => ({ samples, ...r }));
  // Legend and tooltip list the methods in the comparison's order (recharts sorts by name otherwise).
  const order = (key: unknown) => methods.findIndex((m) => m.key === key);
  // The tooltip shows only while the pointer is over the chart (recharts keeps the last one otherwise).
  const pointer = usePointerInside();
  return (
    <figure className="small-chart comparison-chart" data-testid={testid} data-points={points} data-bands={bands} {...pointer.handlers}>
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
      <ComposedChart responsive data={rows} style={{ width: '100%', height: 220 }} margin={{ top: 6, right: 12, bottom: 18, left: 0 }} aria-label={`${title}: one line per method`}>
        <CartesianGrid stroke="#eceef2" vertical={false} />
        <XAxis dataKey="samples" type="number" domain={[0, 'dataMax']} tick={{ fontSize: 11 }} allowDecimals={false} label={{ value: 'instruction samples seen', position: 'insideBottom', offset: -10, fontSize: 11 }} />
        <YAxis tick={{ fontSize: 11 }} width={46} domain={[0, 1]} tickFormatter={(v: number) => `${Math.round(v * 100)}%`} />
        <Tooltip active={pointer.inside ? undefined : false} isAnimationActive={false} itemSorter={(item) => order(item.dataKey)} formatter={(v) => (typeof v === 'number' ? pct(v) : Array.isArray(v) ? `${pct(Number(v[0]))} – ${pct(Number(v[1]))}` : String(v))} labelFormatter={(l) => `${String(l)} samples`} contentStyle={{ fontSize: 12, padding: '4px 8px' }} />
        {methods.map((m, i) =>
          banded.has(m.key) ? (
            <Area key={bandKey(m.key)} type="linear" dataKey={bandKey(m.key)} name={`${m.name}, 95% interval`} legendType="none" tooltipType="none" fill={color(m.key, i)} fillOpacity={0.15} stroke="none" isAnimationActive={false} connectNulls />
          ) : null,
        )}
        {methods.map((m, i) => (
          <Line key={m.key} type="linear" dataKey={m.key} name={m.name} stroke={color(m.key, i)} strokeWidth={1.5} dot={{ r: 2 }} isAnimationActive={false} connectNulls />
        ))}
      </ComposedChart>
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
                const { runs, points } = seedCurve(m);
                const first = points[0];
                const last = points[points.length - 1];
                const own = ownGroupOver(m);
                const ll = last?.probeLogLikelihood;
                return (
                  <tr key={m.key} data-testid="comparison-row" data-method={m.key} data-state={m.state} data-seeds={runs}>
                    <th scope="row">{m.name}</th>
                    <td>{ci(first?.probe)}</td>
                    <td data-testid="comparison-probe-after" data-value={last?.probe.mean ?? ''} data-half={last?.probe.half ?? ''}>
                      {ci(last?.probe)}
                    </td>
                    <td>{ll ? `${ll.mean.toFixed(3)}${ll.half === null ? '' : ` ± ${ll.half.toFixed(3)}`}` : '—'}</td>
                    {tasks.map((t) => (
                      <td key={t}>{ci(last?.tasks[t])}</td>
                    ))}
                    <td>{ci(last?.taskMean)}</td>
                    {types.map((t) => {
                      const g = own?.find((x) => x.type === t);
                      return (
                        <td key={`own-${t}`}>
                          {g ? ci(g.share) : '—'}
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
      {table && <TradeoffChart methods={methods} />}
      {table && <SpecialisationTable methods={methods} />}
      {table && <DifferencesTable methods={methods} />}
    </section>
  );
}

/**
 * Knowledge kept against tasks learnt at the end: one point per method (x: held-out task examples,
 * y: held-out facts) with whiskers of its 95% intervals over the seeds (none with one seed). Up and
 * to the right is better: learning the tasks without forgetting.
 */
function TradeoffChart({ methods }: { methods: ComparisonMethodView[] }) {
  const points = methods.flatMap((m, i) => {
    const last = seedCurve(m).points.at(-1);
    if (!last) return [];
    return [{ key: m.key, name: m.name, color: color(m.key, i), tasks: last.taskMean.mean, probe: last.probe.mean, tasksHalf: last.taskMean.half ?? 0, probeHalf: last.probe.half ?? 0 }];
  });
  return (
    <figure className="small-chart comparison-chart tradeoff-chart" data-testid="comparison-tradeoff-chart" data-points={points.length}>
      <figcaption>
        <span>Knowledge kept against tasks learnt (at the end)</span>
      </figcaption>
      <ul className="chart-legend">
        {points.map((p) => (
          <li key={p.key}>
            <span className="swatch" style={{ background: p.color }} />
            {p.name}: tasks {pct(p.tasks)}, probe {pct(p.probe)}
          </li>
        ))}
      </ul>
      <ScatterChart responsive style={{ width: '100%', maxWidth: 520, height: 300 }} margin={{ top: 6, right: 16, bottom: 18, left: 0 }} aria-label="Knowledge kept against tasks learnt: one point per method">
        <CartesianGrid stroke="#eceef2" />
        {/* Whiskers of a wide interval (two seeds: t = 12.7) are clipped at the axes, not allowed to widen them. */}
        <XAxis dataKey="tasks" type="number" domain={[0, 1]} allowDataOverflow tick={{ fontSize: 11 }} tickFormatter={(v: number) => `${Math.round(v * 100)}%`} label={{ value: 'held-out task examples', position: 'insideBottom', offset: -10, fontSize: 11 }} />
        <YAxis dataKey="probe" type="number" domain={[0, 1]} allowDataOverflow tick={{ fontSize: 11 }} width={46} tickFormatter={(v: number) => `${Math.round(v * 100)}%`} />
        <ZAxis range={[60, 60]} />
        <Tooltip isAnimationActive={false} formatter={(v) => (typeof v === 'number' ? pct(v) : String(v))} contentStyle={{ fontSize: 12, padding: '4px 8px' }} />
        {points.map((p) => (
          <Scatter key={p.key} name={p.name} data={[p]} fill={p.color} isAnimationActive={false}>
            <ErrorBar dataKey="tasksHalf" direction="x" stroke={p.color} width={4} />
            <ErrorBar dataKey="probeHalf" direction="y" stroke={p.color} width={4} />
          </Scatter>
        ))}
      </ScatterChart>
    </figure>
  );
}

/**
 * The specialisation table: each LoRAMoE variant's probe and task accuracy at the end with every
 * group on and with each expert group switched off (expert knockout). A group that holds the
 * knowledge shows as a probe drop when it is off; one that holds the task skill, as a task drop.
 */
function SpecialisationTable({ methods }: { methods: ComparisonMethodView[] }) {
  const rows = methods.flatMap((m) => {
    const last = seedCurve(m).points.at(-1);
    return last && last.knockout.length > 0 ? [{ m, last, knockout: last.knockout }] : [];
  });
  if (rows.length === 0) return null;
  const groups = [...new Set(rows.flatMap((r) => r.knockout.map((k) => k.group)))];
  return (
    <TableScroll label="Specialisation: accuracy with each expert group switched off">
      <table className="data-table" data-testid="specialisation-table">
        <caption className="small">
          Specialisation: accuracy at the end with each expert group switched off (its router logits at minus infinity in every layer); with seeds, * marks a change from
          all groups on that a paired t-test across seeds puts beyond noise
        </caption>
        <thead>
          <tr>
            <th scope="col">Method</th>
            <th scope="col">Probe, all on</th>
            {groups.map((g) => (
              <th scope="col" key={`p-${g}`}>
                Probe, {g} off
              </th>
            ))}
            <th scope="col">Tasks, all on</th>
            {groups.map((g) => (
              <th scope="col" key={`t-${g}`}>
                Tasks, {g} off
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map(({ m, last, knockout }) => (
            <tr key={m.key} data-testid="specialisation-row" data-method={m.key}>
              <th scope="row">{m.name}</th>
              <td>{ci(last.probe)}</td>
              {groups.map((g) => {
                const k = knockout.find((x) => x.group === g);
                return (
                  <td key={`p-${g}`} data-testid="specialisation-probe" data-group={g} data-value={k?.probe.mean ?? ''} data-beyond-noise={String(k?.probeDrop.beyondNoise ?? false)}>
                    {ci(k?.probe)}
                    {k?.probeDrop.beyondNoise ? ' *' : ''}
                  </td>
                );
              })}
              <td>{ci(last.taskMean)}</td>
              {groups.map((g) => {
                const k = knockout.find((x) => x.group === g);
                return (
                  <td key={`t-${g}`}>
                    {ci(k?.taskMean)}
                    {k?.taskDrop.beyondNoise ? ' *' : ''}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </TableScroll>
  );
}

/** A paired difference in percentage points, with * when beyond noise. */
function diffText(d: PairedDifference): string {
  const m = `${d.mean >= 0 ? '+' : '−'}${Math.abs(d.mean * 100).toFixed(1)}`;
  return `${m}${d.half === null ? '' : ` ± ${(d.half * 100).toFixed(1)}`} pp${d.beyondNoise ? ' *' : ''}`;
}

/**
 * With two or more seeds: every pair of methods compared seed by seed at the end, marked * where a
 * paired t-test across seeds puts the difference beyond noise (its 95% interval excludes 0).
 */
function DifferencesTable({ methods }: { methods: ComparisonMethodView[] }) {
  const diffs = seedDifferences(methods);
  if (diffs.length === 0) return null;
  return (
    <TableScroll label="Differences between methods, paired by seed">
      <table className="data-table" data-testid="differences-table">
        <caption className="small">
          Differences at the end, a − b, paired by seed (mean ± 95% interval, percentage points); * beyond noise: a paired t-test across seeds at the 5% level (the
          interval excludes 0)
        </caption>
        <thead>
          <tr>
            <th scope="col">Methods (a − b)</th>
            <th scope="col">Probe after</th>
            <th scope="col">Tasks mean</th>
          </tr>
        </thead>
        <tbody>
          {diffs.map((d) => (
            <tr key={`${d.a}|${d.b}`} data-testid="difference-row" data-beyond-noise={String(d.probe.beyondNoise || d.taskMean.beyondNoise)}>
              <th scope="row">
                {d.a} − {d.b}
              </th>
              <td>{diffText(d.probe)}</td>
              <td>{diffText(d.taskMean)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableScroll>
  );
}
