"""What a :class:`~tests.fakes.upstream.FakeUpstream` can be scripted to do, one
behaviour per chat request, and helpers for the answers tests ask for most.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ok:
    """Answer normally with ``content`` (None: the upstream's content) after ``delay`` s."""

    content: str | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class Status:
    """Answer ``code`` with ``body`` (dict: JSON, str: text; None: OpenAI-shaped error)."""

    code: int
    body: Mapping[str, Any] | str | None = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Hang:
    """Never answer; the handler ends (closing the connection) only when the server stops."""


@dataclass(frozen=True)
class Drop:
    """Read the request, then close the TCP connection without any HTTP response."""


@dataclass(frozen=True)
class BadJson:
    """200 whose body (or stream event) is not valid JSON."""


@dataclass(frozen=True)
class NoChoices:
    """200 with a valid completion (or chunk) lacking ``choices``."""


@dataclass(frozen=True)
class CutStream:
    """Stream ``after`` content chunks, then close the connection without ``[DONE]``."""

    after: int = 1


@dataclass(frozen=True)
class SlowStream:
    """Stream the content as ``chunks`` pieces, each preceded by ``interval`` seconds."""

    chunks: int = 5
    interval: float = 0.05


@dataclass(frozen=True)
class StreamError:
    """Stream ``after`` content chunks, then a ``data: {"error": ...}`` event, then end."""

    after: int = 1
    message: str = "fake upstream stream error"


@dataclass(frozen=True)
class BadEvent:
    """Stream ``after`` content chunks, then ``raw`` as one event, then finish cleanly.

    With ``after=0``, ``raw`` is the first event (no role chunk before it)."""

    after: int
    raw: bytes


@dataclass(frozen=True)
class FirstChunkDelay:
    """Send stream headers at once but the first event only after ``seconds``."""

    seconds: float


Behaviour = (
    (Ok | Status | Hang | Drop | BadJson | NoChoices | CutStream | SlowStream | StreamError)
    | FirstChunkDelay
    | BadEvent
)

# Lower-case aliases so scripts read like prose: up.script(status(500), ok()).
ok, status, hang, drop, bad_json, no_choices = Ok, Status, Hang, Drop, BadJson, NoChoices
cut_stream, slow_stream = CutStream, SlowStream
stream_error, first_chunk_delay, bad_event = StreamError, FirstChunkDelay, BadEvent


def error_body(
    message: str, type: str = "invalid_request_error", code: str | None = None
) -> dict[str, Any]:
    """An OpenAI-shaped error body: ``{"error": {message, type, param, code}}``."""
    return {"error": {"message": message, "type": type, "param": None, "code": code}}


def rate_limited(retry_after: int = 30) -> Status:
    """429 with a ``retry-after`` header (seconds)."""
    return Status(
        429,
        error_body("Rate limit reached", "requests", "rate_limit_exceeded"),
        {"retry-after": str(retry_after)},
    )


def context_length_exceeded() -> Status:
    """400 with OpenAI's ``context_length_exceeded`` error code."""
    msg = "This model's maximum context length is 8192 tokens."
    return Status(400, error_body(msg, code="context_length_exceeded"))


def refused_port() -> int:
    """A 127.0.0.1 port that was free a moment ago, so connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def refused_base_url() -> str:
    """A ``/v1`` base URL on which connections are refused."""
    return f"http://127.0.0.1:{refused_port()}/v1"
