"""Azure, Ollama and the OpenAI-compatible presets over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from modelrouter.config import ConfigError, parse
from providers import KINDS
from providers.anthropic import AnthropicProvider
from providers.azure import AzureOptions, AzureProvider
from providers.base import ChatRequest, Failure, ProviderError, Target
from providers.gemini import GeminiProvider
from providers.ollama import OllamaOptions, OllamaProvider
from providers.presets import PRESETS
from tests.fakes.upstream import FakeUpstream, status

from .helpers import chunks_of, joined_text
from .openai_like import FakeAzure, FakeOllama

HI: list[Any] = [{"role": "user", "content": "hi"}]
DEPLOYMENT = Target(name="azure-gpt", upstream_model="gpt-dep")
LLAMA = Target(name="local-llama", upstream_model="llama3.2")


# ---- Azure -----------------------------------------------------------------------------


@pytest.fixture
async def azure(azure_up: FakeAzure) -> AsyncIterator[AzureProvider]:
    opts = AzureOptions(kind="azure", base_url=azure_up.base_url + "/openai/", api_key="azure-key")
    p = AzureProvider("az", opts)
    await p.start()
    yield p
    await p.aclose()


async def test_azure_chat_is_passthrough_to_the_deployment(
    azure: AzureProvider, azure_up: FakeAzure
) -> None:
    body = {"model": "azure-gpt", "messages": HI, "seed": 5, "logit_bias": {"50256": -100}}
    done = await azure.chat(ChatRequest.from_body(body), DEPLOYMENT, 5)
    assert orjson.loads(done.body)["choices"][0]["message"]["content"] == "hello from azure"
    sent = azure_up.requests[-1]
    assert sent.path == "/openai/deployments/gpt-dep/chat/completions"
    assert sent.headers["api-key"] == "azure-key"
    assert "authorization" not in sent.headers
    assert sent.json == {**body, "model": "gpt-dep"}


async def test_azure_stream(azure: AzureProvider) -> None:
    body = {"messages": HI, "stream": True}
    events = [e async for e in azure.stream(ChatRequest.from_body(body), DEPLOYMENT, 5)]
    assert events[-1] == b"data: [DONE]\n\n"
    assert joined_text(chunks_of(events)) == "hello from azure"


CONTENT_FILTER_400 = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
        "content management policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {}},
    }
}


@pytest.mark.parametrize(
    ("behaviour", "target", "failure", "code"),
    [
        (status(400, CONTENT_FILTER_400), DEPLOYMENT, Failure.CONTENT_FILTER, 400),
        (status(429, None, {"retry-after-ms": "1500"}), DEPLOYMENT, Failure.RATE_LIMIT, 429),
        (status(500), DEPLOYMENT, Failure.SERVER, 500),
        (None, Target("x", "no-such-deployment"), Failure.MISCONFIGURED, 404),
    ],
)
async def test_azure_errors(
    azure: AzureProvider,
    azure_up: FakeAzure,
    behaviour: Any,
    target: Target,
    failure: Failure,
    code: int,
) -> None:
    if behaviour is not None:
        azure_up.script(behaviour)
    with pytest.raises(ProviderError) as info:
        await azure.chat(ChatRequest.from_body({"messages": HI}), target, 5)
    assert (info.value.failure, info.value.status) == (failure, code)


async def test_azure_probes(azure: AzureProvider, azure_up: FakeAzure) -> None:
    await azure.probe(DEPLOYMENT, 5, "models")
    assert azure_up.requests[-1].path == "/openai/models"
    await azure.probe(DEPLOYMENT, 5, "chat")
    assert azure_up.requests[-1].path == "/openai/deployments/gpt-dep/chat/completions"


async def test_azure_wrong_key(azure_up: FakeAzure) -> None:
    opts = AzureOptions(kind="azure", base_url=azure_up.base_url, api_key="wrong-secret")
    p = AzureProvider("az", opts)
    await p.start()
    try:
        with pytest.raises(ProviderError) as info:
            await p.probe(DEPLOYMENT, 5, "models")
    finally:
        await p.aclose()
    assert info.value.failure is Failure.MISCONFIGURED
    assert "wrong-secret" not in info.value.message


# ---- Ollama ----------------------------------------------------------------------------


@pytest.fixture(params=["", "/v1"], ids=["root", "v1"])
async def ollama(
    ollama_up: FakeOllama, request: pytest.FixtureRequest
) -> AsyncIterator[OllamaProvider]:
    p = OllamaProvider(
        "local", OllamaOptions(kind="ollama", base_url=ollama_up.root + request.param)
    )
    await p.start()
    yield p
    await p.aclose()


async def test_ollama_chat_through_v1(ollama: OllamaProvider, ollama_up: FakeOllama) -> None:
    done = await ollama.chat(ChatRequest.from_body({"messages": HI}), LLAMA, 5)
    assert orjson.loads(done.body)["choices"][0]["message"]["content"] == "hello from ollama"
    assert ollama_up.requests[-1].path == "/v1/chat/completions"
    assert "authorization" not in ollama_up.requests[-1].headers


async def test_ollama_probe_checks_the_model_is_pulled(
    ollama: OllamaProvider, ollama_up: FakeOllama
) -> None:
    await ollama.probe(LLAMA, 5, "models")
    await ollama.probe(Target("x", "llama3.2:latest"), 5, "models")
    assert ollama_up.requests[-1].path == "/api/tags"
    with pytest.raises(ProviderError) as info:
        await ollama.probe(Target("x", "mistral"), 5, "models")
    assert info.value.failure is Failure.MISCONFIGURED
    assert info.value.message.startswith("model mistral is not pulled on this Ollama server")
    await ollama.probe(LLAMA, 5, "chat")


async def test_ollama_chat_with_a_model_not_pulled(ollama: OllamaProvider) -> None:
    with pytest.raises(ProviderError) as info:
        await ollama.chat(ChatRequest.from_body({"messages": HI}), Target("x", "phi4"), 5)
    assert (info.value.failure, info.value.status) == (Failure.MISCONFIGURED, 404)


# ---- presets, kinds and facts ----------------------------------------------------------


def test_every_kind_is_registered() -> None:
    expected = {"anthropic", "gemini", "azure", "ollama"} | {p.kind for p in PRESETS}
    assert expected <= KINDS.keys()
    assert {p.kind for p in PRESETS} == {
        "mistral", "groq", "deepseek", "together", "openrouter", "vllm", "llamacpp", "lmstudio"
    }  # fmt: skip


def test_default_facts() -> None:
    for cls in (AnthropicProvider, GeminiProvider):
        assert cls.default_facts["supports_tools"] is True
        assert cls.default_facts["supports_vision"] is True
        assert isinstance(cls.default_facts["context_window"], int)


def config(providers: dict[str, Any]) -> Any:
    models = {f"m-{name}": {"provider": name} for name in providers}
    routes = {"default": {"models": list(models)}}
    return parse({"providers": providers, "models": models, "routes": routes}, "test")


def test_hosted_preset_takes_its_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk-from-env")
    opts = config({"g": {"kind": "groq"}}).providers["g"]
    assert opts.base_url == "https://api.groq.com/openai/v1"
    assert opts.api_key == "gsk-from-env"
    explicit = config({"g": {"kind": "groq", "api_key": "gsk-given"}}).providers["g"]
    assert explicit.api_key == "gsk-given"


def test_hosted_preset_without_any_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        config({"mis": {"kind": "mistral"}})
    assert "providers.mis.api_key" in str(info.value)
    assert "MISTRAL_API_KEY is not set" in str(info.value)


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("vllm", "http://localhost:8000/v1"),
        ("llamacpp", "http://localhost:8080/v1"),
        ("lmstudio", "http://localhost:1234/v1"),
    ],
)
def test_local_presets_need_no_key(monkeypatch: pytest.MonkeyPatch, kind: str, url: str) -> None:
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    monkeypatch.delenv("LLAMA_API_KEY", raising=False)
    opts = config({"local": {"kind": kind}}).providers["local"]
    assert (opts.base_url, opts.api_key) == (url, None)


async def test_preset_is_openai_passthrough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "vllm-token")
    async with FakeUpstream("vllm") as up:
        opts = config({"v": {"kind": "vllm", "base_url": up.base_url}}).providers["v"]
        p = KINDS["vllm"]("v", opts)  # type: ignore[call-arg]
        await p.start()
        try:
            done = await p.chat(ChatRequest.from_body({"messages": HI}), Target("m", "qwen"), 5)
        finally:
            await p.aclose()
    assert orjson.loads(done.body)["choices"][0]["message"]["content"] == "hello from vllm"
    assert up.requests[-1].headers["authorization"] == "Bearer vllm-token"
    assert up.requests[-1].json["model"] == "qwen"
