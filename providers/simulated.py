"""A built-in simulated upstream for demos, tests, drills and benchmarks.

Deterministic for a given ``seed``: the n-th call of a provider always draws the same
outcome, and an embedding vector depends on its text alone. Options shape latency,
streaming speed and failures (a status code, a hang, a dropped connection or a stream
cut half-way).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field

from providers.base import ChatRequest, Completion, Failure, ProviderError, ProviderOptions, Target
from providers.embeddings import EmbedRequest, embeddings_body
from providers.embeddings import estimate_tokens as text_tokens
from providers.failures import classify_status
from providers.sse import DONE, sse_event


class SimulatedOptions(ProviderOptions):
    """``[providers.NAME]`` with ``kind = "simulated"``."""

    latency_ms: float = Field(0, ge=0)
    """Time before the answer (or the first stream chunk)."""
    chunk_ms: float = Field(0, ge=0)
    """Time between stream chunks."""
    reply: str = "Hello from {model}! This is a simulated answer to: {prompt}"
    """The answer; ``{model}`` and ``{prompt}`` (the last user message) are filled in."""
    failure_rate: float = Field(0, ge=0, le=1)
    """Share of calls that fail."""
    failure_kind: Literal["status", "hang", "drop", "cut"] = "status"
    failure_status: int = Field(503, ge=400, le=599)
    retry_after_s: float | None = Field(None, ge=0)
    """Sent with a failing status (e.g. 429) as Retry-After."""
    seed: int = 0
    embedding_dimensions: int = Field(64, ge=1, le=8192)
    """Length of the vectors of an embedding model, when the request names none."""


def last_user_text(body: dict[str, Any]) -> str:
    """The last user message's text (for echoing); parts are joined."""
    messages = body.get("messages") or []
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    str(p.get("text", "")) for p in content if isinstance(p, dict)
                ).strip()
    return ""


def estimate_tokens(body: dict[str, Any]) -> int:
    """A rough prompt token count: four characters a token."""
    total = 0
    for msg in body.get("messages") or []:
        if isinstance(msg, dict):
            content = msg.get("content")
            total += len(content) if isinstance(content, str) else len(str(content))
    return max(1, total // 4)


def word_vector(text: str, dims: int) -> list[float]:
    """A unit vector of hashed words: the same text always gives the same vector, and
    texts that share words point the same way (enough for a demo of retrieval)."""
    vector = [0.0] * dims
    for word in text.lower().split():
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "little") % dims
        vector[slot] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0:
        vector[0], norm = 1.0, 1.0
    return [x / norm for x in vector]


class SimulatedProvider:
    """An in-process upstream that answers like OpenAI would."""

    kind: ClassVar[str] = "simulated"
    options_model: ClassVar[type[ProviderOptions]] = SimulatedOptions
    stream_usage: ClassVar[bool] = True
    """Every stream ends with a usage chunk."""

    def __init__(self, name: str, options: ProviderOptions) -> None:
        assert isinstance(options, SimulatedOptions)
        self.name = name
        self.opts = options
        self._rng = random.Random(options.seed)
        # Probes draw from their own stream so their timing cannot change call outcomes.
        self._probe_rng = random.Random(options.seed + 1)
        self._counter = 0

    async def start(self) -> None:
        """Nothing to open."""

    async def aclose(self) -> None:
        """Nothing to close."""

    def _fails(self, rng: random.Random | None = None) -> bool:
        rate = self.opts.failure_rate
        return rate > 0 and (rng or self._rng).random() < rate

    async def _fail(self) -> None:
        kind = self.opts.failure_kind
        if kind == "hang":
            await asyncio.Event().wait()
        if kind in ("drop", "cut"):
            raise ProviderError(Failure.CONNECT, f"connection dropped (simulated {self.name})")
        status = self.opts.failure_status
        raise ProviderError(
            classify_status(status),
            f"upstream {status} (simulated {self.name})",
            status=status,
            retry_after=self.opts.retry_after_s,
        )

    def _answer(self, request: ChatRequest, target: Target) -> tuple[str, list[str], str]:
        self._counter += 1
        prompt = last_user_text(request.body)
        text = self.opts.reply.format(model=target.name, prompt=prompt[:200])
        words = text.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        return f"chatcmpl-sim-{self._counter}", pieces, text

    @staticmethod
    def _usage(request: ChatRequest, pieces: list[str]) -> dict[str, int]:
        prompt_tokens = estimate_tokens(request.body)
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(pieces),
            "total_tokens": prompt_tokens + len(pieces),
        }

    async def chat(
        self, request: ChatRequest, target: Target, connect_timeout: float
    ) -> Completion:
        """Answer after ``latency_ms``, or fail as configured."""
        fail = self._fails()
        if self.opts.latency_ms:
            await asyncio.sleep(self.opts.latency_ms / 1000)
        if fail:
            await self._fail()
        cid, pieces, text = self._answer(request, target)
        usage = self._usage(request, pieces)
        body = {
            "id": cid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": target.upstream_model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
        return Completion(body=orjson.dumps(body), usage=usage)

    async def stream(
        self, request: ChatRequest, target: Target, connect_timeout: float
    ) -> AsyncIterator[bytes]:
        """Stream the answer word by word, ``chunk_ms`` apart."""
        fail = self._fails()
        if self.opts.latency_ms:
            await asyncio.sleep(self.opts.latency_ms / 1000)
        if fail and self.opts.failure_kind != "cut":
            await self._fail()
        cid, pieces, _ = self._answer(request, target)
        created = int(time.time())
        cut_at = len(pieces) // 2 if fail else -1
        head = {"id": cid, "object": "chat.completion.chunk", "created": created}
        head["model"] = target.upstream_model
        for i, piece in enumerate(pieces):
            if i == cut_at:
                raise ProviderError(Failure.INTERRUPTED, f"stream cut (simulated {self.name})")
            if i and self.opts.chunk_ms:
                await asyncio.sleep(self.opts.chunk_ms / 1000)
            delta: dict[str, Any] = {"content": piece}
            if i == 0:
                delta["role"] = "assistant"
            choice = {"index": 0, "delta": delta, "finish_reason": None}
            yield sse_event({**head, "choices": [choice]})
        yield sse_event({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        # Always, as real upstreams asked by the router do; the dispatcher hides it
        # from a client that did not ask.
        yield sse_event({**head, "choices": [], "usage": self._usage(request, pieces)})
        yield DONE

    async def embed(
        self, request: EmbedRequest, target: Target, connect_timeout: float
    ) -> Completion:
        """Deterministic vectors after ``latency_ms``, or fail as configured."""
        fail = self._fails()
        if self.opts.latency_ms:
            await asyncio.sleep(self.opts.latency_ms / 1000)
        if fail:
            await self._fail()
        dims = request.dimensions or self.opts.embedding_dimensions
        texts = request.texts or [" ".join(map(str, ids)) for ids in request.tokens or ()]
        vectors = [word_vector(text, dims) for text in texts]
        return embeddings_body(
            vectors, target.upstream_model, text_tokens(texts), base64=request.base64
        )

    async def probe(self, target: Target, timeout: float, mode: str) -> None:
        """A probe fails as often as a call would."""
        if self._fails(self._probe_rng):
            await self._fail()
