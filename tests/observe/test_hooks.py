"""The metrics' hooks: breaker moves (injected clock), probes, limits; and the labels of
records that name things the config does not have."""

from __future__ import annotations

import asyncio
import random

import pytest

from modelrouter.errors import Attempt
from modelrouter.health import HealthTracker
from modelrouter.observe.exposition import Exposition
from modelrouter.observe.metrics import Metrics
from modelrouter.probes import ProbeLoop
from modelrouter.settings import HealthSettings, Settings
from modelrouter.store.record import CallRecord
from providers.base import Failure, ProviderError
from tests.fakes.clock import FakeClock
from tests.observe.scrape import Samples, label_values, labels, parse

SETTINGS = Settings.model_validate(
    {
        "providers": {"pa": {"kind": "simulated"}, "pb": {"kind": "simulated"}},
        "models": {"a": {"provider": "pa"}, "b": {"provider": "pb"}},
        "routes": {"default": {"models": ["a", "b"]}},
    }
)


def tracker(clock: FakeClock) -> HealthTracker:
    health = HealthSettings.model_validate(
        {"failure_threshold": 2, "open_s": 30, "slow_start_s": 0}
    )
    return HealthTracker(health, ["a", "b"], clock=clock)


def scrape(metrics: Metrics, t: HealthTracker) -> Samples:
    body, content_type = Exposition(metrics, t).render(None)
    assert content_type.startswith("text/plain; version=0.0.4")
    return parse(body.decode())


def test_breaker_moves_and_model_state() -> None:
    clock = FakeClock()
    t = tracker(clock)
    m = Metrics(SETTINGS)
    t.on_transition = m.transition

    def state() -> dict[str, str]:
        gauge = scrape(m, t)["modelrouter_model_state"]
        ones = {dict(k)["model"]: dict(k)["state"] for k, v in gauge.items() if v == 1.0}
        assert len(gauge) == 12 and len(ones) == 2
        return ones

    assert state() == {"a": "unknown", "b": "unknown"}
    t.record_success("b", 0.1)
    for _ in range(3):  # the third failure finds it open already: no new move
        t.record_failure("a", Failure.SERVER, status=500)
    assert state() == {"a": "open", "b": "healthy"}
    clock.advance(31)
    assert state()["a"] == "half_open"  # seen lazily, by the scrape's look at the tracker
    t.on_attempt("a")
    t.record_failure("a", Failure.SERVER, status=500)  # the trial fails: open again
    clock.advance(31)
    t.on_attempt("a")
    t.record_success("a", 0.1)
    assert state()["a"] == "healthy"
    moves = scrape(m, t)["modelrouter_breaker_transitions_total"]
    assert moves == {
        labels(model="a", to="open"): 2.0,
        labels(model="a", to="half_open"): 2.0,
        labels(model="a", to="closed"): 1.0,
    }


class Target:
    def __init__(self) -> None:
        self.error: BaseException | None = None

    async def __call__(self) -> None:
        if isinstance(self.error, TimeoutError):
            await asyncio.sleep(10)
        if self.error is not None:
            raise self.error


async def test_probes_by_outcome() -> None:
    t = tracker(FakeClock())
    m = Metrics(SETTINGS)
    target = Target()
    loop = ProbeLoop(
        t, {"a": target}, interval_s=60, timeout_s=0.05, rng=random.Random(0), on_probe=m.probe
    )
    assert await loop.probe_now("a")
    target.error = ProviderError(Failure.CONNECT, "refused")
    assert not await loop.probe_now("a")
    assert not await loop.probe_now("a")
    target.error = TimeoutError()
    assert not await loop.probe_now("a")
    target.error = RuntimeError("a bug in a probe")
    assert not await loop.probe_now("a")
    assert scrape(m, t)["modelrouter_probes_total"] == {
        labels(model="a", outcome="ok"): 1.0,
        labels(model="a", outcome="connect"): 2.0,
        labels(model="a", outcome="timeout"): 1.0,
        labels(model="a", outcome="error"): 1.0,
    }


