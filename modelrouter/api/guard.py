"""The request guard: which hosts, pages and body types may reach any route at all.

Without it, any web page a developer visits could drive a keyless router on
localhost: through DNS rebinding (the page's own name resolves to 127.0.0.1, so the
request carries a foreign ``Host``) or through a "simple" cross-site request (a
foreign ``Origin`` with a ``text/plain`` or form body, which browsers send without
asking first). :class:`Guard` checks every HTTP request before any route runs, the
chat fast path included:

* **Host** must be one the server answers to (:func:`host_rules`): the bound
  ``server.host:port`` (the loopback names ``127.0.0.1``, ``localhost`` and ``[::1]``
  when bound to loopback or to a wildcard address), plus ``server.allowed_hosts``.
  Bound to a wildcard address (``0.0.0.0``, ``::``) the names clients use are
  unknowable, so the check is off unless ``allowed_hosts`` is set. Else 421.
* **Origin**, when sent (browsers send it; SDKs and curl do not), must be the
  request's own host (a page served by this router), an allowed host, or one of
  ``server.cors_origins``. Else 403.
* **Content type**: ``POST``/``PUT``/``PATCH`` under ``/v1/`` and ``/admin/`` must be JSON
  (``application/json`` or ``application/*+json``, any parameters). Else 415. A
  missing ``Content-Type`` is accepted: some clients send none, and a browser that
  sends none (an ``ArrayBuffer`` body) also sends ``Origin``, which is checked above.
  ``/mcp`` is left to the MCP SDK, which has its own content-type rule.
* **CORS** for ``server.cors_origins``: preflights answered here, and answers carry
  ``Access-Control-Allow-Origin`` and expose the router's headers.

Errors use OpenAI's shape (Anthropic's under ``/v1/messages``). Cost on the hot path
(no ``Origin``, JSON body): one pass over the header names and a set lookup, under a
microsecond.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelrouter.api.common import error_response, request_id
from modelrouter.api.messages import MESSAGES_PREFIX, anthropic_error
from modelrouter.errors import RouterError
from modelrouter.settings import ServerSettings

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
"""Bind addresses that mean "this machine only"."""
WILDCARD = frozenset({"0.0.0.0", "::", "[::]", ""})
"""Bind addresses that mean "every interface"."""
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
"""How clients on this machine name it in ``Host``."""

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_PREFIXES = ("/v1/", "/admin/")
"""Paths whose bodies must be JSON (every ``/v1`` and ``/admin`` endpoint takes JSON)."""

ALLOW_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = (
    "authorization",
    "content-type",
    "x-request-id",
    "x-modelrouter-models",
    "x-modelrouter-tags",
    "x-api-key",
    "anthropic-version",
    "anthropic-beta",
    "mcp-protocol-version",
    "mcp-session-id",
    "last-event-id",
)
"""Request headers a preflight always allows; it also allows whatever else it is asked
for, since the origin is trusted (the openai JS SDK sends ``x-stainless-*``)."""
EXPOSE_HEADERS = (
    "x-request-id, x-modelrouter-model, x-modelrouter-provider, x-modelrouter-attempts, "
    "x-modelrouter-ignored, request-id, retry-after, x-should-retry, "
    "x-ratelimit-limit-requests, x-ratelimit-remaining-requests, "
    "x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, "
    "x-ratelimit-reset-tokens"
)
"""Response headers a cross-origin page may read (those README.md documents, rate limits)."""
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
"""An HTTP header name; anything else a preflight asks for is not echoed."""
MAX_AGE = "600"
"""Seconds a browser may cache a preflight answer."""


def url_host(host: str) -> str:
    """``host`` as it appears in a URL or ``Host`` header (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def split_host(value: str) -> tuple[str, str]:
    """``name[:port]`` → ``(name, port)``; ``port`` is ``""`` when absent."""
    if value.startswith("["):
        name, _, rest = value.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else ""
    name, _, port = value.partition(":")
    return name, port


@dataclass(frozen=True)
class HostRules:
    """The ``Host`` values the server answers to.

    ``exact`` holds ``name:port`` (and bare ``name`` on port 80) strings; names in
    ``any_port`` match with any port or none. ``patterns`` is the same in the MCP SDK's
    notation (``name:*`` for any port), in configuration order.
    """

    check: bool
    """False: any Host passes (wildcard bind without ``allowed_hosts``, or ``"*"``)."""
    exact: frozenset[str]
    any_port: frozenset[str]
    patterns: tuple[str, ...]
    extra: tuple[str, ...]
    """The patterns that came from ``server.allowed_hosts``."""

    def allows(self, value: str) -> bool:
        """Whether a lower-case ``host[:port]`` is one of these hosts."""
        return value in self.exact or split_host(value)[0] in self.any_port


def host_rules(server: ServerSettings) -> HostRules:
    """The Host rules for the configured address (see the module docstring)."""
    host, port = server.host.strip().lower(), server.port
    names = LOOPBACK_NAMES if host in LOOPBACK | WILDCARD else (url_host(host),)
    exact: set[str] = set()
    any_port: set[str] = set()
    patterns: list[str] = []
    for name in names:
        if port == 0:
            # The OS picks the port, known only after binding: any port of these names.
            any_port.add(name)
            patterns.append(f"{name}:*")
        else:
            exact.add(f"{name}:{port}")
            patterns.append(f"{name}:{port}")
            if port == 80:
                exact.add(name)  # clients leave the default port out of Host
                patterns.append(name)
    extra: list[str] = []
    for entry in server.allowed_hosts:
        if entry == "*":
            continue
        name, entry_port = split_host(entry)
        if entry_port:
            exact.add(entry)
            extra.append(entry)
        else:
            any_port.add(name)
            extra += [name, f"{name}:*"]
    check = "*" not in server.allowed_hosts and (host not in WILDCARD or bool(extra))
    return HostRules(
        check, frozenset(exact), frozenset(any_port), (*patterns, *extra), tuple(extra)
    )


def is_json(content_type: bytes) -> bool:
    """Whether a ``Content-Type`` names JSON: ``application/json`` or ``application/*+json``."""
    mime = content_type.split(b";", 1)[0].strip().lower()
    return mime == b"application/json" or (
        mime.startswith(b"application/") and mime.endswith(b"+json")
    )


def _shown(value: bytes) -> str:
    # Header values go into messages only printable and short.
    text = value.decode("latin-1")[:100]
    return repr(text) if text.isprintable() else "(unprintable)"


class Guard:
    """Host, Origin, content-type and CORS checks in front of ``app`` (module docstring).

    The app that serves calls :meth:`check` first for every HTTP request (see
    :class:`modelrouter.app.RouterApp`); ``app`` is what a CORS answer wraps.
    """

    def __init__(self, app: ASGIApp, server: ServerSettings) -> None:
        self.app = app
        self.rules = host_rules(server)
        self._check_host = self.rules.check
        # Bytes, to compare with raw header values without decoding them.
        self._hosts = frozenset(h.encode() for h in self.rules.exact)
        self._any_origin = "*" in server.cors_origins
        self._cors = frozenset(o.encode() for o in server.cors_origins if o != "*")

    def check(self, scope: Scope) -> ASGIApp | None:
        """``None`` if an HTTP request may go on as it is, else the ASGI app that answers it.

        That app is a refusal, a preflight answer, or ``app`` with CORS headers added.
        """
        # One pass comparing names: measured in the whole server, cheaper than building
        # a dict (which hashes every header name). Where a header is repeated the last
        # one wins; browsers, the threat here, never repeat these.
        host = origin = ctype = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
            elif name == b"content-type":
                ctype = value
        if self._check_host and host not in self._hosts and not self._host_ok(host):
            shown = _shown(host) if host is not None else "(none)"
            return _refusal(
                RouterError(
                    421,
                    f"Host {shown} is not a name this server answers to (DNS-rebinding "
                    "protection). Add it to server.allowed_hosts if you reach the router "
                    "by that name.",
                    code="host_not_allowed",
                )
            )
        if origin is not None:
            return self._cross_origin(scope, origin, host, _refused_type(scope, ctype))
        if ctype is None or ctype == b"application/json":
            return None  # the usual request: ends here
        bad = _refused_type(scope, ctype)
        return None if bad is None else _refusal(_unsupported(bad))

    def _host_ok(self, host: bytes | None) -> bool:
        return host is not None and self.rules.allows(host.decode("latin-1").lower())

    def _origin_ok(self, origin: bytes, host: bytes | None) -> bool:
        scheme, sep, rest = origin.decode("latin-1").lower().partition("://")
        if not sep or scheme not in ("http", "https") or "/" in rest:
            return False  # "null" (sandboxed frames, file: pages) and anything odd
        if host is not None and rest == host.decode("latin-1").lower():
            return True  # a page this router served itself
        return self.rules.allows(rest)

    def _cross_origin(
        self, scope: Scope, origin: bytes, host: bytes | None, bad_type: bytes | None
    ) -> ASGIApp | None:
        """Browsers only: the Origin check, then preflights and CORS headers."""
        cors = self._any_origin or origin in self._cors
        if not cors and not self._origin_ok(origin, host):
            return _refusal(
                RouterError(
                    403,
                    f"Origin {_shown(origin)} may not call this router. To let a web app "
                    "call it from the browser, add its origin to server.cors_origins.",
                    type="permission_error",
                    code="origin_not_allowed",
                )
            )
        answer = None if bad_type is None else _refusal(_unsupported(bad_type))
        if not cors:
            return answer
        headers = Headers(scope=scope)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            return _preflight(origin, headers.get("access-control-request-headers", ""))
        return _with_cors(answer or self.app, origin)


def _refused_type(scope: Scope, ctype: bytes | None) -> bytes | None:
    """``ctype`` if this request's body must be JSON and it is not, else ``None``."""
    if ctype is None or scope["method"] not in BODY_METHODS:
        return None
    if not scope["path"].startswith(JSON_PREFIXES) or is_json(ctype):
        return None
    return ctype


def _refusal(err: RouterError) -> ASGIApp:
    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        # The Anthropic door answers every error in Anthropic's shape, these included.
        anthropic = scope["path"].startswith(MESSAGES_PREFIX)
        render = anthropic_error if anthropic else error_response
        response = render(err, request_id(Request(scope)))
        await response(scope, receive, send)

    return refuse


def _unsupported(ctype: bytes) -> RouterError:
    return RouterError(
        415,
        f"Content type {_shown(ctype)} is not JSON. Send the body as JSON with "
        "'Content-Type: application/json' (curl: add -H 'Content-Type: application/json').",
        code="unsupported_media_type",
    )


def _preflight(origin: bytes, requested: str) -> ASGIApp:
    allowed = list(ALLOW_HEADERS)
    for name in requested.split(","):
        name = name.strip().lower()
        if _TOKEN.fullmatch(name) and name not in allowed:
            allowed.append(name)
    headers = {
        "access-control-allow-origin": origin.decode("latin-1"),
        "access-control-allow-methods": ALLOW_METHODS,
        "access-control-allow-headers": ", ".join(allowed),
        "access-control-max-age": MAX_AGE,
        "vary": "Origin",
    }
    return Response(status_code=204, headers=headers)


def _with_cors(app: ASGIApp, origin: bytes) -> ASGIApp:
    added = [
        (b"access-control-allow-origin", origin),
        (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
        (b"vary", b"Origin"),
    ]

    async def cors(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        await app(scope, receive, send_with_cors)

    return cors
