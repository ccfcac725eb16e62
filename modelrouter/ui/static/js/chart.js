// Time-series line charts as inline SVG: time on x, the unit on y, a legend, and a
// sentence instead of a chart when there is nothing to draw. Drawn at the figure's
// real pixel width (and again when it changes), so text stays readable on a phone.

import { h, s, fill } from "./dom.js";

export const PALETTE = [
  "#2f6fde", "#d9822b", "#2e9e6a", "#c2410c", "#7c5cc4", "#0f8fa8", "#b5487f", "#6b7280",
];

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const TIME_STEPS = [MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN, HOUR, 2 * HOUR, 3 * HOUR,
  6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY];
const PAD = { top: 12, right: 14, bottom: 26, left: 58 };

const hourMinute = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayLabel = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric" });
const fullTime = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
});

/** A step of 1, 2 or 5 times a power of ten giving about `count` ticks up to `max`. */
function niceStep(max, count) {
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

function timeTicks(from, to, width) {
  const most = Math.max(2, Math.floor(width / 80));
  const step = TIME_STEPS.find((st) => (to - from) / st <= most) || 7 * DAY;
  // Local-time boundaries: days start at local midnight, hours on the hour.
  const offset = new Date(from).getTimezoneOffset() * MIN;
  const ticks = [];
  let t = Math.ceil((from - offset) / step) * step + offset;
  for (; t <= to; t += step) ticks.push(t);
  return { ticks, label: (t) => (step >= DAY ? dayLabel.format(t) : hourMinute.format(t)) };
}

/**
 * A figure with one line per series.
 * opts: {title, unit, format(v), integer (counts), from, to (ms),
 *        series: [{name, color, dash, points: [[t, v|null]]}],
 *        empty: "why there is nothing", note?: text under the chart}
 */
export function timeChart(opts) {
  const svgBox = h("div", { class: "chart-box" });
  const caption = h("figcaption", null, h("span", { class: "chart-title" }, opts.title),
    opts.unit ? h("span", { class: "chart-unit" }, ` (${opts.unit})`) : null);
  const drawn = opts.series.filter((se) => se.points.some(([, v]) => v !== null));
  const legend = drawn.length
    ? h("ul", { class: "legend", "aria-label": `${opts.title}: series` },
      drawn.map((se) => h("li", null,
        h("span", { class: `swatch${se.dash ? " dashed" : ""}`, dataset: { color: se.color } }),
        se.name)))
    : null;
  const figure = h("figure", { class: "chart" }, caption, svgBox, legend,
    opts.note ? h("p", { class: "chart-note" }, opts.note) : null);
  // Swatch colours through the CSSOM (allowed by the page's CSP, unlike style="").
  for (const sw of figure.querySelectorAll(".swatch")) {
    sw.style.setProperty("--c", sw.dataset.color);
  }
  if (!drawn.length) {
    fill(svgBox, h("p", { class: "chart-empty" }, opts.empty));
    return figure;
  }
  let lastWidth = 0;
  const draw = () => {
    const width = Math.round(svgBox.clientWidth || 600);
    if (width === lastWidth) return;
    lastWidth = width;
    fill(svgBox, plot(opts, drawn, width));
  };
  new ResizeObserver(draw).observe(svgBox);
  requestAnimationFrame(draw);
  return figure;
}

function plot(opts, series, width) {
  const height = 200;
  const { from, to, format } = opts;
  const w = width - PAD.left - PAD.right;
  const hgt = height - PAD.top - PAD.bottom;
  let max = 0;
  for (const se of series) for (const [, v] of se.points) if (v !== null && v > max) max = v;
  // Counts step by whole numbers at least (no "0, 1, 1, 2, 2" axis).
  const step = max > 0 ? Math.max(niceStep(max, 4), opts.integer ? 1 : 0) : 1;
  const top = step * Math.max(1, Math.ceil(max / step));
  const x = (t) => PAD.left + ((t - from) / (to - from)) * w;
  const y = (v) => PAD.top + hgt - (v / top) * hgt;
  const svg = s("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `${opts.title} over time, up to ${format(max)}`,
  });
  // y grid and labels
  for (let v = 0; v <= top + step / 2; v += step) {
    svg.append(s("line", { class: "grid", x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v) }),
      s("text", { class: "tick", x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, format(v)));
  }
  // x ticks: time
  const { ticks, label } = timeTicks(from, to, w);
  for (const t of ticks) {
    svg.append(s("line", { class: "grid faint", x1: x(t), x2: x(t), y1: PAD.top, y2: PAD.top + hgt }),
      s("text", { class: "tick", x: x(t), y: height - 8, "text-anchor": "middle" }, label(t)));
  }
  svg.append(s("line", { class: "axis", x1: PAD.left, x2: width - PAD.right, y1: PAD.top + hgt,
    y2: PAD.top + hgt }));
  for (const se of series) {
    let d = "";
    let pen = false;
    const pts = se.points.filter(([t]) => t >= from && t <= to);
    pts.forEach(([t, v], i) => {
      if (v === null) { pen = false; return; }
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
      const alone = (i === 0 || pts[i - 1][1] === null) && (i === pts.length - 1 || pts[i + 1][1] === null);
      // Dots where a value is alone or worth hovering (not along every zero).
      if (alone || (pts.length <= 90 && v > 0)) {
        svg.append(s("circle", { cx: x(t), cy: y(v), r: alone ? 3 : 2, fill: se.color },
          s("title", null, `${se.name} · ${fullTime.format(t)} · ${format(v)}`)));
      }
    });
    svg.insertBefore(s("path", {
      d, fill: "none", stroke: se.color, "stroke-width": 2,
      "stroke-dasharray": se.dash ? "5 4" : null, "stroke-linejoin": "round",
    }), svg.querySelector("circle"));
  }
  return svg;
}
