"""How a provider reaches its upstream: a small transport interface and its two makers.

:class:`Transport` is what :class:`~providers.upstream.HTTPProvider` needs of a wire:
send one request, hand back a :class:`Reply` whose body can be streamed or read,
close. Two implement it:

- :class:`providers.lean.Origin`, the default: a small HTTP/1.1 client on asyncio
  and httptools, measured as the hot path's largest saving. TLS with the system's
  trust store, or a custom CA bundle and client certificate.
- :class:`HttpxOrigin`, on ``httpx2``: for what the lean client does not do, an
  outbound proxy (``HTTP(S)_PROXY``/``ALL_PROXY`` and ``NO_PROXY`` from the
  environment) and HTTP/2.

:func:`open_transport` picks one per provider: ``transport = "lean"`` or ``"httpx"``
in ``[providers.NAME]``, or ``"auto"`` (the default): httpx when the environment
routes the upstream's host through a proxy or ``http2 = true``, lean otherwise.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol
from urllib.parse import urlsplit

import httpx2

from providers.base import Failure, ProviderError, ProviderOptions
from providers.lean import MAX_RESPONSE_BYTES, Body, Origin


class Reply(Protocol):
    """One upstream answer: status, lower-case headers, and its body. Always release it."""

    @property
    def status(self) -> int:
        """The HTTP status."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """The headers, names in lower case."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        ...

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body (bounded by the transport's size limit), or its first ``limit`` bytes."""
        ...

    def release(self) -> None:
        """Done with the answer: the connection is reused if it can be, else closed."""


class Transport(Protocol):
    """Sends requests to one origin (``scheme://host:port``)."""

    @property
    def label(self) -> str:
        """``host:port``: what error messages name."""
        ...

    async def request(
        self, method: str, path: str, headers: bytes, body: Body, connect_timeout: float
    ) -> Reply:
        """Send one request; return once the answer's status and headers are in.

        ``headers`` are ready-made ``Name: value\\r\\n`` lines; ``path`` includes any
        query. Every failure is a :class:`ProviderError`.
        """
        ...

    async def aclose(self) -> None:
        """Close idle connections."""


def ssl_context(options: ProviderOptions) -> ssl.SSLContext | None:
    """The TLS context for a custom CA bundle or client certificate (``None``: defaults)."""
    if not (options.ca_bundle or options.client_cert):
        return None
    ctx = ssl.create_default_context(cafile=options.ca_bundle)
    if options.client_cert:
        ctx.load_cert_chain(options.client_cert, options.client_key)
    return ctx


def proxied(base_url: str) -> bool:
    """Whether the environment's proxy settings send requests to ``base_url`` via a proxy."""
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


def open_transport(options: ProviderOptions, base_url: str, label: str) -> Transport:
    """The transport ``options`` ask for (see the module docstring for ``auto``)."""
    choice = options.transport
    if choice == "auto":
        choice = "httpx" if options.http2 or proxied(base_url) else "lean"
    limit = int(options.max_response_mb * (1 << 20))
    if choice == "httpx":
        return HttpxOrigin(base_url, label, options, max_response_bytes=limit)
    return Origin(base_url, label, ssl_context(options), max_response_bytes=limit)


_closing: set[asyncio.Future[None]] = set()
"""Responses being closed (a strong reference, so the tasks are not collected)."""


class HttpxReply:
    """A :class:`Reply` over an ``httpx2`` streaming response."""

    def __init__(self, resp: httpx2.Response, label: str, max_response_bytes: int) -> None:
        self._resp = resp
        self._label = label
        self._cap = max_response_bytes
        self.status = resp.status_code
        self.headers: Mapping[str, str] = {k.lower(): v for k, v in resp.headers.items()}

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        try:
            async for chunk in self._resp.aiter_raw():
                yield chunk
        except httpx2.HTTPError as err:
            raise _broken(err, self._label, started=True) from None

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body (at most the size limit), or its first ``limit`` bytes."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks():
            parts.append(chunk)
            size += len(chunk)
            if limit is not None and size >= limit:
                break
            if size > self._cap:
                raise ProviderError(
                    Failure.MALFORMED,
                    f"upstream answer larger than {self._cap >> 20} MB ({self._label})",
                )
        data = b"".join(parts)
        return data[:limit] if limit is not None else data

    def release(self) -> None:
        """Close the response: httpx2 pools its connection if the body was read whole."""
        # Releasing is synchronous for every transport; httpx2 closes asynchronously.
        task = asyncio.ensure_future(self._resp.aclose())
        _closing.add(task)
        task.add_done_callback(_closing.discard)


class HttpxOrigin:
    """A :class:`Transport` on ``httpx2``: proxies from the environment and HTTP/2."""

    def __init__(
        self,
        base_url: str,
        label: str,
        options: ProviderOptions,
        *,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        parts = urlsplit(base_url)
        self.label = label
        self.max_response_bytes = max_response_bytes
        self._root = f"{parts.scheme}://{parts.netloc}"
        verify: ssl.SSLContext | bool = ssl_context(options) or True
        self._client = httpx2.AsyncClient(
            verify=verify,
            http2=options.http2,
            trust_env=True,
            follow_redirects=False,
            timeout=httpx2.Timeout(None),
        )

    async def request(
        self, method: str, path: str, headers: bytes, body: Body, connect_timeout: float
    ) -> Reply:
        """Send one request through httpx2; see :meth:`Transport.request`."""
        content = body if isinstance(body, bytes) else _join(body)
        try:
            req = self._client.build_request(
                method,
                self._root + path,
                headers=_header_pairs(headers),
                content=content,
                timeout=httpx2.Timeout(None, connect=connect_timeout),
            )
            resp = await self._client.send(req, stream=True)
        except httpx2.HTTPError as err:
            raise _broken(err, self.label, started=False) from None
        return HttpxReply(resp, self.label, self.max_response_bytes)

    async def aclose(self) -> None:
        """Close the client and its pooled connections."""
        await self._client.aclose()


def _join(body: Body) -> bytes:
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    assert isinstance(body, Sequence)
    return b"".join(bytes(p) for p in body)


def _header_pairs(lines: bytes) -> list[tuple[str, str]]:
    out = []
    for line in lines.decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            out.append((name.strip(), value.strip()))
    return out


def _broken(err: httpx2.HTTPError, label: str, *, started: bool) -> ProviderError:
    if isinstance(err, httpx2.TimeoutException):
        return ProviderError(Failure.TIMEOUT, f"timeout ({label})")
    if started:
        return ProviderError(Failure.INTERRUPTED, f"connection broke mid-answer ({label})")
    return ProviderError(Failure.CONNECT, f"cannot connect: {type(err).__name__} ({label})")