def test_limited() -> None:
    m = Metrics(SETTINGS)
    m.limited("key", "rpm")
    m.limited("key", "rpm")
    m.limited("team", "budget")
    m.limited("key", "tpm")
    m.limited("someone's-scope", "made-up reason")
    assert scrape(m, tracker(FakeClock()))["modelrouter_limited_total"] == {
        labels(scope="key", reason="rpm"): 2.0,
        labels(scope="team", reason="budget"): 1.0,
        labels(scope="key", reason="tpm"): 1.0,
        labels(scope="other", reason="other"): 1.0,
    }


def record(**fields: object) -> CallRecord:
    base: dict[str, object] = dict(
        id="r",
        request_id="r",
        ts=0.0,
        surface="http",
        endpoint="/v1/chat/completions",
        route="default",
        requested_model="default",
        model="a",
        provider="pa",
        status=200,
        error_code=None,
        stream=False,
        latency_ms=12.0,
        ttft_ms=None,
        input_tokens=3,
        output_tokens=5,
        cached_tokens=None,
        cost_usd=None,
        price_unknown=True,
        usage_estimated=False,
        fallbacks=0,
        attempts=[Attempt("a", "pa", 200, None, 10.0, "ok")],
        user="a-user",
        tags=("tag",),
    )
    base.update(fields)
    return CallRecord(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("route", "label"), [("default", "default"), ("b", "b"), ("a,b", "adhoc"), (None, "")]
)
def test_route_labels(route: str | None, label: str) -> None:
    m = Metrics(SETTINGS)
    m.record(record(route=route))
    samples = scrape(m, tracker(FakeClock()))
    key = labels(surface="http", route=label, model="a", provider="pa", code="200")
    assert samples["modelrouter_requests_total"] == {key: 1.0}


def test_unexpected_values_become_other() -> None:
    """Values the router never produces still cannot add label values."""
    m = Metrics(SETTINGS)
    weird = Attempt("ghost", "nowhere", 500, None, 1.0, "invented")
    m.record(record(surface="carrier-pigeon", model="ghost", provider="nowhere", attempts=[weird]))
    samples = scrape(m, tracker(FakeClock()))
    assert not {"carrier-pigeon", "ghost", "nowhere", "invented", "a-user", "tag"} & (
        label_values(samples)
    )
    assert samples["modelrouter_attempts_total"] == {
        labels(model="other", provider="other", outcome="other"): 1.0
    }


def test_retries_of_one_model_are_not_fallbacks() -> None:
    m = Metrics(SETTINGS)
    trail = [
        Attempt("b", "pb", None, "skipped: too small", 0.0, "skipped"),
        Attempt("a", "pa", 500, "x", 1.0, "server"),
        Attempt("a", "pa", 500, "x", 1.0, "server"),
        Attempt("b", "pb", 200, None, 1.0, "ok"),
    ]
    m.record(record(model="b", provider="pb", attempts=trail, fallbacks=2))
    samples = scrape(m, tracker(FakeClock()))
    assert samples["modelrouter_fallbacks_total"] == {
        labels(route="default", from_model="a", to_model="b"): 1.0
    }
    assert samples["modelrouter_attempts_total"] == {
        labels(model="a", provider="pa", outcome="server"): 2.0,
        labels(model="b", provider="pb", outcome="ok"): 1.0,
    }


def test_a_broken_record_never_fails_the_request() -> None:
    m = Metrics(SETTINGS)
    m.record(record(latency_ms="not a number"))  # raises inside; swallowed and logged
    m.record(record())
    samples = scrape(m, tracker(FakeClock()))
    # Only the good record reached the histogram; the next request was counted whole.
    assert samples["modelrouter_request_duration_seconds_count"] == {
        labels(route="default", model="a"): 1.0
    }
