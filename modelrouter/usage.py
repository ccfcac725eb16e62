"""Token usage of a served request: the upstream's own count, else the router's estimate.

Streams: OpenAI-compatible upstreams are asked for a closing usage chunk even when the
client did not ask (``stream_options.include_usage``, see
:meth:`providers.base.ChatRequest.json_with_model`), and the Anthropic, Gemini and
simulated adapters always end with one. :class:`UsageTap` picks the usage out of the
relayed events and hides that usage-only chunk (``"choices": []``) from a client that
did not ask for it, so the client sees what it would have seen without the router.

Without any usage from the upstream, usage is estimated and marked so: prompt tokens
from the request's message text, completion tokens from the answer's text, both at
four characters a token (as the registry's context check counts). When a stream was
expected to carry usage but did not, its text was not collected (that would cost a
JSON decode per event on every stream); its completion is then counted as one token
per event, which is what token-by-token streaming servers send.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.base import ChatRequest, InvalidBody

CHARS_PER_TOKEN = 4


def prompt_chars(body: dict[str, Any]) -> int:
    """Characters of text over all messages (string contents and text parts)."""
    chars = 0
    for msg in body.get("messages") or ():
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    chars += len(part["text"])
    return chars


def _tool_call_chars(calls: object) -> int:
    chars = 0
    for call in calls if isinstance(calls, list) else ():
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            chars += len(str(fn.get("name") or "")) + len(str(fn.get("arguments") or ""))
    return chars


def _message_chars(msg: object) -> int:
    if not isinstance(msg, dict):
        return 0
    content = msg.get("content")
    chars = len(content) if isinstance(content, str) else 0
    return chars + _tool_call_chars(msg.get("tool_calls"))


def answer_chars(obj: object) -> int:
    """Characters of answer text (content and tool-call arguments) in a decoded
    ``chat.completion`` (``message``) or ``chat.completion.chunk`` (``delta``)."""
    choices = obj.get("choices") if isinstance(obj, dict) else None
    chars = 0
    for choice in choices if isinstance(choices, list) else ():
        if isinstance(choice, dict):
            chars += _message_chars(choice.get("message") or choice.get("delta"))
    return chars


def estimate(request: ChatRequest, completion_tokens: int) -> dict[str, Any]:
    """OpenAI-shaped usage for an answer whose upstream reported none."""
    try:
        prompt = prompt_chars(request.body) // CHARS_PER_TOKEN
    except InvalidBody:
        # The upstream took bytes this router cannot decode (passthrough): count nothing.
        prompt = 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


def completion_usage(
    request: ChatRequest, body: bytes, usage: dict[str, Any] | None
) -> tuple[dict[str, Any], bool]:
    """(usage, estimated) of a non-streamed answer ``body``."""
    if usage is not None:
        return usage, False
    try:
        chars = answer_chars(orjson.loads(body))
    except orjson.JSONDecodeError:
        chars = 0
    return estimate(request, -(-chars // CHARS_PER_TOKEN)), True


def _usage_member(event: bytes) -> bool:
    """Whether ``event`` has a ``"usage"`` member whose value is an object.

    A byte search, no decode: ``"usage":`` can only be a member name in JSON (inside a
    string its quotes would be escaped). OpenAI puts ``usage`` last, so search from
    the end; ``"usage":null`` (sent on every chunk once usage is asked for) is no match.
    """
    i = event.rfind(b'"usage":')
    if i < 0:
        return False
    j = i + 8
    while event[j : j + 1] == b" ":
        j += 1
    return event[j : j + 1] == b"{"


class UsageTap:
    """Watches a relayed stream's events: its usage, and what the client may see."""

    __slots__ = ("_collect", "_hide", "chars", "events", "usage")

    def __init__(self, *, client_asked: bool, expected: bool) -> None:
        self._hide = not client_asked
        # Collect answer text (a decode per event) only when no usage is expected.
        self._collect = not expected
        self.usage: dict[str, Any] | None = None
        self.events = 0
        self.chars = 0

    def passes(self, event: bytes) -> bool:
        """Note what ``event`` says about usage; ``False``: the client must not see it."""
        self.events += 1
        if self._collect:
            return self._decoded(event)
        if not _usage_member(event):
            return True
        obj = _decode(event)
        return self._note_usage(obj)

    def _decoded(self, event: bytes) -> bool:
        obj = _decode(event)
        self.chars += answer_chars(obj)
        return self._note_usage(obj)

    def _note_usage(self, obj: dict[str, Any] | None) -> bool:
        usage = obj.get("usage") if obj is not None else None
        if not isinstance(usage, dict):
            return True
        self.usage = usage
        # Only a usage-only chunk is hidden; usage riding on a content chunk (as
        # Mistral sends it) is the upstream's own and stays.
        return not (self._hide and obj is not None and obj.get("choices") == [])

    def result(self, request: ChatRequest) -> tuple[dict[str, Any], bool]:
        """(usage, estimated) once the stream is over."""
        if self.usage is not None:
            return self.usage, False
        if self._collect:
            return estimate(request, -(-self.chars // CHARS_PER_TOKEN)), True
        # The events' text was not kept: one token per event, the role chunk, the
        # finish chunk and ``[DONE]`` aside.
        return estimate(request, max(0, self.events - 3)), True


def _decode(event: bytes) -> dict[str, Any] | None:
    """The JSON object of a one-line ``data:`` event, or ``None``."""
    if not event.startswith(b"data: "):
        return None
    try:
        obj = orjson.loads(event[6:])
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None
