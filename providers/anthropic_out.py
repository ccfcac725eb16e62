"""Chat Completions answers as Anthropic Messages API answers, for the Messages door: pure.

The inverse of :mod:`providers.anthropic_reply`. A ``chat.completion`` becomes a
``message`` (:func:`to_message`); a chunk stream becomes Anthropic's documented event
sequence (:class:`MessagesShape`): ``message_start``, ``ping``, then per content block
``content_block_start``, its ``content_block_delta`` events and ``content_block_stop``,
then ``message_delta`` (stop reason and usage) and ``message_stop``. A stream that
Anthropic itself produced goes through as it is (:class:`AsSentShape`). Either way a
failure after the first event ends the stream with Anthropic's ``error`` event.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.anthropic_reply import usage_of as openai_usage
from providers.openai_shapes import malformed
from providers.sse import DONE, ShapeFactory, StreamShape, named_event, parse_sse

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
"""Anthropic's error ``type`` for each HTTP status it documents."""

STATUS_OF = {
    405: 404,
    408: 504,
    409: 409,
    415: 400,
    422: 400,
    431: 413,
    502: 529,
    503: 529,
    504: 504,
}
"""The router's statuses that Anthropic does not use, as the Anthropic status a client
acts on alike: every model failed or none was available is Anthropic's "overloaded"
(529); the rest map to the nearest documented status, else 400 or 500."""

FINISH = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
"""OpenAI ``finish_reason`` → Anthropic ``stop_reason``."""


def anthropic_status(status: int) -> int:
    """The status an Anthropic client gets for one of the router's statuses."""
    if status in ERROR_TYPES:
        return status
    if status in STATUS_OF:
        return STATUS_OF[status]
    return 500 if status >= 500 else 400


def error_object(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error body for an (Anthropic) HTTP status."""
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def usage_of(usage: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI usage → Anthropic usage (cache reads are not part of Anthropic's input)."""
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0)
    written = int(details.get("cache_creation_tokens") or 0)
    return {
        "input_tokens": max(0, int(usage.get("prompt_tokens") or 0) - cached - written),
        "output_tokens": int(usage.get("completion_tokens") or 0),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }


def _message_id(chat_id: Any) -> str:
    return "msg_" + str(chat_id or "router").removeprefix("chatcmpl-")


def to_message(raw: bytes, model: str) -> bytes:
    """A ``chat.completion`` body as a Messages API ``message`` body.

    ``model`` is what the answer names, as a Message's ``model``: the upstream's own.
    """
    try:
        data = orjson.loads(raw)
        choice = data["choices"][0]
        msg = choice["message"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        raise malformed("upstream", "no choice to answer with") from None
    content: list[dict[str, Any]] = []
    if isinstance(msg.get("content"), str) and msg["content"]:
        content.append({"type": "text", "text": msg["content"]})
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": fn.get("name"),
                "input": _arguments(fn.get("arguments")),
            }
        )
    stop = FINISH.get(str(choice.get("finish_reason")), "end_turn")
    message = {
        "id": _message_id(data.get("id")),
        "type": "message",
        "role": "assistant",
        "model": data.get("model") or model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage_of(data.get("usage")),
    }
    return orjson.dumps(message)


