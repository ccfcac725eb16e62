// Overview: traffic, errors, latency, tokens and cost over time from GET /admin/usage
// (the hourly and per-minute roll-ups: the same cost whatever the size of the log).

import { get } from "../api.js";
import { h, fill, note, num, tokens, ms, usd, pct } from "../dom.js";
import { timeChart, PALETTE } from "../chart.js";

const RANGES = {
  "1h": { interval: "1m", step: 60_000, words: "the last hour" },
  "24h": { interval: "1h", step: 3_600_000, words: "the last 24 hours" },
  "7d": { interval: "1h", step: 3_600_000, words: "the last 7 days" },
};
const GROUPS = {
  model: "Model", route: "Route", provider: "Provider", key: "Key", team: "Team",
};
const NONE = {
  model: "(no model served)", route: "(no route)", provider: "(no provider)",
  key: "(no key)", team: "(no team)",
};
const MOST_SERIES = 8;

function controls(range, by, onChange) {
  const radios = Object.keys(RANGES).map((r) =>
    h("label", { class: "seg" },
      h("input", { type: "radio", name: "range", value: r, checked: r === range }), r));
  const select = h("select", { id: "group-by", name: "by" },
    Object.entries(GROUPS).map(([v, label]) => h("option", { value: v, selected: v === by }, label)));
  const form = h("form", { class: "controls", "aria-label": "Overview range and grouping" },
    h("fieldset", { class: "segmented" }, h("legend", null, "Range"), radios),
    h("div", { class: "field" }, h("label", { for: "group-by" }, "Group by"), select));
  form.addEventListener("change", () => {
    const data = new FormData(form);
    onChange(data.get("range"), data.get("by"));
  });
  form.addEventListener("submit", (e) => e.preventDefault());
  return form;
}

function card(label, value, sub) {
  return h("div", { class: "card", dataset: { card: label } }, h("div", { class: "card-label" }, label),
    h("div", { class: "card-value" }, value), sub ? h("div", { class: "card-sub" }, sub) : null);
}

export async function render(view, ctx) {
  const range = RANGES[ctx.query.get("range")] ? ctx.query.get("range") : "24h";
  const by = GROUPS[ctx.query.get("by")] ? ctx.query.get("by") : "model";
  const spec = RANGES[range];
  const body = h("div", { class: "overview-body", "aria-live": "polite" });
  fill(view,
    h("div", { class: "page-head" }, h("h1", null, "Overview"),
      controls(range, by, (r, b) => ctx.navigate(`/ui?range=${r}&by=${b}`, { replace: true }))),
    body);
  let usage;
  try {
    usage = await get("/admin/usage", { since: range, interval: spec.interval, group_by: by },
      ctx.signal);
  } catch (err) {
    if (err.name === "AbortError") return;
    fill(body, note(`Usage is not available: ${err.message}`, "bad"));
    ctx.ready();
    return;
  }
  const t = usage.totals;
  const errRate = t.requests ? t.errors / t.requests : null;
  const cards = h("section", { class: "cards", "aria-label": `Totals over ${spec.words}` },
    card("Requests", num(t.requests)),
    card("Errors", num(t.errors), errRate === null ? null : `${pct(errRate)} of requests`),
    card("Fallbacks", num(t.fallbacks), "attempts beyond the first"),
    card("Latency p50", ms(t.latency_p50_ms)),
    card("Latency p95", ms(t.latency_p95_ms)),
    card("Tokens", tokens(t.input_tokens + t.output_tokens),
      `${tokens(t.input_tokens)} in · ${tokens(t.output_tokens)} out`),
    card("Cost", usd(t.cost_usd)));

  const from = new Date(usage.since).getTime();
  const to = new Date(usage.until).getTime();
  const times = [];
  for (let x = from; x < to; x += spec.step) times.push(x);
  const ranked = [...usage.series].sort((a, b) => b.totals.requests - a.totals.requests);
  const shown = ranked.slice(0, MOST_SERIES);
  const label = (g) => g.group ?? NONE[by];
  const color = new Map(shown.map((g, i) => [g, PALETTE[i % PALETTE.length]]));
  const byTime = new Map(shown.map((g) => [g, new Map(g.points.map((p) => [new Date(p.t).getTime(), p]))]));
  // Counts are 0 in buckets without requests; latency has no value there (a gap).
  const seriesOf = (field, { zero = true, dash = false, suffix = "" } = {}) =>
    shown.map((g) => ({
      name: label(g) + suffix,
      color: color.get(g),
      dash,
      points: times.map((x) => {
        const p = byTime.get(g).get(x);
        return [x, p ? p[field] ?? null : zero ? 0 : null];
      }),
    }));
  const totalOf = (field) => times.map((x) => [x,
    shown.reduce((sum, g) => sum + (byTime.get(g).get(x)?.[field] || 0), 0)]);
  const empty = `No requests in ${spec.words}.`;
  const more = ranked.length > shown.length
    ? `The ${shown.length} busiest of ${ranked.length} groups are drawn; the table lists all.` : null;
  const common = { from, to, empty, note: more };

  const charts = h("section", { class: "charts", "aria-label": "Charts" },
    timeChart({ ...common, title: "Requests", unit: `per ${spec.interval === "1m" ? "minute" : "hour"}`,
      format: num, integer: true, series: seriesOf("requests") }),
    timeChart({ ...common, note: null, title: "Errors and fallbacks", unit: "count", format: num, integer: true,
      series: t.requests ? [
        { name: "errors", color: "#c2410c", points: totalOf("errors") },
        { name: "fallbacks", color: "#d9a21b", dash: true, points: totalOf("fallbacks") },
      ] : [] }),
    timeChart({ ...common, title: "Latency p50 (solid) and p95 (dashed)", unit: "ms", format: ms,
      series: [...seriesOf("latency_p50_ms", { zero: false, suffix: " p50" }),
        ...seriesOf("latency_p95_ms", { zero: false, dash: true, suffix: " p95" })] }),
    timeChart({ ...common, title: "Tokens", unit: "input + output", format: tokens, integer: true,
      series: shown.map((g) => ({ name: label(g), color: color.get(g),
        points: times.map((x) => {
          const p = byTime.get(g).get(x);
          return [x, p ? p.input_tokens + p.output_tokens : 0];
        }) })) }),
    timeChart({ ...common, title: "Cost", unit: "USD", format: usd,
      empty: t.requests ? `Nothing was spent in ${spec.words} (models without a known price cost $0).` : empty,
      series: t.cost_usd > 0 ? seriesOf("cost_usd") : [] }));

  const table = ranked.length
    ? h("div", { class: "table-wrap" }, h("table", null,
      h("caption", null, `By ${GROUPS[by].toLowerCase()}, ${spec.words}`),
      h("thead", null, h("tr", null, [GROUPS[by], "Requests", "Errors", "Fallbacks", "p50", "p95",
        "Input tokens", "Output tokens", "Cost"].map((c, i) => h("th", { scope: "col", class: i ? "num" : null }, c)))),
      h("tbody", null, ranked.map((g) => {
        const gt = g.totals;
        return h("tr", null, h("th", { scope: "row" }, label(g)),
          [num(gt.requests), num(gt.errors), num(gt.fallbacks), ms(gt.latency_p50_ms),
            ms(gt.latency_p95_ms), tokens(gt.input_tokens), tokens(gt.output_tokens), usd(gt.cost_usd)]
            .map((v) => h("td", { class: "num" }, v)));
      }))))
    : null;
  fill(body, cards, charts, table);
  ctx.ready();
}
