"""What a request is expected to use, reserved at admission (:class:`Ask`).

Cheap on purpose (it runs on every limited request): no tokenizer and no decoding of
the prompt.

* **Input tokens**: the request body's length in bytes over four (the four characters
  a token of :mod:`modelrouter.usage`). JSON punctuation, roles and names are counted
  too, so for text this over-counts a little; base64 images count by their length,
  which is far more than they cost. A body the router got decoded (MCP, prompts)
  counts its message text, as :func:`modelrouter.usage.prompt_chars` does.
* **Output tokens**: the request's ``max_completion_tokens`` or ``max_tokens``, else
  :data:`DEFAULT_OUTPUT_TOKENS`. Embeddings produce none.
* **Cost**: those tokens at the dearest candidate model's prices (a fallback may land
  on any of them); a model without a known price counts 0.

The estimate is only held while the request runs: when it ends, the limiter is given
the real tokens and cost from its record (:meth:`Limiter.settle`).
"""

from __future__ import annotations

from collections.abc import Sequence

from modelrouter.cost import PER
from modelrouter.governance.types import Ask
from modelrouter.registry import ModelEntry
from modelrouter.usage import CHARS_PER_TOKEN, prompt_chars
from providers.base import ChatRequest, InvalidBody

DEFAULT_OUTPUT_TOKENS = 1024
"""Output tokens reserved for a request that sets no ``max_tokens``: set it to reserve less."""


def input_tokens(request: ChatRequest) -> int:
    """The prompt's tokens, estimated from the body's size (see the module docstring)."""
    size = request.size
    if size is None and request.native is not None:
        size = request.native.request.size  # another API's door: the body as sent
    if size is not None:
        return size // CHARS_PER_TOKEN
    try:
        return prompt_chars(request.body) // CHARS_PER_TOKEN
    except InvalidBody:
        return 0


def output_tokens(request: ChatRequest) -> int:
    """The most the answer may use: ``max_completion_tokens``, ``max_tokens``, or the default."""
    for key in ("max_completion_tokens", "max_tokens"):
        value = request.get(key)
        if type(value) is int and value > 0:
            return value
    return DEFAULT_OUTPUT_TOKENS


def dearest(candidates: Sequence[ModelEntry], tokens_in: int, tokens_out: int) -> float:
    """The highest cost of ``tokens_in`` + ``tokens_out`` over ``candidates``, in USD."""
    most = 0.0
    for entry in candidates:
        p = entry.prices
        usd = tokens_in * (p.input or 0.0) + tokens_out * (p.output or 0.0)
        if usd > most:
            most = usd
    return most / PER


def chat_ask(request: ChatRequest, candidates: Sequence[ModelEntry]) -> Ask:
    """The estimate of one chat request over its ranked candidates."""
    tokens_in = input_tokens(request)
    tokens_out = output_tokens(request)
    return Ask(tokens_in + tokens_out, dearest(candidates, tokens_in, tokens_out))


def embed_ask(request: ChatRequest, candidates: Sequence[ModelEntry]) -> Ask:
    """The estimate of one embeddings request (input only)."""
    tokens_in = input_tokens(request)
    return Ask(tokens_in, dearest(candidates, tokens_in, 0))
