// Logs: the call log newest first, filtered, 50 records a page (GET /admin/logs with its
// cursor). A row opens that request's page. Filters live in the URL, so a filtered
// view can be reloaded, bookmarked and shared.

import { get } from "../api.js";
import { h, fill, note, badge, statusTone, ms, usd, num, when } from "../dom.js";

const PAGE = 50;
const FIELDS = [
  ["model", "Model", "served model"],
  ["route", "Route", "route name"],
  ["key", "Key", "key id"],
  ["team", "Team", "team name"],
];
const SINCE = [["", "any time"], ["15m", "15 minutes"], ["1h", "1 hour"], ["24h", "24 hours"],
  ["7d", "7 days"]];
const STATUSES = ["error", "200", "400", "401", "403", "404", "429", "499", "502", "503", "504"];

function filterForm(q, suggestions, onApply) {
  const inputs = FIELDS.map(([name, label, hint]) => {
    const id = `f-${name}`;
    const list = suggestions[name] ? `${id}-list` : null;
    return h("div", { class: "field" },
      h("label", { for: id }, label),
      h("input", { id, name, value: q.get(name) || "", placeholder: hint, list, autocomplete: "off" }),
      list ? h("datalist", { id: list }, suggestions[name].map((v) => h("option", { value: v }))) : null);
  });
  const status = h("div", { class: "field" }, h("label", { for: "f-status" }, "Status"),
    h("input", { id: "f-status", name: "status", value: q.get("status") || "", list: "f-status-list",
      placeholder: "code or error", autocomplete: "off", inputmode: "text" }),
    h("datalist", { id: "f-status-list" }, STATUSES.map((v) => h("option", { value: v }))));
  const since = h("div", { class: "field" }, h("label", { for: "f-since" }, "Since"),
    h("select", { id: "f-since", name: "since" },
      SINCE.map(([v, label]) => h("option", { value: v, selected: (q.get("since") || "") === v }, label))));
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter the call log" },
    inputs, status, since,
    h("div", { class: "field buttons" }, h("button", { type: "submit" }, "Apply"),
      h("a", { href: "/ui/logs", class: "button secondary" }, "Clear")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v).trim()) params.set(k, String(v).trim());
    onApply(params);
  });
  return form;
}

function row(r, navigate) {
  const href = `/ui/logs/${encodeURIComponent(r.id)}`;
  const tokens = r.input_tokens === null && r.output_tokens === null
    ? "–" : `${num(r.input_tokens)} / ${num(r.output_tokens)}`;
  const link = h("a", { href, class: "row-link" }, when(r.ts));
  // Space follows the link too (Enter does natively), as on a button.
  link.addEventListener("keydown", (e) => {
    if (e.key === " ") { e.preventDefault(); navigate(href); }
  });
  const tr = h("tr", { class: "clickable", dataset: { id: r.id } },
    h("td", null, link),
    h("td", null, badge(String(r.status), statusTone(r.status)),
      r.error_code ? h("div", { class: "small muted" }, r.error_code) : null),
    h("td", null, r.model || h("span", { class: "muted" }, "none")),
    h("td", null, r.route || "–"),
    h("td", null, r.key_name || r.key_id || h("span", { class: "muted" }, "–"),
      r.team ? h("div", { class: "small muted" }, r.team) : null),
    h("td", { class: "num" }, ms(r.latency_ms)),
    h("td", { class: "num" }, tokens),
    h("td", { class: "num" }, usd(r.cost_usd)),
    h("td", { class: "num" }, r.fallbacks ? badge(String(r.fallbacks), "warn") : "0"),
    h("td", { class: "small mono" }, r.request_id));
  tr.addEventListener("click", (e) => {
    if (e.target.closest("a")) return; // the link handles itself
    if (window.getSelection()?.toString()) return; // selecting text, not opening
    navigate(href);
  });
  return tr;
}

export async function render(view, ctx) {
  const q = ctx.query;
  const params = {};
  for (const name of ["model", "route", "key", "team", "status", "since"]) {
    if (q.get(name)) params[name] = q.get(name);
  }
  const list = h("div", { class: "logs-body" });
  const formBox = h("div");
  fill(view, h("div", { class: "page-head" }, h("h1", null, "Logs")), formBox, list);
  const apply = (p) => ctx.navigate(`/ui/logs${p.toString() ? `?${p}` : ""}`);

  const [page, models] = await Promise.allSettled([
    get("/admin/logs", { ...params, limit: PAGE }, ctx.signal),
    get("/ui/api/models", null, ctx.signal),
  ]);
  if (!ctx.isCurrent()) return;
  const data = models.status === "fulfilled" ? models.value.data : [];
  fill(formBox, filterForm(q, {
    model: data.filter((m) => m.modelrouter?.kind === "model").map((m) => m.id),
    route: data.filter((m) => m.modelrouter?.kind === "route").map((m) => m.id),
  }, apply));
  if (page.status === "rejected") {
    if (page.reason.name === "AbortError") return;
    fill(list, note(`The call log is not available: ${page.reason.message}`, "bad"));
    ctx.ready();
    return;
  }
  const first = page.value;
  if (!first.data.length) {
    const filtered = Object.keys(params).length;
    fill(list, note(filtered
      ? "No request matches these filters. Clear them or widen “Since”."
      : "No requests are logged yet. Send one (the Playground can) and it shows here."));
    ctx.ready();
    return;
  }
  const tbody = h("tbody");
  const count = h("p", { class: "muted small", "aria-live": "polite" });
  const more = h("button", { type: "button", class: "secondary" }, "Load more");
  let cursor = first.next_cursor;
  let shown = 0;
  const add = (records) => {
    for (const r of records) tbody.append(row(r, ctx.navigate));
    shown += records.length;
    count.textContent = `${num(shown)} request${shown === 1 ? "" : "s"} shown, newest first${cursor ? "" : " (all of them)"}.`;
    more.hidden = !cursor;
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const next = await get("/admin/logs", { ...params, limit: PAGE, cursor }, ctx.signal);
      cursor = next.next_cursor;
      add(next.data);
    } catch (err) {
      if (err.name !== "AbortError") list.append(note(err.message, "bad"));
    } finally {
      more.disabled = false;
    }
  });
  fill(list,
    h("div", { class: "table-wrap" }, h("table", { class: "logs" },
      h("caption", { class: "visually-hidden" }, "Requests, newest first. Each time opens the request."),
      h("thead", null, h("tr", null, ["Time", "Status", "Model", "Route", "Key", "Latency",
        "Tokens in / out", "Cost", "Fallbacks", "Request id"].map((c, i) =>
        h("th", { scope: "col", class: i >= 5 && i <= 8 ? "num" : null }, c)))),
      tbody)),
    count, more);
  add(first.data);
  ctx.ready();
}
