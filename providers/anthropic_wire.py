"""Anthropic Messages API ⇄ OpenAI Chat Completions: pure translation, no I/O.

Requests: system and developer messages become ``system``; ``tool`` messages become
``tool_result`` blocks in the next user turn; images and PDF files become ``image`` and
``document`` blocks; ``tools``/``tool_choice``/``parallel_tool_calls``, ``stop``,
``user`` and ``response_format`` (JSON schema) are mapped; ``max_tokens`` gets a
default because Anthropic requires it. The Messages API has no sampling parameters
(``temperature``, ``top_p``, ``seed``, penalties) nor logprobs: those are dropped, and
``n > 1`` is refused because one answer is all the API gives.

Answers: ``text`` and ``tool_use`` blocks become content and ``tool_calls``; thinking
blocks are not forwarded; ``stop_reason`` becomes ``finish_reason``; usage counts the
cache reads and writes as prompt tokens, as OpenAI does.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelrouter.retry import classify_status
from providers.base import Failure, ProviderError
from providers.openai_shapes import (
    DONE,
    Choice,
    ChunkWriter,
    client_error,
    completion,
    image_of,
    json_schema_format,
    malformed,
    max_tokens_of,
    stop_list,
    text_of,
    tool_arguments,
    usage_dict,
)

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

ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""The HTTP status Anthropic documents for each error ``type``."""

_CONTEXT_MARKERS = (b"prompt is too long", b"exceed context limit", b"context window")
# A 400 that blames the account, not the request: another vendor can still answer.
_ACCOUNT_MARKERS = (b"credit balance is too low",)


def classify(status: int, body: bytes) -> Failure:
    """Failure class of an Anthropic error answer (529 overloaded is a server error)."""
    if status == 400:
        lowered = body[:4096].lower()
        if any(m in lowered for m in _ACCOUNT_MARKERS):
            return Failure.AUTH
        if any(m in lowered for m in _CONTEXT_MARKERS):
            return Failure.CONTEXT_LENGTH
    return classify_status(status, body)


# ---- request ---------------------------------------------------------------------------


def _text_block(part: dict[str, Any], text: str) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _part(part: Any) -> dict[str, Any] | None:
    """One OpenAI content part as an Anthropic block (None: nothing to send)."""
    if not isinstance(part, dict):
        raise client_error("content parts must be objects.")
    kind = part.get("type")
    if kind in ("text", "input_text", "refusal"):
        text = part.get("text", part.get("refusal"))
        return _text_block(part, text) if isinstance(text, str) and text else None
    if kind == "image_url":
        img = image_of(part)
        if img.url is not None:
            return {"type": "image", "source": {"type": "url", "url": img.url}}
        source = {"type": "base64", "media_type": img.media_type, "data": img.data}
        return {"type": "image", "source": source}
    if kind == "file":
        data = (part.get("file") or {}).get("file_data")
        if isinstance(data, str) and data.startswith("data:application/pdf;base64,"):
            source = {"type": "base64", "media_type": "application/pdf", "data": data[28:]}
            return {"type": "document", "source": source}
    raise client_error(f"content part type {kind!r} is not supported by Anthropic.")


def _blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return [b for b in (_part(p) for p in content) if b is not None]
    raise client_error("message content must be a string or an array of parts.")


def _tool_use(call: Any) -> dict[str, Any]:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise client_error("tool_calls entries must be function calls.")
    name = call["function"].get("name")
    return {"type": "tool_use", "id": call.get("id"), "name": name, "input": tool_arguments(call)}


def _tool_result(msg: dict[str, Any]) -> dict[str, Any]:
    content = msg.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": msg.get("tool_call_id")}
    if isinstance(content, str):
        if content:
            result["content"] = content
    else:
        blocks = _blocks(content)
        if blocks:
            result["content"] = blocks
    return result


def _messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenAI messages → (system blocks, Anthropic turns, same-role turns merged)."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for msg in messages:
        if not isinstance(msg, dict):
            raise client_error("messages must be objects.")
        role = msg.get("role")
        if role in ("system", "developer"):
            system.extend(b for b in _blocks(msg.get("content")) if b["type"] == "text")
            continue
        if role == "user":
            role, blocks = "user", _blocks(msg.get("content"))
        elif role == "assistant":
            blocks = _blocks(msg.get("content"))
            blocks += [_tool_use(c) for c in msg.get("tool_calls") or ()]
        elif role == "tool":
            role, blocks = "user", [_tool_result(msg)]
        else:
            raise client_error(f"message role {role!r} is not supported by Anthropic.")
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # Anthropic wants the tool results first in their user turn, other blocks after.
        if turn["role"] == "user":
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    return system, turns


def _tools(body: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    tools: list[dict[str, Any]] = []
    for tool in body.get("tools") or ():
        fn = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(fn, dict):
            raise client_error("only function tools are supported by Anthropic.")
        schema = fn.get("parameters") or {"type": "object", "properties": {}}
        out: dict[str, Any] = {"name": fn.get("name"), "input_schema": schema}
        if fn.get("description"):
            out["description"] = fn["description"]
        if isinstance(fn.get("strict"), bool):
            out["strict"] = fn["strict"]
        tools.append(out)
    if not tools:
        return [], None
    choice = body.get("tool_choice")
    mapped: dict[str, Any]
    if choice in (None, "auto"):
        mapped = {"type": "auto"}
    elif choice == "none":
        return tools, {"type": "none"}
    elif choice == "required":
        mapped = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        mapped = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise client_error("tool_choice must be 'auto', 'none', 'required' or a function.")
    if body.get("parallel_tool_calls") is False:
        mapped["disable_parallel_tool_use"] = True
    return tools, mapped


def to_anthropic(
    body: dict[str, Any], model: str, *, default_max_tokens: int, stream: bool
) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat request (``body`` is not modified)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise client_error("'messages' must be an array.")
    n = body.get("n")
    if n not in (None, 1):
        raise client_error("Anthropic returns one choice per request; 'n' must be 1.")
    system, turns = _messages(messages)
    out: dict[str, Any] = {
        "model": model,
        "messages": turns,
        "max_tokens": max_tokens_of(body) or default_max_tokens,
    }
    if system:
        out["system"] = system
    if stop := stop_list(body):
        out["stop_sequences"] = stop
    tools, choice = _tools(body)
    if tools:
        out["tools"] = tools
        if choice is not None:
            out["tool_choice"] = choice
    fmt = json_schema_format(body)
    if fmt is not None and fmt[0] == "json_schema":
        out["output_config"] = {"format": {"type": "json_schema", "schema": fmt[1]}}
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    if stream:
        out["stream"] = True
    return out


# ---- answer ----------------------------------------------------------------------------


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
    body = completion(
        f"chatcmpl-{msg.get('id')}", str(msg.get("model")), created, [choice], usage
    )
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

    Feed it each event's type and decoded data; it returns the OpenAI events to send.
    The role chunk is held back until the first content, so an ``error`` event that
    arrives before any content still lets the router try another model.
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
            self._usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
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
            raise ProviderError(Failure.CONNECT, "Anthropic stream ended without message_stop")
        out = [] if self._finished else self._emit({}, "stop")
        if self._include_usage:
            out.append(self.writer.usage(usage_of(self._usage)))
        out.append(DONE)
        return out
