// Requests to the router's own origin: reads with the session cookie, writes with the
// session's CSRF token too (the <meta name="csrf-token"> of the page shell).

export const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content || "";

/** An answer that was not 2xx, with the router's error message. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function toLogin() {
  const here = location.pathname + location.search;
  location.assign(`/ui/login?next=${encodeURIComponent(here)}`);
}

async function errorOf(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // not JSON: the status says enough
  }
  const message = body?.error?.message || `${resp.status} ${resp.statusText}`;
  return new ApiError(resp.status, message, body);
}

/** The query string of an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== "") q.set(k, v);
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

/** GET JSON; a lost session goes back to the login form. */
export async function get(path, params, signal) {
  const resp = await fetch(path + query(params), {
    credentials: "same-origin",
    headers: { accept: "application/json" },
    signal,
  });
  if (resp.status === 401) {
    toLogin();
    throw new ApiError(401, "The session ended: log in again.");
  }
  if (!resp.ok) throw await errorOf(resp);
  return resp.json();
}

/** A write (POST/PATCH/DELETE) with a JSON body; the raw Response when `raw`. */
export async function send(method, path, body, { raw = false, signal } = {}) {
  const headers = { accept: "application/json", "x-csrf-token": csrfToken };
  if (body !== undefined) headers["content-type"] = "application/json";
  const resp = await fetch(path, {
    method,
    credentials: "same-origin",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (raw) return resp;
  if (resp.status === 401) toLogin();
  if (!resp.ok) throw await errorOf(resp);
  return resp.status === 204 ? null : resp.json();
}
