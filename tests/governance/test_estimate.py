"""The admission estimate: input from the body's size, output from max_tokens, price
of the dearest candidate."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelrouter.config import parse
from modelrouter.governance.estimate import (
    DEFAULT_OUTPUT_TOKENS,
    chat_ask,
    embed_ask,
    input_tokens,
    output_tokens,
)
from modelrouter.registry import Registry
from providers.base import ChatRequest, Native


def registry() -> Registry:
    cfg = parse(
        {
            "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}},
            "models": {
                "cheap": {
                    "provider": "p",
                    "model": "x-cheap",
                    "input_cost_per_mtok": 1.0,
                    "output_cost_per_mtok": 2.0,
                },
                "dear": {
                    "provider": "p",
                    "model": "x-dear",
                    "input_cost_per_mtok": 10.0,
                    "output_cost_per_mtok": 1.0,
                },
                "unpriced": {"provider": "p", "model": "x-unknown-model"},
            },
            "routes": {"default": {"models": ["cheap", "dear", "unpriced"]}},
            "health": {"probe": "none"},
            "store": {"url": "none"},
        },
        "test",
    )
    return Registry(cfg)


def raw(body: dict[str, Any]) -> ChatRequest:
    return ChatRequest.from_json(orjson.dumps(body))


def test_input_is_the_body_size_over_four() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 4000}]}
    request = raw(body)
    assert input_tokens(request) == len(orjson.dumps(body)) // 4


def test_a_decoded_body_counts_its_message_text() -> None:
    request = ChatRequest.from_body({"messages": [{"role": "user", "content": "y" * 400}]})
    assert input_tokens(request) == 100


def test_another_apis_door_counts_the_body_as_sent() -> None:
    sent = raw({"model": "m", "messages": [{"role": "user", "content": "z" * 800}]})
    chat = ChatRequest.from_body({"messages": [{"role": "user", "content": "z" * 800}]})
    chat.native = Native("anthropic", sent, (), None)
    assert input_tokens(chat) == sent.size // 4  # type: ignore[operator]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, DEFAULT_OUTPUT_TOKENS),
        ({"max_tokens": 50}, 50),
        ({"max_completion_tokens": 70, "max_tokens": 50}, 70),
        ({"max_tokens": 0}, DEFAULT_OUTPUT_TOKENS),
        ({"max_tokens": "many"}, DEFAULT_OUTPUT_TOKENS),
    ],
)
def test_output_is_max_tokens_else_the_default(extra: dict[str, Any], expected: int) -> None:
    assert output_tokens(raw({"messages": [], **extra})) == expected


def test_cost_is_the_dearest_candidates() -> None:
    reg = registry()
    models = [reg.models[n] for n in ("cheap", "dear", "unpriced")]
    request = raw({"messages": [{"role": "user", "content": "a" * 3960}], "max_tokens": 1000})
    tokens_in = input_tokens(request)
    ask = chat_ask(request, models)
    assert ask.tokens == tokens_in + 1000
    cheap = (tokens_in * 1.0 + 1000 * 2.0) / 1e6
    dear = (tokens_in * 10.0 + 1000 * 1.0) / 1e6
    assert ask.cost_usd == pytest.approx(max(cheap, dear))
    assert chat_ask(request, [reg.models["unpriced"]]).cost_usd == 0.0


def test_embeddings_reserve_input_only() -> None:
    reg = registry()
    request = raw({"input": "b" * 400, "model": "cheap"})
    ask = embed_ask(request, [reg.models["cheap"]])
    assert ask.tokens == input_tokens(request)
    assert ask.cost_usd == pytest.approx(ask.tokens * 1.0 / 1e6)
