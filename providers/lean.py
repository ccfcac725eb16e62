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
from collections import deque
from collections.abc import AsyncIterator, Sequence
from urllib.parse import urlsplit

import httptools

from providers.base import Failure, ProviderError

PAUSE_AT = 1 << 20
"""Stop reading from the socket while this many body bytes wait to be consumed."""
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
MAX_INTERIMS = 16
"""Interim (1xx) answers accepted before the final one; servers send one or two."""
MAX_HEAD_BYTES = 64 << 10
"""Bytes an upstream may send without completing its final answer's head (1xx
included); a head that does complete within the read that crossed this still counts."""

Body = bytes | bytearray | memoryview | Sequence[bytes | memoryview]
"""A request body: bytes, or pieces to be sent one after the other."""


class _Stop(Exception):
    """Raised in a parser callback to make httptools stop at the current byte."""


def _size(n: int) -> str:
    """``n`` bytes for a message: whole MB when it is a whole number of them."""
    return f"{n >> 20} MB" if n >= 1 << 20 and not n & 0xFFFFF else f"{n} bytes"


class _Conn(asyncio.Protocol):
    """One keep-alive connection; one response at a time."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        # Lets llhttp read a final answer after a 1xx that said "Connection: close"
        # (h11 does too). It cannot make us reuse a connection: whether one is
        # reused is decided on the final answer, and anything after it closes it.
        self.parser.set_dangerous_leniencies(lenient_keep_alive=True)
        self.pending: list[bytes] = []
        """What came before the final answer's head (for _gap)."""
        self.closed = False
        self.paused = False
        self.expires = 0.0
        """When this connection stops being worth reusing (set when it is pooled)."""
        self._reset()
        self.done = True  # no request outstanding: any byte now is unexpected

    def _reset(self) -> None:
        self.status = 0
        """Status of the final answer; 0 until its head is in (1xx are not kept)."""
        self.headers: dict[str, str] = {}
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.done = False
        """The answer was read to its framed end."""
        self.error: ProviderError | None = None
        self.got_bytes = False
        self.chunked = False
        self.head_bytes = 0
        """Bytes received up to the segment that holds the final head's end."""
        self.interims = 0
        self.ends_found = 0
        self.last_end = 0
        """Offset in ``pending`` just after the last interim head _gap has found."""
        self.between = False
        """An interim answer ended and the next has not begun."""
        self.pending.clear()
        self.head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiter: asyncio.Future[None] | None = None

    def begin(self) -> None:
        """Prepare for the next response on this connection."""
        self._reset()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.done:
            # No request outstanding, or its answer already ended: these bytes belong
            # to nobody, and would be taken as the answer to the next request.
            self.close()
            return
        self.got_bytes = True
        if not self.status:
            # Before the final answer's head. llhttp skips CR and LF before a status
            # line; an answer must start with one (h11 agrees), so they are refused
            # here and, after a 1xx, in _gap. The bytes are kept for _gap.
            pending = self.pending
            if not pending and data[0] in b"\r\n":
                self._invalid()
                return
            self.head_bytes += len(data)
            pending.append(data)
        try:
            if (
                len(data) > 1
                and data[-1] in b"\r\n"
                and not (self.chunked and len(data) > 4 and data[-5] not in b"\r\n")
            ):
                # llhttp skips CR and LF between messages without a callback, so stray
                # line ends right after the answer would go unseen. Feeding the last
                # byte alone shows whether the answer ended before it. Any other stray
                # byte starts a message (on_message_begin) and is seen there.
                # Not needed (and skipped: every chunk of a stream ends in CRLF) when
                # a chunked body cannot have stray line ends after it: it ends in a
                # non-line-end byte and exactly four line-end bytes, so a stray one
                # makes the last five bytes line ends.
                view = memoryview(data)
                self.parser.feed_data(view[:-1])
                if self.done:
                    self.close()
                    return
                self.parser.feed_data(view[-1:])
            else:
                self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            # Also _Stop from a callback (raised as HttpParserCallbackError). The
            # parser is unusable from here on, whatever it had read.
            self._invalid()
            return
        if not self.status:  # still no final head
            if self.head_bytes > MAX_HEAD_BYTES:
                self._invalid("upstream answer head too large")
            elif self.between and self._gap():
                self._invalid()  # only line ends after a 1xx so far: never a status line

    def _invalid(self, what: str = "upstream sent invalid HTTP") -> None:
        """Fail the answer (unless it is complete already) and close the connection."""
        if not self.done:
            self._fail(ProviderError(Failure.MALFORMED, f"{what} ({self.label})"))
        self.close()

    def _gap(self) -> bool:
        """Whether a CR or LF came right after the last interim answer's head.

        llhttp skips them silently. The head of an interim answer ends at its first
        blank line (llhttp accepts no bare LF, no folded line, no CR or LF inside a
        line), and the first answer starts at the first byte (see data_received):
        counting blank lines from there finds where each interim answer ended.
        Rare: 1xx only, and at most MAX_INTERIMS of them.
        """
        kept = b"".join(self.pending)
        while self.ends_found < self.interims:
            at = kept.find(b"\r\n\r\n", self.last_end)
            if at < 0:
                return True  # cannot happen if llhttp is as strict as said: refuse
            self.last_end = at + 4
            self.ends_found += 1
        end = self.last_end
        return end < len(kept) and kept[end] in b"\r\n"

    def connection_lost(self, exc: Exception | None) -> None:
        ours = self.closed
        self.closed = True
        if self.done:
            return
        if exc is None and not ours and self.status and self._until_close():
            # An HTTP/1.0-style body that ends when the connection does: complete.
            self.done = True
            self._wake()
            return
        if self.got_bytes:
            # The answer had begun: the upstream got the request (never retried as if not).
            self._fail(
                ProviderError(Failure.INTERRUPTED, f"connection closed mid-answer ({self.label})")
            )
        else:
            self._fail(
                ProviderError(Failure.CONNECT, f"connection closed by upstream ({self.label})")
            )

    def _until_close(self) -> bool:
        """Whether the body ends when the connection does, as llhttp frames it.

        So when there is no Content-Length and no Transfer-Encoding whose last coding
        is chunked (RFC 9112 6.3); 1xx, 204 and 304 never get here.
        """
        h = self.headers
        if "content-length" in h:
            return False
        coding = h.get("transfer-encoding")
        return coding is None or coding.rsplit(",", 1)[-1].strip(" \t").lower() != "chunked"

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.between:
            self.between = False
            if self._gap():
                raise _Stop  # CR or LF between a 1xx and the next status line
        elif self.done:
            # Bytes after the framed end of the answer: a Content-Length shorter than
            # the body, or pipelined garbage. The answer stands; the connection is
            # closed.
            self.close()
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.status:
            return  # a trailer after a chunked body: not a header of the answer (RFC 9110 6.5)
        # llhttp trims the whitespace before a value but not after it (RFC 9110 5.5:
        # neither is part of the value). rstrip hands back the same bytes if none.
        self.headers[name.decode("latin-1").lower()] = value.rstrip(b" \t").decode("latin-1")

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            if status == 101:
                # We never ask to switch protocols: what follows is not our answer.
                self._fail(
                    ProviderError(
                        Failure.MALFORMED, f"upstream switched protocols (101, {self.label})"
                    )
                )
                self.close()
                raise _Stop
            # 100 Continue, 103 Early Hints...: an interim answer, the final one follows
            # (RFC 9110 15.2). Its headers are not the answer's.
            self.headers.clear()
            self.interims += 1
            if self.interims > MAX_INTERIMS:
                self._fail(
                    ProviderError(Failure.MALFORMED, f"upstream sent too many 1xx ({self.label})")
                )
                self.close()
                raise _Stop
            return
        self.status = status
        # Transfer-Encoding present: a chunked body, or one read until close (which
        # never ends inside data_received). Either way, see the split in there.
        self.chunked = "transfer-encoding" in self.headers
        self.pending.clear()
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > PAUSE_AT and self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.status:
            self.between = True  # the end of an interim answer
            return
        self.done = True
        if not self.parser.should_keep_alive():
            self.close()
        self._wake()

    # helpers

    def _fail(self, err: ProviderError) -> None:
        if self.error is None:
            self.error = err
        if not self.head.done():
            self.head.set_exception(err)
            self.head.exception()  # retrieved here: nobody may await it any more
        self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def close(self) -> None:
        """Close the socket (the response, if unfinished, fails)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def next_chunk(self) -> bytes | None:
        """The next piece of body, ``None`` at its end; raises if the connection broke."""
        while True:
            if self.body:
                chunk = self.body.popleft()
                self.buffered -= len(chunk)
                if self.paused and self.buffered <= PAUSE_AT // 2 and self.transport is not None:
                    self.paused = False
                    self.transport.resume_reading()
                return chunk
            if self.done:
                return None
            if self.error is not None:
                raise self.error
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None


class Response:
    """Status, headers and body of one upstream answer. Always :meth:`release` it."""

    def __init__(self, origin: Origin, conn: _Conn) -> None:
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
            Failure.MALFORMED, f"upstream answer larger than {_size(cap)} ({self._origin.label})"
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
        self.idle: list[_Conn] = []
        """Pooled connections, oldest first."""

    async def _connect(self, timeout: float) -> _Conn:
        loop = asyncio.get_running_loop()
        label = self.label
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: _Conn(label),
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

    def _checkout(self) -> _Conn | None:
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

    def _checkin(self, conn: _Conn) -> None:
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
