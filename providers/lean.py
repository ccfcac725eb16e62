"""A small HTTP/1.1 client for the passthrough hot path.

Why not aiohttp here: measured on this machine against a streaming upstream, aiohttp
took about 0.45 ms to hand over the first event of a stream where a bare
:class:`asyncio.Protocol` with httptools' parser takes 0.08 ms, and it was the
largest item in the router's profile. The passthrough needs little of a general
client: keep-alive connections to one origin, a request written in one piece (a
large body as the pieces it was given, without joining them), status, a few
headers, and the body as it arrives (chunked or not). That is all this
module does; everything that goes wrong becomes a :class:`ProviderError`.

No proxies, no redirects, no compression (none is asked for), no ``HEAD``,
HTTP/1.1 only.

A pooled connection is shared by every user of the origin, so a connection goes
back to the pool only when its answer was read to its framed end and not one byte
more arrived: interim ``1xx`` answers are skipped, and anything unexpected (a
``101``, bytes after the end of an answer or while no request is outstanding, an
unparsable answer) closes the connection. Otherwise the next request on it would
be answered with the rest of someone else's answer.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from urllib.parse import urlsplit

from providers.base import Failure, ProviderError
from providers.lean_conn import Connection, size_text

JOIN_BELOW = 64 << 10
"""A request body smaller than this is copied into one write with the head; a larger
one goes out as its pieces (one vectored write under uvloop, no copy)."""
IDLE_TIMEOUT = 30.0
"""Seconds a pooled connection may stay idle before it is closed instead of reused."""
MAX_IDLE = 256
"""Idle connections kept per origin; the oldest beyond this are closed. Keep it above
the requests in flight to one upstream at peak: below, every burst closes connections
that the next burst opens again (32 closed ~1,000 connections a second in the
benchmark's 64-connection run)."""
MAX_RESPONSE_BYTES = 32 << 20
"""Largest body :meth:`Response.read` accepts (a streamed body is not counted)."""

Body = bytes | bytearray | memoryview | Sequence[bytes | memoryview]
"""A request body: bytes, or pieces to be sent one after the other."""


class Response:
    """Status, headers and body of one upstream answer. Always :meth:`release` it."""

    def __init__(self, origin: Origin, conn: Connection) -> None:
        self._origin = origin
        self._conn = conn
        self._released = False
        self.status = conn.status
        self.headers = conn.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (chunked transfer decoded), however long it is."""
        while (chunk := await self._conn.next_chunk()) is not None:
            yield chunk

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body, or its first ``limit`` bytes.

        A body longer than the origin's ``max_response_bytes`` fails with a
        :class:`ProviderError` (``MALFORMED``) as soon as that many bytes are in (at
        once if its Content-Length says so), and the connection is closed.
        """
        cap = self._origin.max_response_bytes
        if limit is None:
            declared = self.headers.get("content-length")
            # llhttp accepted the header, so it is digits only.
            if declared is not None and int(declared) > cap and self.status not in (204, 304):
                self._too_large(cap)
        parts: list[bytes] = []
        size = 0
        while (chunk := await self._conn.next_chunk()) is not None:
            parts.append(chunk)
            size += len(chunk)
            if limit is not None and size >= limit:
                break
            if size > cap:
                self._too_large(cap)
        return b"".join(parts)[:limit] if limit is not None else b"".join(parts)

    def _too_large(self, cap: int) -> None:
        self._conn.close()
        raise ProviderError(
            Failure.MALFORMED,
            f"upstream answer larger than {size_text(cap)} ({self._origin.label})",
        )

    def release(self) -> None:
        """Give the connection back for reuse if the answer was read whole, else close it.

        Releasing twice does nothing: a connection in the pool twice would be handed
        to two requests at once.
        """
        if self._released:
            return
        self._released = True
        conn = self._conn
        if conn.done and not conn.closed and not conn.body:
            self._origin._checkin(conn)
        else:
            conn.close()


class Origin:
    """Keep-alive connections to one ``scheme://host:port``.

    ``idle_timeout``: seconds an idle connection may wait in the pool; an older one
    is closed, not reused (set it below the upstream's own keep-alive timeout).
    ``max_idle``: idle connections kept at most; the oldest beyond are closed.
    ``max_response_bytes``: largest body :meth:`Response.read` accepts.
    Expired connections are closed when the pool is next used, not by a timer.
    """

    def __init__(
        self,
        base_url: str,
        label: str,
        ssl_context: ssl.SSLContext | None = None,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        max_idle: int = MAX_IDLE,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        parts = urlsplit(base_url)
        self.label = label
        self.host = parts.hostname or "localhost"
        tls = parts.scheme == "https"
        self.port = parts.port or (443 if tls else 80)
        self.ssl = (ssl_context or ssl.create_default_context()) if tls else None
        default = (tls and self.port == 443) or (not tls and self.port == 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if default else f"{host}:{self.port}"
        self.idle_timeout = idle_timeout
        self.max_idle = max_idle
        self.max_response_bytes = max_response_bytes
        self.idle: list[Connection] = []
        """Pooled connections, oldest first."""

    async def _connect(self, timeout: float) -> Connection:
        loop = asyncio.get_running_loop()
        label = self.label
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(label),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                )
        except TimeoutError:
            raise ProviderError(Failure.TIMEOUT, f"connect timeout ({label})") from None
        except ConnectionRefusedError:
            raise ProviderError(Failure.CONNECT, f"connection refused ({label})") from None
        except OSError as err:
            raise ProviderError(
                Failure.CONNECT, f"cannot connect: {type(err).__name__} ({label})"
            ) from None
        return conn

    def _checkout(self) -> Connection | None:
        """The most recently pooled connection that is open and not expired."""
        idle = self.idle
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            if conn.expires <= now:
                # The newest has expired, so have all older ones.
                conn.close()
                self.close()
                return None
            return conn
        return None

    def _checkin(self, conn: Connection) -> None:
        """Pool ``conn``, closing expired connections and the oldest beyond ``max_idle``."""
        idle = self.idle
        now = time.monotonic()
        conn.expires = now + self.idle_timeout
        if idle and (len(idle) >= self.max_idle or idle[0].expires <= now or idle[0].closed):
            # Rare: trim from the old end, where stale connections collect.
            while idle and (idle[0].expires <= now or idle[0].closed):
                idle.pop(0).close()
            while idle and len(idle) >= self.max_idle:
                idle.pop(0).close()
        if self.max_idle > 0:
            idle.append(conn)
        else:
            conn.close()

    async def request(
        self, method: str, path: str, headers: bytes, body: Body, connect_timeout: float
    ) -> Response:
        """Send one request and wait for the answer's status and headers.

        ``headers`` are ready-made ``Name: value\\r\\n`` lines. A reused connection
        that the upstream had closed while idle (no byte of an answer came back) is
        replaced once by a new connection; a request that got any answer byte is
        never sent again.
        """
        if method == "HEAD":
            # The answer's Content-Length would describe a body that never comes.
            raise ValueError("HEAD is not supported")
        pieces = [body] if isinstance(body, bytes | bytearray | memoryview) else body
        size = sum(map(len, pieces))
        head = (
            (
                f"{method} {path} HTTP/1.1\r\nHost: {self.host_header}\r\n"
                f"Content-Length: {size}\r\n"
            ).encode()
            + headers
            + b"\r\n"
        )
        for attempt in range(2):
            conn = self._checkout() if attempt == 0 else None
            reused = conn is not None
            if conn is None:
                conn = await self._connect(connect_timeout)
            conn.begin()
            if conn.closed:
                # Bytes or a close came while connecting, before any request was sent.
                raise ProviderError(
                    Failure.CONNECT, f"connection closed by upstream ({self.label})"
                )
            assert conn.transport is not None
            if size < JOIN_BELOW:
                conn.transport.write(b"".join((head, *pieces)))
            else:
                conn.transport.writelines((head, *pieces))
            try:
                await asyncio.shield(conn.head)
            except ProviderError:
                conn.close()
                if reused and not conn.got_bytes:
                    continue  # a stale keep-alive connection: try a fresh one
                raise
            except BaseException:
                conn.close()  # cancelled (timeout, client gone): the answer is unwanted
                raise
            return Response(self, conn)
        raise AssertionError("unreachable: the second attempt returns or raises")

    def close(self) -> None:
        """Close every idle connection."""
        for conn in self.idle:
            conn.close()
        self.idle.clear()

    async def aclose(self) -> None:
        """Close every idle connection (the :class:`~providers.transport.Transport` form)."""
        self.close()
