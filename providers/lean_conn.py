"""One keep-alive HTTP/1.1 connection of the lean client: bytes in, one answer out.

:class:`Connection` is the :class:`asyncio.Protocol` behind :mod:`providers.lean`'s
pool. It feeds httptools' parser, skips interim ``1xx`` answers, bounds the head, and
says whether its last answer was read to its framed end with nothing after it, the
one condition on which the pool may hand it to the next request.
"""

from __future__ import annotations

import asyncio
from collections import deque

import httptools

from providers.base import Failure, ProviderError

PAUSE_AT = 1 << 20
"""Stop reading from the socket while this many body bytes wait to be consumed."""
MAX_INTERIMS = 16
"""Interim (1xx) answers accepted before the final one; servers send one or two."""
MAX_HEAD_BYTES = 64 << 10
"""Bytes an upstream may send without completing its final answer's head (1xx
included); a head that does complete within the read that crossed this still counts."""


class _Stop(Exception):
    """Raised in a parser callback to make httptools stop at the current byte."""


def size_text(n: int) -> str:
    """``n`` bytes for a message: whole MB when it is a whole number of them."""
    return f"{n >> 20} MB" if n >= 1 << 20 and not n & 0xFFFFF else f"{n} bytes"


class Connection(asyncio.Protocol):
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
