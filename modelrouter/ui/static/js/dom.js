// DOM building and number formatting shared by every page. No innerHTML anywhere:
// record fields (model names, errors, tags) are data, never markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function setAttrs(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (name === "text") {
      node.textContent = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

/** An HTML element: h("a", {href: "/ui"}, "text", child, [more]). */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  return append(node, children);
}

/** An SVG element, same call shape as h(). */
export function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  return append(node, children);
}

/** Replace everything in `node` with `children`. */
export function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

/** 1234 -> "1,234"; null -> "–". */
export function num(v) {
  return v === null || v === undefined ? "–" : integer.format(v);
}

/** Token counts: 1234567 -> "1.2M". */
export function tokens(v) {
  if (v === null || v === undefined) return "–";
  return v < 10000 ? integer.format(v) : compact.format(v);
}

/** Milliseconds: "87 ms", "1.24 s". */
export function ms(v) {
  if (v === null || v === undefined) return "–";
  if (v === 0) return "0 ms";
  if (v < 10) return `${v.toFixed(1)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  return `${(v / 1000).toFixed(v < 10000 ? 2 : 1)} s`;
}

/** US dollars with enough digits to see small spend: "$0.0042". */
export function usd(v) {
  if (v === null || v === undefined) return "–";
  if (v === 0) return "$0";
  const abs = Math.abs(v);
  if (abs >= 100) return `$${v.toFixed(0)}`;
  if (abs >= 1) return `$${v.toFixed(2)}`;
  // Small amounts: three significant digits, no trailing zeros ($0.005, $0.0123).
  const digits = Math.min(12, 2 - Math.floor(Math.log10(abs)));
  return `$${v.toFixed(digits).replace(/0+$/, "")}`;
}

/** Percent of a fraction: 0.125 -> "12.5%". */
export function pct(v) {
  return v === null || v === undefined ? "–" : `${(v * 100).toFixed(v < 0.1 ? 1 : 0)}%`;
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});

/** An ISO time in the viewer's zone: "Mar 3, 14:05:09". */
export function when(iso) {
  return iso ? dateTime.format(new Date(iso)) : "–";
}

/** "3 s ago", "5 min ago", "2 h ago", or the date. */
export function ago(iso, now = Date.now()) {
  if (!iso) return "never";
  const s = Math.round((now - new Date(iso).getTime()) / 1000);
  if (s < 0) return when(iso);
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return when(iso);
}

/** A status badge: the text with a class naming its tone (ok, warn, bad, idle). */
export function badge(text, tone) {
  return h("span", { class: `badge ${tone}` }, text);
}

/** The tone of a model state or breaker as /health names it. */
export function stateTone(state) {
  if (state === "healthy" || state === "closed") return "ok";
  if (state === "open") return "bad";
  if (state === "unknown") return "idle";
  return "warn"; // half_open, degraded, cooling_down
}

/** The tone of an HTTP status. */
export function statusTone(status) {
  if (status >= 200 && status < 300) return "ok";
  if (status === 499 || status === 429) return "warn";
  return "bad";
}

/** A labelled definition list from [label, value] pairs (values may be nodes). */
export function facts(pairs) {
  return h("dl", { class: "facts" },
    pairs.map(([label, value]) => h("div", null, h("dt", null, label), h("dd", null, value))));
}

/** A message box explaining why there is nothing (or something went wrong). */
export function note(text, tone = "idle") {
  return h("p", { class: `note ${tone}`, role: tone === "bad" ? "alert" : null }, text);
}
