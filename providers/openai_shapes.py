"""OpenAI Chat Completions shapes shared by the translating adapters.

Pure helpers: read the parts of a unified (OpenAI-shaped) request that every vendor
needs, and build the ``chat.completion`` bodies and ``chat.completion.chunk`` SSE
events sent back to clients. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from providers.base import Failure, ProviderError
from providers.sse import sse_event


def client_error(message: str) -> ProviderError:
    """A request this adapter cannot translate: the client's input is at fault."""
    return ProviderError(Failure.CLIENT, message, status=400)


def malformed(vendor: str, what: str) -> ProviderError:
    """An upstream answer that is not what the vendor documents."""
    return ProviderError(Failure.MALFORMED, f"{vendor} answer is malformed: {what}"[:500])


def text_of(content: Any) -> str:
    """The text of an OpenAI message ``content`` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "input_text", "refusal")
        )
    return ""


def max_tokens_of(body: dict[str, Any]) -> int | None:
    """``max_completion_tokens`` (current name) or ``max_tokens`` (older name)."""
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise client_error("'max_tokens' must be a positive integer.")
    return value


def stop_list(body: dict[str, Any]) -> list[str]:
    """``stop`` as a list (OpenAI accepts one string or a list of them)."""
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise client_error("'stop' must be a string or an array of strings.")


def function_tools(body: dict[str, Any], vendor: str) -> list[dict[str, Any]]:
    """The ``function`` objects of the request's tools; any other kind is a client error."""
    functions: list[dict[str, Any]] = []
    for tool in body.get("tools") or ():
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(fn, dict):
            raise client_error(f"only function tools are supported by {vendor}.")
        functions.append(fn)
    return functions


def function_call(call: Any) -> tuple[Any, dict[str, Any]]:
    """An assistant tool call's function name and decoded ``arguments`` (an object)."""
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise client_error("tool_calls entries must be function calls.")
    raw = call["function"].get("arguments") or "{}"
    try:
        args = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        raise client_error("tool call arguments are not valid JSON.") from None
    if not isinstance(args, dict):
        raise client_error("tool call arguments must be a JSON object.")
    return call["function"].get("name"), args


def content_parts(
    content: Any,
    part: Callable[[Any], dict[str, Any] | None],
    text: Callable[[str], dict[str, Any]],
) -> list[dict[str, Any]]:
    """A message's ``content`` (a string or an array of parts) in a vendor's parts.

    ``part`` converts one OpenAI content part (``None``: nothing to send); ``text``
    wraps a plain string.
    """
    if content is None:
        return []
    if isinstance(content, str):
        return [text(content)] if content else []
    if isinstance(content, list):
        return [p for p in map(part, content) if p is not None]
    raise client_error("message content must be a string or an array of parts.")


@dataclass(frozen=True, slots=True)
class Image:
    """An ``image_url`` part: inline bytes (base64 ``data``) or a remote ``url``."""

    media_type: str | None
    data: str | None = None
    url: str | None = None


def image_of(part: dict[str, Any]) -> Image:
    """Read an ``image_url`` content part (``data:`` URLs become inline base64)."""
    ref = part.get("image_url")
    url = ref.get("url") if isinstance(ref, dict) else ref
    if not isinstance(url, str) or not url:
        raise client_error("image_url part without a url.")
    if not url.startswith("data:"):
        return Image(media_type=None, url=url)
    head, sep, payload = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        raise client_error("image data URLs must be base64 encoded.")
    return Image(media_type=head[: -len(";base64")] or None, data=payload)


def json_schema_format(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None] | None:
    """``response_format`` as ``(kind, schema)``: ``json_object`` or ``json_schema``."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return "json_object", None
    if fmt["type"] == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return "json_schema", schema if isinstance(schema, dict) else {"type": "object"}
    raise client_error(f"response_format type {fmt['type']!r} is not supported.")


@dataclass(slots=True)
class Choice:
    """One answer being assembled: text, tool calls and the finish reason."""

    index: int = 0
    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None

    def message(self) -> dict[str, Any]:
        """The OpenAI ``message`` object of this choice."""
        msg: dict[str, Any] = {
            "role": "assistant",
            "content": self.text if self.text or not self.tool_calls else None,
            "refusal": None,
        }
        if self.tool_calls:
            msg["tool_calls"] = self.tool_calls
        return msg


def completion(
    id: str, model: str, created: int, choices: list[Choice], usage: dict[str, Any] | None
) -> bytes:
    """A whole ``chat.completion`` body."""
    body: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": c.index,
                "message": c.message(),
                "logprobs": None,
                "finish_reason": c.finish_reason or "stop",
            }
            for c in choices
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


@dataclass(slots=True)
class ChunkWriter:
    """Builds the ``chat.completion.chunk`` events of one stream."""

    id: str
    model: str
    created: int
    include_usage: bool

    def _base(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.include_usage:
            # OpenAI sends ``usage: null`` on every chunk once the client asked for usage.
            out["usage"] = None
        return out

    def delta(self, delta: dict[str, Any], index: int = 0, finish: str | None = None) -> bytes:
        """One chunk carrying ``delta`` for choice ``index``."""
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse_event(self._base([choice]))

    def usage(self, usage: dict[str, Any]) -> bytes:
        """The closing usage chunk (no choices).

        Adapters end every stream with it, asked for or not: the dispatcher needs the
        count, and hides the chunk from a client that did not ask for it.
        """
        out = self._base([])
        out["usage"] = usage
        return sse_event(out)


def usage_dict(
    prompt: int,
    completion_tokens: int,
    *,
    total: int | None = None,
    cached: int | None = None,
    reasoning: int | None = None,
    extra_prompt: dict[str, int] | None = None,
) -> dict[str, Any]:
    """OpenAI ``usage``; cache and reasoning details only when the vendor reported them."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": total if total is not None else prompt + completion_tokens,
    }
    details = dict(extra_prompt or {})
    if cached is not None:
        details["cached_tokens"] = cached
    if details:
        usage["prompt_tokens_details"] = details
    if reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage
