"""``GET /metrics`` after a scripted mix through the real server (one process): every
counter equals what was sent, the breaker and model state show what happened, and no
label value comes from the client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.fakes.upstream import FakeUpstream, refused_port, slow_stream
from tests.observe.mix import ADMIN, KEY_PLAIN, KEY_TEAM, UNKNOWN, Mix, router_tables
from tests.observe.scrape import label_values, labels, nonzero, parse, scrape
from tests.router import RunningRouter, router_config, run_router
from tests.store.helpers import wait_until

COUNTERS = (
    "modelrouter_requests_total",
    "modelrouter_attempts_total",
    "modelrouter_fallbacks_total",
    "modelrouter_tokens_total",
    "modelrouter_request_duration_seconds_count",
    "modelrouter_ttft_seconds_count",
)


def config(primary: FakeUpstream, backup: FakeUpstream, up: FakeUpstream, **extra: Any) -> Any:
    tables = router_tables(primary, backup, up)
    return router_config(
        tables.pop("providers"),
        tables.pop("models"),
        tables.pop("routes"),
        router={"retries_per_model": 0},
        # Two failures in a row open a's breaker; it stays open for the whole test.
        health={"failure_threshold": 2, "open_s": 3600},
        **tables,
        **extra,
    )


@pytest.fixture
def router(
    primary: FakeUpstream, backup: FakeUpstream, up: FakeUpstream
) -> Iterator[RunningRouter]:
    primary.cached_tokens = 2
    with run_router(config(primary, backup, up)) as r:
        yield r


async def mcp_chat(r: RunningRouter, model: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {KEY_PLAIN}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as hc,
        Client(streamable_http_client(r.url + "/mcp", http_client=hc)) as c,
    ):
        result = await c.call_tool("chat", {"prompt": "count these four words", "model": model})
    assert not result.is_error
    assert result.structured_content is not None
    return result.structured_content


async def test_counters_equal_what_was_sent(
    router: RunningRouter, primary: FakeUpstream, up: FakeUpstream
) -> None:
    mix = Mix(router.url, router.runtime.settings.models)
    try:
        for _ in range(3):
            mix.chat(KEY_TEAM)
        mix.stream(KEY_PLAIN)
        mix.fallback(KEY_TEAM, primary)
        assert scrape(router.url).get("modelrouter_breaker_transitions_total", {}) == {}
        # The second failure in a row opens a's breaker.
        mix.fallback(KEY_TEAM, primary)
        # a is now ranked last: b answers at once, no fallback.
        mix.chat(KEY_PLAIN, served="b")
        mix.stream(KEY_TEAM, served="b")
        mix.chat(KEY_PLAIN, model="b", route="adhoc", served="b", extra_body={"models": ["a"]})
        mix.rate_limited(up)
        mix.unknown_model()
        mix.bad_key()
    finally:
        mix.close()
    out = await mcp_chat(router, "b")
    assert out["model"] == "b"
    mix._served(None, out["usage"], route="b", model="b", team="", surface="mcp")

    samples = scrape(router.url)
    expected = mix.expected
    for name in COUNTERS:
        assert nonzero(samples, name) == expected.of(name), name
    cost = nonzero(samples, "modelrouter_cost_usd_total")
    want = expected.of("modelrouter_cost_usd_total")
    assert cost.keys() == want.keys()
    for key, value in want.items():
        assert cost[key] == pytest.approx(value, rel=1e-9), key

    # Histograms: +Inf is the count, buckets only grow, the sum is a real latency.
    hist = "modelrouter_request_duration_seconds"
    for key, count in samples[f"{hist}_count"].items():
        buckets = [(float(dict(k)["le"]), v) for k, v in samples[f"{hist}_bucket"].items()
                   if tuple(p for p in k if p[0] != "le") == key]  # fmt: skip
        values = [v for _, v in sorted(buckets)]
        assert values == sorted(values) and values[-1] == count
        assert 0 < samples[f"{hist}_sum"][key] < 30

    transitions = samples["modelrouter_breaker_transitions_total"]
    assert transitions == {labels(model="a", to="open"): 1.0}
    state = samples["modelrouter_model_state"]
    assert {k for k, v in state.items() if v == 1} == {
        labels(model="a", state="open"),
        labels(model="b", state="healthy"),
        labels(model="c", state="cooling_down"),
    }
    assert len(state) == 3 * 6
    assert samples["modelrouter_log_queue_depth"] == {(): 0.0}
    assert samples["modelrouter_log_spooled_total"] == {(): 0.0}

    # Nothing the client chose is a label value: not the unknown model, not the ad-hoc
    # list, not the bad key.
    values = label_values(samples)
    assert not {UNKNOWN, "b,a", "not-a-key", KEY_PLAIN} & values
    assert "adhoc" in values


def test_every_request_counts_once_at_its_end(router: RunningRouter, primary: FakeUpstream) -> None:
    """A stream is counted when it ends, not when it starts."""
    primary.script(slow_stream(chunks=3, interval=0.4))
    mix = Mix(router.url, router.runtime.settings.models)
    try:
        client = mix.client(KEY_PLAIN)
        stream = client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "x"}], stream=True
        )
        first = next(iter(stream))
        assert first.choices
        during = scrape(router.url).get("modelrouter_requests_total", {})
        assert during == {}
        list(stream)
    finally:
        mix.close()
    after = scrape(router.url)["modelrouter_requests_total"]
    key = labels(surface="http", route="default", model="a", provider="pa", code="200")
    assert after == {key: 1.0}


@pytest.mark.parametrize("admin", [True, False])
def test_require_key(
    primary: FakeUpstream, backup: FakeUpstream, up: FakeUpstream, admin: bool
) -> None:
    cfg = config(primary, backup, up, metrics={"require_key": True})
    if not admin:
        cfg.settings.server.admin_keys = []
    with run_router(cfg) as r:
        anonymous = httpx2.get(r.url + "/metrics")
        with_api_key = httpx2.get(
            r.url + "/metrics", headers={"authorization": f"Bearer {KEY_PLAIN}"}
        )
        if admin:
            assert anonymous.status_code == with_api_key.status_code == 401
            assert anonymous.json()["error"]["code"] == "invalid_api_key"
            ok = httpx2.get(r.url + "/metrics", headers={"authorization": f"Bearer {ADMIN}"})
            assert ok.status_code == 200
            assert "# TYPE modelrouter_requests_total counter" in ok.text
        else:
            # No admin key at all: the protected endpoint is off, like the admin surface.
            assert anonymous.status_code == with_api_key.status_code == 404
            assert anonymous.json()["error"]["code"] == "not_found"


def test_open_by_default(router: RunningRouter) -> None:
    resp = httpx2.get(router.url + "/metrics")
    assert resp.status_code == 200
    families = parse(resp.text)
    assert "modelrouter_model_state" in families


def test_spooled_records(
    primary: FakeUpstream, backup: FakeUpstream, up: FakeUpstream, tmp_path: Path
) -> None:
    """A store that does not answer: records go to the spool, and the metric says so."""
    store = {"url": f"postgresql://u@127.0.0.1:{refused_port()}/db", "spool_dir": str(tmp_path)}
    with run_router(config(primary, backup, up, store=store)) as r:
        mix = Mix(r.url, r.runtime.settings.models)
        try:
            for _ in range(3):
                mix.chat(KEY_PLAIN)
        finally:
            mix.close()

        def spooled() -> float:
            return scrape(r.url)["modelrouter_log_spooled_total"][()]

        wait_until(lambda: spooled() == 3, timeout=10, what="three spooled records")
        assert scrape(r.url)["modelrouter_log_queue_depth"] == {(): 0.0}
