"""ClusterTracker without Redis: what it queues for the others, what it takes from them.

Two trackers on clocks that disagree (as two machines' monotonic clocks do) share one
"Redis time"; events go from one's outbox to the other's ``adopt`` by hand.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelrouter.cluster.tracker import ClusterTracker, Outbox
from modelrouter.health import DEFAULT_COOLDOWN_S, SLOW_START_FLOOR, Breaker
from modelrouter.settings import HealthSettings
from providers.base import Failure
from tests.fakes.clock import FakeClock

REDIS0 = 1_800_000_000.0
"""Redis's clock when both fake clocks read their start value."""


class Pair:
    """Replica A and B; their own clocks start far apart, Redis time is common."""

    def __init__(self, **health: float) -> None:
        opts: dict[str, Any] = {"failure_threshold": 3, "open_s": 30, "slow_start_s": 30}
        opts.update(health)
        settings = HealthSettings.model_validate(opts)
        self.ca, self.cb = FakeClock(1000.0), FakeClock(55_555.0)
        self.a = self._make(settings, self.ca, "a")
        self.b = self._make(settings, self.cb, "b")

    def _make(self, settings: HealthSettings, clock: FakeClock, name: str) -> ClusterTracker:
        t0 = clock.t
        tracker = ClusterTracker(settings, ["m", "n"], clock=clock)
        tracker.attach(lambda: REDIS0 + (clock.t - t0), f"tok-{name}", f"replica-{name}")
        return tracker

    def advance(self, seconds: float) -> None:
        self.ca.advance(seconds)
        self.cb.advance(seconds)

    def deliver(self, src: ClusterTracker, dst: ClusterTracker) -> list[dict[str, Any]]:
        """Every event ``src`` queued, adopted by ``dst`` (and by ``src`` itself, as the
        pub/sub echo would be); returns the messages."""
        _, events = src.outbox.take()
        msgs = [orjson.loads(e.message) for e in events]
        for msg in msgs:
            assert not src.adopt(msg), "an echo of one's own event changes nothing"
            dst.adopt(msg)
        return msgs


def fail(t: ClusterTracker, model: str = "m", n: int = 1, **kw: Any) -> None:
    for _ in range(n):
        t.record_failure(model, kw.pop("failure", Failure.SERVER), **kw)


def test_an_opened_breaker_is_an_event_with_shared_times() -> None:
    p = Pair()
    fail(p.a, n=3)
    counts, events = p.a.outbox.take()
    assert counts == {"m": [0, 3, 3]}
    (event,) = events
    msg = orjson.loads(event.message)
    assert msg["k"] == "open" and msg["m"] == "m" and msg["by"] == "replica-a"
    assert msg["at"] == int(REDIS0 * 1000)
    assert msg["until"] == int((REDIS0 + 30) * 1000)
    assert "3 consecutive failures" in msg["cause"]
    assert event.expire_at > msg["until"]  # a late joiner still finds it after the end


def test_the_other_replica_opens_until_the_same_instant() -> None:
    p = Pair()
    p.advance(5)
    fail(p.a, n=3)
    p.deliver(p.a, p.b)
    st = p.b.status("m")
    assert st.breaker is Breaker.OPEN
    assert "on replica-a" in (st.reason or "")
    # On B's own clock: 30 s from now, whatever B's clock reads.
    assert st.open_until == pytest.approx(p.cb.t + 30)
    p.advance(29.9)
    assert p.b.status("m").breaker is Breaker.OPEN
    p.advance(0.2)
    assert p.b.status("m").breaker is Breaker.HALF_OPEN
    assert p.a.status("m").breaker is Breaker.HALF_OPEN


def test_recovery_ramps_from_the_shared_instant_on_both() -> None:
    p = Pair()
    fail(p.a, n=3)
    p.deliver(p.a, p.b)
    p.advance(31)
    p.a.record_success("m", 0.1, probe=True)  # A's probe finds it back
    p.deliver(p.a, p.b)
    assert p.b.status("m").breaker is Breaker.CLOSED
    assert p.b.status("m").share == pytest.approx(SLOW_START_FLOOR)
    p.advance(10)
    expected = SLOW_START_FLOOR + (1 - SLOW_START_FLOOR) * 10 / 30
    assert p.a.status("m").share == pytest.approx(expected)
    assert p.b.status("m").share == pytest.approx(expected)


def test_a_cooldown_and_a_misconfiguration_travel() -> None:
    p = Pair()
    p.a.record_failure("m", Failure.RATE_LIMIT, retry_after_s=20, status=429)
    p.a.record_failure("n", Failure.MISCONFIGURED, status=401, error="bad key")
    # A 429 says nothing about the model's health: not counted.
    assert p.a.outbox.counts == {"n": [0, 1, 1]}
    msgs = p.deliver(p.a, p.b)
    assert {m["k"] for m in msgs} == {"cool", "open"}
    assert p.b.status("m").cooling_until == pytest.approx(p.cb.t + 20)
    st = p.b.status("n")
    assert st.breaker is Breaker.OPEN
    assert (st.reason or "").startswith("misconfigured: upstream answered 401")


