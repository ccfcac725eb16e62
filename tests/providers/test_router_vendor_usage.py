"""Usage and cost of the translating adapters (Anthropic, Gemini) through the real router.

Their streams always end with a usage chunk; the client sees it only if it asked. Cache
reads arrive as OpenAI's ``prompt_tokens_details.cached_tokens`` and are billed at the
cached price.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from modelrouter.store.record import CallRecord
from tests.fakes.anthropic_upstream import KEY as ANTHROPIC_KEY
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import KEY as GEMINI_KEY
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.upstream import FakeUpstream
from tests.router import RunningRouter, router_config, run_router

PRICES = {
    "input_cost_per_mtok": 3.0,
    "output_cost_per_mtok": 15.0,
    "cached_input_cost_per_mtok": 0.3,
}
ASK: Any = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def router(vendors: dict[str, FakeUpstream]) -> Iterator[RunningRouter]:
    cfg = router_config(
        providers={
            "claude": {
                "kind": "anthropic",
                "base_url": vendors["anthropic"].base_url,
                "api_key": ANTHROPIC_KEY,
            },
            "gem": {
                "kind": "gemini",
                "base_url": vendors["gemini"].base_url,
                "api_key": GEMINI_KEY,
            },
        },
        models={
            "claude": {"provider": "claude", "model": "claude-fake", **PRICES},
            "gemini": {"provider": "gem", "model": "gemini-fake", **PRICES},
        },
        routes={},
    )
    with run_router(cfg) as r:
        yield r


@pytest.fixture
def records(router: RunningRouter) -> Iterator[list[CallRecord]]:
    out: list[CallRecord] = []
    emit = router.runtime.log.emit
    router.runtime.log.emit = out.append  # type: ignore[method-assign]
    yield out
    router.runtime.log.emit = emit  # type: ignore[method-assign]


def one(records: list[CallRecord]) -> CallRecord:
    deadline = time.monotonic() + 5
    while not records:
        assert time.monotonic() < deadline, "no access-log record"
        time.sleep(0.01)
    assert len(records) == 1
    return records[0]


def cache_reads(model: str, anthropic_up: FakeAnthropic, gemini_up: FakeGemini, n: int) -> None:
    """Make the vendor report ``n`` prompt tokens read from its cache."""
    if model == "claude":
        # Anthropic counts cache reads apart from input_tokens; the adapter adds them.
        anthropic_up.usage_extra["cache_read_input_tokens"] = n
    else:
        # Gemini counts them inside promptTokenCount.
        gemini_up.usage_extra["cachedContentTokenCount"] = n


@pytest.mark.parametrize("model", ["claude", "gemini"])
@pytest.mark.parametrize("asked", [False, True])
def test_stream_usage_and_cached_tokens_reach_the_record(
    router: RunningRouter,
    records: list[CallRecord],
    anthropic_up: FakeAnthropic,
    gemini_up: FakeGemini,
    model: str,
    asked: bool,
) -> None:
    cache_reads(model, anthropic_up, gemini_up, 2)
    client = openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0, timeout=10)
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if asked else {}
    chunks = list(client.chat.completions.create(model=model, messages=ASK, stream=True, **extra))
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == (1 if asked else 0)
    assert all(c.usage is None for c in chunks if c.choices)
    rec = one(records)
    assert rec.cached_tokens == 2 and rec.output_tokens > 0
    assert rec.usage_estimated is False and rec.price_unknown is False
    if asked:
        usage = usage_chunks[0].usage
        assert usage is not None and usage.prompt_tokens_details is not None
        assert usage.prompt_tokens_details.cached_tokens == 2
        assert (rec.input_tokens, rec.output_tokens) == (
            usage.prompt_tokens,
            usage.completion_tokens,
        )
    uncached = rec.input_tokens - 2
    want = (uncached * 3.0 + 2 * 0.3 + rec.output_tokens * 15.0) / 1e6
    assert rec.cost_usd == pytest.approx(want)


@pytest.mark.parametrize("model", ["claude", "gemini"])
def test_non_stream_cached_tokens_reach_the_record(
    router: RunningRouter,
    records: list[CallRecord],
    anthropic_up: FakeAnthropic,
    gemini_up: FakeGemini,
    model: str,
) -> None:
    cache_reads(model, anthropic_up, gemini_up, 2)
    client = openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0, timeout=10)
    done = client.chat.completions.create(model=model, messages=ASK)
    assert done.usage is not None and done.usage.prompt_tokens_details is not None
    assert done.usage.prompt_tokens_details.cached_tokens == 2
    rec = one(records)
    assert (rec.input_tokens, rec.output_tokens, rec.cached_tokens) == (
        done.usage.prompt_tokens,
        done.usage.completion_tokens,
        2,
    )
