/**
 * Export helpers for the views: the routing heatmaps as CSV and PNG (downloaded by io/download.ts).
 * Also the heatmap colour scale, shared by the DOM heatmap and the PNG so both look the same.
 */
import type { ExpertGroup, Projection, RoutingSummary } from './types';

// ---------------------------------------------------------------------------------------------
// Colour scale
// ---------------------------------------------------------------------------------------------

/** Diverging scale around the uniform weight 1/N: blue below, white at uniform, red above. */
export interface HeatScale {
  min: number;
  uniform: number;
  max: number;
}

const LOW: [number, number, number] = [49, 104, 176]; // below uniform
const MID: [number, number, number] = [247, 247, 247]; // uniform
const HIGH: [number, number, number] = [196, 52, 44]; // above uniform
/** Colour of a cell with no value (NaN). */
export const EMPTY_CELL = '#d9dce2';

/** Scale for one projection: from 0 to the largest finite weight (at least twice uniform). */
export function heatScale(summary: RoutingSummary, projectionIndex: number): HeatScale {
  const uniform = summary.experts > 0 ? 1 / summary.experts : 0;
  let max = Math.min(1, 2 * uniform);
  for (const perType of summary.mean) {
    for (const perLayer of perType) {
      for (const v of perLayer[projectionIndex] ?? []) if (Number.isFinite(v) && v > max) max = v;
    }
  }
  return { min: 0, uniform, max: Math.max(max, uniform) };
}

