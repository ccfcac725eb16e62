// Playground: send a chat to a route or model and watch who answers. Requests go to
// POST /ui/api/playground (the session stands in for a key there, and only there); the
// answer streams in, the x-modelrouter-* headers say who served it after how many
// attempts, and the call log's record then shows the whole attempt trail.

import { get, send } from "../api.js";
import { h, fill, note, badge, statusTone, facts, ms } from "../dom.js";
import { timeline } from "./request.js";

const TRAIL_WAIT_MS = 4000;

function modelSelect(data, chosen) {
  const chat = data.filter((m) => m.modelrouter?.kind === "route" || m.modelrouter?.mode !== "embedding");
  const routes = chat.filter((m) => m.modelrouter?.kind === "route");
  const models = chat.filter((m) => m.modelrouter?.kind === "model");
  return h("select", { id: "pg-model", name: "model", required: true },
    routes.length ? h("optgroup", { label: "Routes" }, routes.map((m) =>
      h("option", { value: m.id, selected: m.id === chosen }, `${m.id} (${m.modelrouter.models.join(" → ")})`))) : null,
    models.length ? h("optgroup", { label: "Models" }, models.map((m) =>
      h("option", { value: m.id, selected: m.id === chosen }, `${m.id} (${m.modelrouter.provider}, ${m.modelrouter.state})`))) : null);
}

async function* sseEvents(resp) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
      const data = block.split(/\r?\n/).filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      if (data) yield data;
    }
  }
}

async function trailOf(requestId, signal) {
  // The record is written by the call log's batch writer a moment after the answer ends.
  const until = Date.now() + TRAIL_WAIT_MS;
  for (;;) {
    try {
      return await get(`/admin/logs/${encodeURIComponent(requestId)}`, null, signal);
    } catch (err) {
      if (err.status !== 404 || Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export async function render(view, ctx) {
  let data = [];
  let problem = null;
  try {
    data = (await get("/ui/api/models", null, ctx.signal)).data;
  } catch (err) {
    if (err.name === "AbortError") return;
    problem = err.message;
  }
  const chosen = ctx.query.get("model") || data.find((m) => m.modelrouter?.kind === "route")?.id;
  const select = modelSelect(data, chosen);
  const system = h("textarea", { id: "pg-system", name: "system", rows: 2, placeholder: "optional" });
  const message = h("textarea", { id: "pg-message", name: "message", rows: 4, required: true },
    "Say hello in five words.");
  const stream = h("input", { type: "checkbox", id: "pg-stream", name: "stream", checked: true });
  const maxTokens = h("input", { id: "pg-max", name: "max_tokens", type: "number", min: 1, placeholder: "default" });
  const sendButton = h("button", { type: "submit" }, "Send");
  const stop = h("button", { type: "button", class: "secondary", disabled: true }, "Stop");
  const headers = h("div", { class: "pg-headers", "aria-live": "polite" },
    h("p", { class: "note" }, "Send a message: who answered, after how many attempts, and the answer itself show here."));
  const answer = h("div", { class: "pg-answer", "aria-live": "polite", "aria-label": "Answer" });
  const trail = h("div", { class: "pg-trail" });
  const form = h("form", { class: "playground", "aria-label": "Chat" },
    h("div", { class: "field" }, h("label", { for: "pg-model" }, "Route or model"), select),
    h("div", { class: "field" }, h("label", { for: "pg-system" }, "System prompt"), system),
    h("div", { class: "field" }, h("label", { for: "pg-message" }, "Message"), message),
    h("div", { class: "field inline" },
      h("label", { class: "check", for: "pg-stream" }, stream, " Stream the answer"),
      h("span", { class: "inline-pair" }, h("label", { for: "pg-max" }, "Max tokens"), maxTokens)),
    h("div", { class: "buttons" }, sendButton, stop),
    h("p", { class: "small muted" },
      "Sent as an unrestricted call through the router (tagged “playground” in the logs): no API key needed here."));
  fill(view, h("div", { class: "page-head" }, h("h1", null, "Playground")),
    problem ? note(`Models are not available: ${problem}`, "bad") : null,
    h("div", { class: "pg-layout" }, form,
      h("section", { class: "pg-out", "aria-label": "Result" }, headers, answer, trail)));

  let running = null;
  stop.addEventListener("click", () => running?.abort());
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    running = new AbortController();
    ctx.signal.addEventListener("abort", () => running?.abort());
    sendButton.disabled = true;
    stop.disabled = false;
    fill(headers, h("p", { class: "muted" }, "Sending…"));
    fill(answer);
    fill(trail);
    const messages = [];
    if (system.value.trim()) messages.push({ role: "system", content: system.value });
    messages.push({ role: "user", content: message.value });
    const body = { model: select.value, messages, stream: stream.checked };
    if (stream.checked) body.stream_options = { include_usage: true };
    if (maxTokens.value) body.max_tokens = parseInt(maxTokens.value, 10);
    const started = performance.now();
    let requestId = null;
    try {
      const resp = await send("POST", "/ui/api/playground", body, { raw: true, signal: running.signal });
      requestId = resp.headers.get("x-request-id");
      const served = resp.headers.get("x-modelrouter-model");
      fill(headers, facts([
        ["Status", badge(String(resp.status), statusTone(resp.status))],
        ["Served by", served ? `${served} (${resp.headers.get("x-modelrouter-provider")})` : "no model"],
        ["Attempts", resp.headers.get("x-modelrouter-attempts") || "–"],
        ["Request id", h("a", { href: `/ui/logs/${encodeURIComponent(requestId)}`, class: "mono" }, requestId)],
        ["First byte", ms(performance.now() - started)],
      ]));
      headers.dataset.model = served || "";
      if (!resp.ok) {
        const err = await resp.json().catch(() => null);
        fill(answer, note(err?.error?.message || `HTTP ${resp.status}`, "bad"));
        if (err?.error?.attempts) fill(trail, h("h2", null, "Attempts"), timeline(err.error.attempts));
        return;
      }
      const text = h("p", { class: "answer-text" });
      fill(answer, text);
      if (resp.headers.get("content-type")?.startsWith("text/event-stream")) {
        for await (const data of sseEvents(resp)) {
          if (data === "[DONE]") break;
          const chunk = JSON.parse(data);
          if (chunk.error) {
            answer.append(note(`The stream failed: ${chunk.error.message}`, "bad"));
            break;
          }
          const delta = chunk.choices?.[0]?.delta?.content;
          if (delta) text.append(delta);
        }
      } else {
        const done = await resp.json();
        text.append(done.choices?.[0]?.message?.content ?? "");
      }
      headers.append(h("p", { class: "small muted" }, `Done in ${ms(performance.now() - started)}.`));
    } catch (err) {
      if (err.name === "AbortError") {
        answer.append(note("Stopped.", "warn"));
      } else {
        answer.append(note(err.message, "bad"));
      }
    } finally {
      sendButton.disabled = false;
      stop.disabled = true;
    }
    if (!requestId || !ctx.isCurrent()) return;
    fill(trail, h("p", { class: "muted small" }, "Reading the attempt trail from the call log…"));
    try {
      const record = await trailOf(requestId, ctx.signal);
      fill(trail, h("h2", null, "Attempt trail"), timeline(record.attempts || [], record.latency_ms));
      trail.dataset.ready = "1";
    } catch (err) {
      if (err.name !== "AbortError") fill(trail, note(`No attempt trail: ${err.message}`, "idle"));
    }
  });
  ctx.ready();
}
