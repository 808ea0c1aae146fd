/**
 * The experiment's curves as one SVG: accuracy on the held-out facts (the paper's forgetting curve)
 * and mean accuracy on the held-out task examples, against instruction samples seen, one line per
 * method: the mean over the seeds, in a band of its 95% confidence interval (Student t; no band with
 * one seed). Plain SVG text, so the runner writes it without a browser (the README's PNG is this
 * file rendered by a headless browser).
 */
import type { MeanCI } from '../util/stats';
import type { CurvePointCI, MethodSummary } from './experiment';

const COLORS = ['#d62728', '#ff7f0e', '#1f77b4', '#2ca02c', '#9467bd', '#8c564b', '#e377c2'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function curvesSvg(results: readonly MethodSummary[], title = ''): string {
  const W = 960;
  const H = 420;
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
      const color = COLORS[ri % COLORS.length];
      // The band: the upper edge left to right, then the lower edge back (clipped to 0..100%).
      if (r.curve.every((p) => panel.value(p).half !== null)) {
        const upper = r.curve.map((p) => `${sx(p.samples).toFixed(1)},${sy(clamp(panel.value(p).mean + panel.value(p).half!)).toFixed(1)}`);
        const lower = [...r.curve].reverse().map((p) => `${sx(p.samples).toFixed(1)},${sy(clamp(panel.value(p).mean - panel.value(p).half!)).toFixed(1)}`);
        out.push(`<polygon class="band" points="${[...upper, ...lower].join(' ')}" fill="${color}" fill-opacity="0.15" stroke="none"/>`);
      }
      const pts = r.curve.map((p) => `${sx(p.samples).toFixed(1)},${sy(panel.value(p).mean).toFixed(1)}`).join(' ');
      out.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"/>`);
    });
  });
  results.forEach((r, ri) => {
    const x = 70 + (ri % 3) * 300;
    const y = H - 30 + Math.floor(ri / 3) * 18;
    out.push(`<line x1="${x}" x2="${x + 24}" y1="${y - 4}" y2="${y - 4}" stroke="${COLORS[ri % COLORS.length]}" stroke-width="3"/>`);
    out.push(`<text x="${x + 30}" y="${y}">${esc(r.method)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
