"""Gemini answers to OpenAI Chat Completions: whole answers and streams, pure, no I/O.

Text and ``functionCall`` parts become content and ``tool_calls`` (Gemini gives no
call ids, so they are made from the response id); a call's ``thoughtSignature``
travels in ``extra_content.google.thought_signature``, where Google's own OpenAI
endpoint puts it. A prompt or answer blocked by a filter before anything was
produced raises ``CONTENT_FILTER`` so the router can try another vendor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from providers.base import Failure, ProviderError
from providers.embeddings import vectors_of
from providers.gemini_wire import classify
from providers.openai_shapes import Choice, ChunkWriter, completion, malformed, usage_dict
from providers.sse import DONE

FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "LANGUAGE",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
        "JAILBREAK",
    }
)
"""Finish and block reasons that mean a filter stopped the answer."""

BROKEN = frozenset(
    {"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS", "MALFORMED_RESPONSE"}
)
"""Finish reasons that mean the model produced something unusable."""


def finish_reason(reason: str | None, has_calls: bool) -> str:
    """Gemini ``finishReason`` → OpenAI ``finish_reason`` (Gemini says STOP for calls)."""
    if reason in FILTERED:
        return "content_filter"
    if has_calls:
        return "tool_calls"
    return "length" if reason == "MAX_TOKENS" else "stop"


def usage_of(meta: dict[str, Any]) -> dict[str, Any]:
    """``usageMetadata`` → OpenAI usage (thinking tokens count as completion tokens)."""
    prompt = int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0)
    thoughts = meta.get("thoughtsTokenCount")
    out = int(meta.get("candidatesTokenCount") or 0) + int(thoughts or 0)
    cached = meta.get("cachedContentTokenCount")
    return usage_dict(
        prompt,
        out,
        total=meta.get("totalTokenCount"),
        cached=int(cached) if cached is not None else None,
        reasoning=int(thoughts) if thoughts is not None else None,
    )


def _blocked(reason: str) -> ProviderError:
    return ProviderError(Failure.CONTENT_FILTER, f"Gemini filtered the answer ({reason})")


def _unusable(reason: str) -> ProviderError:
    return ProviderError(Failure.MALFORMED, f"Gemini produced no usable answer ({reason})")


@dataclass(slots=True)
class _Calls:
    """Makes OpenAI tool calls from ``functionCall`` parts, with ids unique per answer."""

    response_id: str
    count: int = 0

    def make(self, part: dict[str, Any], index: int | None = None) -> dict[str, Any]:
        """The tool call of a ``functionCall`` part (with ``index`` for a stream delta)."""
        fc = part["functionCall"]
        call_id = fc.get("id") or f"call_{self.response_id}_{self.count}"
        self.count += 1
        fn = {"name": fc.get("name"), "arguments": orjson.dumps(fc.get("args") or {}).decode()}
        call: dict[str, Any] = {"id": call_id, "type": "function", "function": fn}
        if index is not None:
            call = {"index": index, **call}
        if part.get("thoughtSignature"):
            call["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
        return call


def _no_candidates(resp: dict[str, Any]) -> ProviderError:
    reason = (resp.get("promptFeedback") or {}).get("blockReason")
    return _blocked(f"prompt: {reason}") if reason else malformed("Gemini", "no candidates")


def _check_empty(reasons: list[str | None]) -> None:
    """Nothing was produced: a filter or a broken call is a failure, not an answer."""
    for reason in reasons:
        if reason in FILTERED:
            raise _blocked(str(reason))
    for reason in reasons:
        if reason in BROKEN:
            raise _unusable(str(reason))


def from_gemini(
    resp: dict[str, Any], *, created: int, model: str, response_id: str
) -> tuple[bytes, dict[str, Any]]:
    """A ``generateContent`` answer → (OpenAI ``chat.completion`` body, OpenAI usage)."""
    candidates = resp.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        raise _no_candidates(resp)
    rid = str(resp.get("responseId") or response_id)
    calls = _Calls(rid)
    choices: list[Choice] = []
    reasons: list[str | None] = []
    for i, cand in enumerate(candidates):
        choice = Choice(index=int(cand.get("index", i)))
        for part in (cand.get("content") or {}).get("parts") or ():
            if "functionCall" in part:
                choice.tool_calls.append(calls.make(part))
            elif isinstance(part.get("text"), str) and not part.get("thought"):
                choice.text += part["text"]
        reason = cand.get("finishReason")
        reasons.append(reason)
        choice.finish_reason = finish_reason(reason, bool(choice.tool_calls))
        choices.append(choice)
    if not any(c.text or c.tool_calls for c in choices):
        _check_empty(reasons)
    usage = usage_of(resp.get("usageMetadata") or {})
    name = str(resp.get("modelVersion") or model)
    return completion(f"chatcmpl-{rid}", name, created, choices, usage), usage


def stream_error(chunk: dict[str, Any]) -> ProviderError:
    """An ``error`` object sent inside a Gemini stream."""
    err = chunk.get("error") if isinstance(chunk.get("error"), dict) else {}
    code = err.get("code") if isinstance(err, dict) else None
    status = code if isinstance(code, int) and code >= 400 else 500
    failure = classify(status, orjson.dumps(chunk))
    detail = err.get("message", "") if isinstance(err, dict) else ""
    return ProviderError(failure, f"Gemini stream error: {detail}"[:500], status=status)


class GeminiStream:
    """Turns ``streamGenerateContent`` chunks into OpenAI ``chat.completion.chunk`` events.

    Role chunks are held back until the first content, so a filtered or failed stream
    that produced nothing still lets the router try another model. Gemini has no
    terminal event: the stream is complete once every candidate sent a finish reason.
    The stream always ends with a usage chunk; ``include_usage`` (the client asked for
    usage) adds ``usage: null`` to the other chunks, as OpenAI does.
    """

    def __init__(self, *, model: str, created: int, include_usage: bool, response_id: str) -> None:
        self._model, self._created, self._include_usage = model, created, include_usage
        self._response_id = response_id
        self._writer: ChunkWriter | None = None
        self._calls: _Calls | None = None
        self._tool_index: dict[int, int] = {}
        self._open: set[int] = set()
        self._finished: set[int] = set()
        self._usage: dict[str, Any] = {}
        self._produced = False

    @property
    def done(self) -> bool:
        """Every candidate seen so far has finished (and at least one was seen)."""
        return bool(self._finished) and self._open <= self._finished

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        """Translate one decoded chunk; raise :class:`ProviderError` for errors and blocks."""
        if "error" in chunk:
            raise stream_error(chunk)
        if self._writer is None:
            rid = str(chunk.get("responseId") or self._response_id)
            name = str(chunk.get("modelVersion") or self._model)
            self._writer = ChunkWriter(f"chatcmpl-{rid}", name, self._created, self._include_usage)
            self._calls = _Calls(rid)
        if isinstance(chunk.get("usageMetadata"), dict):
            self._usage = chunk["usageMetadata"]
        candidates = chunk.get("candidates")
        if not candidates:
            if (chunk.get("promptFeedback") or {}).get("blockReason"):
                raise _no_candidates(chunk)
            return []
        out: list[bytes] = []
        for i, cand in enumerate(candidates):
            out += self._candidate(int(cand.get("index", i)), cand)
        return out

    def _candidate(self, index: int, cand: dict[str, Any]) -> list[bytes]:
        assert self._writer is not None and self._calls is not None
        writer = self._writer
        deltas: list[dict[str, Any]] = []
        for part in (cand.get("content") or {}).get("parts") or ():
            if "functionCall" in part:
                n = self._tool_index.get(index, 0)
                self._tool_index[index] = n + 1
                deltas.append({"content": None, "tool_calls": [self._calls.make(part, n)]})
            elif isinstance(part.get("text"), str) and part["text"] and not part.get("thought"):
                deltas.append({"content": part["text"]})
        reason = cand.get("finishReason")
        if reason and not deltas and not self._produced:
            _check_empty([reason])
        out: list[bytes] = []
        if (deltas or reason) and index not in self._open:
            self._open.add(index)
            out.append(writer.delta({"role": "assistant", "content": ""}, index))
        out += [writer.delta(d, index) for d in deltas]
        self._produced = self._produced or bool(deltas)
        if reason:
            self._finished.add(index)
            out.append(writer.delta({}, index, finish_reason(reason, index in self._tool_index)))
        return out

    def finish(self) -> list[bytes]:
        """The closing events; raise if the stream ended before every candidate finished."""
        if not self.done or self._writer is None:
            raise ProviderError(Failure.INTERRUPTED, "Gemini stream ended without a finish reason")
        return [self._writer.usage(usage_of(self._usage)), DONE]


def embeddings_of(resp: dict[str, Any], count: int) -> list[list[float]]:
    """The vectors of a ``batchEmbedContents`` answer, in input order."""
    items = resp.get("embeddings")
    rows = [i.get("values") if isinstance(i, dict) else None for i in items or ()]
    return vectors_of(rows if isinstance(items, list) else None, "Gemini", count)
