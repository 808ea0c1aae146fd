/**
 * The experiment's curves as one SVG: accuracy on the held-out facts (the paper's forgetting curve)
 * and mean accuracy on the held-out task examples, against instruction samples seen, one line per
 * method and learning rate (a colour per method, a dash per rate): the mean over the seeds, in a band of its 95% confidence interval (Student t; no band with
 * one seed). Plain SVG text, so the runner writes it without a browser (the README's PNG is this
 * file rendered by a headless browser).
 */
import type { MeanCI } from '../util/stats';
import type { CurvePointCI, MethodSummary } from './experiment';

const COLORS = ['#d62728', '#ff7f0e', '#1f77b4', '#2ca02c', '#9467bd', '#8c564b', '#e377c2'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A method's rates drawn apart in the curves: solid for its smallest, then dashed, then dotted. */
const DASHES = ['', '7 4', '2 3', '10 3 2 3'];

/**
 * A colour per method (the trade-off chart's) and a dash per learning rate of that method, so that
 * a study of methods x rates stays readable; the legend has a row per method.
 */
function seriesStyles(results: readonly MethodSummary[]): { color: string; dash: string }[] {
  const keys = [...new Set(results.map((r) => r.key))];
  return results.map((r) => {
    const rates = [...new Set(results.filter((o) => o.key === r.key).map((o) => o.lr))].sort((a, b) => a - b);
    return { color: COLORS[keys.indexOf(r.key) % COLORS.length], dash: DASHES[rates.indexOf(r.lr) % DASHES.length] };
  });
}

export function curvesSvg(results: readonly MethodSummary[], title = ''): string {
  const W = 960;
  const styles = seriesStyles(results);
  // The legend: one row per method, its rates side by side (a single rate each: three to a row).
  const keys = [...new Set(results.map((r) => r.key))];
  const byRate = keys.length < results.length;
  const legendRows = byRate ? keys.length : Math.ceil(results.length / 3);
  const H = 390 + legendRows * 18;
  const panelW = 400;
  const panelH = 260;
  const top = 60;
  const lefts = [70, 540];
  const maxX = Math.max(1, ...results.flatMap((r) => r.curve.map((p) => p.samples)));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="13">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  if (title) out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15">${esc(title)}</text>`);
  const panels: { label: string; value: (p: CurvePointCI) => MeanCI }[] = [
    { label: 'held-out facts (knowledge probe), exact match', value: (p) => p.probe },
    { label: 'held-out task examples, mean exact match', value: (p) => p.taskMean },
  ];
  panels.forEach((panel, pi) => {
    const x0 = lefts[pi];
    const sx = (v: number) => x0 + (v / maxX) * panelW;
    const sy = (v: number) => top + (1 - v) * panelH;
    out.push(`<text x="${x0 + panelW / 2}" y="${top - 12}" text-anchor="middle">${esc(panel.label)}</text>`);
    for (let i = 0; i <= 5; i++) {
      const v = i / 5;
      out.push(`<line x1="${x0}" x2="${x0 + panelW}" y1="${sy(v)}" y2="${sy(v)}" stroke="#ddd"/>`);
      out.push(`<text x="${x0 - 6}" y="${sy(v) + 4}" text-anchor="end">${Math.round(v * 100)}%</text>`);
    }
    for (let i = 0; i <= 4; i++) {
      const v = (maxX * i) / 4;
      out.push(`<text x="${sx(v)}" y="${top + panelH + 18}" text-anchor="middle">${Math.round(v)}</text>`);
    }
    out.push(`<text x="${x0 + panelW / 2}" y="${top + panelH + 38}" text-anchor="middle">instruction samples seen</text>`);
    out.push(`<rect x="${x0}" y="${top}" width="${panelW}" height="${panelH}" fill="none" stroke="#888"/>`);
    const clamp = (v: number) => Math.min(1, Math.max(0, v));
    results.forEach((r, ri) => {
      if (r.curve.length === 0) return;
      const { color, dash } = styles[ri];
      // The band: the upper edge left to right, then the lower edge back (clipped to 0..100%).
      if (r.curve.every((p) => panel.value(p).half !== null)) {
        const upper = r.curve.map((p) => `${sx(p.samples).toFixed(1)},${sy(clamp(panel.value(p).mean + panel.value(p).half!)).toFixed(1)}`);
        const lower = [...r.curve].reverse().map((p) => `${sx(p.samples).toFixed(1)},${sy(clamp(panel.value(p).mean - panel.value(p).half!)).toFixed(1)}`);
        out.push(`<polygon class="band" points="${[...upper, ...lower].join(' ')}" fill="${color}" fill-opacity="0.15" stroke="none"/>`);
      }
      const pts = r.curve.map((p) => `${sx(p.samples).toFixed(1)},${sy(panel.value(p).mean).toFixed(1)}`).join(' ');
      out.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
    });
  });
  results.forEach((r, ri) => {
    const row = byRate ? keys.indexOf(r.key) : Math.floor(ri / 3);
    const col = byRate ? results.slice(0, ri).filter((o) => o.key === r.key).length : ri % 3;
    const x = 70 + col * 300;
    const y = top + panelH + 68 + row * 18;
    const { color, dash } = styles[ri];
    out.push(`<line x1="${x}" x2="${x + 24}" y1="${y - 4}" y2="${y - 4}" stroke="${color}" stroke-width="3"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
    out.push(`<text x="${x + 30}" y="${y}">${esc(r.method)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/**
 * Knowledge kept against tasks learnt: one point per method and learning rate (x: mean exact match
 * on the held-out task examples, y: on the held-out facts), with whiskers of their 95% intervals
 * over the seeds (none with one seed), and the backbone alone as a grey diamond; a method's rates are
 * joined by a line and labelled. Up and to the right is better: a method that learns the tasks
 * without forgetting sits in the top right corner.
 */
export function tradeoffSvg(results: readonly MethodSummary[], title = ''): string {
  const W = 820;
  const H = 520;
  const left = 70;
  const top = 50;
  const size = 400;
  const x = (v: number) => left + v * size;
  const y = (v: number) => top + (1 - v) * size;
  const keys = [...new Set(results.map((r) => r.key))];
  const color = (key: MethodSummary['key']) => COLORS[keys.indexOf(key) % COLORS.length];
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  if (title) out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15">${esc(title)}</text>`);
  for (let t = 0; t <= 1.0001; t += 0.25) {
    out.push(`<line x1="${x(0)}" y1="${y(t)}" x2="${x(1)}" y2="${y(t)}" stroke="#eee"/><text x="${left - 6}" y="${y(t) + 4}" text-anchor="end">${Math.round(t * 100)}%</text>`);
    out.push(`<line x1="${x(t)}" y1="${y(0)}" x2="${x(t)}" y2="${y(1)}" stroke="#eee"/><text x="${x(t)}" y="${y(0) + 18}" text-anchor="middle">${Math.round(t * 100)}%</text>`);
  }
  out.push(`<text x="${x(0.5)}" y="${y(0) + 40}" text-anchor="middle">tasks learnt: held-out task examples, mean exact match</text>`);
  out.push(`<text transform="translate(18 ${y(0.5)}) rotate(-90)" text-anchor="middle">knowledge kept: held-out facts, exact match</text>`);
  const base = results[0];
  if (base) {
    const bt = Object.values(base.tasksBefore);
    const bx = bt.length ? bt.reduce((a, b) => a + b, 0) / bt.length : 0;
    out.push(`<path d="M ${x(bx)} ${y(base.probeBefore) - 6} l 6 6 l -6 6 l -6 -6 z" fill="#999"><title>backbone alone</title></path>`);
    out.push(`<text x="${x(bx) + 9}" y="${y(base.probeBefore) + 4}" fill="#666">backbone alone</text>`);
  }
  // A method's rates joined in order of rate, each point labelled with its rate: the line shows
  // what a larger step buys in tasks and costs in knowledge.
  for (const key of keys) {
    const pts = results.filter((r) => r.key === key).sort((a, b) => a.lr - b.lr);
    if (pts.length > 1) out.push(`<polyline points="${pts.map((r) => `${x(r.taskMean.mean)},${y(r.probeAfter.mean)}`).join(' ')}" fill="none" stroke="${color(key)}" stroke-opacity="0.35"/>`);
  }
  for (const r of results) {
    const c = color(r.key);
    const px = x(r.taskMean.mean);
    const py = y(r.probeAfter.mean);
    if (r.taskMean.half !== null) out.push(`<line x1="${x(r.taskMean.mean - r.taskMean.half)}" y1="${py}" x2="${x(r.taskMean.mean + r.taskMean.half)}" y2="${py}" stroke="${c}"/>`);
    if (r.probeAfter.half !== null) out.push(`<line x1="${px}" y1="${y(r.probeAfter.mean - r.probeAfter.half)}" x2="${px}" y2="${y(r.probeAfter.mean + r.probeAfter.half)}" stroke="${c}"/>`);
    const label = r.method.includes(', lr ') ? r.method : `${r.method}, lr ${r.lr.toExponential()}`;
    out.push(`<circle cx="${px}" cy="${py}" r="4" fill="${c}"><title>${esc(label)}</title></circle>`);
    out.push(`<text x="${px + 7}" y="${py - 5}" font-size="10" fill="${c}">${esc(r.lr.toExponential())}</text>`);
  }
  // The legend beside the plot: one entry per method, in the results' order.
  keys.forEach((key, i) => {
    const name = results.find((r) => r.key === key)?.method.replace(/, lr .*$/, '') ?? key;
    out.push(`<circle cx="${left + size + 62}" cy="${top + 8 + i * 18}" r="4" fill="${color(key)}"/><text x="${left + size + 70}" y="${top + 12 + i * 18}">${esc(name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
