"""Server-Sent Events, all of it: splitting an upstream's stream, reading an event,
writing one.

Every stream the router relays or produces passes through here: the passthrough
splits the upstream's body into whole events (:func:`sse_events`), the translating
adapters read each event's data (:func:`parse_sse`) and write OpenAI chunks
(:func:`sse_event`), and every OpenAI stream ends with :data:`DONE`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import orjson

from providers.base import Failure, ProviderError

DONE = b"data: [DONE]\n\n"
"""The event that ends every OpenAI stream."""


class StreamShape(Protocol):
    """What a stream looks like to the client of one API: one object per stream.

    The router relays the events a provider yields (OpenAI chunks, or a native API's
    own events when the provider speaks the client's API); a shape turns each into the
    events its client reads, and writes that API's own error event when the stream
    fails after it began. Chat Completions needs no shape: its events go out as they are.
    """

    usage: dict[str, Any] | None
    """OpenAI-shaped usage seen so far (for the call log)."""

    def feed(self, event: bytes) -> list[bytes]:
        """The client's events for one relayed event (``[DONE]`` included)."""
        ...

    def fail(self, message: str) -> bytes:
        """The event that ends the stream after a failure, in the client's API."""
        ...


ShapeFactory = Callable[[bool], StreamShape]
"""Builds the shape of one answer stream, told whether the served model answered in
the client's own API (``True``) or in OpenAI chunks (``False``)."""


def named_event(name: str, data: Any) -> bytes:
    """One SSE event with an ``event:`` line (Anthropic's and the Responses API's style)."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def sse_event(data: Any) -> bytes:
    """One SSE ``data:`` event holding ``data`` as compact JSON."""
    return b"data: " + orjson.dumps(data) + b"\n\n"


def parse_sse(event: bytes) -> tuple[str, bytes]:
    """An SSE event's ``event:`` name (``""`` if none) and its joined ``data:`` lines."""
    name = ""
    data: list[bytes] = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace")
    return name, b"\n".join(data)


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
