"""Anthropic's own answers, relayed to a client that asked in Anthropic's API: pure, no I/O.

When a request came in by the Messages door and the served model is an Anthropic
model, the client's body goes upstream with only ``model`` changed, and the answer
comes back as Anthropic sent it. What the router still reads of it: that a message is
a message (and its usage, for the log), that a stream has not failed before its first
content (so another model can still be tried), and that it ended with
``message_stop``.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.anthropic_reply import STOP_REASONS, stream_error, usage_of
from providers.base import Failure, ProviderError
from providers.openai_shapes import malformed
from providers.sse import parse_sse

FORWARDED_HEADERS = ("anthropic-beta",)
"""Client headers that belong to the body (a beta feature it uses) and go upstream with it."""


def header_lines(headers: tuple[tuple[str, str], ...]) -> bytes:
    """The header lines of :data:`FORWARDED_HEADERS` among ``headers``."""
    out = b""
    for name, value in headers:
        if name in FORWARDED_HEADERS and value.isprintable() and value.isascii():
            out += f"{name}: {value}\r\n".encode()
    return out


def refused(stop: Any) -> ProviderError:
    """Anthropic refused before producing anything: another vendor may answer."""
    return ProviderError(Failure.CONTENT_FILTER, f"Anthropic refused to answer ({stop})")


def check_message(raw: bytes) -> dict[str, Any]:
    """The OpenAI-shaped usage of a Messages API answer; raise if it is not a message."""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise malformed("Anthropic", "not JSON") from None
    if not isinstance(msg, dict) or msg.get("type") != "message":
        raise malformed("Anthropic", "not a message")
    content = msg.get("content")
    if not isinstance(content, list):
        raise malformed("Anthropic", "message without content")
    stop = msg.get("stop_reason")
    if STOP_REASONS.get(str(stop)) == "content_filter" and not content:
        raise refused(stop)
    usage = msg.get("usage")
    return usage_of(usage if isinstance(usage, dict) else {})


_CONTENT = frozenset({"content_block_start", "content_block_delta", "message_delta"})
"""Events that commit a stream: after one of them, another model can no longer answer."""


class NativeEvents:
    """Checks a Messages stream on its way through, event by event.

    Events before the first content (``message_start``, ``ping``) are held back and
    sent with it, so an ``error`` event or a refusal that comes first still lets the
    router try another model. ``done`` once ``message_stop`` went through.
    """

    def __init__(self) -> None:
        self._held: list[bytes] = []
        self._committed = False
        self.done = False

    def feed(self, event: bytes) -> list[bytes]:
        """The events to send now for one upstream event; raise on an ``error`` event."""
        name, data = parse_sse(event)
        if not data:
            return []
        try:
            decoded = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise malformed("Anthropic", "stream event is not JSON") from None
        if not isinstance(decoded, dict):
            raise malformed("Anthropic", "stream event is not an object")
        kind = decoded.get("type") or name
        if kind == "error":
            raise stream_error(decoded)
        if kind == "message_delta" and not self._committed:
            stop = (decoded.get("delta") or {}).get("stop_reason")
            if STOP_REASONS.get(str(stop)) == "content_filter":
                raise refused(stop)
        if kind == "message_stop":
            self.done = True
        if self._committed:
            return [event]
        self._held.append(event)
        if kind in _CONTENT or self.done:
            self._committed = True
            # One write: the held events and this one reach the client together.
            held, self._held = b"".join(self._held), []
            return [held]
        return []

    def finish(self) -> None:
        """Raise if the stream ended without ``message_stop``."""
        if not self.done:
            raise ProviderError(Failure.INTERRUPTED, "Anthropic stream ended without message_stop")
