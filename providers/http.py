"""Shared HTTP plumbing for providers that talk to a real upstream.

The wire itself is :mod:`providers.lean`; this module turns error answers into
classified :class:`ProviderError` values and SSE bodies into whole events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
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


MAX_EVENT_BYTES = 4 << 20
"""Largest SSE event :func:`sse_events` passes on (a completion chunk is a few KB)."""


async def sse_events(
    chunks: AsyncIterator[bytes], max_event_bytes: int = MAX_EVENT_BYTES
) -> AsyncIterator[bytes]:
    """Split an SSE body into whole events, each returned with a ``\\n\\n`` terminator.

    Chunk boundaries on the wire do not matter: events come out one by one, never
    merged or split, so a client sees exactly the upstream's events. Lines may end in
    CRLF, LF or CR (the SSE spec's three); events come out with LF only. Blank lines
    between events are dropped. An event longer than ``max_event_bytes`` (line ends
    counted, terminator not) fails as ``MALFORMED``. Linear in the body's size,
    however the events and chunks fall.
    """
    buf = bytearray()  # the start of an event whose end has not come yet
    scan = 0  # buf[:scan] holds no blank line: the next search starts there
    after_cr = False  # the last chunk ended in CR: an LF opening the next is its pair
    async for chunk in chunks:
        if after_cr or b"\r" in chunk:
            if after_cr and chunk[:1] == b"\n":
                chunk = chunk[1:]
                after_cr = False
            if not chunk:
                continue
            after_cr = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        data: bytes | bytearray
        if buf:
            buf += chunk
            data = buf
        else:
            # The common case, a chunk that is exactly one event: passed on as it is.
            idx = chunk.find(b"\n\n")
            if idx == len(chunk) - 2 and idx > 0 and chunk[0] != 10:
                if idx > max_event_bytes:
                    raise _too_large(max_event_bytes)
                yield chunk
                continue
            data = chunk
            scan = 0
        start = 0
        while True:
            if start < len(data) and data[start] == 10:  # LF
                # A blank line where an event would start dispatches nothing.
                start = scan = _skip_lf(data, start)
            idx = data.find(b"\n\n", scan)
            if idx < 0:
                break
            if idx - start > max_event_bytes:
                raise _too_large(max_event_bytes)
            end = idx + 2
            # One copy either way (a bytearray slice would be a second).
            yield data[start:end] if data is chunk else bytes(memoryview(data)[start:end])
            start = scan = end
        rest = len(data) - start
        # The rest may end in the first LF of its terminator: not part of the event.
        if rest - (data[-1:] == b"\n") > max_event_bytes:
            raise _too_large(max_event_bytes)
        if data is buf:
            del buf[:start]
        elif rest:
            buf += memoryview(chunk)[start:]
        # A blank line may be split over two chunks: look again at the last byte.
        scan = len(buf) - 1 if buf else 0
    if buf.strip():
        event = bytes(buf).rstrip(b"\n")
        if len(event) > max_event_bytes:
            raise _too_large(max_event_bytes)
        yield event + b"\n\n"


def _skip_lf(data: bytes | bytearray, at: int) -> int:
    """The first position from ``at`` that is not an LF."""
    end = len(data)
    while at < end and data[at] == 10:  # LF
        at += 1
    return at


def _too_large(limit: int) -> ProviderError:
    return ProviderError(Failure.MALFORMED, f"upstream stream event larger than {limit} bytes")
