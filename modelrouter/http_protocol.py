"""uvicorn's httptools protocol with limits on reading a request.

uvicorn bounds an idle keep-alive connection, but not a request being read: a client
that sends its headers a byte at a time, or declares a body it never sends, holds the
connection forever, and a head of any size is buffered (httptools even joins header
pieces by concatenation, quadratic in the header's size). :class:`LimitedHttpToolsProtocol`
adds, per connection:

* **Header timeout** (``server.header_timeout_s``): a request line and headers must
  arrive whole within this long of their first byte, or of the connection opening.
  Else 408 and close (a connection that sent nothing is just closed).
* **Body timeout** (``server.body_timeout_s``): a body must arrive whole within this
  long of the end of its headers; the total, not the gaps, since a byte per gap would
  otherwise hold a connection for hours. Time the server itself is not reading (a
  pipelined request waiting for the one before it, or a full buffer the app has not
  drained) does not count. Else 408 and close (if the app has already answered,
  just close).
* **Head size and count** (``server.max_header_kb``, ``server.max_headers``): else 431
  and close. Size is the request line plus headers as received, checked while they
  arrive, so an endless header costs at most one read (256 KiB) beyond the limit.

None of these bound the response: a slow upstream or a long stream is not cut.
Refusals are OpenAI-shaped JSON with ``connection: close``; the server then reads and
drops what the client still sends for up to :data:`LINGER_S` before closing, because
closing with unread data resets the connection and the client would lose the answer.

Timers cost nothing on the usual path: the head timer is armed when a read ends
mid-head (or at connection start), the body timer when a read ends mid-body.
"""

from __future__ import annotations

import asyncio
import functools
from asyncio import TimerHandle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from modelrouter.errors import RouterError
from modelrouter.settings import ServerSettings

LINGER_S = 2.0
"""How long a refused connection's further input is read and dropped before closing."""


@dataclass(frozen=True)
class RequestLimits:
    """Limits on reading one request (the ``[server]`` keys in the module docstring)."""

    header_timeout_s: float = 10
    body_timeout_s: float = 60
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100

    @classmethod
    def of(cls, server: ServerSettings) -> RequestLimits:
        """The limits configured in ``[server]``."""
        return cls(
            server.header_timeout_s,
            server.body_timeout_s,
            server.max_header_kb * 1024,
            server.max_headers,
        )


def uvicorn_http(server: ServerSettings) -> Callable[..., asyncio.Protocol]:
    """The value for uvicorn's ``http=``: a protocol factory with the configured limits.

    A ``partial`` of a module-level class pickles, so ``--workers N`` (uvicorn sends the
    config to each worker process) gets the same protocol and limits.
    """
    return functools.partial(LimitedHttpToolsProtocol, limits=RequestLimits.of(server))


class _HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing a head over the limits."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus the read limits of :class:`RequestLimits`."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: RequestLimits = RequestLimits(),
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        # Plain attributes: read on every request.
        self._max_headers = limits.max_headers
        self._max_head_bytes = limits.max_header_bytes
        self._head_scope = self.scope
        """The scope of the last complete head. uvicorn makes a new scope when a
        request's first byte is parsed, so another scope means a head in progress."""
        self._in_body = False
        """A head is complete and its body is not yet."""
        self._head_bytes = 0
        """Bytes received outside bodies since the last request: while a head is being
        read, a lower bound on its size (an upper one once it is complete)."""
        self._head_timer: TimerHandle | None = None
        self._body_timer: TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the header timeout: a connection that never sends must not stay open."""
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the timers, then as uvicorn."""
        self._stop_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser (as uvicorn does), then enforce the head limits and timers."""
        self._unset_keepalive_if_required()
        if not self._in_body:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as err:
            if isinstance(err.__context__, _HeadTooLarge):
                self._refuse_head()
            else:
                self._bad_request()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self._stop_timers()
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self.scope is not self._head_scope:
            if self._head_bytes > self._max_head_bytes:
                self._refuse_head()
            elif self._head_timer is None:
                self._head_timer = self.loop.call_later(
                    self.limits.header_timeout_s, self._head_expired
                )
        elif self._in_body and self._body_timer is None:
            self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_expired)

    def on_headers_complete(self) -> None:
        """Check the head's size and count, stop the header timeout, then as uvicorn."""
        if len(self.headers) > self._max_headers:
            raise _HeadTooLarge
        # Only when the bytes read so far could hold too big a head (rare: a head and a
        # large body in one read) is the exact size worth adding up.
        if self._head_bytes > self._max_head_bytes:
            size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
            if size > self._max_head_bytes:
                raise _HeadTooLarge
        self._head_scope = self.scope
        self._in_body = True
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        # The base class by name: cheaper than super() on a path taken per request.
        HttpToolsProtocol.on_headers_complete(self)

    def on_message_complete(self) -> None:
        """Stop the body timeout; what follows is the next request's head."""
        self._in_body = False
        self._head_bytes = 0
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        HttpToolsProtocol.on_message_complete(self)

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.scope is self._head_scope:
            if self.cycle is None:
                self.transport.close()  # no request begun since the connection opened
            return
        if self._busy():
            # The client sent part of its next request while the last one is handled:
            # that answer goes out first, and reading waits for it (the server's time).
            self._head_timer = self.loop.call_later(
                self.limits.header_timeout_s, self._head_expired
            )
        else:
            self._refuse(408, "The request headers did not arrive in time.", "request_timeout")

    def _body_expired(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if not self._in_body or cycle is None or self.transport.is_closing():
            return  # (no cycle: a WebSocket upgrade took the connection)
        if (
            self.pipeline
            or self.flow.read_paused
            or (cycle.response_started and not cycle.response_complete)
        ):
            # Not the client's delay: this request waits behind an earlier one, or the
            # server stopped reading (its buffer is full), or the app is answering
            # without waiting for the body.
            self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_expired)
        elif not cycle.response_started:
            self._refuse(408, "The request body did not arrive in time.", "request_timeout")
        else:
            self.transport.close()  # answered already; the rest of the body never came

    def _busy(self) -> bool:
        """A request on this connection is still being handled."""
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete

    def _refuse_head(self) -> None:
        if self._busy():
            # An answer to the last request is still due, and a refusal now would be
            # read as that answer: drop the connection (a pipelined oversized head).
            self._stop_timers()
            self.transport.close()
            return
        limits = self.limits
        self._refuse(
            431,
            f"Request headers are too large: at most {limits.max_headers} headers and "
            f"{limits.max_header_bytes // 1024} KB with the request line.",
            "request_header_fields_too_large",
        )

    def _bad_request(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    def _refuse(self, status: int, message: str, code: str) -> None:
        """Answer ``status`` in OpenAI's error shape, then linger and close."""
        body = RouterError(status, message, code=code).body()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self._stop_timers()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # An app waiting for the body gets a disconnect; anything it sends is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        self.connections.discard(self)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()
        self.transport.set_protocol(_Linger(self.transport, self.loop))

    def _stop_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None


class _Linger(asyncio.Protocol):
    """Reads and drops a refused client's input until it closes or :data:`LINGER_S` ends."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = loop.call_later(LINGER_S, transport.close)

    def data_received(self, data: bytes) -> None:
        """Drop it."""

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the close timer."""
        self.timer.cancel()
