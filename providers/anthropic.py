"""Anthropic (Messages API): the unified request translated both ways, streaming included.

The translation itself is in :mod:`providers.anthropic_wire`; this module only moves
it over HTTP: ``POST /v1/messages`` with ``x-api-key`` and ``anthropic-version``,
and ``GET /v1/models/{model}`` as the free probe. A request that came in by the
router's own Messages door is not translated at all: its body goes upstream with
only ``model`` changed, and the answer comes back as Anthropic sent it
(:mod:`providers.anthropic_native`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import Field

from providers.anthropic_native import NativeEvents, check_message, header_lines
from providers.anthropic_reply import AnthropicStream, from_anthropic
from providers.anthropic_wire import classify, to_anthropic
from providers.base import (
    ChatRequest,
    Completion,
    Failure,
    Native,
    ProviderError,
    ProviderOptions,
    Target,
    speaks,
)
from providers.native import NativeProvider
from providers.sse import sse_events
from providers.upstream import EnvKeyOptions


class AnthropicOptions(EnvKeyOptions):
    """``[providers.NAME]`` with ``kind = "anthropic"``."""

    key_env: ClassVar[tuple[str, ...]] = ("ANTHROPIC_API_KEY",)

    base_url: str | None = "https://api.anthropic.com"
    """The API root (``/v1`` is added unless the URL already ends with it)."""
    api_version: str = "2023-06-01"
    """Sent as ``anthropic-version``."""
    beta: list[str] = []
    """Beta features, sent as ``anthropic-beta``."""
    default_max_tokens: int = Field(4096, ge=1)
    """``max_tokens`` when the client sent none (Anthropic requires one)."""


class AnthropicProvider(NativeProvider):
    """Adapter for Anthropic's Messages API."""

    kind: ClassVar[str] = "anthropic"
    options_model: ClassVar[type[ProviderOptions]] = AnthropicOptions
    vendor: ClassVar[str] = "Anthropic"
    stream_usage: ClassVar[bool] = True
    """Every stream ends with a usage chunk (the translation always writes one)."""
    speaks: ClassVar[frozenset[str]] = frozenset({"anthropic"})
    """Bodies from the router's Messages door go upstream as sent."""
    default_facts: ClassVar[dict[str, object]] = {
        # Every current Claude model takes tools and images and at least 200k tokens.
        "context_window": 200_000,
        "supports_tools": True,
        "supports_vision": True,
    }

    def __init__(self, name: str, options: ProviderOptions) -> None:
        assert isinstance(options, AnthropicOptions)
        headers = {
            "Content-Type": "application/json",
            "anthropic-version": options.api_version,
            **options.headers,
        }
        if options.api_key:
            headers["x-api-key"] = options.api_key
        if options.beta:
            headers["anthropic-beta"] = ",".join(options.beta)
        root = (options.base_url or "").rstrip("/")
        super().__init__(name, root if root.endswith("/v1") else root + "/v1", headers, options)
        self.default_max_tokens = options.default_max_tokens
        self._messages_url = self.base_url + "/messages"
        self._messages_path = self.prefix + "/messages"

    def classify(self, status: int, body: bytes) -> Failure:
        """Anthropic's error table (see :func:`providers.anthropic_wire.classify`)."""
        return classify(status, body)

    async def _chat_as_sent(
        self, native: Native, target: Target, connect_timeout: float, hops: int
    ) -> Completion:
        data = native.request.json_with_model(target.upstream_model)
        extra = header_lines(native.headers)
        raw = await self._read("POST", self._messages_path, data, connect_timeout, hops, extra)
        return Completion(body=raw, usage=check_message(raw))

    async def _stream_as_sent(
        self, native: Native, target: Target, connect_timeout: float, hops: int
    ) -> AsyncGenerator[bytes, None]:
        data = native.request.json_with_model(target.upstream_model)
        extra = header_lines(native.headers)
        path = self._messages_path
        resp = await self._send("POST", path, data, connect_timeout, hops, extra)
        try:
            ctype = resp.headers.get("content-type", "")
            if not ctype.startswith("text/event-stream"):
                raise ProviderError(
                    Failure.MALFORMED, f"Anthropic did not stream ({ctype or 'no type'})"
                )
            checker = NativeEvents()
            async for event in sse_events(resp.chunks(), self.max_event_bytes):
                for out in checker.feed(event):
                    yield out
                if checker.done:
                    return
        finally:
            resp.release()
        checker.finish()

    def _payload(self, request: ChatRequest, target: Target, stream: bool) -> dict[str, Any]:
        return to_anthropic(
            request.body,
            target.upstream_model,
            default_max_tokens=int(
                target.options.get("default_max_tokens", self.default_max_tokens)
            ),
            stream=stream,
        )

    async def chat(
        self, request: ChatRequest, target: Target, connect_timeout: float
    ) -> Completion:
        """One Messages call, answered as an OpenAI ``chat.completion`` (or as sent)."""
        if speaks(self, request.native):
            assert request.native is not None
            return await self._chat_as_sent(
                request.native, target, connect_timeout, request.hops + 1
            )
        payload = self._payload(request, target, stream=False)
        msg = await self.post_json(self._messages_url, payload, connect_timeout, request.hops + 1)
        body, usage = from_anthropic(msg, created=int(time.time()))
        return Completion(body=body, usage=usage)

    async def stream(
        self, request: ChatRequest, target: Target, connect_timeout: float
    ) -> AsyncIterator[bytes]:
        """A streamed Messages call, relayed as OpenAI chunks ending with ``[DONE]``, or as sent."""
        if speaks(self, request.native):
            assert request.native is not None
            as_sent = self._stream_as_sent(
                request.native, target, connect_timeout, request.hops + 1
            )
            async with aclosing(as_sent) as native_events:
                async for raw in native_events:
                    yield raw
            return
        payload = self._payload(request, target, stream=True)
        translator = AnthropicStream(
            model=target.upstream_model,
            created=int(time.time()),
            include_usage=request.include_usage,
        )
        async with aclosing(
            self.post_events(self._messages_url, payload, connect_timeout, request.hops + 1)
        ) as events:
            async for event in events:
                for out in translator.feed(event):
                    yield out
                if translator.done:
                    break
        for out in translator.finish():
            yield out

    async def probe(self, target: Target, timeout: float, mode: str) -> None:
        """``models``: ``GET /v1/models/{model}`` (free). ``chat``: a one-token message."""
        if mode == "chat":
            payload = {
                "model": target.upstream_model,
                "max_tokens": 1,
                "messages": [{"role": "user", "content": "ping"}],
            }
            async with asyncio.timeout(timeout):
                msg = await self.post_json(self._messages_url, payload, timeout)
            from_anthropic(msg, created=0)
            return
        url = f"{self.base_url}/models/{quote(target.upstream_model, safe='')}"
        info = await self.get_json(url, timeout)
        if info.get("type") != "model":
            raise ProviderError(
                Failure.MALFORMED, f"Anthropic model lookup gave no model ({self.label})"
            )
