/**
 * A tiny SVG line-chart writer for the bench's curves: a few series of (x, y) points, optional log
 * axes, ticks, a legend. No dependency: the charts are small and their shape is what matters.
 */

export interface Series {
  readonly name: string
  readonly points: ReadonlyArray<readonly [number, number]>
  /** Drawn dashed (e.g. a second figure of the same implementation). */
  readonly dashed?: boolean
}

export interface Chart {
  readonly title: string
  readonly xLabel: string
  readonly yLabel: string
  readonly series: ReadonlyArray<Series>
  readonly logX?: boolean
  readonly logY?: boolean
  /** Start the y axis at 0 (linear axes only); default true. */
  readonly yFromZero?: boolean
}

const W = 640
const H = 400
const M = { left: 78, right: 20, top: 40, bottom: 88 }
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** A short label: 1000 → 1k, 1e6 → 1M, 0.0012 → 0.0012. */
export const short = (v: number): string => {
  const a = Math.abs(v)
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`
  if (a === 0) return "0"
  return `${+v.toPrecision(3)}`
}

/** Ticks: powers of ten on a log axis, about 5 round steps on a linear one. */
const ticks = (lo: number, hi: number, log: boolean): Array<number> => {
  if (log) {
    const out: Array<number> = []
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e)
    return out
  }
  const span = hi - lo || 1
  const raw = span / 5
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw
  const out: Array<number> = []
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12))
  return out
}

/** The chart as an SVG document. */
export const svg = (chart: Chart): string => {
  const pts = chart.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
  const xs = pts.map((p) => p[0])
  const ys = pts.map((p) => p[1])
  const logX = chart.logX ?? false
  const logY = chart.logY ?? false
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)]
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)]
  if (logX) [x0, x1] = [10 ** Math.floor(Math.log10(x0)), 10 ** Math.ceil(Math.log10(x1))]
  if (logY) [y0, y1] = [10 ** Math.floor(Math.log10(y0)), 10 ** Math.ceil(Math.log10(y1))]
  else {
    if (chart.yFromZero ?? true) y0 = Math.min(0, y0)
    const t = ticks(y0, y1 * 1.05, false)
    y1 = Math.max(y1 * 1.05, t[t.length - 1] ?? y1)
  }
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1]
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1]
  const f = (v: number, log: boolean) => (log ? Math.log10(v) : v)
  const px = (x: number) => M.left + ((f(x, logX) - f(x0, logX)) / (f(x1, logX) - f(x0, logX))) * (W - M.left - M.right)
  const py = (y: number) =>
    H - M.bottom - ((f(y, logY) - f(y0, logY)) / (f(y1, logY) - f(y0, logY))) * (H - M.top - M.bottom)
  const out: Array<string> = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`
  )
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  out.push(
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(chart.title)}</text>`
  )
  for (const t of ticks(y0, y1, logY)) {
    if (t < y0 || t > y1) continue
    const y = py(t).toFixed(1)
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${short(t)}</text>`)
  }
  for (const t of logX ? ticks(x0, x1, true) : [...new Set(xs)].sort((a, b) => a - b)) {
    if (t < x0 || t > x1) continue
    const x = px(t).toFixed(1)
    out.push(`<line x1="${x}" x2="${x}" y1="${M.top}" y2="${H - M.bottom}" stroke="#eeeeee"/>`)
    out.push(`<text x="${x}" y="${H - M.bottom + 16}" text-anchor="middle">${short(t)}</text>`)
  }
  out.push(
    `<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#888"/>`
  )
  out.push(
    `<text x="${(M.left + W - M.right) / 2}" y="${H - M.bottom + 36}" text-anchor="middle">${esc(chart.xLabel)}</text>`
  )
  out.push(
    `<text transform="translate(18 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(chart.yLabel)}</text>`
  )
  chart.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!
    const p = s.points
      .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
      .map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`)
    const dash = s.dashed === true ? ` stroke-dasharray="6 4"` : ""
    if (p.length > 1)
      out.push(`<polyline points="${p.join(" ")}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`)
    for (const q of p) {
      const [cx, cy] = q.split(",")
      out.push(`<circle cx="${cx}" cy="${cy}" r="3.5" fill="${color}"/>`)
    }
    // Legend under the plot, two entries a row.
    const lx = M.left + (i % 2) * ((W - M.left - M.right) / 2)
    const ly = H - M.bottom + 56 + Math.floor(i / 2) * 16
    out.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`)
    out.push(`<text x="${lx + 28}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`)
  })
  out.push("</svg>")
  return out.join("\n") + "\n"
}
