// The dashboard's router: one page shell, each view drawn by its module.
//
// Links under /ui are followed in place (history.pushState); the back button works.
// A view's render(view, ctx) draws into <main> and may return a cleanup function
// (timers, pending requests). When a view has its data on screen, <body> gets
// data-ready="1" and data-ready-ms (ms since navigation start): what the tests wait
// for and measure.

import { h, fill, note } from "./dom.js";

const VIEWS = [
  [/^\/ui\/?$/, "overview", () => import("./pages/overview.js")],
  [/^\/ui\/models$/, "models", () => import("./pages/models.js")],
  [/^\/ui\/logs$/, "logs", () => import("./pages/logs.js")],
  [/^\/ui\/logs\/(.+)$/, "logs", () => import("./pages/request.js")],
  [/^\/ui\/keys$/, "keys", () => import("./pages/keys.js")],
  [/^\/ui\/playground$/, "playground", () => import("./pages/playground.js")],
];

const main = document.getElementById("view");
let cleanup = null;
let controller = null;
let generation = 0;

function markNav(name) {
  for (const link of document.querySelectorAll("nav a[data-nav]")) {
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** Go to a dashboard path (pushing it on the history unless `replace`). */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  show(true);
}

async function show(moved) {
  const mine = ++generation;
  if (cleanup) cleanup();
  if (controller) controller.abort();
  cleanup = null;
  controller = new AbortController();
  document.body.dataset.ready = "0";
  const path = location.pathname;
  const found = VIEWS.find(([re]) => re.test(path));
  if (!found) {
    markNav(null);
    fill(main, h("h1", null, "No such page"), note(`Nothing is at ${path}.`));
    ready(mine);
    return;
  }
  const [re, name, load] = found;
  markNav(name);
  const ctx = {
    params: path.match(re).slice(1).map(decodeURIComponent),
    query: new URLSearchParams(location.search),
    navigate,
    signal: controller.signal,
    // A view calls this once its data is drawn.
    ready: () => ready(mine),
    isCurrent: () => mine === generation,
  };
  try {
    const module = await load();
    if (mine !== generation) return;
    const view = h("div", { class: "view" });
    fill(main, view);
    cleanup = (await module.render(view, ctx)) || null;
  } catch (err) {
    if (mine !== generation || err.name === "AbortError") return;
    fill(main, h("h1", null, "Something went wrong"), note(String(err.message || err), "bad"));
    ready(mine);
  }
  if (moved) {
    // After a move, put keyboard and screen-reader focus on the new page's heading.
    const heading = main.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
    window.scrollTo(0, 0);
  }
}

function ready(mine) {
  if (mine !== generation) return;
  document.body.dataset.readyMs = String(Math.round(performance.now()));
  document.body.dataset.ready = "1";
}

document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest("a[href]");
  if (!link || link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/ui")) return;
  if (url.pathname.startsWith("/ui/static") || url.pathname.startsWith("/ui/login")) return;
  event.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) {
    navigate(url.pathname + url.search);
  }
});

window.addEventListener("popstate", () => show(true));
show(false);
