"""Shared HTTP plumbing for providers that talk to a real upstream.

The OpenAI-compatible passthrough uses the small client in :mod:`providers.lean`;
the translating vendors (Anthropic, Gemini) use aiohttp, measured on this machine at
about half the per-request cost of httpx2's default transport. For those, everything
that can go wrong on the wire is mapped to a :class:`ProviderError` in
:func:`wire_errors`, the one place that knows aiohttp's exception tree.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from modelrouter.retry import classify_status, parse_retry_after
from providers.base import Failure, ProviderError

MAX_ERROR_BODY = 64 * 1024
"""Upstream error bodies are read up to this size; the rest is not needed."""


def new_session() -> aiohttp.ClientSession:
    """A pooled session: keep-alive connections, no per-session limit on concurrency."""
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),
        json_serialize=lambda o: orjson.dumps(o).decode(),
        skip_auto_headers=("User-Agent",),
    )


def endpoint_label(url: str) -> str:
    """``host:port`` of a URL: safe to show (no path, query or credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


@contextmanager
def wire_errors(label: str) -> Iterator[None]:
    """Map aiohttp and socket errors to :class:`ProviderError` for upstream ``label``."""
    try:
        yield
    except ProviderError:
        raise
    except aiohttp.ClientConnectorError as err:
        cause = "connection refused" if isinstance(err.os_error, ConnectionRefusedError) else None
        raise ProviderError(Failure.CONNECT, f"{cause or 'cannot connect'} ({label})") from None
    except aiohttp.ConnectionTimeoutError:
        raise ProviderError(Failure.TIMEOUT, f"connect timeout ({label})") from None
    except aiohttp.ServerTimeoutError:
        raise ProviderError(Failure.TIMEOUT, f"read timeout ({label})") from None
    except aiohttp.ServerDisconnectedError:
        raise ProviderError(Failure.CONNECT, f"connection closed by upstream ({label})") from None
    except aiohttp.ClientPayloadError:
        raise ProviderError(Failure.CONNECT, f"response cut short ({label})") from None
    except (aiohttp.ClientError, OSError) as err:
        raise ProviderError(Failure.CONNECT, f"{type(err).__name__} ({label})") from None


Classifier = Callable[[int, bytes], Failure]
"""Maps an upstream error status and body to a failure class (see :func:`classify_status`)."""


async def raise_for_status(
    resp: aiohttp.ClientResponse, label: str, classify: Classifier = classify_status
) -> None:
    """Turn an upstream error answer into a classified :class:`ProviderError`.

    ``classify`` lets a vendor whose error bodies say more than the status (an
    invalid key answered with 400, a content filter answered with 400) refine the
    generic table.
    """
    if resp.status < 400:
        return
    body = await resp.content.read(MAX_ERROR_BODY)
    raise status_error(resp.status, resp.headers, body, label, classify)


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


async def sse_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Split an SSE body into whole events, each returned with a ``\\n\\n`` terminator.

    Chunk boundaries on the wire do not matter: events come out one by one, never
    merged or split, so a client sees exactly the upstream's events.
    """
    buf = b""
    async for chunk in chunks:
        buf = buf + chunk if buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        while True:
            idx = buf.find(b"\n\n")
            if idx < 0:
                break
            event, buf = buf[:idx], buf[idx + 2 :]
            if event:
                yield event + b"\n\n"
    if buf.strip():
        yield buf.rstrip(b"\n") + b"\n\n"


class PooledSession:
    """The connection pool every HTTP provider owns: opened in ``start``, closed in ``aclose``."""

    name: str
    _session: aiohttp.ClientSession | None = None
    _timeouts: dict[float, aiohttp.ClientTimeout]

    async def start(self) -> None:
        """Open the connection pool."""
        if self._session is None:
            self._session = new_session()

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled session; :meth:`start` must have run."""
        if self._session is None:
            raise RuntimeError(f"provider {self.name!r} used before start()")
        return self._session

    def _timeout(self, connect: float) -> aiohttp.ClientTimeout:
        # One ClientTimeout per distinct connect timeout, not one per request.
        cache = self.__dict__.setdefault("_timeouts", {})
        t: aiohttp.ClientTimeout | None = cache.get(connect)
        if t is None:
            t = cache[connect] = aiohttp.ClientTimeout(total=None, sock_connect=connect)
        return t
