"""The dashboard's routes: pages, login and logout, its data endpoints, its files.

* ``GET /ui``, ``/ui/models``, ``/ui/logs``, ``/ui/logs/{id}``, ``/ui/keys``,
  ``/ui/playground``: the page shell (a session needed, else a redirect to the login form);
* ``GET /ui/login``, ``POST /ui/login``: the form; an admin key in, a session cookie out;
* ``POST /ui/logout``: ends the session (CSRF token in the form or the header);
* ``GET /ui/api/health``, ``/ui/api/models``, ``POST /ui/api/playground``: see
  :mod:`modelrouter.ui.data`;
* ``GET /ui/static/...``: the CSS and JavaScript (no session needed: they are the
  package's own files).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from modelrouter.api.common import read_body
from modelrouter.api.session import CSRF_HEADER, Sessions, cookie_header, sessions_for
from modelrouter.errors import RouterError
from modelrouter.frontdoor import FrontDoor
from modelrouter.ui.data import data_routes
from modelrouter.ui.pages import STATIC, login_page, redirect, safe_next, shell, static_app
from modelrouter.ui.throttle import LoginThrottle, retry_text

PAGES = ("/ui", "/ui/", "/ui/models", "/ui/logs", "/ui/logs/{request_id:path}", "/ui/keys")
"""Paths that serve the page shell (the browser draws the page it names)."""
PLAYGROUND = "/ui/playground"
FORM_MAX_MB = 0.01
"""A login or logout form is a few hundred bytes."""
WRONG_KEY = "That is not an admin key of this router (server.admin_keys)."


def _client(http: Request) -> str:
    # As uvicorn sees it: the peer, or what a trusted proxy says (--forwarded-allow-ips).
    return http.client.host if http.client else "unknown"


async def _form(http: Request) -> dict[str, str]:
    try:
        raw = await read_body(http, FORM_MAX_MB)
    except RouterError:
        return {}
    fields = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=10)
    return {name: values[0] for name, values in fields.items()}


def ui_routes(
    door: FrontDoor,
    admin_keys: list[str],
    *,
    throttle_clock: Callable[[], float] = time.monotonic,
) -> list[BaseRoute]:
    """The dashboard's routes, or none when no admin key is configured (``/ui`` is 404)."""
    if not admin_keys:
        return []
    sessions: Sessions = sessions_for(tuple(admin_keys))
    throttle = LoginThrottle(throttle_clock)
    keys = [k.encode() for k in admin_keys]

    def matching_key(given: str) -> str | None:
        found = None
        for key, text in zip(keys, admin_keys, strict=True):
            if hmac.compare_digest(given.encode(), key):  # every key compared
                found = text
        return found

    async def page(http: Request) -> Response:
        session = sessions.of(http)
        if session is None:
            wanted = http.url.path + (f"?{http.url.query}" if http.url.query else "")
            return redirect("/ui/login?next=" + quote(safe_next(wanted), safe="/"))
        return shell(session.csrf)

    async def login_form(http: Request) -> Response:
        if sessions.of(http) is not None:
            return redirect(safe_next(http.query_params.get("next")))
        message = "You are logged out." if "out" in http.query_params else ""
        return login_page(message, safe_next(http.query_params.get("next")))

    async def login(http: Request) -> Response:
        form = await _form(http)
        next_path = safe_next(form.get("next"))
        client = _client(http)
        wait = throttle.wait_s(client)
        if wait > 0:
            message = f"Too many wrong keys from your address: try again in {retry_text(wait)}."
            answer = login_page(message, next_path, status=429)
            answer.headers["retry-after"] = str(max(1, round(wait)))
            return answer
        key = matching_key(form.get("key", "").strip())
        if key is None:
            lock = throttle.failed(client)
            message = WRONG_KEY
            if lock > 0:
                message += f" Too many wrong keys: wait {retry_text(lock)} before the next try."
            return login_page(message, next_path, status=401)
        throttle.succeeded(client)
        value, _ = sessions.open(key)
        answer = redirect(next_path)
        answer.headers["set-cookie"] = cookie_header(value, http)
        return answer

    async def logout(http: Request) -> Response:
        session = sessions.of(http)
        if session is not None:
            form = await _form(http)
            given = http.headers.get(CSRF_HEADER) or form.get("csrf", "")
            if not hmac.compare_digest(given.encode(), session.csrf.encode()):
                return login_page("Logout refused: the page was stale. Try again.", status=403)
            sessions.end(session)
        answer = redirect("/ui/login?out=1")
        answer.headers["set-cookie"] = cookie_header("", http, max_age=0)
        return answer

    static = StaticFiles(directory=STATIC)
    return [
        *(Route(path, page, methods=["GET"]) for path in (*PAGES, PLAYGROUND)),
        Route("/ui/login", login_form, methods=["GET"]),
        Route("/ui/login", login, methods=["POST"]),
        Route("/ui/logout", logout, methods=["POST"]),
        *data_routes(door, sessions),
        Mount("/ui/static", app=static_app(static)),
    ]
