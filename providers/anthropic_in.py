"""Anthropic Messages API requests to Chat Completions, for the router's Messages door: pure.

The inverse of :mod:`providers.anthropic_wire`. ``system`` becomes a system message;
``tool_result`` blocks become ``tool`` messages ahead of the user's other blocks (an
``is_error`` result says so in its text, and its images follow in a user message,
since a tool message holds text only); ``tool_use`` blocks become ``tool_calls``;
images and PDF documents become ``image_url`` and ``file`` parts; custom tools become
function tools; ``stop_sequences``, ``temperature``, ``top_p``, ``metadata.user_id``
and an ``output_config`` JSON schema are mapped; a stream asks for usage, which
Anthropic's stream always reports.

Nothing is dropped unnoticed. What only tells Anthropic how to serve (``thinking``,
``top_k``, ``cache_control``, ``service_tier``...) is listed in
:attr:`Translated.ignored` (the door reports it in a header when a model of another
vendor answered). What another vendor cannot do at all (Anthropic's server tools and
their result blocks, files by id) and top-level fields this translation does not know
make the request :attr:`Translated.unfit` for models that need the translation: only
Anthropic models are tried then, and they take the body as sent (so Anthropic itself
accepts a field newer than this module, or refuses an unknown one with its own 400).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from providers.base import InvalidBody

FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "output_config",
        "service_tier",
        "cache_control",
        "container",
        "context_management",
        "diagnostics",
        "inference_geo",
        "mcp_servers",
        "speed",
        "user_profile_id",
        "workspace_id",
        "models",
    }
)
"""The top-level fields this translation knows: the Messages API's (current, beta,
and older ones clients still send) and the router's own ``models`` (an ad-hoc fallback
list, as on the chat door)."""

HINTS = frozenset(
    {
        "top_k",
        "thinking",
        "service_tier",
        "cache_control",
        "container",
        "context_management",
        "diagnostics",
        "inference_geo",
        "speed",
        "user_profile_id",
        "workspace_id",
    }
)
"""Fields that tell Anthropic how to serve; another vendor answers the same request
without them."""

_NEEDS_ANTHROPIC = frozenset({"mcp_servers"})


@dataclass(slots=True)
class Translated:
    """A Messages request as a chat body, with what the translation could not carry."""

    chat: dict[str, Any]
    ignored: list[str] = field(default_factory=list)
    """Serving hints a model of another vendor does without (reported, not sent)."""
    unfit: list[str] = field(default_factory=list)
    """What only Anthropic can serve: models of other vendors are skipped."""

    @property
    def unfit_reason(self) -> str | None:
        """Why a model of another vendor cannot serve this request, if it cannot."""
        if not self.unfit:
            return None
        return "only Anthropic serves " + ", ".join(sorted(set(self.unfit)))


def _bad(message: str, param: str | None = None) -> InvalidBody:
    return InvalidBody(message, param)


def _text_of_blocks(blocks: Any, where: str) -> str:
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise _bad(f"{where}: Input should be a valid string or list", where)
    texts = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _bad(f"{where}.{i}: only text blocks are allowed here", where)
        texts.append(str(block.get("text", "")))
    return "\n\n".join(texts)


class _Turns:
    """Builds the chat messages of one request, noting what cannot be carried."""

    def __init__(self, out: Translated) -> None:
        self.out = out
        self.messages: list[dict[str, Any]] = []

    def _note(self, block: dict[str, Any]) -> None:
        if "cache_control" in block:
            self.out.ignored.append("cache_control")

    def _image(self, block: dict[str, Any], where: str) -> dict[str, Any] | None:
        source = block.get("source")
        if not isinstance(source, dict):
            raise _bad(f"{where}.source: Field required", where)
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        elif source.get("type") == "url":
            url = str(source.get("url"))
        else:
            self.out.unfit.append(f"image source {source.get('type')!r}")
            return None
        return {"type": "image_url", "image_url": {"url": url}}

    def _document(self, block: dict[str, Any], where: str) -> dict[str, Any] | None:
        source = block.get("source")
        if not isinstance(source, dict):
            raise _bad(f"{where}.source: Field required", where)
        kind = source.get("type")
        if kind == "base64" and source.get("media_type") == "application/pdf":
            data = f"data:application/pdf;base64,{source.get('data')}"
            name = str(block.get("title") or "document.pdf")
            return {"type": "file", "file": {"filename": name, "file_data": data}}
        if kind == "text":
            return {"type": "text", "text": str(source.get("data", ""))}
        if kind == "content":
            text = _text_of_blocks(source.get("content"), f"{where}.source.content")
            return {"type": "text", "text": text}
        self.out.unfit.append(f"document source {kind!r}")
        return None

    def _part(self, block: Any, where: str) -> dict[str, Any] | None:
        """A user content block (not a tool result) as an OpenAI content part."""
        if not isinstance(block, dict):
            raise _bad(f"{where}: Input should be an object", where)
        self._note(block)
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise _bad(f"{where}.text: Field required", where)
            return {"type": "text", "text": text}
        if kind == "image":
            return self._image(block, where)
        if kind == "document":
            return self._document(block, where)
        if kind in ("thinking", "redacted_thinking"):
            self.out.ignored.append("thinking")
            return None
        self.out.unfit.append(f"{kind!r} blocks")
        return None

    def _tool_result(self, block: dict[str, Any], where: str) -> list[dict[str, Any]]:
        """A ``tool_result`` as a tool message, plus a user message with its images."""
        self._note(block)
        content = block.get("content")
        texts: list[str] = []
        images: list[dict[str, Any]] = []
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for i, inner in enumerate(content):
                part = self._part(inner, f"{where}.content.{i}")
                if part is None:
                    continue
                if part["type"] == "text":
                    texts.append(part["text"])
                else:
                    images.append(part)
        elif content is not None:
            raise _bad(f"{where}.content: Input should be a valid string or list", where)
        text = "\n".join(texts)
        if block.get("is_error"):
            # Chat has no error flag on tool results: the model reads it in the text.
            text = f"Error: {text}" if text else "Error"
        out = [{"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text}]
        if images:
            out.append({"role": "user", "content": images})
        return out

    def user(self, content: Any, where: str) -> None:
        """One user turn: tool results first, as chat wants them after the calls."""
        if isinstance(content, str):
            self.messages.append({"role": "user", "content": content})
            return
        if not isinstance(content, list):
            raise _bad(f"{where}: Input should be a valid string or list", where)
        results: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        for i, block in enumerate(content):
            if isinstance(block, dict) and block.get("type") == "tool_result":
                results += self._tool_result(block, f"{where}.{i}")
            elif (part := self._part(block, f"{where}.{i}")) is not None:
                parts.append(part)
        tools = [m for m in results if m["role"] == "tool"]
        self.messages += tools
        images = [p for m in results if m["role"] == "user" for p in m["content"]]
        if parts or images:
            one_text = len(parts) == 1 and parts[0]["type"] == "text" and not images
            self.messages.append(
                {"role": "user", "content": parts[0]["text"] if one_text else parts + images}
            )

    def assistant(self, content: Any, where: str) -> None:
        """One assistant turn: text and tool calls."""
        if isinstance(content, str):
            self.messages.append({"role": "assistant", "content": content})
            return
        if not isinstance(content, list):
            raise _bad(f"{where}: Input should be a valid string or list", where)
        text: list[str] = []
        calls: list[dict[str, Any]] = []
        for i, block in enumerate(content):
            if not isinstance(block, dict):
                raise _bad(f"{where}.{i}: Input should be an object", where)
            self._note(block)
            kind = block.get("type")
            if kind == "text":
                text.append(str(block.get("text", "")))
            elif kind == "tool_use":
                args = orjson.dumps(block.get("input") or {}).decode()
                fn = {"name": block.get("name"), "arguments": args}
                calls.append({"id": block.get("id"), "type": "function", "function": fn})
            elif kind in ("thinking", "redacted_thinking"):
                self.out.ignored.append("thinking")
            else:
                self.out.unfit.append(f"{kind!r} blocks")
        msg: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
        if calls:
            msg["tool_calls"] = calls
        if msg["content"] is not None or calls:
            self.messages.append(msg)


def _tools(body: dict[str, Any], out: Translated) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _bad("tools: Input should be a valid list", "tools")
    functions = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _bad(f"tools.{i}: Input should be an object", "tools")
        if tool.get("type") not in (None, "custom"):
            out.unfit.append(f"server tool {tool.get('type')!r}")
            continue
        if not isinstance(tool.get("name"), str) or "input_schema" not in tool:
            raise _bad(f"tools.{i}: 'name' and 'input_schema' are required", "tools")
        if "cache_control" in tool:
            out.ignored.append("cache_control")
        fn: dict[str, Any] = {"name": tool["name"], "parameters": tool["input_schema"]}
        if isinstance(tool.get("description"), str):
            fn["description"] = tool["description"]
        if isinstance(tool.get("strict"), bool):
            fn["strict"] = tool["strict"]
        functions.append({"type": "function", "function": fn})
    if functions:
        out.chat["tools"] = functions
    _tool_choice(body.get("tool_choice"), out)


def _tool_choice(choice: Any, out: Translated) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict):
        raise _bad("tool_choice: Input should be an object", "tool_choice")
    kind = choice.get("type")
    if kind == "auto":
        mapped: Any = "auto"
    elif kind == "any":
        mapped = "required"
    elif kind == "none":
        mapped = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        mapped = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise _bad("tool_choice: type must be 'auto', 'any', 'tool' or 'none'", "tool_choice")
    if "tools" in out.chat:
        out.chat["tool_choice"] = mapped
        if choice.get("disable_parallel_tool_use") is True:
            out.chat["parallel_tool_calls"] = False


def _output_config(config: Any, out: Translated) -> None:
    if not isinstance(config, dict):
        raise _bad("output_config: Input should be an object", "output_config")
    fmt = config.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema") if isinstance(fmt.get("schema"), dict) else {"type": "object"}
        spec = {"name": "output", "schema": schema}
        out.chat["response_format"] = {"type": "json_schema", "json_schema": spec}
    elif fmt is not None:
        raise _bad("output_config.format: type must be 'json_schema'", "output_config")
    if config.keys() - {"format"}:
        out.ignored.append("output_config.effort")


def _check(body: dict[str, Any]) -> None:
    """What Anthropic refuses before it looks at the content."""
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise _bad("max_tokens: Field required", "max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        raise _bad("max_tokens: Input should be a non-negative integer", "max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages: at least one message is required", "messages")
    stops = body.get("stop_sequences")
    if stops is not None and not (
        isinstance(stops, list) and all(isinstance(s, str) for s in stops)
    ):
        raise _bad("stop_sequences: Input should be a list of strings", "stop_sequences")


def to_chat(body: dict[str, Any]) -> Translated:
    """The Chat Completions body for a Messages API request (``body`` is not modified)."""
    _check(body)
    out = Translated({"model": body.get("model")})
    chat = out.chat
    if "models" in body:
        chat["models"] = body["models"]
    turns = _Turns(out)
    if (system := body.get("system")) is not None:
        if isinstance(system, list):
            for block in system:
                if isinstance(block, dict) and "cache_control" in block:
                    out.ignored.append("cache_control")
        turns.messages.append({"role": "system", "content": _text_of_blocks(system, "system")})
    for i, msg in enumerate(body["messages"]):
        where = f"messages.{i}"
        if not isinstance(msg, dict):
            raise _bad(f"{where}: Input should be an object", "messages")
        role = msg.get("role")
        if role == "user":
            turns.user(msg.get("content"), f"{where}.content")
        elif role == "assistant":
            turns.assistant(msg.get("content"), f"{where}.content")
        else:
            raise _bad(f"{where}.role: Input should be 'user' or 'assistant'", "messages")
    chat["messages"] = turns.messages
    if body["max_tokens"] == 0:
        # Zero warms Anthropic's prompt cache without an answer: nothing to others.
        out.unfit.append("max_tokens 0 (cache warming)")
    else:
        chat["max_tokens"] = body["max_tokens"]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = body[name]
    _tools(body, out)
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    if body.get("output_config") is not None:
        _output_config(body["output_config"], out)
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    elif body.get("stream") not in (None, False):
        raise _bad("stream: Input should be a valid boolean", "stream")
    out.ignored += [name for name in body if name in HINTS and body[name] is not None]
    out.unfit += [f"field {name!r}" for name in body if name in _NEEDS_ANTHROPIC]
    out.unfit += [f"field {name!r}" for name in body if name not in FIELDS]
    out.ignored = sorted(set(out.ignored))
    return out


def estimate_tokens(body: dict[str, Any]) -> int:
    """A rough input token count for ``count_tokens``: four characters a token.

    Text of the system prompt, messages and tool definitions is counted; an image
    counts as a fixed 1,600 tokens (a large image, in Anthropic's own estimate).
    """
    _check_count(body)
    chars = len(_text_of_blocks(body.get("system") or "", "system"))
    images = 0
    for msg in body["messages"]:
        content = msg.get("content") if isinstance(msg, dict) else None
        chars, images = _count(content, chars, images)
    if body.get("tools"):
        chars += len(orjson.dumps(body["tools"]))
    return max(1, chars // 4 + images * 1600)


def _check_count(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages: at least one message is required", "messages")
    if not isinstance(body.get("model"), str):
        raise _bad("model: Field required", "model")


def _count(content: Any, chars: int, images: int) -> tuple[int, int]:
    if isinstance(content, str):
        return chars + len(content), images
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        if block.get("type") in ("image", "document"):
            images += 1
        elif block.get("type") == "tool_use":
            chars += len(orjson.dumps(block.get("input") or {}))
        elif block.get("type") == "tool_result":
            chars, images = _count(block.get("content"), chars, images)
        elif isinstance(block.get("text"), str):
            chars += len(block["text"])
    return chars, images
