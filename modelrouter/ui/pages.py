"""The dashboard's HTML answers and the security headers on everything under ``/ui``.

Two pages are rendered on the server, both from files in ``templates/``: the shell every
dashboard page starts from (``index.html``, which carries the session's CSRF token in
a ``<meta>`` tag) and the login form (``login.html``, which carries a message). All
else happens in the browser. The headers keep the pages to their own origin: scripts,
styles, images and requests from ``'self'`` only (no inline script at all), never in a
frame, never cached.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path

from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
"""The dashboard's files (package data)."""
TEMPLATES = Path(__file__).parent / "templates"
"""The two pages filled in on the server."""

CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
"""Only this origin, for everything; ``data:`` images for the favicon-less tab."""
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}
"""Sent with every answer under ``/ui``."""
NO_STORE = {"cache-control": "no-store"}
"""Pages and data: never kept by a browser or proxy (they hold tokens and records)."""
REVALIDATE = {"cache-control": "no-cache"}
"""Static files: kept, but checked (ETag) on every load, so an upgrade shows at once."""


@cache
def _template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def secure(response: Response, *, cache: dict[str, str] = NO_STORE) -> Response:
    """``response`` with the dashboard's security and cache headers."""
    response.headers.update({**SECURITY_HEADERS, **cache})
    return response


def shell(csrf: str) -> Response:
    """The page every dashboard view starts from, carrying the session's CSRF token."""
    page = _template("index.html").replace("__CSRF__", html.escape(csrf))
    return secure(HTMLResponse(page))


def login_page(message: str = "", next_path: str = "/ui", status: int = 200) -> Response:
    """The login form; ``message`` (plain text) is shown above it as an alert."""
    alert = f'<p class="alert" role="alert">{html.escape(message)}</p>' if message else ""
    page = _template("login.html").replace("__MESSAGE__", alert)
    page = page.replace("__NEXT__", html.escape(next_path))
    return secure(HTMLResponse(page, status_code=status))


def redirect(to: str) -> Response:
    """A 303 (GET the other page) with the dashboard's headers."""
    return secure(RedirectResponse(to, status_code=303))


def safe_next(raw: str | None) -> str:
    """Where to go after login: a dashboard path, never another site."""
    if not raw or not raw.startswith("/ui") or "\\" in raw or "//" in raw:
        return "/ui"
    if len(raw) > 3 and raw[3] not in "/?":
        return "/ui"
    return raw[:2000]


def static_app(app: ASGIApp) -> ASGIApp:
    """The static files' app with the dashboard's headers on every answer."""
    headers = {**SECURITY_HEADERS, **REVALIDATE}
    added = [(name.encode(), value.encode()) for name, value in headers.items()]

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        await app(scope, receive, send_secured)

    return serve
