"""The built-in catalogue: its data, the id-matching rule, and its facts in routing."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelrouter.catalog import Catalog, candidates, catalog
from modelrouter.registry import Registry
from providers.base import ChatRequest
from tests.router import router_config
from tests.subproc import CLI, child_env

GROQ = "https://api.groq.com/openai/v1"


@pytest.mark.parametrize(
    ("model_id", "given", "stripped"),
    [
        ("gpt-4o-mini", ["gpt-4o-mini"], []),
        ("gpt-4o-mini-2024-07-18", ["gpt-4o-mini-2024-07-18"], ["gpt-4o-mini"]),
        ("claude-sonnet-4-5-20250929", ["claude-sonnet-4-5-20250929"], ["claude-sonnet-4-5"]),
        ("claude-sonnet-4-5@20250929", ["claude-sonnet-4-5@20250929"], ["claude-sonnet-4-5"]),
        ("claude-3-5-haiku-latest", ["claude-3-5-haiku-latest"], ["claude-3-5-haiku"]),
        ("gemini-2.0-flash-001", ["gemini-2.0-flash-001"], ["gemini-2.0-flash"]),
        ("models/gemini-2.5-pro", ["models/gemini-2.5-pro", "gemini-2.5-pro"], []),
        (
            "openai/gpt-4o-2024-08-06",
            ["openai/gpt-4o-2024-08-06", "gpt-4o-2024-08-06"],
            ["openai/gpt-4o", "gpt-4o"],
        ),
        # Not dates or versions: kept whole.
        ("mistral-small-2409", ["mistral-small-2409"], []),
        ("gemini-2.5-flash-preview-05-20", ["gemini-2.5-flash-preview-05-20"], []),
        ("gpt-4-0613", ["gpt-4-0613"], []),
    ],
)
def test_candidates(model_id: str, given: list[str], stripped: list[str]) -> None:
    assert candidates(model_id) == (given, stripped)


@pytest.mark.parametrize(
    ("model_id", "base_url", "entry"),
    [
        ("gpt-4o-mini", None, "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", None, "gpt-4o-mini"),
        # A snapshot priced apart from its family is its own entry.
        ("gpt-4o-2024-05-13", None, "gpt-4o-2024-05-13"),
        ("gpt-4o-2024-08-06", None, "gpt-4o"),
        ("o3-mini-2025-01-31", None, "o3-mini"),
        ("claude-sonnet-4-5-20250929", None, "claude-sonnet-4-5"),
        ("claude-opus-4-1-20250805", None, "claude-opus-4-1"),
        ("claude-opus-4-0", None, "claude-opus-4"),
        ("models/gemini-2.5-flash", None, "gemini-2.5-flash"),
        ("gemini-2.0-flash-001", None, "gemini-2.0-flash"),
        ("mistral-large-latest", None, "mistral-large-2411"),
        ("mistralai/mistral-small-2506", None, "mistral-small-2506"),
        ("deepseek-chat", None, "deepseek-chat"),
        ("llama-3.3-70b-versatile", GROQ, "llama-3.3-70b-versatile"),
        ("openai/gpt-oss-120b", GROQ, "openai/gpt-oss-120b"),
        # Unknown: ids of other hosts, older versions of aliased families, previews,
        # other letter case, local names.
        ("llama-3.3-70b-versatile", "https://api.together.xyz/v1", None),
        ("openai/gpt-oss-120b", None, None),
        ("mistral-small-2409", None, None),
        ("gemini-2.5-flash-preview-05-20", None, None),
        ("GPT-4o-mini", None, None),
        ("llama3.2", None, None),
        ("my-gpt-4o-deployment", None, None),
    ],
)
def test_lookup(model_id: str, base_url: str | None, entry: str | None) -> None:
    found = catalog().lookup(model_id, base_url)
    assert (found.id if found else None) == entry


def test_an_alias_is_not_reached_through_a_dropped_suffix() -> None:
    data: dict[str, Any] = {
        "as_of": "2025-01-01",
        "aliases": {"fam-latest": "fam-2501", "fam": "fam-2501"},
        "models": {"v": {"fam-2501": {"input": 1.0, "output": 2.0}}},
    }
    cat = Catalog(data)
    assert cat.lookup("fam-latest") is not None
    assert cat.lookup("fam") is not None
    assert cat.lookup("fam-20240101") is None  # an older dated "fam" is not fam-2501


def test_bad_catalogue_data_is_refused() -> None:
    with pytest.raises(ValueError, match="names no entry"):
        Catalog({"as_of": "x", "aliases": {"a": "missing"}, "models": {}})
    with pytest.raises(ValueError, match="unknown keys"):
        Catalog({"as_of": "x", "models": {"v": {"m": {"price": 1}}}})


def test_the_shipped_catalogue_is_whole_and_plausible() -> None:
    cat = catalog()
    assert dt.date.fromisoformat(cat.as_of) <= dt.date.today()
    assert "config" in cat.source.lower() or "override" in cat.source.lower()
    assert len(cat) >= 30
    vendors = {"openai", "anthropic", "gemini", "mistral", "deepseek", "groq"}
    assert vendors <= set(cat._entries)
    for vendor, entries in cat._entries.items():
        assert len(entries) >= 2, vendor
        for e in entries.values():
            assert e.input_cost_per_mtok is not None and e.output_cost_per_mtok is not None
            assert 0 < e.input_cost_per_mtok <= e.output_cost_per_mtok, e.id
            cached = e.cached_input_cost_per_mtok
            assert cached is None or 0 < cached < e.input_cost_per_mtok, e.id
            assert e.context_window is not None and e.context_window >= 16_000, e.id


# ---- facts in routing -----------------------------------------------------------------


def registry() -> Registry:
    cfg = router_config(
        providers={
            "oa": {"kind": "openai", "api_key": "k"},
            "claude": {"kind": "anthropic", "api_key": "k"},
            "groq": {"kind": "groq", "api_key": "k"},
        },
        models={
            "o3-mini": {"provider": "oa"},  # catalogue: no vision, 200k
            "mini": {"provider": "oa", "model": "gpt-4o-mini", "context_window": 1000},
            "sonnet": {"provider": "claude", "model": "claude-sonnet-4-5"},
            "unknown-claude": {"provider": "claude", "model": "claude-fake"},
            "llama": {"provider": "groq", "model": "llama-3.3-70b-versatile"},
            "own-llama": {"provider": "oa", "model": "llama-3.3-70b-versatile"},
        },
        routes={"default": {"models": ["o3-mini", "mini", "sonnet"]}},
    )
    return Registry(cfg)


def test_catalogue_facts_sit_between_the_config_and_the_kind_defaults() -> None:
    models = registry().models
    facts = {
        n: (m.settings.context_window, m.settings.supports_tools, m.settings.supports_vision)
        for n, m in models.items()
    }
    assert facts == {
        "o3-mini": (200_000, True, False),  # catalogue
        "mini": (1000, True, True),  # the config's window wins
        "sonnet": (200_000, True, True),
        "unknown-claude": (200_000, True, True),  # the kind's defaults
        "llama": (131_072, True, False),  # Groq's entry on Groq
        "own-llama": (None, None, None),  # the same id elsewhere: unknown
    }


def test_prices_are_resolved_once_at_start() -> None:
    models = registry().models
    assert (models["o3-mini"].prices.input, models["o3-mini"].prices.source) == (1.10, "catalog")
    assert models["llama"].prices.output == 0.79
    assert models["own-llama"].prices.unknown


def test_catalogue_facts_skip_models_that_cannot_serve() -> None:
    reg = registry()
    image: Any = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, image]}]}
    for request in (ChatRequest.from_body(body), ChatRequest.from_json(_json(body))):
        plan = reg.plan("default", ["o3-mini", "mini", "sonnet"], request)
        assert [e.name for e in plan.candidates] == ["mini", "sonnet"]
        assert [(e.name, why) for e, why in plan.skipped] == [("o3-mini", "no image support")]


def test_the_context_window_is_checked_on_the_body_size_first() -> None:
    reg = registry()
    short = {"messages": [{"role": "user", "content": "x" * 3000}]}
    long = {"messages": [{"role": "user", "content": "x" * 5000}]}
    request = ChatRequest.from_json(_json(short))
    assert [e.name for e in reg.plan("d", ["mini"], request).candidates] == ["mini"]
    plan = reg.plan("d", ["mini", "sonnet"], ChatRequest.from_json(_json(long)))
    assert [(e.name, why) for e, why in plan.skipped] == [
        ("mini", "prompt of about 1250 tokens exceeds context window 1000")
    ]


def test_a_large_body_that_fits_is_not_skipped() -> None:
    # Over 4000 bytes but under 1000 tokens of text: the size check defers to the count.
    escaped = {"messages": [{"role": "user", "content": "\u00e9" * 3000}]}
    raw = _json(escaped).replace("é".encode(), b"\\u00e9")
    assert len(raw) > 4000
    plan = registry().plan("d", ["mini"], ChatRequest.from_json(raw))
    assert [e.name for e in plan.candidates] == ["mini"]


def _json(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


# ---- the command line -----------------------------------------------------------------

PRICED = """
[providers.oa]
kind = "openai"
api_key = "k"

