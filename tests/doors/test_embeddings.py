"""``POST /v1/embeddings`` with the official ``openai`` SDK, every embedding vendor behind it."""

from __future__ import annotations

import array
import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from modelrouter.config import ConfigError
from modelrouter.store.record import CallRecord
from providers.simulated import word_vector
from tests.fakes.anthropic_upstream import KEY as ANTHROPIC_KEY
from tests.fakes.embeddings import fake_vector
from tests.fakes.gemini_upstream import KEY as GEMINI_KEY
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.upstream import FakeUpstream, refused_base_url, status
from tests.providers.openai_like import FakeOllama, FakeOpenAI
from tests.router import RunningRouter, router_config, run_router

from .conftest import KEY

SERVED = ["oai-embed", "gem-embed", "ollama-embed", "azure-embed", "sim-embed"]
FAKE = {
    "oai-embed": ("openai", 8),
    "gem-embed": ("gemini", 12),
    "ollama-embed": ("ollama", 6),
    "azure-embed": ("azure", 8),
}
"""The fake behind each model, and the length of its vectors when none is asked for."""


def embedding_config(vendors: dict[str, FakeUpstream], **extra: Any) -> Any:
    ollama = vendors["ollama"]
    assert isinstance(ollama, FakeOllama)
    models: dict[str, Any] = {
        "oai-embed": {"provider": "oai", "model": "text-embedding-fake", "mode": "embedding"},
        "gem-embed": {"provider": "gem", "model": "gemini-fake", "mode": "embedding"},
        "ollama-embed": {"provider": "local", "model": "llama3.2", "mode": "embedding"},
        "azure-embed": {"provider": "az", "model": "gpt-dep", "mode": "embedding"},
        "sim-embed": {"provider": "sim", "mode": "embedding"},
        "dead-embed": {"provider": "down", "mode": "embedding"},
        "gpt": {"provider": "oai", "model": "fake-model"},
        **extra.pop("models", {}),
    }
    return router_config(
        providers={
            "oai": {"kind": "openai", "base_url": vendors["openai"].base_url, "api_key": "sk-o"},
            "gem": {
                "kind": "gemini",
                "base_url": vendors["gemini"].base_url,
                "api_key": GEMINI_KEY,
            },
            "local": {"kind": "ollama", "base_url": ollama.root},
            "az": {"kind": "azure", "base_url": vendors["azure"].base_url, "api_key": "azure-key"},
            "sim": {"kind": "simulated"},
            "down": {"kind": "openai", "base_url": refused_base_url(), "api_key": "sk-down"},
            "ant": {
                "kind": "anthropic",
                "base_url": vendors["anthropic"].base_url,
                "api_key": ANTHROPIC_KEY,
            },
        },
        models=models,
        routes={
            "default": {"models": ["gpt"]},
            "embed": {"models": ["oai-embed"]},
            "dead-then-gemini": {"models": ["dead-embed", "gem-embed"]},
            "oai-then-ollama": {"models": ["oai-embed", "ollama-embed"]},
            **extra.pop("routes", {}),
        },
        server={"api_keys": [KEY]},
        health={"failure_threshold": 1000, "min_requests": 1000, **extra.pop("health", {})},
        **extra,
    )


@pytest.fixture(scope="module")
def embed_router(vendors: dict[str, FakeUpstream]) -> Iterator[RunningRouter]:
    with run_router(embedding_config(vendors)) as r:
        yield r


@pytest.fixture(autouse=True)
def _fresh(openai_up: FakeOpenAI, gemini_up: FakeGemini, ollama_up: FakeOllama) -> None:
    """Every vendor fake reset before each test."""


def client(r: RunningRouter) -> openai.OpenAI:
    return openai.OpenAI(base_url=r.base_url, api_key=KEY, max_retries=0, timeout=20)


def expected(served: str, text: str, dims: int | None = None) -> list[float]:
    if served == "sim-embed":
        return word_vector(text, dims or 64)
    vendor, default = FAKE[served]
    return fake_vector(vendor, text, dims or default)


