// Keys and teams: the admin API of CONTRACT.md §5 (/admin/keys, /admin/teams). Lists
// with spend against budget, a form to create a key (its secret shown here once), revoke
// and rotate with an inline confirmation, teams made at run time.

import { get, send } from "../api.js";
import { h, fill, note, badge, usd, num, ago, when } from "../dom.js";

const PERIODS = ["month", "week", "day", "total"];
const PERIOD_WORDS = { day: "today", week: "this week", month: "this month", total: "in total" };
const GRACE = [["0", "at once"], ["300", "after 5 minutes"], ["3600", "after 1 hour"],
  ["86400", "after 24 hours"]];

/** Spend against budget: a bar when there is a budget, else the spend alone. */
export function spendBar(item) {
  const spent = item.spend_usd ?? 0;
  if (item.budget_usd === null || item.budget_usd === undefined) {
    return h("div", { class: "spend" }, h("span", null, `${usd(spent)} spent`),
      h("span", { class: "muted small" }, " · no budget"));
  }
  const share = item.budget_usd > 0 ? Math.min(1, spent / item.budget_usd) : 1;
  const tone = share >= 1 ? "bad" : share >= 0.8 ? "warn" : "ok";
  const fillBar = h("div", { class: `spend-fill ${tone}` });
  fillBar.style.setProperty("--share", `${(share * 100).toFixed(1)}%`);
  const text = `${usd(spent)} of ${usd(item.budget_usd)} ${PERIOD_WORDS[item.budget_period] || item.budget_period}`;
  return h("div", { class: "spend" },
    h("div", { class: "spend-track", role: "img", "aria-label": `${text} (${Math.round(share * 100)}%)` }, fillBar),
    h("div", { class: "small" }, text));
}

function limitsText(item) {
  const parts = [];
  if (item.rpm !== null && item.rpm !== undefined) parts.push(`${num(item.rpm)} rpm`);
  if (item.tpm !== null && item.tpm !== undefined) parts.push(`${num(item.tpm)} tpm`);
  return parts.length ? parts.join(" · ") : "none";
}

function modelsText(models) {
  return models && models.length ? models.join(", ") : "all";
}

function field(id, label, input, hint) {
  return h("div", { class: "field" }, h("label", { for: id }, label), input,
    hint ? h("div", { class: "small muted", id: `${id}-hint` }, hint) : null);
}

/** The fields shared by the key and team forms (limits and models). */
function limitFields(prefix) {
  return [
    field(`${prefix}-models`, "Models", h("input", { id: `${prefix}-models`, name: "models",
      placeholder: "all", "aria-describedby": `${prefix}-models-hint` }), "names or globs, comma-separated"),
    field(`${prefix}-rpm`, "Requests/min", h("input", { id: `${prefix}-rpm`, name: "rpm", type: "number", min: 1 })),
    field(`${prefix}-tpm`, "Tokens/min", h("input", { id: `${prefix}-tpm`, name: "tpm", type: "number", min: 1 })),
    field(`${prefix}-budget`, "Budget (USD)", h("input", { id: `${prefix}-budget`, name: "budget_usd",
      type: "number", min: 0, step: "0.01" })),
    field(`${prefix}-period`, "Budget period", h("select", { id: `${prefix}-period`, name: "budget_period" },
      PERIODS.map((p) => h("option", { value: p }, p)))),
  ];
}

/** A form's values as an admin API body: empty fields left out, numbers as numbers. */
function bodyOf(form) {
  const body = {};
  for (const [name, raw] of new FormData(form)) {
    const v = String(raw).trim();
    if (!v) continue;
    if (name === "models") body.models = v.split(",").map((m) => m.trim()).filter(Boolean);
    else if (name === "rpm" || name === "tpm") body[name] = parseInt(v, 10);
    else if (name === "budget_usd") body[name] = parseFloat(v);
    else body[name] = v;
  }
  if (body.budget_usd === undefined) delete body.budget_period;
  return body;
}

