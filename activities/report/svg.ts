/**
 * Inline SVG charts for the HTML report: pure string builders, no DOM, no scripts, no external assets (the report
 * must open from a file on a machine with no network). Every drawn mark carries a class and data-* attributes, so
 * tests (and curious readers of the source) can find what was plotted.
 */

export function esc(s: unknown): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

const f = (x: number) => (Number.isFinite(x) ? Number(x.toFixed(2)) : 0);

/** Distinct, colour-blind-safe-ish colours; the well-known models always get the same one. */
const FIXED: Record<string, string> = { baseline: '#8c8c8c', student: '#1f6feb', teacher: '#e8871e' };
const PALETTE = ['#2ca02c', '#9467bd', '#d62728', '#17becf', '#bcbd22', '#e377c2', '#7f7f7f', '#8c564b'];

export function colorFor(name: string, index = 0): string {
  const base = name.replace(/[†*]$/, '').split(/[ (]/)[0]!;
  return FIXED[base] ?? PALETTE[index % PALETTE.length]!;
}

/** 0, nice step, …, ≥ max: steps of 1, 2 or 5 × 10^n, about `count` of them. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = 0; v < max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max - step * 1e-9)
    ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

function frame(width: number, height: number, title: string, body: string, klass: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart ${klass}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}">` +
    `<title>${esc(title)}</title><rect class="bg" x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>` +
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="600" fill="#222">${esc(title)}</text>` +
    body +
    `</svg>`
  );
}

function legend(items: { name: string; color: string }[], x: number, y: number): string {
  let out = '';
  let cx = x;
  for (const it of items) {
    out += `<rect class="legend-swatch" x="${f(cx)}" y="${f(y - 10)}" width="12" height="12" fill="${it.color}"/>`;
    out += `<text x="${f(cx + 16)}" y="${f(y)}" font-size="12" fill="#333">${esc(it.name)}</text>`;
    cx += 28 + it.name.length * 7;
  }
  return out;
}

export interface Bar {
  series: string;
  value: number;
  /** Half-width of the error bar (e.g. one standard error); drawn when > 0. */
  err?: number;
  color?: string;
  /** Text above the bar (default: the formatted value). */
  label?: string;
}

export interface BarGroup {
  label: string;
  bars: Bar[];
}

export interface BarChartOptions {
  title: string;
  groups: BarGroup[];
  yLabel?: string;
  /** Top of the y axis (default: the data's top, rounded up to a nice tick). */
  yMax?: number;
  format?: (v: number) => string;
  width?: number;
  height?: number;
  klass?: string;
}

