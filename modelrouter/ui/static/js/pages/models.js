// Models and routes: live health from GET /ui/api/health (the detailed /health report),
// redrawn every few seconds while the page is open.

import { get } from "../api.js";
import { h, fill, note, badge, stateTone, ms, pct, num, ago, when } from "../dom.js";

const REFRESH_MS = 3000;

function routeCard(name, route, models) {
  return h("article", { class: "route" },
    h("h3", null, name, " ", badge(route.ready ? "ready" : "not ready", route.ready ? "ok" : "bad")),
    h("p", { class: "muted small" }, `strategy: ${route.strategy}`),
    h("ol", { class: "rank", "aria-label": `Models of route ${name}, in the order a request tries them now` },
      route.order.map((m) => {
        const snap = models[m] || {};
        return h("li", null, h("span", { class: "model-name" }, m), " ",
          badge(snap.state || "unknown", stateTone(snap.state)));
      })),
    route.notes && route.notes.length
      ? h("ul", { class: "notes small" }, route.notes.map((n) => h("li", null, String(n))))
      : null);
}

function lastError(err) {
  if (!err) return h("span", { class: "muted" }, "none");
  return h("div", { class: "last-error" },
    h("div", null, badge(err.status ? String(err.status) : err.failure, "bad"), " ",
      h("time", { datetime: err.at, title: when(err.at) }, ago(err.at))),
    h("div", { class: "small wrap" }, `${err.failure}: ${err.message}`));
}

function modelRow(name, m) {
  const ranks = Object.entries(m.ranks || {}).map(([r, i]) => `${r} #${i}`).join(", ");
  const probe = m.last_probe;
  return h("tr", null,
    h("th", { scope: "row" }, name),
    h("td", null, m.provider),
    h("td", null, badge(m.state, stateTone(m.state)),
      m.reason ? h("div", { class: "small muted" }, m.reason) : null),
    h("td", null, badge(m.breaker, stateTone(m.breaker)),
      m.open_until ? h("div", { class: "small muted" }, `until ${when(m.open_until)}`) : null),
    h("td", null, ranks || h("span", { class: "muted" }, "in no route")),
    h("td", { class: "num" }, ms(m.latency_ms?.p50), h("div", { class: "small muted" },
      `p95 ${ms(m.latency_ms?.p95)}`)),
    h("td", { class: "num" }, pct(m.window?.error_rate), h("div", { class: "small muted" },
      `${num(m.window?.failures)} of ${num(m.window?.requests)}`)),
    h("td", { class: "num" }, num(m.totals?.requests)),
    h("td", null, lastError(m.last_error)),
    h("td", null, probe
      ? h("span", null, badge(probe.ok ? "ok" : "failed", probe.ok ? "ok" : "bad"), " ",
        h("time", { datetime: probe.at, title: when(probe.at) }, ago(probe.at)))
      : h("span", { class: "muted" }, "not probed")));
}

function draw(body, report) {
  const models = report.models || {};
  const routes = report.routes || {};
  const names = Object.keys(models);
  fill(body,
    h("p", { class: "status-line" }, "Router status: ",
      badge(report.status, report.status === "ok" ? "ok" : "warn")),
    h("section", { "aria-labelledby": "routes-h" }, h("h2", { id: "routes-h" }, "Routes"),
      Object.keys(routes).length
        ? h("div", { class: "route-grid" }, Object.entries(routes).map(([n, r]) => routeCard(n, r, models)))
        : note("No routes are configured.")),
    h("section", { "aria-labelledby": "models-h" }, h("h2", { id: "models-h" }, "Models"),
      names.length
        ? h("div", { class: "table-wrap" }, h("table", { class: "models" },
          h("thead", null, h("tr", null, ["Model", "Provider", "State", "Breaker", "Rank",
            "Latency p50", "Error rate (window)", "Requests", "Last error", "Last probe"]
            .map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", null, names.map((n) => modelRow(n, models[n])))))
        : note("No models are configured.")));
}

export async function render(view, ctx) {
  const body = h("div", { class: "models-body" });
  const updated = h("span", { class: "muted small", "aria-live": "off" }, "");
  const auto = h("input", { type: "checkbox", id: "auto-refresh", checked: true });
  fill(view, h("div", { class: "page-head" }, h("h1", null, "Models and routes"),
    h("div", { class: "controls" }, h("label", { class: "check", for: "auto-refresh" }, auto,
      ` Refresh every ${REFRESH_MS / 1000} s`), updated)),
    body);
  let timer = null;
  const load = async () => {
    try {
      const report = await get("/ui/api/health", null, ctx.signal);
      if (!ctx.isCurrent()) return;
      draw(body, report);
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      if (err.name === "AbortError") return;
      fill(body, note(`Health is not available: ${err.message}`, "bad"));
    }
  };
  const schedule = () => {
    clearTimeout(timer);
    if (auto.checked && ctx.isCurrent()) timer = setTimeout(async () => { await load(); schedule(); }, REFRESH_MS);
  };
  auto.addEventListener("change", schedule);
  await load();
  ctx.ready();
  schedule();
  return () => clearTimeout(timer);
}