function secretPanel(title, created) {
  const code = h("code", { class: "secret", tabindex: "0" }, created.key);
  const copy = h("button", { type: "button", class: "secondary" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      copy.textContent = "Copied";
    } catch {
      getSelection().selectAllChildren(code);
      copy.textContent = "Selected: press Ctrl+C";
    }
  });
  return h("div", { class: "secret-panel", role: "alert" },
    h("h3", null, title),
    h("p", null, `The secret of key “${created.name}”. It is shown this once: copy it now.`),
    h("div", { class: "secret-row" }, code, copy));
}

/** An action button that asks "sure?" in place before it acts. */
function confirmButton(label, question, choices, act) {
  const box = h("div", { class: "confirm" });
  const start = h("button", { type: "button", class: "secondary small-button" }, label);
  const reset = () => fill(box, start);
  start.addEventListener("click", () => {
    const select = choices ? h("select", { "aria-label": `${label}: when the old secret stops` },
      choices.map(([v, t]) => h("option", { value: v }, t))) : null;
    const yes = h("button", { type: "button", class: "danger small-button" }, `Yes, ${label.toLowerCase()}`);
    const no = h("button", { type: "button", class: "secondary small-button" }, "Cancel");
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        await act(select?.value);
      } catch (err) {
        fill(box, note(err.message, "bad"), start);
      }
    });
    no.addEventListener("click", () => { reset(); start.focus(); });
    fill(box, h("span", { class: "small" }, question), select, yes, no);
    yes.focus();
  });
  reset();
  return box;
}

export async function render(view, ctx) {
  const flash = h("div", { class: "flash" });
  const keysBox = h("div");
  const teamsBox = h("div");
  fill(view, h("div", { class: "page-head" }, h("h1", null, "Keys and teams")), flash,
    h("section", { "aria-labelledby": "keys-h" }, h("h2", { id: "keys-h" }, "Keys"), keysBox),
    h("section", { "aria-labelledby": "teams-h" }, h("h2", { id: "teams-h" }, "Teams"), teamsBox));

  const load = async () => {
    const [keys, teams] = await Promise.allSettled([
      get("/admin/keys", null, ctx.signal), get("/admin/teams", null, ctx.signal)]);
    if (!ctx.isCurrent()) return;
    if (keys.status === "rejected") {
      const why = keys.reason.status === 404 && keys.reason.body?.error?.code === "not_found"
        ? "This router has no key management (GET /admin/keys answered 404): it needs a version with virtual keys."
        : `Keys are not available: ${keys.reason.message}`;
      fill(keysBox, note(why, "bad"));
      fill(teamsBox);
      return;
    }
    const teamNames = teams.status === "fulfilled" ? teams.value.data.map((t) => t.name) : [];
    fill(keysBox, keyTable(keys.value.data, reload, showSecret), keyForm(teamNames, reload, showSecret));
    fill(teamsBox, teams.status === "fulfilled"
      ? [teamTable(teams.value.data, reload), teamForm(reload)]
      : note(`Teams are not available: ${teams.reason.message}`, "bad"));
  };
  const reload = async () => { await load(); };
  const showSecret = (title, created) => {
    fill(flash, secretPanel(title, created));
    flash.querySelector(".secret").focus();
  };
  await load();
  ctx.ready();
}

