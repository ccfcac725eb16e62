"""Anthropic answers to OpenAI Chat Completions: whole messages and streams, pure, no I/O.

``text`` and ``tool_use`` blocks become content and ``tool_calls``; thinking blocks
are not forwarded; ``stop_reason`` becomes ``finish_reason``; usage counts cache reads
and writes as prompt tokens, as OpenAI does. A refusal before anything was produced
raises ``CONTENT_FILTER`` so the router can try another vendor.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.anthropic_wire import ERROR_STATUS, classify
from providers.base import Failure, ProviderError
from providers.openai_shapes import Choice, ChunkWriter, completion, malformed, usage_dict
from providers.sse import DONE

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
"""Anthropic ``stop_reason`` → OpenAI ``finish_reason``."""


def usage_of(usage: dict[str, Any]) -> dict[str, Any]:
    """Anthropic usage → OpenAI usage; cache writes and reads count as prompt tokens."""
    read = int(usage.get("cache_read_input_tokens") or 0)
    write = int(usage.get("cache_creation_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + read + write
    return usage_dict(
        prompt,
        int(usage.get("output_tokens") or 0),
        cached=read,
        extra_prompt={"cache_creation_tokens": write},
    )


def _refused(finish: str | None) -> ProviderError:
    return ProviderError(Failure.CONTENT_FILTER, f"Anthropic refused to answer ({finish})")


def from_anthropic(msg: dict[str, Any], *, created: int) -> tuple[bytes, dict[str, Any]]:
    """A Messages API answer → (OpenAI ``chat.completion`` body, OpenAI usage)."""
    content = msg.get("content")
    if msg.get("type") != "message" or not isinstance(content, list):
        raise malformed("Anthropic", "not a message with content")
    choice = Choice()
    for block in content:
        if not isinstance(block, dict):
            raise malformed("Anthropic", "content block is not an object")
        if block.get("type") == "text":
            choice.text += str(block.get("text", ""))
        elif block.get("type") == "tool_use":
            args = orjson.dumps(block.get("input") or {}).decode()
            fn = {"name": block.get("name"), "arguments": args}
            choice.tool_calls.append({"id": block.get("id"), "type": "function", "function": fn})
    stop = msg.get("stop_reason")
    choice.finish_reason = STOP_REASONS.get(str(stop), "stop")
    if choice.finish_reason == "content_filter" and not (choice.text or choice.tool_calls):
        raise _refused(stop)
    usage = usage_of(msg.get("usage") or {})
    body = completion(f"chatcmpl-{msg.get('id')}", str(msg.get("model")), created, [choice], usage)
    return body, usage


def stream_error(event: dict[str, Any]) -> ProviderError:
    """An ``error`` event in a Messages stream (e.g. ``overloaded_error``)."""
    err = event.get("error")
    if not isinstance(err, dict):
        err = {}
    kind = str(err.get("type") or "api_error")
    status = ERROR_STATUS.get(kind, 500)
    failure = classify(status, orjson.dumps(event))
    message = f"Anthropic stream error: {kind}: {err.get('message', '')}"
    return ProviderError(failure, message[:500], status=status)


class AnthropicStream:
    """Turns Messages stream events into OpenAI ``chat.completion.chunk`` events.

    Feed it each decoded event; it returns the OpenAI events to send.
    The role chunk is held back until the first content, so an ``error`` event that
    arrives before any content still lets the router try another model. The stream
    always ends with a usage chunk; ``include_usage`` (the client asked for usage) adds
    ``usage: null`` to the other chunks, as OpenAI does.
    """

    def __init__(self, *, model: str, created: int, include_usage: bool) -> None:
        self._model, self._created, self._include_usage = model, created, include_usage
        self._writer: ChunkWriter | None = None
        self._blocks: dict[int, int | None] = {}
        """Content block index → tool call index (None for a text block)."""
        self._tools = 0
        self._usage: dict[str, Any] = {}
        self._started = False
        self._finished = False
        self.done = False
        """``message_stop`` arrived: the stream is complete."""

    @property
    def writer(self) -> ChunkWriter:
        """The chunk builder, known once ``message_start`` arrived."""
        if self._writer is None:
            raise malformed("Anthropic", "stream event before message_start")
        return self._writer

    def _emit(self, delta: dict[str, Any], finish: str | None = None) -> list[bytes]:
        out = []
        if not self._started:
            self._started = True
            out.append(self.writer.delta({"role": "assistant", "content": ""}))
        out.append(self.writer.delta(delta, finish=finish))
        return out

    def feed(self, data: dict[str, Any]) -> list[bytes]:
        """Translate one decoded stream event; raise :class:`ProviderError` on ``error``."""
        kind = data.get("type")
        if kind == "message_start":
            msg = data.get("message") or {}
            self._writer = ChunkWriter(
                f"chatcmpl-{msg.get('id')}",
                str(msg.get("model") or self._model),
                self._created,
                self._include_usage,
            )
            self._usage.update(msg.get("usage") or {})
            return []
        if kind == "content_block_start":
            return self._block_start(int(data.get("index", 0)), data.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(int(data.get("index", 0)), data.get("delta") or {})
        if kind == "message_delta":
            self._usage.update(
                {k: v for k, v in (data.get("usage") or {}).items() if v is not None}
            )
            stop = (data.get("delta") or {}).get("stop_reason")
            finish = STOP_REASONS.get(str(stop), "stop")
            if finish == "content_filter" and not self._started:
                raise _refused(stop)
            self._finished = True
            return self._emit({}, finish)
        if kind == "message_stop":
            self.done = True
            return []
        if kind == "error":
            raise stream_error(data)
        # ping, content_block_stop, and event types added later carry nothing to relay.
        return []

    def _block_start(self, index: int, block: dict[str, Any]) -> list[bytes]:
        if block.get("type") == "text":
            self._blocks[index] = None
            text = block.get("text")
            return self._emit({"content": text}) if text else []
        if block.get("type") == "tool_use":
            n = self._blocks[index] = self._tools
            self._tools += 1
            args = orjson.dumps(block["input"]).decode() if block.get("input") else ""
            fn = {"name": block.get("name"), "arguments": args}
            call = {"index": n, "id": block.get("id"), "type": "function", "function": fn}
            return self._emit({"content": None, "tool_calls": [call]})
        return []

    def _block_delta(self, index: int, delta: dict[str, Any]) -> list[bytes]:
        if delta.get("type") == "text_delta" and delta.get("text"):
            return self._emit({"content": delta["text"]})
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            n = self._blocks.get(index)
            if n is None:
                raise malformed("Anthropic", "input_json_delta outside a tool_use block")
            call = {"index": n, "function": {"arguments": delta["partial_json"]}}
            return self._emit({"tool_calls": [call]})
        return []

    def finish(self) -> list[bytes]:
        """The closing events; raise if the stream ended without ``message_stop``."""
        if not self.done:
            raise ProviderError(Failure.INTERRUPTED, "Anthropic stream ended without message_stop")
        out = [] if self._finished else self._emit({}, "stop")
        out.append(self.writer.usage(usage_of(self._usage)))
        out.append(DONE)
        return out
