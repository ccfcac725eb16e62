"""Vendor fakes, started once per session and reset before each test that uses one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.upstream import FakeUpstream, Ok

from .openai_like import FakeAzure, FakeOllama


def _reset(up: FakeUpstream) -> None:
    up.clear()
    up.default = Ok()
    if isinstance(up, FakeAnthropic | FakeGemini):
        up.usage_extra.clear()
        up.rejected.clear()


@pytest.fixture(scope="session")
def _anthropic_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic.in_thread("anthropic", content="Hello from Claude") as up:
        yield up


@pytest.fixture(scope="session")
def _gemini_server() -> Iterator[FakeGemini]:
    with FakeGemini.in_thread("gemini", content="Hello from Gemini") as up:
        yield up


@pytest.fixture(scope="session")
def _azure_server() -> Iterator[FakeAzure]:
    with FakeAzure.in_thread("azure") as up:
        yield up


@pytest.fixture(scope="session")
def _ollama_server() -> Iterator[FakeOllama]:
    with FakeOllama.in_thread("ollama") as up:
        yield up


@pytest.fixture
def anthropic_up(_anthropic_server: FakeAnthropic) -> FakeAnthropic:
    """The fake Messages API, freshly reset."""
    _reset(_anthropic_server)
    return _anthropic_server


@pytest.fixture
def gemini_up(_gemini_server: FakeGemini) -> FakeGemini:
    """The fake Gemini API, freshly reset."""
    _reset(_gemini_server)
    return _gemini_server


@pytest.fixture
def azure_up(_azure_server: FakeAzure) -> FakeAzure:
    """The fake Azure OpenAI resource, freshly reset."""
    _reset(_azure_server)
    return _azure_server


@pytest.fixture
def ollama_up(_ollama_server: FakeOllama) -> FakeOllama:
    """The fake Ollama server, freshly reset."""
    _reset(_ollama_server)
    return _ollama_server
