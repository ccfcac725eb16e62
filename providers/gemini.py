"""Gemini (Generative Language API): the unified request translated both ways.

The translation is in :mod:`providers.gemini_wire`; this module moves it over HTTP:
``models/{model}:generateContent``, ``models/{model}:streamGenerateContent?alt=sse``,
``models/{model}:batchEmbedContents`` for embeddings, and ``GET models/{model}`` as the
free probe, with the key in ``x-goog-api-key``
(never in the URL, where it could end up in logs).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, ClassVar
from urllib.parse import quote

from providers.base import ChatRequest, Completion, Failure, ProviderError, ProviderOptions, Target
from providers.embeddings import EmbedRequest, embeddings_body, estimate_tokens
from providers.gemini_reply import GeminiStream, embeddings_of, from_gemini
from providers.gemini_wire import classify, retry_delay, to_gemini, to_gemini_embed
from providers.native import NativeProvider
from providers.upstream import EnvKeyOptions


class GeminiOptions(EnvKeyOptions):
    """``[providers.NAME]`` with ``kind = "gemini"``."""

    key_env: ClassVar[tuple[str, ...]] = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

    base_url: str | None = "https://generativelanguage.googleapis.com/v1beta"
    safety_settings: list[dict[str, str]] = []
    """Sent as ``safetySettings`` (e.g. ``{category = "...", threshold = "BLOCK_NONE"}``)."""


class GeminiProvider(NativeProvider):
    """Adapter for Google's Gemini ``generateContent`` API."""

    kind: ClassVar[str] = "gemini"
    options_model: ClassVar[type[ProviderOptions]] = GeminiOptions
    vendor: ClassVar[str] = "Gemini"
    stream_usage: ClassVar[bool] = True
    """Every stream ends with a usage chunk (the translation always writes one)."""
    default_facts: ClassVar[dict[str, object]] = {
        # Gemini 1.5 and later: tools, images and a 1M-token window. Models with less
        # (e.g. Gemma served by the same API) need their own facts in [models.NAME].
        "context_window": 1_048_576,
        "supports_tools": True,
        "supports_vision": True,
    }

    def __init__(self, name: str, options: ProviderOptions) -> None:
        assert isinstance(options, GeminiOptions)
        headers = {"Content-Type": "application/json", **options.headers}
        if options.api_key:
            headers["x-goog-api-key"] = options.api_key
        super().__init__(name, options.base_url or "", headers, options)
        self.safety_settings: list[dict[str, Any]] = [dict(s) for s in options.safety_settings]

    def classify(self, status: int, body: bytes) -> Failure:
        """Gemini's error table (see :func:`providers.gemini_wire.classify`)."""
        return classify(status, body)

    def refine(self, err: ProviderError) -> ProviderError:
        """A 429 without Retry-After may carry the wait in its ``RetryInfo`` detail."""
        if err.status == 429 and err.retry_after is None:
            err.retry_after = retry_delay(err.body)
        return err

    def _model_name(self, target: Target) -> str:
        model = target.upstream_model
        # "gemini-2.5-flash" and "models/gemini-2.5-flash" both work; "tunedModels/x" too.
        return model if "/" in model else f"models/{model}"

    def _model_url(self, target: Target) -> str:
        return f"{self.base_url}/{quote(self._model_name(target), safe='/')}"

    def _payload(self, request: ChatRequest) -> dict[str, Any]:
        return to_gemini(request.body, safety_settings=self.safety_settings)

    async def chat(
        self, request: ChatRequest, target: Target, connect_timeout: float
    ) -> Completion:
        """One ``generateContent`` call, answered as an OpenAI ``chat.completion``."""
        url = self._model_url(target) + ":generateContent"
        resp = await self.post_json(url, self._payload(request), connect_timeout, request.hops + 1)
        body, usage = from_gemini(
            resp,
            created=int(time.time()),
            model=target.upstream_model,
            response_id=uuid.uuid4().hex,
        )
        return Completion(body=body, usage=usage)

    async def stream(
        self, request: ChatRequest, target: Target, connect_timeout: float
    ) -> AsyncIterator[bytes]:
        """``streamGenerateContent`` relayed as OpenAI chunks ending with ``[DONE]``."""
        url = self._model_url(target) + ":streamGenerateContent?alt=sse"
        payload = self._payload(request)
        translator = GeminiStream(
            model=target.upstream_model,
            created=int(time.time()),
            include_usage=request.include_usage,
            response_id=uuid.uuid4().hex,
        )
        events_in = self.post_events(url, payload, connect_timeout, request.hops + 1)
        async with aclosing(events_in) as events:
            async for chunk in events:
                for out in translator.feed(chunk):
                    yield out
        for out in translator.finish():
            yield out

    async def embed(
        self, request: EmbedRequest, target: Target, connect_timeout: float
    ) -> Completion:
        """``batchEmbedContents`` with every input at once; the OpenAI answer built here."""
        texts = request.text_only("Gemini")
        url = self._model_url(target) + ":batchEmbedContents"
        payload = to_gemini_embed(texts, self._model_name(target), request.dimensions)
        resp = await self.post_json(url, payload, connect_timeout, request.hops + 1)
        vectors = embeddings_of(resp, len(texts))
        # The batch answer carries no token count: estimated, for the log.
        return embeddings_body(
            vectors,
            target.upstream_model,
            estimate_tokens(texts),
            base64=request.base64,
            estimated=True,
        )

    async def probe(self, target: Target, timeout: float, mode: str) -> None:
        """``models``: ``GET models/{model}`` (free). ``chat``: a one-token answer."""
        if mode == "chat":
            payload = {
                "contents": [{"role": "user", "parts": [{"text": "ping"}]}],
                "generationConfig": {"maxOutputTokens": 1},
            }
            url = self._model_url(target) + ":generateContent"
            async with asyncio.timeout(timeout):
                resp = await self.post_json(url, payload, timeout)
            from_gemini(resp, created=0, model=target.upstream_model, response_id="probe")
            return
        info = await self.get_json(self._model_url(target), timeout)
        if not isinstance(info.get("name"), str):
            raise ProviderError(
                Failure.MALFORMED, f"Gemini model lookup gave no model ({self.label})"
            )
