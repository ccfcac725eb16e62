"""OpenAI and every OpenAI-compatible server (vLLM, llama.cpp, Ollama /v1, Mistral, Groq...).

Passthrough: the client's JSON is forwarded with only ``model`` rewritten (and the
router's own ``models`` field removed), so fields this router has never heard of —
``tools``, ``response_format``, ``logprobs``, ``seed`` — reach the upstream as sent,
byte for byte (see :meth:`ChatRequest.json_with_model`). Answers come back as the
upstream's bytes. Embeddings (``/embeddings``) pass through the same way.

Streams also report their usage: unless the client asked for it already, the upstream
is asked for a closing usage chunk (``stream_options.include_usage``), which the
dispatcher takes and hides from the client. OpenAI then also puts ``"usage":null`` on
every chunk; that member is cut from the end of a chunk where OpenAI writes it, so the
client sees the chunks it asked for. Servers that refuse ``stream_options`` (Mistral
answers 422) get ``stream_usage = false`` (see :class:`PassthroughOptions`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import orjson

from providers.base import ChatRequest, Completion, Failure, ProviderError, ProviderOptions, Target
from providers.embeddings import EmbedRequest, check_embeddings
from providers.http import auth_headers
from providers.sse import DONE, parse_sse, sse_events
from providers.upstream import HTTPProvider


class PassthroughOptions(ProviderOptions):
    """Options of every OpenAI-compatible kind."""

    stream_usage: bool = True
    """Ask the upstream for a usage chunk at the end of each stream even when the client
    did not (``stream_options.include_usage``), so every stream's cost is known. Turn
    off for servers that refuse ``stream_options``; their streams' usage is then
    whatever they send unasked, else estimated."""


class OpenAIOptions(PassthroughOptions):
    """``[providers.NAME]`` with ``kind = "openai"``."""

    base_url: str | None = "https://api.openai.com/v1"


def parse_completion(raw: bytes, label: str) -> Completion:
    """Check that ``raw`` is a chat completion; keep the bytes, pull out usage."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProviderError(Failure.MALFORMED, f"upstream sent invalid JSON ({label})") from None
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise ProviderError(Failure.MALFORMED, f"upstream answer has no choices ({label})")
    usage = data.get("usage")
    return Completion(body=raw, usage=usage if isinstance(usage, dict) else None)


_NULL_USAGE = b',"usage":null}\n\n'
"""How OpenAI ends every chunk of a stream that asked for usage (one-line events)."""


class OpenAIProvider(HTTPProvider):
    """Adapter for the OpenAI Chat Completions wire format."""

    kind: ClassVar[str] = "openai"
    options_model: ClassVar[type[ProviderOptions]] = OpenAIOptions

    def __init__(self, name: str, options: ProviderOptions) -> None:
        headers = auth_headers(options.api_key, options.headers)
        super().__init__(name, options.base_url or "", headers, options)
        # Options of a plug-in's subclass may not have the field: ask, as OpenAI allows.
        self.stream_usage: bool = getattr(options, "stream_usage", True)
        """Whether streams ask the upstream for usage (see :class:`PassthroughOptions`)."""

    def _path(self, target: Target) -> str:
        """Where chat completions for ``target`` go."""
        return self.prefix + "/chat/completions"

    def _models_path(self) -> str:
        """The free list call used by ``probe = "models"``."""
        return self.prefix + "/models"

    def _embed_path(self, target: Target) -> str:
        """Where embeddings for ``target`` go."""
        return self.prefix + "/embeddings"

    async def embed(
        self, request: EmbedRequest, target: Target, connect_timeout: float
    ) -> Completion:
        """POST the client's embeddings body upstream (``model`` set); its answer as sent."""
        data = request.wire.json_with_model(target.upstream_model)
        path = self._embed_path(target)
        raw = await self._read("POST", path, data, connect_timeout, request.hops + 1)
        return check_embeddings(raw, self.label, request.count)

    async def chat(
        self, request: ChatRequest, target: Target, connect_timeout: float
    ) -> Completion:
        """POST the body upstream and return its answer untouched."""
        data = request.json_with_model(target.upstream_model)
        raw = await self._read("POST", self._path(target), data, connect_timeout, request.hops + 1)
        return parse_completion(raw, self.label)

    async def stream(
        self, request: ChatRequest, target: Target, connect_timeout: float
    ) -> AsyncIterator[bytes]:
        """Forward the upstream's SSE events one by one until ``data: [DONE]``."""
        added = self.stream_usage and not request.include_usage  # we ask, the client did not
        data = request.json_with_model(target.upstream_model, ask_usage=self.stream_usage)
        resp = await self._send("POST", self._path(target), data, connect_timeout, request.hops + 1)
        try:
            ctype = resp.headers.get("content-type", "")
            if not ctype.startswith("text/event-stream"):
                raise ProviderError(
                    Failure.MALFORMED, f"upstream did not stream ({ctype or 'no type'})"
                )
            async for event in sse_events(resp.chunks(), self.max_event_bytes):
                if event == DONE:
                    yield event
                    return
                check_event(event, self.label)
                if added and event.endswith(_NULL_USAGE):
                    event = event[: -len(_NULL_USAGE)] + b"}\n\n"
                yield event
        finally:
            resp.release()
        raise ProviderError(Failure.INTERRUPTED, f"stream ended without [DONE] ({self.label})")

    async def probe(self, target: Target, timeout: float, mode: str) -> None:
        """``models``: list models (free). ``chat``: a one-token completion."""
        async with asyncio.timeout(timeout):
            if mode == "chat":
                body = {
                    "model": target.upstream_model,
                    "messages": [{"role": "user", "content": "ping"}],
                    "max_tokens": 1,
                }
                raw = await self._read("POST", self._path(target), orjson.dumps(body), timeout)
                parse_completion(raw, self.label)
                return
            await self._read("GET", self._models_path(), b"", timeout)


def check_event(event: bytes, label: str) -> None:
    """Raise unless ``event``'s data is a chat chunk (a JSON object with ``choices``).

    A stream is held to what a non-stream answer is held to: an event that is not
    JSON (or not UTF-8) is a malformed answer, never relayed as if it were fine.
    Events without data (comments, keep-alives) pass.
    """
    if event.startswith(b"data: ") and event.find(b"\n", 6) == len(event) - 2:
        data = event[6:-2]  # the usual one-line event, without a second scan
    else:
        data = parse_sse(event)[1]
        if not data:
            return
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ProviderError(
            Failure.MALFORMED, f"upstream stream event is not valid JSON ({label})"
        ) from None
    if not isinstance(obj, dict):
        raise ProviderError(Failure.MALFORMED, f"upstream stream event is not an object ({label})")
    if "error" in obj:
        raise stream_error(obj, label)
    if not isinstance(obj.get("choices"), list):
        raise ProviderError(Failure.MALFORMED, f"upstream stream chunk has no choices ({label})")


def stream_error(obj: dict[str, Any], label: str) -> ProviderError:
    """An error event inside an upstream stream, as a provider error."""
    err = obj.get("error")
    detail = err.get("message", "") if isinstance(err, dict) else err
    return ProviderError(Failure.SERVER, f"upstream stream error ({label}): {detail}"[:500])
