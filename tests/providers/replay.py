"""Replay exact upstream byte streams to the lean client, and read the same bytes with h11.

:class:`Replay` is a TCP server on 127.0.0.1 that answers the first request of its
first connection with scripted pieces, each written only once the lean client has
received the one before (so the split points are the ones given, not the kernel's).
Every later request, on any connection, is answered ``own:<its body>``: a request that
gets anything else was handed someone else's answer.

:func:`h11_outcome` is the reference: h11 fed the same bytes. :func:`lean_outcome`
is the client under test. Both give an :class:`Outcome`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import patch

import h11

from providers import lean_conn
from providers.base import ProviderError
from providers.lean import Origin

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Outcome:
    """What a client made of one answer: a result, or an error.

    ``error`` is "" for a result; for the lean client the :class:`Failure` value, for
    h11 ``"rejected"`` (a protocol error, including a body cut short by the close).
    """

    status: int = 0
    headers: Headers = ()
    body: bytes = b""
    reusable: bool = False
    error: str = ""


def header_items(pairs: Iterator[tuple[str, str]]) -> Headers:
    """Headers as the lean client keeps them: lower-case names, the last value wins."""
    last: dict[str, str] = {}
    for name, value in pairs:
        last[name.lower()] = value
    return tuple(sorted(last.items()))


def h11_outcome(pieces: Sequence[bytes], closes: bool) -> Outcome:
    """h11's reading of ``pieces`` (then EOF if ``closes``) as the answer to a POST."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(
        h11.Request(
            method="POST", target="/v1/x", headers=[("Host", "127.0.0.1"), ("Content-Length", "2")]
        )
    )
    conn.send(h11.Data(data=b"{}"))
    conn.send(h11.EndOfMessage())
    feed: list[bytes] = [*pieces, b""] if closes else list(pieces)
    status = 0
    headers: Headers = ()
    body = bytearray()
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if not feed:
                    return Outcome(error="incomplete")
                conn.receive_data(feed.pop(0))
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = header_items(
                    (n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers
                )
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                return Outcome(error="rejected")
            # InformationalResponse: interim, skipped
    except h11.RemoteProtocolError:
        return Outcome(error="rejected")
    for rest in feed:
        conn.receive_data(rest)
    trailing, closed = conn.trailing_data
    reusable = (
        conn.our_state is h11.DONE and conn.their_state is h11.DONE and not trailing and not closed
    )
    return Outcome(status, headers, bytes(body), reusable)


class Probe:
    """Counts what lean connections receive and lose, so a server can pace its pieces."""

    def __init__(self) -> None:
        self.received = 0
        self.lost = 0
        self._changed = asyncio.Event()

    @contextmanager
    def installed(self) -> Iterator[Probe]:
        """Wrap :class:`providers.lean_conn.Connection` callbacks while the block runs."""
        data_received = lean_conn.Connection.data_received
        connection_lost = lean_conn.Connection.connection_lost

        def on_data(conn: lean_conn.Connection, data: bytes) -> None:
            self.received += len(data)
            self._changed.set()
            data_received(conn, data)

        def on_lost(conn: lean_conn.Connection, exc: Exception | None) -> None:
            self.lost += 1
            self._changed.set()
            connection_lost(conn, exc)

        with (
            patch.object(lean_conn.Connection, "data_received", on_data),
            patch.object(lean_conn.Connection, "connection_lost", on_lost),
        ):
            yield self

    def poke(self) -> None:
        """Wake :meth:`until` to look again."""
        self._changed.set()

    async def until(self, ready: Callable[[], bool], timeout: float = 2.0) -> bool:
        """Wait until ``ready()`` (True) or ``timeout`` (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not ready():
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return ready()
        return True


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's body (the head is read and dropped)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return await reader.readexactly(length)


def ok(body: bytes, head: bytes = b"") -> bytes:
    """A 200 with a Content-Length (and ``head``: extra header lines)."""
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), head) + body


@dataclass
class Replay:
    """A server whose first answer is ``pieces``; then it closes if ``closes``."""

    pieces: Sequence[bytes]
    closes: bool
    probe: Probe
    tls: ssl.SSLContext | None = None
    connections: int = 0
    requests: list[tuple[int, bytes]] = field(default_factory=list)
    """(connection number, body) of every request received."""
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the scripted answer is all out (and the connection closed if it closes)."""
    port: int = 0
    handlers: int = 0
    """Connections being served."""

    async def _script(self, writer: asyncio.StreamWriter) -> None:
        probe = self.probe
        sent = probe.received
        lost = probe.lost
        for piece in self.pieces:
            writer.write(piece)
            await writer.drain()
            sent += len(piece)

            # The next piece goes only once this one is in, or the client gave up.
            def arrived(sent: int = sent, lost: int = lost) -> bool:
                return probe.received >= sent or probe.lost > lost

            await probe.until(arrived)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        self.handlers += 1
        try:
            while True:
                body = await read_request(reader)
                self.requests.append((number, body))
                if number == 0 and len(self.requests) == 1:
                    try:
                        await self._script(writer)
                    finally:
                        if self.closes:
                            writer.close()
                        self.finished.set()
                    if self.closes:
                        return
                else:
                    writer.write(ok(b"own:" + body))
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.handlers -= 1
            self.probe.poke()

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[Replay]:
        """Listen on 127.0.0.1 while the block runs."""
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            yield self
            server.close()
            # Handlers end on the client's close; one cut off at loop teardown would log.
            await self.probe.until(lambda: self.handlers == 0)


async def lean_answer(origin: Origin, body: bytes = b"{}", timeout: float = 5.0) -> Outcome:
    """The lean client's answer to one POST (``reusable`` not filled in)."""
    async with asyncio.timeout(timeout):
        try:
            resp = await origin.request("POST", "/v1/x", b"X-Test: 1\r\n", body, 2)
        except ProviderError as err:
            return Outcome(error=err.failure.value)
        try:
            data = await resp.read()
        except ProviderError as err:
            return Outcome(error=err.failure.value)
        finally:
            resp.release()
        return Outcome(resp.status, header_items(iter(resp.headers.items())), data)


def pooled(origin: Origin) -> bool:
    """Whether the origin holds an open idle connection."""
    return any(not conn.closed for conn in origin.idle)


@dataclass(frozen=True)
class Run:
    """One replay through the lean client: its outcome and what came after."""

    outcome: Outcome
    second: Outcome
    """The answer to a second request (body ``req-2``) after the first."""
    connections: int
    """Connections the server saw in all."""
    first_connection_requests: int
    """Requests that arrived on the first connection."""
    loop_errors: list[dict[str, Any]]
    """What reached the loop's exception handler (a transport's fatal error...)."""


async def lean_outcome(
    pieces: Sequence[bytes],
    closes: bool,
    *,
    tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
    timeout: float = 5.0,
    **origin_options: Any,
) -> Run:
    """Replay ``pieces`` to the lean client, then send a second request.

    ``tls`` is (server context, client context); ``timeout`` bounds each request
    (a hang fails the run with TimeoutError). The outcome's ``reusable`` says
    whether the connection was pooled once the whole script was delivered.
    """
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    probe = Probe()
    replay = Replay(pieces, closes, probe, tls[0] if tls else None)
    try:
        with probe.installed():
            async with replay.serving():
                scheme = "https" if tls else "http"
                origin = Origin(
                    f"{scheme}://127.0.0.1:{replay.port}",
                    "t",
                    ssl_context=tls[1] if tls else None,
                    **origin_options,
                )
                first = await lean_answer(origin, timeout=timeout)
                # Whatever the client did, let the script run out before judging the pool.
                await asyncio.wait_for(replay.finished.wait(), 5)
                if closes:
                    await probe.until(lambda: probe.lost > 0)
                first = Outcome(
                    first.status, first.headers, first.body, pooled(origin), first.error
                )
                second = await lean_answer(origin, b"req-2", timeout)
                origin.close()
                await asyncio.sleep(0)  # let the closes run
    finally:
        loop.set_exception_handler(previous)
    return Run(
        first,
        second,
        replay.connections,
        sum(1 for number, _ in replay.requests if number == 0),
        errors,
    )
