"""The doors of other APIs against the real router, with every vendor fake behind it.

One router serves the whole module: a route per vendor (``gpt``, an OpenAI-compatible
fake; ``gemini``; ``claude``, the Anthropic fake) and fallback routes whose first model
fails as each test scripts it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.anthropic_upstream import KEY as ANTHROPIC_KEY
from tests.fakes.gemini_upstream import KEY as GEMINI_KEY
from tests.fakes.upstream import FakeUpstream, refused_base_url
from tests.providers.conftest import (  # noqa: F401 - fixtures used by this package's tests
    anthropic_up,
    gemini_up,
    ollama_up,
    openai_up,
    vendors,
)
from tests.router import RunningRouter, router_config, run_router

KEY = "sk-router-doors"
SERVED = ["gpt", "gemini", "claude"]
"""One model per vendor kind: OpenAI-compatible, Gemini, Anthropic."""
GREETING = {
    "gpt": "Hello from OpenAI",
    "gemini": "Hello from Gemini",
    "claude": "Hello from Claude",
}


@pytest.fixture(scope="module")
def router(vendors: dict[str, FakeUpstream]) -> Iterator[RunningRouter]:  # noqa: F811
    """The router with every vendor behind it."""
    cfg = router_config(
        providers={
            "oai": {"kind": "openai", "base_url": vendors["openai"].base_url, "api_key": "sk-o"},
            "gem": {
                "kind": "gemini",
                "base_url": vendors["gemini"].base_url,
                "api_key": GEMINI_KEY,
            },
            "ant": {
                "kind": "anthropic",
                "base_url": vendors["anthropic"].base_url,
                "api_key": ANTHROPIC_KEY,
            },
            "down": {"kind": "openai", "base_url": refused_base_url(), "api_key": "sk-down"},
        },
        models={
            "gpt": {"provider": "oai", "model": "fake-model"},
            "gemini": {"provider": "gem", "model": "gemini-fake"},
            "claude": {"provider": "ant", "model": "claude-fake"},
            "dead": {"provider": "down"},
        },
        routes={
            "default": {"models": ["gpt"]},
            "gpt-then-claude": {"models": ["gpt", "claude"]},
            "dead-then-gemini": {"models": ["dead", "gemini"]},
            "all-dead": {"models": ["dead"]},
        },
        server={"api_keys": [KEY]},
        # Failures are scripted on purpose here: keep every breaker closed.
        health={"failure_threshold": 1000, "min_requests": 1000},
    )
    with run_router(cfg) as r:
        yield r
