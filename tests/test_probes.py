"""ProbeLoop: probe outcomes feed the tracker; the loop runs and stops cleanly."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from modelrouter.health import Breaker, HealthTracker
from modelrouter.probes import ProbeLoop
from modelrouter.settings import HealthSettings
from providers.base import Failure, ProviderError
from tests.fakes.clock import FakeClock


class Target:
    """A scriptable probe target: raises ``error`` if set, else succeeds."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.hang = False
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.hang:
            await asyncio.sleep(3600)
        if self.error is not None:
            raise self.error


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tracker(clock: FakeClock) -> HealthTracker:
    settings = HealthSettings(failure_threshold=3, open_s=30, slow_start_s=30)
    return HealthTracker(settings, ["a"], clock=clock)


def loop_for(tracker: HealthTracker, target: Target, **kw: float) -> ProbeLoop:
    opts = {"interval_s": 10.0, "timeout_s": 1.0} | kw
    return ProbeLoop(tracker, {"a": target}, rng=random.Random(0), **opts)


async def test_failing_probes_open_and_a_success_closes(tracker: HealthTracker) -> None:
    target = Target()
    target.error = ProviderError(Failure.CONNECT, "connection refused", status=None)
    probes = loop_for(tracker, target)
    for _ in range(2):
        assert await probes.probe_now("a") is False
    assert tracker.status("a").breaker is Breaker.CLOSED
    await probes.probe_now("a")
    assert tracker.status("a").breaker is Breaker.OPEN
    snap = tracker.snapshot("a")
    assert snap["last_probe"]["ok"] is False
    assert snap["last_probe"]["error"] == "connection refused"
    assert snap["totals"] == {"requests": 0, "failures": 0}  # probes are not requests

    target.error = None
    assert await probes.probe_now("a") is True  # before open_s: the probe is the trial
    st = tracker.status("a")
    assert st.breaker is Breaker.CLOSED and st.share < 1.0
    assert tracker.snapshot("a")["last_probe"]["ok"] is True


async def test_probe_takes_the_half_open_trial(tracker: HealthTracker, clock: FakeClock) -> None:
    target = Target()
    target.error = ProviderError(Failure.SERVER, "503", status=503)
    probes = loop_for(tracker, target)
    for _ in range(3):
        await probes.probe_now("a")
    clock.advance(30)
    assert tracker.status("a").breaker is Breaker.HALF_OPEN
    await probes.probe_now("a")  # the trial failed: open again for open_s
    assert tracker.status("a").breaker is Breaker.OPEN


async def test_probe_timeout_records_timeout(tracker: HealthTracker) -> None:
    target = Target()
    target.hang = True
    probes = loop_for(tracker, target, timeout_s=0.01)
    assert await probes.probe_now("a") is False
    snap = tracker.snapshot("a")
    assert snap["last_error"]["failure"] == Failure.TIMEOUT.value
    assert snap["last_probe"]["error"] == "probe timed out after 0.01s"


async def test_a_bug_in_the_probe_is_logged_and_leaves_health_alone(
    tracker: HealthTracker, caplog: pytest.LogCaptureFixture
) -> None:
    target = Target()
    target.error = RuntimeError("GET https://x/?key=sk-secret failed")
    probes = ProbeLoop(
        tracker,
        {"a": target},
        interval_s=1.0,
        timeout_s=1.0,
        rng=random.Random(0),
        redact=lambda text: text.replace("sk-secret", "[REDACTED]"),
    )
    for _ in range(5):
        assert await probes.probe_now("a") is False
    snap = tracker.snapshot("a")
    assert snap["last_error"] is None and snap["breaker"] == "closed"
    assert snap["window"]["failures"] == 0
    assert "RuntimeError" in caplog.text and "Traceback" in caplog.text
    assert "sk-secret" not in caplog.text and "[REDACTED]" in caplog.text


async def test_rate_limited_probe_cools_the_model(tracker: HealthTracker, clock: FakeClock) -> None:
    target = Target()
    target.error = ProviderError(Failure.RATE_LIMIT, "slow down", status=429, retry_after=12)
    await loop_for(tracker, target).probe_now("a")
    st = tracker.status("a")
    assert st.breaker is Breaker.CLOSED and st.cooling_until == clock.t + 12


async def wait_for(predicate: Callable[[], bool], limit_s: float = 2.0) -> None:
    step = 0.005
    for _ in range(int(limit_s / step)):
        if predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"condition not met within {limit_s}s")


async def test_loop_feeds_the_tracker_until_stopped(tracker: HealthTracker) -> None:
    target = Target()
    target.error = ProviderError(Failure.SERVER, "bad gateway", status=502)
    probes = loop_for(tracker, target, interval_s=0.01)
    await probes.start()
    await probes.start()  # idempotent: still one task per model
    try:
        assert probes.running
        await wait_for(lambda: tracker.status("a").breaker is Breaker.OPEN)
        target.error = None
        await wait_for(lambda: tracker.status("a").breaker is Breaker.CLOSED)
    finally:
        await probes.stop()
    assert not probes.running
    calls = target.calls
    await asyncio.sleep(0.05)
    assert target.calls == calls  # nothing probes after stop()


async def test_stop_interrupts_a_hanging_probe(tracker: HealthTracker) -> None:
    target = Target()
    target.hang = True
    probes = loop_for(tracker, target, interval_s=0.001, timeout_s=3600)
    await probes.start()
    await wait_for(lambda: target.calls > 0)
    async with asyncio.timeout(1):
        await probes.stop()
    assert all(t.done() for t in asyncio.all_tasks() if t.get_name().startswith("probe:"))


async def test_first_probe_waits_for_its_jitter(tracker: HealthTracker) -> None:
    target = Target()
    probes = ProbeLoop(tracker, {"a": target}, interval_s=3600, timeout_s=1, rng=random.Random(0))
    await probes.start()
    await asyncio.sleep(0.02)
    await probes.stop()
    assert target.calls == 0  # random.Random(0) draws a start delay of ~3000 s