def test_a_default_cooldown_is_shared_too() -> None:
    p = Pair()
    p.a.record_failure("m", Failure.RATE_LIMIT, status=429)
    p.deliver(p.a, p.b)
    assert p.b.status("m").cooling_until == pytest.approx(p.cb.t + DEFAULT_COOLDOWN_S)


def test_older_and_unknown_events_change_nothing() -> None:
    p = Pair()
    fail(p.a, n=3)
    (old,) = [orjson.loads(e.message) for e in p.a.outbox.take()[1]]
    p.advance(40)
    p.b.record_success("m", 0.1)
    fail(p.b, n=3)
    p.b.outbox.take()
    until_b = p.b.status("m").open_until
    assert not p.b.adopt({**old, "tok": "someone"})
    assert p.b.status("m").open_until == until_b
    assert not p.b.adopt({**old, "m": "not-a-model-here", "at": old["at"] + 10**9})
    assert not p.b.adopt({"m": "m", "k": "mystery", "at": 1})


def test_a_newer_open_replaces_an_older_close() -> None:
    p = Pair()
    fail(p.a, n=3)
    p.deliver(p.a, p.b)
    p.advance(31)
    p.b.record_success("m", 0.1)  # B's own trial closes it
    close = [orjson.loads(e.message) for e in p.b.outbox.take()[1]]
    p.advance(1)
    fail(p.a, n=1)  # A: half-open trial fails: reopens
    reopen = [orjson.loads(e.message) for e in p.a.outbox.take()[1]]
    # B learns of the reopen, then the (older) close arrives late at A: ignored.
    p.b.adopt(reopen[0])
    assert p.b.status("m").breaker is Breaker.OPEN
    assert not p.a.adopt(close[0])
    assert p.a.status("m").breaker is Breaker.OPEN


def test_probe_results_are_shared_and_set_the_next_due_time() -> None:
    p = Pair(interval_s=10)
    assert p.b.probe_due_in("m") == 0.0
    p.a.record_failure("m", Failure.CONNECT, probe=True, error="refused")
    p.deliver(p.a, p.b)
    snap = p.b.snapshot("m")
    assert snap["last_probe"]["ok"] is False and snap["last_probe"]["error"] == "refused"
    p.advance(4)
    assert p.b.probe_due_in("m") == pytest.approx(6)
    # A probe failure counts like a call failure; a probe success on a closed breaker
    # proves less (a list call) and is not counted, as in the per-process tracker.
    p.a.record_success("m", 0.01, probe=True)
    counts, _ = p.a.outbox.take()
    assert counts == {}


def test_a_late_joiner_applies_the_state_hash() -> None:
    p = Pair()
    fail(p.a, n=3)
    _, events = p.a.outbox.take()
    (event,) = events
    fields = dict(zip(event.fields[::2], event.fields[1::2], strict=True))
    p.b.adopt_snapshot("m", fields)
    assert p.b.status("m").breaker is Breaker.OPEN
    assert p.b.status("m").open_until == pytest.approx(p.cb.t + 30)


def test_republish_keeps_each_event_time() -> None:
    p = Pair()
    fail(p.a, n=3)
    first = orjson.loads(p.a.outbox.take()[1][0].message)
    p.advance(3)
    p.a.record_failure("n", Failure.RATE_LIMIT, retry_after_s=60, status=429)
    p.a.outbox.take()
    p.a.republish()
    msgs = {m["k"]: m for m in (orjson.loads(e.message) for e in p.a.outbox.take()[1])}
    assert msgs["open"]["at"] == first["at"] and msgs["open"]["until"] == first["until"]
    assert msgs["cool"]["until"] == int((REDIS0 + 63) * 1000)


def test_outbox_keeps_failures_since_the_last_success() -> None:
    box = Outbox()
    for ok in (False, False, True, False, False):
        box.outcome("m", ok)
    assert box.take() == ({"m": [1, 4, 2]}, [])
    assert box.take() == ({}, [])


def test_a_call_in_flight_when_the_breaker_opened_does_not_close_it() -> None:
    p = Pair()
    p.advance(1)
    fail(p.a, n=3)
    p.deliver(p.a, p.b)
    p.advance(0.5)
    # B's call began 2 s ago, before B learned of the open: old news.
    p.b.record_success("m", 2.0)
    assert p.b.status("m").breaker is Breaker.OPEN
    counts, events = p.b.outbox.take()
    assert counts == {"m": [1, 0, 0]} and events == []
    assert p.b.snapshot("m")["totals"]["requests"] == 1
    p.a.record_success("m", 3.0, probe=True)  # a probe sent before the open, too
    assert p.a.status("m").breaker is Breaker.OPEN
    # A call that began after the open is evidence: it closes, here and everywhere.
    p.advance(0.5)
    p.b.record_success("m", 0.2)
    assert p.b.status("m").breaker is Breaker.CLOSED
    p.deliver(p.b, p.a)
    assert p.a.status("m").breaker is Breaker.CLOSED