function mix(a: [number, number, number], b: [number, number, number], t: number): string {
  const c = a.map((x, i) => Math.round(x + (b[i] - x) * t));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/** CSS colour of a weight under a scale. */
export function heatColor(value: number, scale: HeatScale): string {
  if (!Number.isFinite(value)) return EMPTY_CELL;
  if (value <= scale.uniform) {
    const span = scale.uniform - scale.min;
    const t = span > 0 ? (scale.uniform - value) / span : 0;
    return mix(MID, LOW, clamp01(t));
  }
  const span = scale.max - scale.uniform;
  const t = span > 0 ? (value - scale.uniform) / span : 0;
  return mix(MID, HIGH, clamp01(t));
}

/** CSS gradient for the legend, the same stops as heatColor. */
export function heatGradient(scale: HeatScale): string {
  const span = scale.max - scale.min;
  const mid = span > 0 ? ((scale.uniform - scale.min) / span) * 100 : 50;
  return `linear-gradient(to right, ${mix(MID, LOW, 1)} 0%, ${mix(MID, LOW, 0)} ${mid.toFixed(1)}%, ${mix(MID, HIGH, 1)} 100%)`;
}

function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/** The group an expert belongs to (first match), or undefined. */
export function groupOfExpert(groups: readonly ExpertGroup[], expert: number): { index: number; group: ExpertGroup } | undefined {
  const index = groups.findIndex((g) => g.experts.includes(expert));
  return index >= 0 ? { index, group: groups[index] } : undefined;
}

/** A weight as text: 4 significant decimals, "n/a" when missing. */
export function formatWeight(v: number): string {
  return Number.isFinite(v) ? v.toFixed(4) : 'n/a';
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/**
 * One CSV text field: quoted when it holds a comma, quote or line break; a leading = + - @ or
 * control character is prefixed with ' so a spreadsheet does not run it as a formula.
 */
export function csvField(text: string): string {
  let s = text;
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Rows `type,layer,projection,expert,group,mean_weight` for every type, layer, projection and expert. */
export function routingCsv(summary: RoutingSummary, groups: readonly ExpertGroup[]): string {
  const lines = ['type,layer,projection,expert,group,mean_weight'];
  summary.types.forEach((type, t) => {
    for (let l = 0; l < summary.layers; l++) {
      summary.projections.forEach((p, pi) => {
        for (let e = 0; e < summary.experts; e++) {
          const v = summary.mean[t]?.[l]?.[pi]?.[e] ?? NaN;
          const g = groupOfExpert(groups, e);
          lines.push([csvField(type), String(l), csvField(p), String(e), csvField(g ? g.group.name : ''), Number.isFinite(v) ? String(v) : ''].join(','));
        }
      });
    }
  });
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// PNG
// ---------------------------------------------------------------------------------------------

const PNG = {
  cellW: 28,
  cellH: 14,
  pad: 16,
  labelW: 44,
  headerH: 22,
  titleH: 40,
  gap: 28,
  legendH: 56,
  font: '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
  bold: 'bold 13px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
};

/** Draws the heatmaps of one projection (one per type, side by side, with a legend) and encodes a PNG. */
export function heatmapPng(summary: RoutingSummary, groups: readonly ExpertGroup[], projection: Projection): Promise<Blob> {
  const pi = Math.max(0, summary.projections.indexOf(projection));
  const scale = heatScale(summary, pi);
  const T = summary.types.length;
  const panelW = PNG.labelW + summary.experts * PNG.cellW;
  const panelH = PNG.titleH + PNG.headerH + summary.layers * PNG.cellH;
  const width = Math.max(PNG.pad * 2 + T * panelW + Math.max(0, T - 1) * PNG.gap, 360);
  const height = PNG.pad * 2 + 24 + panelH + PNG.legendH;
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  if (!ctx) return Promise.reject(new Error('no 2D canvas context'));

  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = '#1d2330';
  ctx.font = PNG.bold;
  ctx.textBaseline = 'middle';
  ctx.fillText(`Mean router weight, ${summary.projections[pi] ?? projection} (experts × layers)`, PNG.pad, PNG.pad + 8);

  const top = PNG.pad + 24;
  summary.types.forEach((type, t) => {
    const x0 = PNG.pad + t * (panelW + PNG.gap);
    ctx.font = PNG.bold;
    ctx.fillStyle = '#1d2330';
    ctx.textAlign = 'left';
    ctx.fillText(fitText(ctx, type, panelW), x0, top + 10);
    ctx.font = PNG.font;
    ctx.fillStyle = '#4a5366';
    ctx.fillText(`${summary.tokens[t] ?? 0} tokens`, x0, top + 27);
    const gridX = x0 + PNG.labelW;
    const gridY = top + PNG.titleH + PNG.headerH;
    if (!(summary.tokens[t] > 0)) {
      ctx.fillStyle = '#f0f1f4';
      ctx.fillRect(gridX, gridY - PNG.headerH, summary.experts * PNG.cellW, summary.layers * PNG.cellH + PNG.headerH);
      ctx.fillStyle = '#4a5366';
      ctx.textAlign = 'center';
      ctx.fillText('no tokens yet', gridX + (summary.experts * PNG.cellW) / 2, gridY + (summary.layers * PNG.cellH) / 2);
      return;
    }
    // Expert headers, tinted by group colour.
    for (let e = 0; e < summary.experts; e++) {
      const g = groupOfExpert(groups, e);
      const x = gridX + e * PNG.cellW;
      if (g) {
        ctx.globalAlpha = 0.35;
        ctx.fillStyle = g.group.color;
        ctx.fillRect(x, gridY - PNG.headerH, PNG.cellW, PNG.headerH - 2);
        ctx.globalAlpha = 1;
      }
      ctx.fillStyle = '#1d2330';
      ctx.textAlign = 'center';
      ctx.fillText(String(e), x + PNG.cellW / 2, gridY - PNG.headerH / 2 - 1);
    }
    for (let l = 0; l < summary.layers; l++) {
      const y = gridY + l * PNG.cellH;
      ctx.fillStyle = '#4a5366';
      ctx.textAlign = 'right';
      ctx.fillText(`L${l}`, gridX - 6, y + PNG.cellH / 2);
      for (let e = 0; e < summary.experts; e++) {
        ctx.fillStyle = heatColor(summary.mean[t]?.[l]?.[pi]?.[e] ?? NaN, scale);
        ctx.fillRect(gridX + e * PNG.cellW, y, PNG.cellW - 1, PNG.cellH - 1);
      }
    }
  });

  // Legend: gradient bar with min, uniform and max, then the groups.
  const ly = top + panelH + 16;
  const lw = 220;
  const grad = ctx.createLinearGradient(PNG.pad, 0, PNG.pad + lw, 0);
  const span = scale.max - scale.min;
  const mid = span > 0 ? (scale.uniform - scale.min) / span : 0.5;
  grad.addColorStop(0, heatColor(scale.min, scale));
  grad.addColorStop(clamp01(mid), heatColor(scale.uniform, scale));
  grad.addColorStop(1, heatColor(scale.max, scale));
  ctx.fillStyle = grad;
  ctx.fillRect(PNG.pad, ly, lw, 12);
  ctx.strokeStyle = '#b8bec9';
  ctx.strokeRect(PNG.pad + 0.5, ly + 0.5, lw - 1, 11);
  ctx.fillStyle = '#4a5366';
  ctx.font = PNG.font;
  ctx.textAlign = 'left';
  ctx.fillText(scale.min.toFixed(2), PNG.pad, ly + 24);
  ctx.textAlign = 'center';
  ctx.fillText(`${scale.uniform.toFixed(3)} (uniform)`, PNG.pad + lw * clamp01(mid), ly + 24);
  ctx.textAlign = 'right';
  ctx.fillText(scale.max.toFixed(2), PNG.pad + lw, ly + 24);
  let gx = PNG.pad + lw + 24;
  ctx.textAlign = 'left';
  for (const g of groups) {
    ctx.fillStyle = g.color;
    ctx.fillRect(gx, ly, 12, 12);
    ctx.fillStyle = '#1d2330';
    const label = `${g.name} (${g.experts.join(', ')})`;
    ctx.fillText(label, gx + 16, ly + 6);
    gx += 16 + ctx.measureText(label).width + 18;
  }

  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('canvas.toBlob returned null'))), 'image/png');
  });
}

/** Shortens text with an ellipsis to fit a width. */
function fitText(ctx: CanvasRenderingContext2D, text: string, width: number): string {
  if (ctx.measureText(text).width <= width) return text;
  let s = text;
  while (s.length > 1 && ctx.measureText(`${s}…`).width > width) s = s.slice(0, -1);
  return `${s}…`;
}
