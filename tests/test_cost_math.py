"""Cost arithmetic and price resolution: pure functions, table-tested."""

from __future__ import annotations

from typing import Any

import pytest

from modelrouter.cost import Cost, Prices, bill, cached_tokens, cost_of, prices_for
from modelrouter.registry import Registry
from modelrouter.settings import ModelSettings
from tests.router import router_config


def settings(**prices: float) -> ModelSettings:
    return ModelSettings(provider="p", **prices)


@pytest.mark.parametrize(
    ("upstream", "config", "want"),
    [
        # Nothing anywhere.
        ("local-model", {}, Prices(None, None, None, "none")),
        # The config alone; cached defaults to the input price.
        (
            "local-model",
            {"input_cost_per_mtok": 1.0, "output_cost_per_mtok": 2.0},
            Prices(1.0, 2.0, 1.0, "config"),
        ),
        (
            "local-model",
            {
                "input_cost_per_mtok": 1.0,
                "output_cost_per_mtok": 2.0,
                "cached_input_cost_per_mtok": 0.1,
            },
            Prices(1.0, 2.0, 0.1, "config"),
        ),
        # The catalogue alone, its cached price included.
        ("gpt-4o-mini", {}, Prices(0.15, 0.60, 0.075, "catalog")),
        # A catalogue entry without a cached price: cached tokens cost the input price.
        ("mistral-large-2411", {}, Prices(2.0, 6.0, 2.0, "catalog")),
        # Each config price wins on its own ...
        ("gpt-4o-mini", {"output_cost_per_mtok": 1.0}, Prices(0.15, 1.0, 0.075, "config+catalog")),
        # ... and a config input price takes the catalogue's cache discount with it.
        ("gpt-4o-mini", {"input_cost_per_mtok": 0.2}, Prices(0.2, 0.60, 0.2, "config+catalog")),
        (
            "gpt-4o-mini",
            {"input_cost_per_mtok": 0.2, "cached_input_cost_per_mtok": 0.02},
            Prices(0.2, 0.60, 0.02, "config+catalog"),
        ),
        (
            "gpt-4o-mini",
            {"input_cost_per_mtok": 0, "output_cost_per_mtok": 0},
            Prices(0, 0, 0, "config"),
        ),
        # Half a price is still unknown.
        ("local-model", {"input_cost_per_mtok": 1.0}, Prices(1.0, None, 1.0, "config")),
    ],
)
def test_prices_for(upstream: str, config: dict[str, float], want: Prices) -> None:
    assert prices_for(settings(**config), upstream) == want


P = Prices(input=2.0, output=8.0, cached_input=0.5, source="config")


@pytest.mark.parametrize(
    ("usage", "want"),
    [
        (None, Cost(0, 0, 0, 0.0, False, False)),
        ({}, Cost(0, 0, 0, 0.0, False, False)),
        (
            {"prompt_tokens": 1000, "completion_tokens": 100},
            Cost(1000, 100, 0, (1000 * 2 + 100 * 8) / 1e6, False, False),
        ),
        # Cached tokens are inside prompt_tokens: the rest pays the input price.
        (
            {
                "prompt_tokens": 1000,
                "completion_tokens": 100,
                "prompt_tokens_details": {"cached_tokens": 800},
            },
            Cost(1000, 100, 800, (200 * 2 + 800 * 0.5 + 100 * 8) / 1e6, False, False),
        ),
        # DeepSeek's field, when OpenAI's is absent.
        (
            {"prompt_tokens": 1000, "completion_tokens": 0, "prompt_cache_hit_tokens": 600},
            Cost(1000, 0, 600, (400 * 2 + 600 * 0.5) / 1e6, False, False),
        ),
        # More cached than prompt is nonsense: capped at the prompt.
        (
            {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 50}},
            Cost(10, 0, 10, 10 * 0.5 / 1e6, False, False),
        ),
        # Counts that are not numbers count as 0; a float is truncated, a negative is 0.
        (
            {"prompt_tokens": None, "completion_tokens": "7", "prompt_tokens_details": None},
            Cost(0, 0, 0, 0.0, False, False),
        ),
        (
            {"prompt_tokens": 10.7, "completion_tokens": -3, "total_tokens": 7},
            Cost(10, 0, 0, 10 * 2 / 1e6, False, False),
        ),
    ],
)
def test_bill(usage: dict[str, Any] | None, want: Cost) -> None:
    got = bill(P, usage)
    assert got == Cost(
        want.input_tokens,
        want.output_tokens,
        want.cached_tokens,
        pytest.approx(want.cost_usd),  # type: ignore[arg-type]
        want.price_unknown,
        want.usage_estimated,
    )


def test_bill_with_unknown_prices_counts_the_known_part_and_flags_it() -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 100}
    assert bill(Prices(None, None, None, "none"), usage) == Cost(1000, 100, 0, 0.0, True, False)
    half = bill(Prices(2.0, None, 2.0, "config"), usage)
    assert (half.cost_usd, half.price_unknown) == (pytest.approx(0.002), True)


def test_bill_marks_estimates() -> None:
    cost = bill(Prices(0.15, 0.6, 0.075, "catalog"), {"prompt_tokens": 1}, estimated=True)
    assert cost.usage_estimated and cost.cost_usd == pytest.approx(1.5e-07)


def test_cached_tokens_prefers_openais_field() -> None:
    usage = {"prompt_tokens_details": {"cached_tokens": 3}, "prompt_cache_hit_tokens": 9}
    assert cached_tokens(usage) == 3
    assert cached_tokens({"prompt_tokens_details": {"audio_tokens": 1}}) == 0


def test_cost_fields_are_the_record_fields() -> None:
    assert Cost(1, 2, 0, 0.5, False, True).fields() == {
        "input_tokens": 1,
        "output_tokens": 2,
        "cached_tokens": 0,
        "cost_usd": 0.5,
        "price_unknown": False,
        "usage_estimated": True,
    }


def test_cost_of_an_entry_uses_the_prices_resolved_at_start() -> None:
    cfg = router_config(
        providers={"oa": {"kind": "openai", "api_key": "k"}},
        models={"mini": {"provider": "oa", "model": "gpt-4o-mini"}},
        routes={},
    )
    entry = Registry(cfg).models["mini"]
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}
    assert cost_of(entry, "gpt-4o-mini", usage).cost_usd == pytest.approx(0.75)
    # The entry's prices, not a fresh lookup: a changed entry shows it.
    entry.prices = Prices(1.0, 1.0, 1.0, "config")
    assert cost_of(entry, "gpt-4o-mini", usage).cost_usd == pytest.approx(2.0)
    # Another upstream id than the entry's own is looked up.
    assert cost_of(entry, "gpt-4o", usage).cost_usd == pytest.approx(12.5)
    # Settings are looked up on the spot.
    fresh = cost_of(entry.settings, "gpt-4o-mini", usage, estimated=True)
    assert (fresh.cost_usd, fresh.usage_estimated) == (pytest.approx(0.75), True)
