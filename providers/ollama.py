"""A local Ollama server: chat through its OpenAI-compatible ``/v1``, health from ``/api/tags``.

Chat is OpenAI passthrough. Embeddings use Ollama's own ``/api/embed`` (its ``/v1``
endpoint has no base64 answers, which the openai SDK asks for by default), and the
router writes the OpenAI answer. The free probe lists the server's pulled models, so a
model that was never pulled shows up in ``/health`` as misconfigured (``AUTH``)
rather than as an outage: restarting will not fix it, ``ollama pull`` will.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar
from urllib.parse import urlsplit

import orjson

from providers.base import Completion, Failure, ProviderError, ProviderOptions, Target
from providers.embeddings import EmbedRequest, embeddings_body, estimate_tokens, vectors_of
from providers.openai import OpenAIOptions, OpenAIProvider


class OllamaOptions(OpenAIOptions):
    """``[providers.NAME]`` with ``kind = "ollama"`` (no key needed)."""

    base_url: str | None = "http://localhost:11434"
    """The server root; a trailing ``/v1`` is accepted too."""


def pulled(tags: object, model: str) -> bool:
    """Whether ``model`` is in an ``/api/tags`` answer (no tag means ``:latest``)."""
    wanted = {model, model if ":" in model else f"{model}:latest"}
    entries = tags.get("models") if isinstance(tags, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and wanted & {entry.get("name"), entry.get("model")}:
            return True
    return False


class OllamaProvider(OpenAIProvider):
    """Adapter for a local Ollama server."""

    kind: ClassVar[str] = "ollama"
    options_model: ClassVar[type[ProviderOptions]] = OllamaOptions

    def __init__(self, name: str, options: ProviderOptions) -> None:
        root = (options.base_url or "").rstrip("/").removesuffix("/v1")
        super().__init__(name, options.model_copy(update={"base_url": root + "/v1"}))
        self.root = root

    async def embed(
        self, request: EmbedRequest, target: Target, connect_timeout: float
    ) -> Completion:
        """``POST /api/embed`` with every input at once; the OpenAI answer built here."""
        texts = request.text_only("Ollama")
        payload: dict[str, object] = {"model": target.upstream_model, "input": texts}
        if request.dimensions is not None:
            payload["dimensions"] = request.dimensions
        path = urlsplit(self.root).path + "/api/embed"
        raw = await self._read(
            "POST", path, orjson.dumps(payload), connect_timeout, request.hops + 1
        )
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ProviderError(
                Failure.MALFORMED, f"Ollama /api/embed is not JSON ({self.label})"
            ) from None
        rows = data.get("embeddings") if isinstance(data, dict) else None
        vectors = vectors_of(rows, "Ollama", len(texts))
        counted = data.get("prompt_eval_count")
        if isinstance(counted, int):
            return embeddings_body(vectors, target.upstream_model, counted, base64=request.base64)
        tokens = estimate_tokens(texts)
        return embeddings_body(
            vectors, target.upstream_model, tokens, base64=request.base64, estimated=True
        )

    async def probe(self, target: Target, timeout: float, mode: str) -> None:
        """``models``: ``GET /api/tags`` and check the model is pulled. ``chat``: one token."""
        if mode == "chat":
            await super().probe(target, timeout, mode)
            return
        async with asyncio.timeout(timeout):
            raw = await self._read("GET", urlsplit(self.root).path + "/api/tags", b"", timeout)
        try:
            tags = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ProviderError(
                Failure.MALFORMED, f"Ollama /api/tags is not JSON ({self.label})"
            ) from None
        if not pulled(tags, target.upstream_model):
            raise ProviderError(
                Failure.MISCONFIGURED,
                f"model {target.upstream_model} is not pulled on this Ollama server ({self.label})",
            )