[providers.groq]
kind = "groq"
api_key = "k"

[models.mini]
provider = "oa"
model = "gpt-4o-mini-2024-07-18"

[models.own]
provider = "oa"
model = "gpt-4o-mini"
context_window = 4096
input_cost_per_mtok = 0.1
output_cost_per_mtok = 0.4
cached_input_cost_per_mtok = 0.01

[models.llama]
provider = "groq"
model = "llama-3.3-70b-versatile"

[models.mystery]
provider = "oa"

[routes.default]
models = ["mini", "own", "llama", "mystery"]
"""


@pytest.mark.parametrize("command", ["models", "check"])
def test_models_and_check_show_catalogue_facts_and_prices(tmp_path: Path, command: str) -> None:
    cfg = tmp_path / "priced.toml"
    cfg.write_text(PRICED)
    argv = [*CLI, command, "--config", str(cfg)]
    out = subprocess.run(argv, env=child_env(), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line}
    # MODEL PROVIDER KIND UPSTREAM | CONTEXT TOOLS VISION | IN OUT CACHED PRICES
    assert rows["mini"][4:] == ["128000", "yes", "yes", "0.15", "0.6", "0.075", "catalog"]
    assert rows["own"][4:] == ["4096", "yes", "yes", "0.1", "0.4", "0.01", "config"]
    assert rows["llama"][4:] == ["131072", "yes", "no", "0.59", "0.79", "0.59", "catalog"]
    assert rows["mystery"][4:] == ["?", "?", "?", "?", "?", "?", "none"]
    assert f"built-in catalogue of {catalog().as_of}" in out.stdout