function keyTable(keys, reload, showSecret) {
  if (!keys.length) return note("No keys yet. Create one below; its secret is shown once.");
  return h("div", { class: "table-wrap" }, h("table", { class: "keys" },
    h("thead", null, h("tr", null, ["Name", "Key", "Team", "Models", "Limits", "Spend", "Last used",
      "Expires", "Status", ""].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", null, keys.map((k) => {
      const status = k.revoked ? badge("revoked", "bad") : k.expired ? badge("expired", "warn")
        : badge("active", "ok");
      const actions = k.read_only || k.revoked
        ? h("span", { class: "muted small" }, k.read_only ? "in the config file" : "")
        : h("div", { class: "actions" },
          confirmButton("Rotate", "New secret; old one stops", GRACE, async (grace) => {
            const created = await send("POST", `/admin/keys/${encodeURIComponent(k.id)}/rotate`,
              { grace_s: parseInt(grace, 10) });
            await reload();
            showSecret("Key rotated", { ...created, name: created.name || k.name });
          }),
          confirmButton("Revoke", "Refuse this key from now on?", null, async () => {
            await send("DELETE", `/admin/keys/${encodeURIComponent(k.id)}`);
            await reload();
          }));
      return h("tr", { dataset: { key: k.name } },
        h("th", { scope: "row" }, k.name, k.source === "config" ? h("div", null, badge("config", "idle")) : null),
        h("td", { class: "mono small" }, k.key_prefix ? `${k.key_prefix}…` : "–"),
        h("td", null, k.team || "–"),
        h("td", { class: "small" }, modelsText(k.models)),
        h("td", { class: "small" }, limitsText(k)),
        h("td", null, spendBar(k)),
        h("td", { class: "small" }, k.last_used_at ? h("time", { datetime: k.last_used_at, title: when(k.last_used_at) }, ago(k.last_used_at)) : "never"),
        h("td", { class: "small" }, k.expires_at ? when(k.expires_at) : "never"),
        h("td", null, status),
        h("td", null, actions));
    }))));
}

function keyForm(teamNames, reload, showSecret) {
  const error = h("div", { "aria-live": "assertive" });
  const form = h("form", { class: "create", "aria-labelledby": "new-key-h" },
    h("h3", { id: "new-key-h" }, "Create a key"),
    h("div", { class: "grid-fields" },
      field("k-name", "Name", h("input", { id: "k-name", name: "name", required: true, autocomplete: "off" })),
      field("k-team", "Team", h("select", { id: "k-team", name: "team" },
        h("option", { value: "" }, "none"), teamNames.map((t) => h("option", { value: t }, t)))),
      limitFields("k"),
      field("k-expires", "Expires", h("input", { id: "k-expires", name: "expires_at", type: "date" }))),
    error, h("button", { type: "submit" }, "Create key"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(error);
    try {
      const created = await send("POST", "/admin/keys", bodyOf(form));
      form.reset();
      await reload();
      showSecret("Key created", created);
    } catch (err) {
      fill(error, note(err.message, "bad"));
    }
  });
  return form;
}

function teamTable(teams, reload) {
  if (!teams.length) return note("No teams. A team shares limits and a budget among its keys.");
  return h("div", { class: "table-wrap" }, h("table", { class: "teams" },
    h("thead", null, h("tr", null, ["Name", "Models", "Limits", "Spend", ""].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", null, teams.map((t) => h("tr", { dataset: { team: t.name } },
      h("th", { scope: "row" }, t.name, t.source === "config" ? h("div", null, badge("config", "idle")) : null),
      h("td", { class: "small" }, modelsText(t.models)),
      h("td", { class: "small" }, limitsText(t)),
      h("td", null, spendBar(t)),
      h("td", null, t.read_only ? h("span", { class: "muted small" }, "in the config file")
        : confirmButton("Delete", "Delete this team?", null, async () => {
          await send("DELETE", `/admin/teams/${encodeURIComponent(t.name)}`);
          await reload();
        })))))));
}

function teamForm(reload) {
  const error = h("div", { "aria-live": "assertive" });
  const form = h("form", { class: "create", "aria-labelledby": "new-team-h" },
    h("h3", { id: "new-team-h" }, "Create a team"),
    h("div", { class: "grid-fields" },
      field("t-name", "Name", h("input", { id: "t-name", name: "name", required: true, autocomplete: "off" })),
      limitFields("t")),
    error, h("button", { type: "submit" }, "Create team"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(error);
    try {
      await send("POST", "/admin/teams", bodyOf(form));
      form.reset();
      await reload();
    } catch (err) {
      fill(error, note(err.message, "bad"));
    }
  });
  return form;
}
