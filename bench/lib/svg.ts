/**
 * A small SVG writer for grouped bar charts with a logarithmic value axis
 * (latency percentiles per strategy), one panel per disk mode. No dependency:
 * it writes the markup itself.
 */

export interface Series {
  name: string;
  color: string;
  /** One value per group; null draws no bar (not measured). */
  values: (number | null)[];
}

export interface Panel {
  title: string;
  subtitle?: string;
  /** Group labels along the x axis (e.g. p50, p99, p99.9, max). */
  groups: string[];
  series: Series[];
}

export interface ChartOptions {
  title: string;
  /** Unit appended to axis labels, e.g. 'ms'. */
  unit: string;
  footnote?: string;
  panelWidth?: number;
  panelHeight?: number;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A compact label for a value: 0.42, 3.1, 27, 1200. */
export function shortNumber(v: number): string {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1).replace(/\.0$/, '');
  if (v >= 1) return v.toFixed(2).replace(/0$/, '').replace(/\.$/, '');
  return v.toPrecision(2);
}

function decadeLabel(exp: number, unit: string): string {
  const v = 10 ** exp;
  const s = exp >= 0 ? v.toFixed(0) : v.toFixed(-exp);
  return `${s} ${unit}`;
}

/** Renders panels side by side, sharing one log scale so they can be compared. */
export function barChartSvg(panels: Panel[], options: ChartOptions): string {
  const pw = options.panelWidth ?? 460;
  const ph = options.panelHeight ?? 300;
  const margin = { top: 78, left: 64, right: 16, bottom: 46 };
  const width = panels.length * pw + margin.left + margin.right;
  const height = margin.top + ph + margin.bottom + (options.footnote ? 18 : 0);
  const all = panels.flatMap((p) => p.series.flatMap((s) => s.values)).filter((v): v is number => v !== null && v > 0);
  const lo = Math.floor(Math.log10(Math.min(...all, 1)));
  const hi = Math.ceil(Math.log10(Math.max(...all, 10)));
  const y = (v: number) => margin.top + ph - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${esc(options.title)}</text>`);
  // Legend (series are the same in every panel).
  const legend = panels[0]?.series ?? [];
  let lx = margin.left;
  for (const s of legend) {
    out.push(`<rect x="${lx}" y="34" width="12" height="12" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 16}" y="44">${esc(s.name)}</text>`);
    lx += 22 + s.name.length * 7;
  }
  panels.forEach((p, pi) => {
    const x0 = margin.left + pi * pw;
    const innerW = pw - 20;
    out.push(`<text x="${x0 + innerW / 2}" y="${margin.top - 12}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
    if (p.subtitle) out.push(`<text x="${x0 + innerW / 2}" y="${margin.top - 1}" text-anchor="middle" font-size="10" fill="#555">${esc(p.subtitle)}</text>`);
    for (let e = lo; e <= hi; e++) {
      const gy = y(10 ** e);
      out.push(`<line x1="${x0}" x2="${x0 + innerW}" y1="${gy}" y2="${gy}" stroke="#ddd"/>`);
      if (pi === 0) out.push(`<text x="${x0 - 6}" y="${gy + 4}" text-anchor="end" fill="#333">${esc(decadeLabel(e, options.unit))}</text>`);
    }
    out.push(`<line x1="${x0}" x2="${x0 + innerW}" y1="${margin.top + ph}" y2="${margin.top + ph}" stroke="#333"/>`);
    const gw = innerW / p.groups.length;
    const bw = Math.min(26, (gw - 10) / Math.max(1, p.series.length));
    p.groups.forEach((g, gi) => {
      const gx = x0 + gi * gw + (gw - bw * p.series.length) / 2;
      out.push(`<text x="${x0 + gi * gw + gw / 2}" y="${margin.top + ph + 18}" text-anchor="middle">${esc(g)}</text>`);
      p.series.forEach((s, si) => {
        const v = s.values[gi];
        const bx = gx + si * bw;
        if (v === null || !(v > 0)) {
          out.push(`<text x="${bx + bw / 2}" y="${margin.top + ph - 4}" text-anchor="middle" font-size="9" fill="#999">n/a</text>`);
          return;
        }
        const top = y(v);
        out.push(`<rect x="${bx.toFixed(1)}" y="${top.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(margin.top + ph - top).toFixed(1)}" fill="${s.color}"><title>${esc(`${s.name} ${g}: ${shortNumber(v)} ${options.unit}`)}</title></rect>`);
        out.push(`<text x="${(bx + (bw - 2) / 2).toFixed(1)}" y="${(top - 3).toFixed(1)}" text-anchor="middle" font-size="9" fill="#222">${esc(shortNumber(v))}</text>`);
      });
    });
  });
  if (options.footnote) out.push(`<text x="${margin.left}" y="${height - 8}" font-size="10" fill="#555">${esc(options.footnote)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** A line chart: a value over time per series, on a logarithmic value axis, with a reference line. */
export interface LineChart {
  title: string;
  unit: string;
  xLabel: string;
  reference?: { value: number; label: string };
  series: Array<{ name: string; color: string; points: Array<[number, number]> }>;
  width?: number;
  height?: number;
}

/** Renders a {@link LineChart} as SVG markup. */
export function lineChartSvg(chart: LineChart): string {
  const w = chart.width ?? 760;
  const h = chart.height ?? 340;
  const m = { top: 44, left: 64, right: 16, bottom: 46 + 16 * chart.series.length };
  const pw = w - m.left - m.right;
  const ph = h - m.top - m.bottom;
  const xs = chart.series.flatMap((s) => s.points.map((p) => p[0]));
  const vs = chart.series.flatMap((s) => s.points.map((p) => p[1])).concat(chart.reference ? [chart.reference.value] : []).filter((v) => v > 0);
  const xMax = Math.max(1, ...xs);
  const lo = Math.floor(Math.log10(Math.min(...vs, 1)));
  const hi = Math.ceil(Math.log10(Math.max(...vs, 10)));
  const x = (v: number): number => m.left + (v / xMax) * pw;
  const y = (v: number): number => m.top + ph - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * ph;
  const text = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${w}" height="${h}" fill="#fff"/>`);
  out.push(`<text x="${w / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${text(chart.title)}</text>`);
  for (let e = lo; e <= hi; e++) {
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${y(10 ** e)}" y2="${y(10 ** e)}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${m.left - 6}" y="${y(10 ** e) + 4}" text-anchor="end">${text(decadeLabel(e, chart.unit))}</text>`);
  }
  const step = xMax > 60 ? 20 : xMax > 20 ? 5 : xMax > 5 ? 1 : 0.5;
  for (let t = 0; t <= xMax + 1e-9; t += step) {
    out.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${m.top + ph}" y2="${m.top + ph + 4}" stroke="#555"/>`);
    out.push(`<text x="${x(t)}" y="${m.top + ph + 17}" text-anchor="middle">${shortNumber(t)}</text>`);
  }
  out.push(`<text x="${m.left + pw / 2}" y="${m.top + ph + 34}" text-anchor="middle">${text(chart.xLabel)}</text>`);
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#555"/>`);
  if (chart.reference) {
    const ry = y(chart.reference.value);
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${ry}" y2="${ry}" stroke="#000" stroke-dasharray="5,4"/>`);
    out.push(`<text x="${m.left + pw - 4}" y="${ry - 5}" text-anchor="end">${text(chart.reference.label)}</text>`);
  }
  chart.series.forEach((s, i) => {
    const d = s.points.map((p, k) => `${k === 0 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('');
    if (d) out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"/>`);
    const ly = m.top + ph + 50 + 16 * i;
    out.push(`<line x1="${m.left}" x2="${m.left + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="3"/>`);
    out.push(`<text x="${m.left + 30}" y="${ly}">${text(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
