"""A router with keys of every kind in front of one fake upstream, for the limits tests.

Prices are high on purpose ($100 per million tokens, a hundredth of a cent a token), so
that budgets of cents are spent by a few requests of the fake's few tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from modelrouter.frontdoor import FrontDoor
from modelrouter.governance.limiter import LocalLimiter
from tests.fakes.upstream import FakeUpstream
from tests.router import RunningRouter, router_config, run_router

FREE = "sk-free-unrestricted"
PRICE = 100.0
"""USD per million tokens, in and out: each token costs 1e-4."""
KEYS: dict[str, dict[str, Any]] = {
    "narrow": {"key": "sk-narrow", "models": ["default", "alpha"]},
    "teamed": {"key": "sk-teamed", "team": "small", "rpm": 10},
    "mate": {"key": "sk-mate", "team": "small"},
    "rpm2": {"key": "sk-rpm2", "rpm": 2},
    "tpm": {"key": "sk-tpm", "tpm": 1000},
    "spender": {"key": "sk-spender", "budget_usd": 0.05, "budget_period": "day"},
    "huge": {"key": "sk-huge", "rpm": 1_000_000, "tpm": 1_000_000_000, "budget_usd": 1e6},
}
TEAMS: dict[str, dict[str, Any]] = {"small": {"models": ["default", "both"], "rpm": 2}}


def limits_config(up: FakeUpstream, **sections: Any) -> Any:
    """Routes ``default`` (alpha), ``both`` (alpha, beta); a prompt on each; the keys above."""
    return router_config(
        providers={
            "p": {"kind": "openai", "base_url": up.base_url, "api_key": "sk-upstream"},
            "sim": {"kind": "simulated", "latency_ms": 0},
        },
        models={
            "alpha": {
                "provider": "p",
                "model": "up-alpha",
                "input_cost_per_mtok": PRICE,
                "output_cost_per_mtok": PRICE,
            },
            "beta": {"provider": "p", "model": "up-beta"},
            "emb": {"provider": "sim", "mode": "embedding"},
        },
        routes={"default": {"models": ["alpha"]}, "both": {"models": ["alpha", "beta"]}},
        prompts={
            "on_both": {"route": "both", "template": "Say {word}"},
            "on_default": {"template": "Say {word}"},
        },
        server={"api_keys": [FREE]},
        keys=sections.pop("keys", KEYS),
        teams=sections.pop("teams", TEAMS),
        **sections,
    )


@pytest.fixture
def router(up: FakeUpstream) -> Iterator[RunningRouter]:
    """The router of :func:`limits_config`, fresh for each test (fresh limits)."""
    with run_router(limits_config(up)) as r:
        yield r


def door_of(r: RunningRouter) -> FrontDoor:
    """The running router's front door."""
    door = r.server.config.app.state.door
    assert isinstance(door, FrontDoor)
    return door


def limiter_of(r: RunningRouter) -> LocalLimiter:
    """The running router's limiter (the per-process one)."""
    limiter = door_of(r).gate.limiter
    assert isinstance(limiter, LocalLimiter)
    return limiter
