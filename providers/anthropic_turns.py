"""Messages API turns and content blocks as chat messages, for the Messages door: pure.

Part of the translation in :mod:`providers.anthropic_in`: ``tool_result`` blocks
become ``tool`` messages ahead of the user's other blocks (an ``is_error`` result says
so in its text, and its images follow in a user message, since a tool message holds
text only); ``tool_use`` blocks become ``tool_calls``; images and PDF documents become
``image_url`` and ``file`` parts; ``thinking`` blocks and caching or citation fields
are noted as ignored, and blocks only Anthropic serves as unfit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from providers.base import InvalidBody

BLOCK_HINTS = frozenset({"cache_control", "citations", "context"})
"""Block fields another vendor does without: caching, citation of a document, and a
document's ``context`` (notes about it, for citations)."""


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


def bad(message: str, param: str | None = None) -> InvalidBody:
    """A request Anthropic would refuse: a 400 naming where."""
    return InvalidBody(message, param)


def text_of_blocks(blocks: Any, where: str) -> str:
    """The text of ``system`` or a text-only content: a string, or text blocks joined."""
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise bad(f"{where}: Input should be a valid string or list", where)
    texts = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise bad(f"{where}.{i}: only text blocks are allowed here", where)
        texts.append(str(block.get("text", "")))
    return "\n\n".join(texts)


class Turns:
    """Builds the chat messages of one request, noting what cannot be carried."""

    def __init__(self, out: Translated) -> None:
        self.out = out
        self.messages: list[dict[str, Any]] = []

    def _note(self, block: dict[str, Any]) -> None:
        """Note a block's fields that only tell Anthropic how to serve or cite."""
        for key in block.keys() & BLOCK_HINTS:
            self.out.ignored.append(key)

    def _image(self, block: dict[str, Any], where: str) -> dict[str, Any] | None:
        source = block.get("source")
        if not isinstance(source, dict):
            raise bad(f"{where}.source: Field required", where)
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
            raise bad(f"{where}.source: Field required", where)
        kind = source.get("type")
        if kind == "base64" and source.get("media_type") == "application/pdf":
            data = f"data:application/pdf;base64,{source.get('data')}"
            name = str(block.get("title") or "document.pdf")
            return {"type": "file", "file": {"filename": name, "file_data": data}}
        if kind == "text":
            return {"type": "text", "text": str(source.get("data", ""))}
        if kind == "content":
            text = text_of_blocks(source.get("content"), f"{where}.source.content")
            return {"type": "text", "text": text}
        self.out.unfit.append(f"document source {kind!r}")
        return None

    def _part(self, block: Any, where: str) -> dict[str, Any] | None:
        """A user content block (not a tool result) as an OpenAI content part."""
        if not isinstance(block, dict):
            raise bad(f"{where}: Input should be an object", where)
        self._note(block)
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise bad(f"{where}.text: Field required", where)
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
            raise bad(f"{where}.content: Input should be a valid string or list", where)
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
            raise bad(f"{where}: Input should be a valid string or list", where)
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
            raise bad(f"{where}: Input should be a valid string or list", where)
        text: list[str] = []
        calls: list[dict[str, Any]] = []
        for i, block in enumerate(content):
            if not isinstance(block, dict):
                raise bad(f"{where}.{i}: Input should be an object", where)
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
