// One request: its record and its attempt trail as a timeline (GET /admin/logs/{id}).

import { get } from "../api.js";
import { h, fill, note, badge, statusTone, facts, ms, usd, num, when } from "../dom.js";

const OUTCOME_TONE = { ok: "ok", skipped: "idle" };

/** The attempts laid end to end on one time axis (they run one after another). */
export function timeline(attempts, totalMs) {
  if (!attempts.length) {
    return note("No model was tried: the router refused the request before any upstream call.");
  }
  const sum = attempts.reduce((t, a) => t + (a.duration_ms || 0), 0);
  const scale = Math.max(sum, totalMs || 0, 1);
  let start = 0;
  const items = attempts.map((a, i) => {
    const tone = OUTCOME_TONE[a.outcome] || "bad";
    const bar = h("div", { class: `bar ${tone}`, role: "presentation" });
    bar.style.setProperty("--start", `${(start / scale) * 100}%`);
    bar.style.setProperty("--width", `${Math.max(0.5, ((a.duration_ms || 0) / scale) * 100)}%`);
    start += a.duration_ms || 0;
    return h("li", { class: "attempt", dataset: { model: a.model, outcome: a.outcome } },
      h("div", { class: "attempt-head" },
        h("span", { class: "attempt-n" }, `${i + 1}.`),
        h("strong", { class: "attempt-model" }, a.model),
        h("span", { class: "muted" }, ` via ${a.provider}`),
        " ", badge(a.outcome, tone),
        a.status !== null && a.status !== undefined ? badge(String(a.status), statusTone(a.status)) : null,
        h("span", { class: "attempt-ms" }, ms(a.duration_ms))),
      h("div", { class: "track" }, bar),
      a.error ? h("div", { class: "small wrap attempt-error" }, a.error) : null);
  });
  return h("ol", { class: "timeline", "aria-label": "Attempt trail, in order" }, items,
    h("li", { class: "axis-note muted small", "aria-hidden": "true" },
      `0 ms → ${ms(scale)} (bars are each attempt's share of the request's time)`));
}

export async function render(view, ctx) {
  const [id] = ctx.params;
  fill(view, h("p", null, h("a", { href: "/ui/logs" }, "← Logs")),
    h("h1", null, "Request"), h("p", { class: "muted" }, "Loading…"));
  let r;
  try {
    r = await get(`/admin/logs/${encodeURIComponent(id)}`, null, ctx.signal);
  } catch (err) {
    if (err.name === "AbortError") return;
    fill(view, h("p", null, h("a", { href: "/ui/logs" }, "← Logs")), h("h1", null, "Request"),
      note(err.status === 404
        ? `No record of request ${id}. Records appear within a second of the request's end; older ones may be past retention.`
        : err.message, "bad"));
    ctx.ready();
    return;
  }
  const cost = r.price_unknown ? [usd(r.cost_usd), h("span", { class: "muted small" }, " (price unknown)")]
    : usd(r.cost_usd);
  const tokenText = `${num(r.input_tokens)} in · ${num(r.output_tokens)} out · ${num(r.cached_tokens)} cached`
    + (r.usage_estimated ? " (estimated)" : "");
  fill(view,
    h("p", null, h("a", { href: "/ui/logs" }, "← Logs")),
    h("h1", null, "Request ", h("span", { class: "mono" }, r.request_id)),
    h("section", { "aria-label": "Summary" }, facts([
      ["Status", [badge(String(r.status), statusTone(r.status)), r.error_code ? ` ${r.error_code}` : ""]],
      ["Time", when(r.ts)],
      ["Served by", r.model ? `${r.model} (${r.provider})` : "no model"],
      ["Asked for", r.requested_model || "–"],
      ["Route", r.route || "–"],
      ["Key", r.key_name || r.key_id || "–"],
      ["Team", r.team || "–"],
      ["Latency", ms(r.latency_ms)],
      ["Time to first token", r.stream ? ms(r.ttft_ms) : "not streamed"],
      ["Tokens", tokenText],
      ["Cost", cost],
      ["Fallbacks", num(r.fallbacks)],
      ["Door", `${r.surface} ${r.endpoint}`],
      ["User", r.user || "–"],
      ["Tags", r.tags && r.tags.length ? r.tags.join(", ") : "–"],
    ])),
    h("section", { "aria-labelledby": "trail-h" },
      h("h2", { id: "trail-h" }, "Attempt trail"), timeline(r.attempts || [], r.latency_ms)),
    r.request_body || r.response_body
      ? h("section", { "aria-labelledby": "bodies-h" }, h("h2", { id: "bodies-h" }, "Bodies"),
        r.request_body ? h("details", null, h("summary", null, "Request"), h("pre", null, r.request_body)) : null,
        r.response_body ? h("details", null, h("summary", null, "Answer"), h("pre", null, r.response_body)) : null)
      : null);
  ctx.ready();
}
