"""Shared HTTP plumbing for providers that talk to a real upstream.

The wire itself is :mod:`providers.lean`; this module turns error answers into
classified :class:`ProviderError` values and SSE bodies into whole events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from providers.base import Failure, ProviderError
from providers.failures import parse_retry_after
from providers.lean import Body
from providers.transport import Reply, Transport

MAX_ERROR_BODY = 64 * 1024
"""Upstream error bodies are read up to this size; the rest is not needed."""


def endpoint_label(url: str) -> str:
    """``host:port`` of a URL: safe to show (no path, query or credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


Classifier = Callable[[int, bytes], Failure]
"""Maps an upstream non-2xx status and body to a failure class (see :func:`classify_status`)."""


def status_error(
    status: int, headers: Mapping[str, str], body: bytes, label: str, classify: Classifier
) -> ProviderError:
    """The classified :class:`ProviderError` for an upstream error answer."""
    detail = error_message(body)
    message = f"upstream {status} ({label})" + (f": {detail}" if detail else "")
    return ProviderError(
        classify(status, body),
        message,
        status=status,
        retry_after=parse_retry_after(headers) if status in (429, 503, 529) else None,
        body=body,
    )


async def send_checked(
    origin: Transport,
    method: str,
    path: str,
    headers: bytes,
    body: Body,
    connect_timeout: float,
    classify: Classifier,
    refine: Callable[[ProviderError], ProviderError] | None = None,
) -> Reply:
    """Send a request; raise the classified (and ``refine``-d) error of a non-2xx answer.

    A 3xx is an error too: redirects are not followed (the configured URL is wrong),
    and ``classify`` gets its status like any other. 1xx never get here (the client
    skips them).
    """
    resp = await origin.request(method, path, headers, body, connect_timeout)
    if not 200 <= resp.status < 300:
        try:
            raw = await resp.read(MAX_ERROR_BODY)
        finally:
            resp.release()
        err = status_error(resp.status, resp.headers, raw, origin.label, classify)
        raise refine(err) if refine is not None else err
    return resp


HOPS_HEADER = "x-modelrouter-hops"
"""How many routers a request has passed through: each adds one when it calls upstream."""
_HOP_LINES = tuple(f"{HOPS_HEADER}: {n}\r\n".encode() for n in range(16))


def hop_line(hops: int) -> bytes:
    """The ``x-modelrouter-hops`` header line for a request that has made ``hops`` hops."""
    return (
        _HOP_LINES[hops] if 0 <= hops < len(_HOP_LINES) else f"{HOPS_HEADER}: {hops}\r\n".encode()
    )


def error_message(body: bytes) -> str:
    """The human message inside an upstream error body, whatever the vendor's shape."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace").strip()
    err: Any = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        msg = err.get("message") or err.get("type") or ""
        return str(msg)[:500]
    return str(err)[:500]


def auth_headers(api_key: str | None, extra: Mapping[str, str]) -> dict[str, str]:
    """Bearer auth plus configured headers, built once per provider."""
    headers = {"Content-Type": "application/json", **extra}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers
