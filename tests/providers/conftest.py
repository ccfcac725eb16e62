"""Vendor fakes, started once per session and reset before each test that uses one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, TypeVar

import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.upstream import FakeUpstream, Ok

from .openai_like import FakeAzure, FakeOllama, FakeOpenAI

V = TypeVar("V", bound=FakeUpstream)

VENDORS: dict[str, tuple[type[FakeUpstream], dict[str, Any]]] = {
    "anthropic": (FakeAnthropic, {"content": "Hello from Claude"}),
    "gemini": (FakeGemini, {"content": "Hello from Gemini"}),
    "azure": (FakeAzure, {}),
    "ollama": (FakeOllama, {}),
    "openai": (FakeOpenAI, {"content": "Hello from OpenAI"}),
}


@pytest.fixture(scope="session")
def vendors() -> Iterator[dict[str, FakeUpstream]]:
    """Every vendor fake, by name, running for the whole session."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(cls.in_thread(name, **kwargs))
            for name, (cls, kwargs) in VENDORS.items()
        }


def fresh(vendors: dict[str, FakeUpstream], name: str, cls: type[V]) -> V:
    """The vendor fake ``name``, reset to answer normally with nothing queued."""
    up = vendors[name]
    assert isinstance(up, cls)
    up.clear()
    up.default = Ok()
    if isinstance(up, FakeAnthropic | FakeGemini):
        up.usage_extra.clear()
        up.rejected.clear()
    return up


@pytest.fixture
def anthropic_up(vendors: dict[str, FakeUpstream]) -> FakeAnthropic:
    """The fake Messages API, freshly reset."""
    return fresh(vendors, "anthropic", FakeAnthropic)


@pytest.fixture
def gemini_up(vendors: dict[str, FakeUpstream]) -> FakeGemini:
    """The fake Gemini API, freshly reset."""
    return fresh(vendors, "gemini", FakeGemini)


@pytest.fixture
def openai_up(vendors: dict[str, FakeUpstream]) -> FakeOpenAI:
    """The fake OpenAI API, freshly reset."""
    return fresh(vendors, "openai", FakeOpenAI)


@pytest.fixture
def azure_up(vendors: dict[str, FakeUpstream]) -> FakeAzure:
    """The fake Azure OpenAI resource, freshly reset."""
    return fresh(vendors, "azure", FakeAzure)


@pytest.fixture
def ollama_up(vendors: dict[str, FakeUpstream]) -> FakeOllama:
    """The fake Ollama server, freshly reset."""
    return fresh(vendors, "ollama", FakeOllama)