def _arguments(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw if isinstance(raw, dict) else {}
    try:
        args = orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        raise malformed("upstream", "tool call arguments are not JSON") from None
    return args if isinstance(args, dict) else {"value": args}


def error_event(message: str) -> bytes:
    """Anthropic's ``error`` event for a stream that failed after it began."""
    return named_event("error", error_object(500, message))


class MessagesShape:
    """OpenAI chunks in, Anthropic's stream events out (one object per stream)."""

    def __init__(self, model: str) -> None:
        self._model = model
        self.usage: dict[str, Any] | None = None
        self._started = False
        self._block = -1
        """Index of the open content block (-1: none)."""
        self._kind: str | None = None
        """``"text"`` or ``"tool_use"``: the open block's type."""
        self._tools: dict[int, int] = {}
        """OpenAI tool call index → Anthropic block index."""
        self._stop = "end_turn"

    def _start(self, chunk: dict[str, Any]) -> list[bytes]:
        self._started = True
        message: dict[str, Any] = {
            "id": _message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model") or self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # The counts come at the end of an OpenAI stream: message_delta has them.
            "usage": usage_of(None),
        }
        return [
            named_event("message_start", {"type": "message_start", "message": message}),
            named_event("ping", {"type": "ping"}),
        ]

    def _close(self) -> list[bytes]:
        if self._block < 0 or self._kind is None:
            return []
        self._kind = None
        stop = {"type": "content_block_stop", "index": self._block}
        return [named_event("content_block_stop", stop)]

    def _open(self, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self._block += 1
        self._kind = block["type"]
        start = {"type": "content_block_start", "index": self._block, "content_block": block}
        out.append(named_event("content_block_start", start))
        return out

    def _delta(self, delta: dict[str, Any]) -> bytes:
        event = {"type": "content_block_delta", "index": self._block, "delta": delta}
        return named_event("content_block_delta", event)

    def _text(self, text: str) -> list[bytes]:
        out = [] if self._kind == "text" else self._open({"type": "text", "text": ""})
        out.append(self._delta({"type": "text_delta", "text": text}))
        return out

    def _tool(self, call: dict[str, Any]) -> list[bytes]:
        index = int(call.get("index", 0))
        fn = call.get("function") or {}
        out: list[bytes] = []
        if index not in self._tools:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id"),
                "name": fn.get("name"),
                "input": {},
            }
            out += self._open(block)
            self._tools[index] = self._block
        elif self._tools[index] != self._block:
            # A block once closed cannot take more input in Anthropic's stream.
            raise malformed("upstream", "tool call arguments resumed after another block")
        if fn.get("arguments"):
            out.append(self._delta({"type": "input_json_delta", "partial_json": fn["arguments"]}))
        return out

    def _end(self) -> list[bytes]:
        out = self._close()
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop, "stop_sequence": None},
            "usage": usage_of(self.usage),
        }
        out.append(named_event("message_delta", delta))
        out.append(named_event("message_stop", {"type": "message_stop"}))
        return out

    def feed(self, event: bytes) -> list[bytes]:
        """Anthropic's events for one OpenAI chunk (``[DONE]`` closes the message)."""
        if event == DONE:
            return self._end()
        _, data = parse_sse(event)
        if not data:
            return []
        chunk = orjson.loads(data)
        out = [] if self._started else self._start(chunk)
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # the Messages API has one answer; chat asked for one
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                out += self._text(delta["content"])
            for call in delta.get("tool_calls") or ():
                out += self._tool(call)
            if choice.get("finish_reason"):
                self._stop = FINISH.get(choice["finish_reason"], "end_turn")
        return out

    def fail(self, message: str) -> bytes:
        """Anthropic's ``error`` event."""
        return error_event(message)


class AsSentShape:
    """Anthropic's own stream events, passed on as they are; usage read on the way."""

    def __init__(self) -> None:
        self.usage: dict[str, Any] | None = None
        self._counts: dict[str, Any] = {}

    def feed(self, event: bytes) -> list[bytes]:
        """``event`` itself (one or more Anthropic events); usage noted."""
        if b"usage" in event:
            for one in event.split(b"\n\n"):
                self._note(one)
        return [event]

    def _note(self, event: bytes) -> None:
        _, data = parse_sse(event)
        if not data:
            return
        try:
            decoded = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        kind = decoded.get("type") if isinstance(decoded, dict) else None
        if kind == "message_start":
            usage = (decoded.get("message") or {}).get("usage")
        elif kind == "message_delta":
            usage = decoded.get("usage")
        else:
            return
        if isinstance(usage, dict):
            # message_delta counts are running totals: they replace, never add.
            self._counts.update({k: v for k, v in usage.items() if v is not None})
            self.usage = openai_usage(self._counts)

    def fail(self, message: str) -> bytes:
        """Anthropic's ``error`` event."""
        return error_event(message)


def shape(model: str) -> ShapeFactory:
    """How one Messages door stream looks, whoever serves it."""

    def build(as_sent: bool) -> StreamShape:
        return AsSentShape() if as_sent else MessagesShape(model)

    return build