/** Grouped vertical bars with optional error bars (value ± err, clipped at 0 and the axis top). */
export function barChart(o: BarChartOptions): string {
  const width = o.width ?? 720;
  const height = o.height ?? 340;
  const fmt = o.format ?? ((v: number) => String(f(v)));
  const m = { left: 60, right: 20, top: 50, bottom: 56 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const top = Math.max(...o.groups.flatMap((g) => g.bars.map((b) => b.value + (b.err ?? 0))), 0);
  const ticks = niceTicks(o.yMax ?? top, 5);
  const yMax = o.yMax ?? ticks[ticks.length - 1]!;
  const y = (v: number) => m.top + ph - (Math.max(0, Math.min(v, yMax)) / yMax) * ph;
  const series = [
    ...new Map(
      o.groups.flatMap((g) => g.bars.map((b, i) => [b.series, b.color ?? colorFor(b.series, i)] as const)),
    ).entries(),
  ];
  let body = '';
  for (const t of ticks) {
    body += `<line class="grid" x1="${m.left}" x2="${m.left + pw}" y1="${f(y(t))}" y2="${f(y(t))}" stroke="#e5e5e5"/>`;
    body += `<text x="${m.left - 6}" y="${f(y(t) + 4)}" text-anchor="end" font-size="11" fill="#555">${esc(fmt(t))}</text>`;
  }
  body += `<line class="axis" x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}" stroke="#333"/>`;
  body += `<line class="axis" x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" stroke="#333"/>`;
  if (o.yLabel)
    body += `<text x="14" y="${m.top + ph / 2}" transform="rotate(-90 14 ${m.top + ph / 2})" text-anchor="middle" font-size="12" fill="#333">${esc(o.yLabel)}</text>`;
  const gw = pw / Math.max(1, o.groups.length);
  o.groups.forEach((g, gi) => {
    const n = Math.max(1, g.bars.length);
    const inner = gw * 0.8;
    const bw = Math.min(70, inner / n);
    const x0 = m.left + gi * gw + (gw - bw * n) / 2;
    g.bars.forEach((b, bi) => {
      const color = b.color ?? series.find(([s]) => s === b.series)?.[1] ?? colorFor(b.series, bi);
      const x = x0 + bi * bw + 2;
      const w = Math.max(1, bw - 4);
      const yv = y(b.value);
      const h = m.top + ph - yv;
      body += `<rect class="bar" data-series="${esc(b.series)}" data-group="${esc(g.label)}" data-value="${b.value}" x="${f(x)}" y="${f(yv)}" width="${f(w)}" height="${f(h)}" fill="${color}"/>`;
      if (b.err && b.err > 0) {
        const cx = x + w / 2;
        const y1 = y(b.value + b.err);
        const y2 = y(b.value - b.err);
        body += `<g class="errorbar" data-series="${esc(b.series)}" data-err="${b.err}" stroke="#111" stroke-width="1.5"><line x1="${f(cx)}" x2="${f(cx)}" y1="${f(y1)}" y2="${f(y2)}"/><line x1="${f(cx - 6)}" x2="${f(cx + 6)}" y1="${f(y1)}" y2="${f(y1)}"/><line x1="${f(cx - 6)}" x2="${f(cx + 6)}" y1="${f(y2)}" y2="${f(y2)}"/></g>`;
      }
      const ly = Math.min(yv, b.err ? y(b.value + b.err) : yv) - 5;
      body += `<text class="bar-label" x="${f(x + w / 2)}" y="${f(ly)}" text-anchor="middle" font-size="11" fill="#222">${esc(b.label ?? fmt(b.value))}</text>`;
    });
    body += `<text x="${f(m.left + gi * gw + gw / 2)}" y="${m.top + ph + 18}" text-anchor="middle" font-size="12" fill="#333">${esc(g.label)}</text>`;
  });
  body += legend(
    series.map(([name, color]) => ({ name, color })),
    m.left,
    height - 12,
  );
  return frame(width, height, o.title, body, o.klass ?? 'bar-chart');
}

export interface FunnelRow {
  label: string;
  count: number;
  unit?: string;
  /** Rows dropped on the way to the NEXT stage, by reason. */
  drops?: { reason: string; count: number }[];
}

/** The funnel: one horizontal bar per stage (linear, against the largest count), its drops by reason under it. */
export function funnelChart(o: { title: string; rows: FunnelRow[]; width?: number }): string {
  const width = o.width ?? 720;
  const labelW = 230;
  const m = { left: 10, right: 110, top: 40 };
  const pw = width - m.left - labelW - m.right;
  const max = Math.max(1, ...o.rows.map((r) => r.count), ...o.rows.flatMap((r) => (r.drops ?? []).map((d) => d.count)));
  let yy = m.top;
  let body = '';
  for (const r of o.rows) {
    const w = (r.count / max) * pw;
    body += `<text x="${m.left + labelW - 8}" y="${yy + 16}" text-anchor="end" font-size="13" fill="#222">${esc(r.label)}</text>`;
    body += `<rect class="funnel-bar" data-stage="${esc(r.label)}" data-value="${r.count}" x="${m.left + labelW}" y="${yy + 2}" width="${f(Math.max(r.count > 0 ? 1 : 0, w))}" height="20" fill="#1f6feb"/>`;
    body += `<text x="${f(m.left + labelW + Math.max(0, w) + 6)}" y="${yy + 16}" font-size="12" fill="#222">${esc(r.count.toLocaleString('en-US'))}${r.unit ? ` ${esc(r.unit)}` : ''}</text>`;
    yy += 28;
    for (const d of r.drops ?? []) {
      const dw = (d.count / max) * pw;
      body += `<text x="${m.left + labelW - 8}" y="${yy + 12}" text-anchor="end" font-size="11" fill="#b42318">− ${esc(d.reason)}</text>`;
      body += `<rect class="drop-bar" data-reason="${esc(d.reason)}" data-value="${d.count}" x="${m.left + labelW}" y="${yy + 2}" width="${f(Math.max(d.count > 0 ? 1 : 0, dw))}" height="13" fill="#d92d20"/>`;
      body += `<text x="${f(m.left + labelW + Math.max(0, dw) + 6)}" y="${yy + 13}" font-size="11" fill="#b42318">${esc(d.count.toLocaleString('en-US'))}</text>`;
      yy += 19;
    }
    yy += 6;
  }
  return frame(width, yy + 10, o.title, body, 'funnel-chart');
}

export interface Histogram {
  /** Bin edges, length bins + 1; the last bin is [edges[n-1], ∞) when `overflow`. */
  edges: number[];
  overflow: boolean;
  series: { name: string; counts: number[]; color?: string }[];
}

/** Equal-width bins from 0 to the largest p99 of the series; longer values go in the last bin (`overflow`). */
export function binLengths(series: { name: string; values: number[] }[], bins = 20): Histogram {
  const p99 = series.map((s) => {
    const v = [...s.values].sort((a, b) => a - b);
    return v.length ? v[Math.floor(0.99 * (v.length - 1))]! : 0;
  });
  const max = series.reduce((m, s) => s.values.reduce((a, v) => (v > a ? v : a), m), 0);
  const step = Math.max(1, Math.ceil(p99.reduce((a, v) => Math.max(a, v), 1) / bins));
  const edges = Array.from({ length: bins + 1 }, (_, i) => i * step);
  return {
    edges,
    overflow: max >= step * bins,
    series: series.map((s) => {
      const counts = new Array<number>(bins).fill(0);
      for (const v of s.values) counts[Math.min(bins - 1, Math.max(0, Math.floor(v / step)))]! += 1;
      return { name: s.name, counts };
    }),
  };
}

/** Histogram as side-by-side bars per bin (fractions of each series, so series of different sizes compare). */
export function histogramChart(o: {
  title: string;
  hist: Histogram;
  xLabel: string;
  width?: number;
  height?: number;
  klass?: string;
}): string {
  const width = o.width ?? 720;
  const height = o.height ?? 300;
  const m = { left: 56, right: 20, top: 46, bottom: 62 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const { edges, series } = o.hist;
  const bins = edges.length - 1;
  const fracs = series.map((s) => {
    const total = s.counts.reduce((a, b) => a + b, 0) || 1;
    return s.counts.map((c) => c / total);
  });
  const ticks = niceTicks(Math.max(0.0001, ...fracs.flat()), 4);
  const yMax = ticks[ticks.length - 1]!;
  const y = (v: number) => m.top + ph - (v / yMax) * ph;
  let body = '';
  for (const t of ticks) {
    body += `<line class="grid" x1="${m.left}" x2="${m.left + pw}" y1="${f(y(t))}" y2="${f(y(t))}" stroke="#e5e5e5"/>`;
    body += `<text x="${m.left - 6}" y="${f(y(t) + 4)}" text-anchor="end" font-size="11" fill="#555">${Math.round(t * 100)}%</text>`;
  }
  body += `<line class="axis" x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" stroke="#333"/>`;
  const bw = pw / bins;
  const sw = (bw * 0.9) / Math.max(1, series.length);
  series.forEach((s, si) => {
    const color = s.color ?? colorFor(s.name, si);
    s.counts.forEach((c, bi) => {
      if (!c) return;
      const v = fracs[si]![bi]!;
      const x = m.left + bi * bw + bw * 0.05 + si * sw;
      body += `<rect class="hist-bar" data-series="${esc(s.name)}" data-bin="${edges[bi]}" data-count="${c}" x="${f(x)}" y="${f(y(v))}" width="${f(Math.max(1, sw - 1))}" height="${f(m.top + ph - y(v))}" fill="${color}"/>`;
    });
  });
  const every = Math.ceil(bins / 10);
  for (let i = 0; i <= bins; i += every) {
    const x = m.left + i * bw;
    const label = i === bins && o.hist.overflow ? '' : String(edges[i]);
    body += `<text x="${f(x)}" y="${m.top + ph + 15}" text-anchor="middle" font-size="10" fill="#555">${esc(label)}</text>`;
  }
  body += `<text x="${m.left + pw / 2}" y="${m.top + ph + 32}" text-anchor="middle" font-size="12" fill="#333">${esc(o.xLabel)}${o.hist.overflow ? ' (last bin: and longer)' : ''}</text>`;
  body += legend(
    series.map((s, i) => ({ name: s.name, color: s.color ?? colorFor(s.name, i) })),
    m.left,
    height - 10,
  );
  return frame(width, height, o.title, body, o.klass ?? 'histogram');
}

export interface LineSeries {
  name: string;
  points: { x: number; y: number }[];
  color?: string;
  width?: number;
  opacity?: number;
}

/** Lines over a linear x axis; y is logarithmic when `logY` (all y > 0). */
export function lineChart(o: {
  title: string;
  series: LineSeries[];
  xLabel: string;
  yLabel: string;
  logY?: boolean;
  width?: number;
  height?: number;
  klass?: string;
}): string {
  const width = o.width ?? 720;
  const height = o.height ?? 320;
  const m = { left: 64, right: 20, top: 46, bottom: 62 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const pts = o.series.flatMap((s) => s.points);
  const xMin = Math.min(...pts.map((p) => p.x));
  const xMax = Math.max(...pts.map((p) => p.x));
  const logY = !!o.logY && pts.every((p) => p.y > 0);
  const tf = (v: number) => (logY ? Math.log10(v) : v);
  const ys = pts.map((p) => tf(p.y));
  let yLo = logY ? Math.floor(Math.min(...ys)) : 0;
  let yHi = logY ? Math.ceil(Math.max(...ys)) : Math.max(...ys);
  if (yHi <= yLo) yHi = yLo + 1;
  const yTicks = logY ? Array.from({ length: yHi - yLo + 1 }, (_, i) => yLo + i) : niceTicks(yHi, 5);
  if (!logY) {
    yLo = 0;
    yHi = yTicks[yTicks.length - 1]!;
  }
  const X = (v: number) => m.left + (xMax > xMin ? ((v - xMin) / (xMax - xMin)) * pw : pw / 2);
  const Y = (v: number) => m.top + ph - ((tf(v) - yLo) / (yHi - yLo)) * ph;
  let body = '';
  for (const t of yTicks) {
    const yy = m.top + ph - ((t - yLo) / (yHi - yLo)) * ph;
    body += `<line class="grid" x1="${m.left}" x2="${m.left + pw}" y1="${f(yy)}" y2="${f(yy)}" stroke="#e5e5e5"/>`;
    body += `<text x="${m.left - 6}" y="${f(yy + 4)}" text-anchor="end" font-size="11" fill="#555">${esc(logY ? String(10 ** t) : String(t))}</text>`;
  }
  for (const v of niceTicks(xMax, 6)) {
    if (v < xMin - 1e-9 || v > xMax + 1e-9) continue;
    body += `<text x="${f(X(v))}" y="${m.top + ph + 15}" text-anchor="middle" font-size="10" fill="#555">${esc(String(Math.round(v)))}</text>`;
  }
  body += `<line class="axis" x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}" stroke="#333"/>`;
  body += `<line class="axis" x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" stroke="#333"/>`;
  body += `<text x="${m.left + pw / 2}" y="${m.top + ph + 32}" text-anchor="middle" font-size="12" fill="#333">${esc(o.xLabel)}</text>`;
  body += `<text x="14" y="${m.top + ph / 2}" transform="rotate(-90 14 ${m.top + ph / 2})" text-anchor="middle" font-size="12" fill="#333">${esc(o.yLabel)}${logY ? ' (log scale)' : ''}</text>`;
  o.series.forEach((s, i) => {
    if (!s.points.length) return;
    const d = s.points.map((p, k) => `${k ? 'L' : 'M'}${f(X(p.x))} ${f(Y(p.y))}`).join('');
    body += `<path class="line" data-series="${esc(s.name)}" data-points="${s.points.length}" d="${d}" fill="none" stroke="${s.color ?? colorFor(s.name, i)}" stroke-width="${s.width ?? 2}" stroke-opacity="${s.opacity ?? 1}" stroke-linejoin="round"/>`;
  });
  body += legend(
    o.series.map((s, i) => ({ name: s.name, color: s.color ?? colorFor(s.name, i) })),
    m.left,
    height - 10,
  );
  return frame(width, height, o.title, body, o.klass ?? 'line-chart');
}