@pytest.mark.parametrize("served", SERVED)
def test_sdk_default_base64_decodes_to_the_vendors_vectors(
    embed_router: RunningRouter, served: str
) -> None:
    raw = client(embed_router).embeddings.with_raw_response.create(
        model=served, input=["red apple", "green pear"]
    )
    got = raw.parse()
    assert raw.headers["x-modelrouter-model"] == served
    assert [d.index for d in got.data] == [0, 1]
    for item, text in zip(got.data, ["red apple", "green pear"], strict=True):
        assert item.embedding == pytest.approx(expected(served, text), rel=1e-6)
    assert got.usage.prompt_tokens > 0


@pytest.mark.parametrize("served", SERVED)
@pytest.mark.parametrize("fmt", ["float", "base64"])
def test_encoding_formats_and_dimensions(
    embed_router: RunningRouter, served: str, fmt: str
) -> None:
    r = httpx2.post(
        embed_router.base_url + "/embeddings",
        json={"model": served, "input": "one text", "encoding_format": fmt, "dimensions": 4},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert r.status_code == 200, r.text
    [item] = r.json()["data"]
    vector = item["embedding"]
    if fmt == "base64":
        assert isinstance(vector, str)
        vector = array.array("f", base64.b64decode(vector)).tolist()
    assert vector == pytest.approx(expected(served, "one text", 4), rel=1e-6)


def test_the_vendor_gets_the_request_in_its_own_terms(
    embed_router: RunningRouter,
    openai_up: FakeOpenAI,
    gemini_up: FakeGemini,
    ollama_up: FakeOllama,
) -> None:
    c = client(embed_router)
    for model in ("oai-embed", "gem-embed", "ollama-embed"):
        c.embeddings.create(model=model, input=["a", "b"], dimensions=3, encoding_format="float")
    assert openai_up.requests[-1].json == {
        "input": ["a", "b"],
        "dimensions": 3,
        "encoding_format": "float",
        "model": "text-embedding-fake",
    }
    assert gemini_up.requests[-1].path == "/v1beta/models/gemini-fake:batchEmbedContents"
    assert gemini_up.requests[-1].json == {
        "requests": [
            {
                "model": "models/gemini-fake",
                "content": {"parts": [{"text": t}]},
                "outputDimensionality": 3,
            }
            for t in ("a", "b")
        ]
    }
    assert ollama_up.requests[-1].json == {
        "model": "llama3.2",
        "input": ["a", "b"],
        "dimensions": 3,
    }


def test_fallback_from_a_refused_model(embed_router: RunningRouter) -> None:
    raw = client(embed_router).embeddings.with_raw_response.create(
        model="dead-then-gemini", input="hello"
    )
    assert raw.headers["x-modelrouter-model"] == "gem-embed"
    assert raw.headers["x-modelrouter-attempts"] == "2"
    assert raw.parse().data[0].embedding == pytest.approx(expected("gem-embed", "hello"))


def test_fallback_from_a_failing_model(
    embed_router: RunningRouter, openai_up: FakeOpenAI, ollama_up: FakeOllama
) -> None:
    openai_up.script(status(503))
    got = client(embed_router).embeddings.with_raw_response.create(
        model="oai-then-ollama", input="hello", encoding_format="base64"
    )
    assert got.headers["x-modelrouter-model"] == "ollama-embed"
    assert (openai_up.calls, ollama_up.calls) == (1, 1)


def test_unknown_fields_reach_an_openai_compatible_upstream(
    embed_router: RunningRouter, openai_up: FakeOpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(embed_router).embeddings.create(
            model="oai-embed", input="x", extra_body={"novel_option": 1}
        )
    assert "Unrecognized request argument supplied: novel_option" in info.value.message
    assert openai_up.requests[-1].json["novel_option"] == 1


def test_mode_errors(embed_router: RunningRouter) -> None:
    c = client(embed_router)
    with pytest.raises(openai.BadRequestError, match="'gpt' is a chat model"):
        c.embeddings.create(model="gpt", input="x")
    with pytest.raises(openai.BadRequestError, match="'oai-embed' is an embedding model"):
        c.chat.completions.create(model="oai-embed", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="Gemini embeds text only"):
        c.embeddings.create(model="gem-embed", input=[[1, 2, 3]])
    with pytest.raises(openai.NotFoundError):
        c.embeddings.create(model="no-such-model", input="x")
    with pytest.raises(openai.BadRequestError, match="'input' is required"):
        c.embeddings.create(model="oai-embed", input=None)  # type: ignore[arg-type]


def test_token_ids_reach_an_openai_compatible_upstream(
    embed_router: RunningRouter, openai_up: FakeOpenAI
) -> None:
    got = client(embed_router).embeddings.create(model="oai-embed", input=[[1, 2], [3]])
    assert len(got.data) == 2
    assert openai_up.requests[-1].json["input"] == [[1, 2], [3]]


def test_usage_is_logged(embed_router: RunningRouter) -> None:
    records: list[CallRecord] = []
    emit = embed_router.runtime.log.emit
    embed_router.runtime.log.emit = records.append  # type: ignore[method-assign]
    try:
        client(embed_router).embeddings.create(model="oai-embed", input=["a b c", "d"])
        client(embed_router).embeddings.create(model="gem-embed", input="12345678")
    finally:
        embed_router.runtime.log.emit = emit  # type: ignore[method-assign]
    oai, gem = records
    assert (oai.endpoint, oai.model, oai.status) == ("/v1/embeddings", "oai-embed", 200)
    assert (oai.input_tokens, oai.output_tokens, oai.usage_estimated) == (4, 0, False)
    # Gemini counts no tokens for embeddings: estimated from the input's text.
    assert (gem.input_tokens, gem.output_tokens, gem.usage_estimated) == (2, 0, True)


def test_simulated_vectors_are_deterministic_and_similar_for_shared_words() -> None:
    a, b, c = (word_vector(t, 64) for t in ("red apple pie", "red apple", "blue whale"))
    assert a == word_vector("red apple pie", 64)

    def cos(x: list[float], y: list[float]) -> float:
        return sum(p * q for p, q in zip(x, y, strict=True))

    assert cos(a, b) > 0.5 > abs(cos(a, c))


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (
            {"routes": {"mixed": {"models": ["oai-embed", "gpt"]}}},
            "routes.mixed.models[1]: 'gpt' is a chat model and 'oai-embed' an embedding "
            "model; a route mixes only one mode",
        ),
        (
            {"models": {"claude-embed": {"provider": "ant", "mode": "embedding"}}},
            "models.claude-embed.mode: provider kind 'anthropic' serves no embeddings",
        ),
        (
            {"prompts": {"p": {"route": "embed", "template": "x"}}},
            "prompts.p.route: 'embed' serves embeddings, not chat",
        ),
    ],
)
def test_config_refuses_mixed_modes(
    vendors: dict[str, FakeUpstream], extra: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        embedding_config(vendors, **extra)
    assert problem in info.value.problems


def test_embedding_breaker_and_health_apply(vendors: dict[str, FakeUpstream]) -> None:
    cfg = embedding_config(vendors, health={"failure_threshold": 1, "probe": "none"})
    with run_router(cfg) as r:
        c = client(r)
        for _ in range(2):
            got = c.embeddings.with_raw_response.create(model="dead-then-gemini", input="x")
            assert got.headers["x-modelrouter-model"] == "gem-embed"
        # The refused model's breaker opened on the first request: the second one went
        # straight to gemini, without an attempt on the dead model.
        assert got.headers["x-modelrouter-attempts"] == "1"


def test_chat_probe_of_an_embedding_model_embeds(
    vendors: dict[str, FakeUpstream], openai_up: FakeOpenAI
) -> None:
    cfg = embedding_config(vendors, health={"probe": "chat", "interval_s": 0.05})
    with run_router(cfg) as r:
        deadline = time.monotonic() + 5
        while not r.runtime.tracker.snapshot("oai-embed")["last_probe"]:
            assert time.monotonic() < deadline, "the embedding model was never probed"
            time.sleep(0.02)
        health = r.runtime.tracker.snapshot("oai-embed")
    paths = {q.path for q in openai_up.requests}
    # The chat model of the same upstream is probed with a chat completion, the
    # embedding model with an embedding: never the other way round.
    assert paths <= {"/v1/embeddings", "/v1/chat/completions"}
    embedded = [q.json for q in openai_up.requests if q.path == "/v1/embeddings"]
    assert embedded[0] == {"input": "ping", "model": "text-embedding-fake"}
    assert all(q.json["model"] == "fake-model" for q in openai_up.requests if "chat" in q.path)
    assert health["last_probe"]["ok"] is True
