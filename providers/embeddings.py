"""OpenAI embeddings requests and answers, for every provider that embeds: pure, no I/O.

The router's embeddings door speaks OpenAI's API (``POST /v1/embeddings``). An
OpenAI-compatible upstream gets the client's body with only ``model`` changed and
answers for itself; a provider that translates (Gemini, Ollama's own API, the
simulated one) gets the parsed :class:`EmbedRequest` and builds the OpenAI answer
with :func:`embeddings_body`, which writes base64 vectors itself when the client asked
for them (little-endian float32, as OpenAI sends them; the openai SDK asks for base64
by default).
"""

from __future__ import annotations

import array
import base64
import sys
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from providers.base import ChatRequest, Completion, Failure, InvalidBody, ProviderError, Target


@dataclass(slots=True)
class EmbedRequest:
    """One embeddings request, shared by every attempt; providers must not mutate it."""

    texts: list[str] | None
    """The input as text (``None`` when the client sent token ids)."""
    tokens: list[list[int]] | None
    """The input as token ids, which only OpenAI-compatible upstreams take."""
    dimensions: int | None
    base64: bool
    """The client asked for ``encoding_format: "base64"``."""
    wire: ChatRequest
    """The client's body split into members, for upstreams that take it as sent."""
    hops: int = 0
    """Routers this request passed through before this one."""

    @property
    def count(self) -> int:
        """How many inputs (one vector each)."""
        return len(self.texts if self.texts is not None else self.tokens or ())

    def text_only(self, vendor: str) -> list[str]:
        """The texts; a client error for token ids, which ``vendor`` cannot take."""
        if self.texts is None:
            raise ProviderError(
                Failure.CLIENT, f"{vendor} embeds text only, not token ids.", status=400
            )
        return self.texts


def _input(value: Any) -> tuple[list[str] | None, list[list[int]] | None]:
    """OpenAI's four input forms: a string, strings, token ids, lists of token ids."""
    if isinstance(value, str):
        return [value], None
    if not isinstance(value, list) or not value:
        raise InvalidBody("'input' must be a string or a non-empty array.", "input")
    if all(isinstance(v, str) for v in value):
        return list(value), None
    if all(_is_id(v) for v in value):
        return None, [list(value)]
    if all(isinstance(v, list) and v and all(_is_id(t) for t in v) for v in value):
        return None, [list(v) for v in value]
    raise InvalidBody(
        "'input' must be a string, an array of strings, an array of token ids or an "
        "array of such arrays.",
        "input",
    )


def _is_id(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def parse_embed(body: bytes | dict[str, Any]) -> EmbedRequest:
    """Read an embeddings body; raise :class:`InvalidBody` saying what is wrong."""
    wire = ChatRequest.from_json(body) if isinstance(body, bytes) else ChatRequest.from_body(body)
    if wire.get("input") is None:
        raise InvalidBody("'input' is required.", "input")
    texts, tokens = _input(wire.get("input"))
    fmt = wire.get("encoding_format")
    if fmt not in (None, "float", "base64"):
        raise InvalidBody("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    dims = wire.get("dimensions")
    if dims is not None and (not isinstance(dims, int) or isinstance(dims, bool) or dims < 1):
        raise InvalidBody("'dimensions' must be a positive integer.", "dimensions")
    if wire.stream:
        raise InvalidBody("Embeddings do not stream: 'stream' must be false.", "stream")
    return EmbedRequest(texts, tokens, dims, fmt == "base64", wire)


def encode_vector(vector: list[float]) -> str:
    """A vector as OpenAI's base64: little-endian float32."""
    packed = array.array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def estimate_tokens(texts: list[str]) -> int:
    """Input tokens when a vendor does not count them: four characters a token."""
    return sum(max(1, len(t) // 4) for t in texts)


def embeddings_body(
    vectors: list[list[float]],
    model: str,
    prompt_tokens: int,
    *,
    base64: bool,
    estimated: bool = False,
) -> Completion:
    """The OpenAI answer (``object: list`` of ``embedding`` objects) and its usage.

    ``estimated``: the upstream counted no tokens and ``prompt_tokens`` is our guess.
    """
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": encode_vector(v) if base64 else v,
        }
        for i, v in enumerate(vectors)
    ]
    body = {"object": "list", "data": data, "model": model, "usage": usage}
    return Completion(orjson.dumps(body), usage, estimated)


def check_embeddings(raw: bytes, label: str, count: int) -> Completion:
    """An upstream's OpenAI answer, kept as sent once it is shown to hold ``count`` vectors."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProviderError(Failure.MALFORMED, f"upstream sent invalid JSON ({label})") from None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) != count:
        raise ProviderError(
            Failure.MALFORMED, f"upstream answer does not hold {count} embeddings ({label})"
        )
    usage = data.get("usage")
    return Completion(raw, usage if isinstance(usage, dict) else None)


def vectors_of(rows: Any, vendor: str, count: int) -> list[list[float]]:
    """Check a vendor's list of vectors: ``count`` arrays of numbers."""
    if not isinstance(rows, list) or len(rows) != count:
        raise ProviderError(Failure.MALFORMED, f"{vendor} answer does not hold {count} embeddings")
    for row in rows:
        if not isinstance(row, list) or not all(isinstance(x, int | float) for x in row):
            raise ProviderError(Failure.MALFORMED, f"{vendor} embedding is not an array of numbers")
    return rows


class Embedder(Protocol):
    """A provider that serves models with ``mode = "embedding"``."""

    async def embed(
        self, request: EmbedRequest, target: Target, connect_timeout: float
    ) -> Completion:
        """Embed every input; the OpenAI ``list`` answer in ``body``, its usage beside it."""
        ...


def embeds(provider: object) -> bool:
    """Whether a provider (class or instance) serves embeddings."""
    return callable(getattr(provider, "embed", None))
