"""HealthTracker: breaker, cooldown, slow start and statistics, driven by a fake clock."""

from __future__ import annotations

import pytest

from modelrouter.health import (
    DEFAULT_COOLDOWN_S,
    SLOW_START_FLOOR,
    TRIAL_TIMEOUT_MIN_S,
    WINDOW_MAXLEN,
    Breaker,
    HealthTracker,
)
from modelrouter.settings import HealthSettings
from providers.base import Failure
from tests.fakes.clock import FakeClock

WALL0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, **overrides: float) -> HealthTracker:
    opts: dict[str, float] = {
        "failure_threshold": 3,
        "error_rate_threshold": 0.5,
        "window_s": 60,
        "min_requests": 10,
        "open_s": 30,
        "slow_start_s": 30,
    }
    opts.update(overrides)
    settings = HealthSettings.model_validate(opts)
    return HealthTracker(settings, ["a", "b"], clock=clock, wall=lambda: WALL0 + clock.t - 1000.0)


def fail(t: HealthTracker, n: int = 1, failure: Failure = Failure.SERVER) -> None:
    for _ in range(n):
        t.record_failure("a", failure, status=503)


def open_model(t: HealthTracker, clock: FakeClock) -> None:
    fail(t, 3)
    assert t.status("a").breaker is Breaker.OPEN


def test_consecutive_failures_open_the_breaker(clock: FakeClock) -> None:
    t = make(clock)
    fail(t, 2)
    assert t.status("a").breaker is Breaker.CLOSED
    fail(t)
    st = t.status("a")
    assert st.breaker is Breaker.OPEN
    assert st.reason == "breaker open until 22:13:50 UTC (3 consecutive failures)"
    assert t.status("b").breaker is Breaker.CLOSED


def test_success_resets_the_consecutive_count(clock: FakeClock) -> None:
    t = make(clock, min_requests=100)
    for _ in range(5):
        fail(t, 2)
        t.record_success("a", 0.1)
    assert t.status("a").breaker is Breaker.CLOSED
    assert t.snapshot("a")["consecutive_failures"] == 0


def test_error_rate_opens_only_once_min_requests_is_reached(clock: FakeClock) -> None:
    t = make(clock, failure_threshold=100)
    fail(t, 9)  # 100% errors, but only 9 calls in the window
    assert t.status("a").breaker is Breaker.CLOSED
    fail(t)
    st = t.status("a")
    assert st.breaker is Breaker.OPEN
    assert st.reason is not None and "100% errors over 60s" in st.reason


def test_error_share_opens_without_consecutive_failures(clock: FakeClock) -> None:
    t = make(clock)
    for _ in range(4):
        t.record_success("a", 0.1)
        fail(t)  # never two in a row: only the error share can open it
    t.record_success("a", 0.1)
    assert t.status("a").breaker is Breaker.CLOSED  # 4 of 9, under min_requests
    fail(t)
    assert t.status("a").breaker is Breaker.OPEN  # 5 of 10 = 50%


def test_error_share_below_threshold_keeps_it_closed(clock: FakeClock) -> None:
    t = make(clock)
    for ok in (1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0):
        t.record_success("a", 0.1) if ok else fail(t)
    assert t.status("a").breaker is Breaker.CLOSED  # 5 of 12 = 42%


@pytest.mark.parametrize(
    "failure", [Failure.CLIENT, Failure.CONTEXT_LENGTH, Failure.CONTENT_FILTER]
)
def test_failures_blaming_the_request_are_ignored(clock: FakeClock, failure: Failure) -> None:
    t = make(clock)
    fail(t, 20, failure)
    st = t.status("a")
    assert st.breaker is Breaker.CLOSED and not st.degraded and st.reason is None
    assert t.all_normal(["a", "b"])
    snap = t.snapshot("a")
    assert snap["totals"] == {"requests": 20, "failures": 20}
    assert snap["window"]["requests"] == 0 and snap["state"] == "healthy"


def test_auth_opens_at_once_as_misconfigured(clock: FakeClock) -> None:
    t = make(clock)
    t.record_failure("a", Failure.MISCONFIGURED, status=401)
    st = t.status("a")
    assert st.breaker is Breaker.OPEN
    assert st.reason == "misconfigured: upstream answered 401"


def test_open_turns_half_open_after_open_s(clock: FakeClock) -> None:
    t = make(clock)
    open_model(t, clock)
    clock.advance(29.9)
    assert t.status("a").breaker is Breaker.OPEN
    clock.advance(0.1)
    st = t.status("a")
    assert st.breaker is Breaker.HALF_OPEN and st.trial_free
    assert st.reason == "half-open: awaiting a trial"


def test_half_open_allows_one_trial_at_a_time(clock: FakeClock) -> None:
    t = make(clock)
    open_model(t, clock)
    clock.advance(30)
    t.on_attempt("a")
    st = t.status("a")
    assert st.breaker is Breaker.HALF_OPEN and not st.trial_free
    assert st.reason == "half-open: trial in flight"
    clock.advance(20)
    t.on_attempt("a")  # a second attempt neither gets a slot nor renews the first
    assert not t.status("a").trial_free
    clock.advance(10)
    assert t.status("a").trial_free  # the first trial's slot timed out (open_s)


def test_trial_success_closes_and_slow_start_ramps(clock: FakeClock) -> None:
    t = make(clock)
    open_model(t, clock)
    clock.advance(30)
    t.on_attempt("a")
    t.record_success("a", 0.2)
    st = t.status("a")
    assert st.breaker is Breaker.CLOSED
    assert st.share == pytest.approx(SLOW_START_FLOOR)
    assert st.reason == "slow start: 10% of traffic"
    clock.advance(15)
    assert t.status("a").share == pytest.approx(0.55)
    clock.advance(15)
    st = t.status("a")
    assert st.share == 1.0 and st.reason is None
    assert t.all_normal(["a"])


def test_slow_start_zero_gives_full_share_at_once(clock: FakeClock) -> None:
    t = make(clock, slow_start_s=0)
    open_model(t, clock)
    clock.advance(30)
    t.record_success("a", 0.2)
    st = t.status("a")
    assert st.breaker is Breaker.CLOSED and st.share == 1.0 and st.reason is None


def test_trial_failure_reopens_for_open_s(clock: FakeClock) -> None:
    t = make(clock)
    open_model(t, clock)
    clock.advance(30)
    t.on_attempt("a")
    fail(t)
    assert t.status("a").breaker is Breaker.OPEN
    assert t.snapshot("a")["opened_at"] == "2023-11-14T22:13:20.000Z"  # the outage's start
    clock.advance(29)
    assert t.status("a").breaker is Breaker.OPEN
    clock.advance(1)
    assert t.status("a").breaker is Breaker.HALF_OPEN


def test_recovery_forgets_the_outage_window(clock: FakeClock) -> None:
    t = make(clock, failure_threshold=100)
    fail(t, 10)
    clock.advance(30)
    t.record_success("a", 0.1)
    fail(t)  # would be 11 of 12 with the old window
    assert t.status("a").breaker is Breaker.CLOSED


def test_stuck_trial_frees_itself(clock: FakeClock) -> None:
    t = make(clock, open_s=30)
    open_model(t, clock)
    clock.advance(30)
    t.on_attempt("a")  # the caller is cancelled and never reports
    clock.advance(29.9)
    assert not t.status("a").trial_free
    clock.advance(0.1)
    assert t.status("a").trial_free


def test_stuck_trial_timeout_has_a_floor(clock: FakeClock) -> None:
    t = make(clock, open_s=0)
    fail(t, 3)
    assert t.status("a").breaker is Breaker.HALF_OPEN
    t.on_attempt("a")
    clock.advance(TRIAL_TIMEOUT_MIN_S - 0.1)
    assert not t.status("a").trial_free
    clock.advance(0.1)
    assert t.status("a").trial_free


def test_failure_while_open_extends_it(clock: FakeClock) -> None:
    t = make(clock)
    open_model(t, clock)
    clock.advance(20)
    fail(t)
    clock.advance(20)
    assert t.status("a").breaker is Breaker.OPEN


def test_success_while_open_closes(clock: FakeClock) -> None:
    t = make(clock)
    t.record_failure("a", Failure.MISCONFIGURED, status=403)
    t.record_success("a", 0.05, probe=True)
    st = t.status("a")
    assert st.breaker is Breaker.CLOSED and st.share == pytest.approx(SLOW_START_FLOOR)


def test_rate_limit_cools_down_until_retry_after(clock: FakeClock) -> None:
    t = make(clock)
    t.record_failure("a", Failure.RATE_LIMIT, retry_after_s=20, status=429)
    st = t.status("a")
    assert st.breaker is Breaker.CLOSED
    assert st.cooling_until == clock.t + 20
    assert st.reason == "cooling down after 429 until 22:13:40 UTC"
    assert t.snapshot("a")["state"] == "cooling_down"
    clock.advance(19.9)
    assert t.status("a").cooling_until is not None
    clock.advance(0.1)
    st = t.status("a")
    assert st.cooling_until is None and st.reason is None
    assert t.all_normal(["a"])


def test_rate_limit_without_retry_after_uses_the_default(clock: FakeClock) -> None:
    t = make(clock)
    t.record_failure("a", Failure.RATE_LIMIT, status=429)
    assert t.status("a").cooling_until == clock.t + DEFAULT_COOLDOWN_S
    clock.advance(DEFAULT_COOLDOWN_S)
    assert t.status("a").cooling_until is None


def test_a_shorter_retry_after_does_not_cut_a_cooldown(clock: FakeClock) -> None:
    t = make(clock)
    t.record_failure("a", Failure.RATE_LIMIT, retry_after_s=30)
    t.record_failure("a", Failure.RATE_LIMIT, retry_after_s=1)
    assert t.status("a").cooling_until == clock.t + 30


def test_rate_limits_never_open_the_breaker(clock: FakeClock) -> None:
    t = make(clock)
    fail(t, 2)
    for _ in range(20):
        t.record_failure("a", Failure.RATE_LIMIT, retry_after_s=1)
    assert t.status("a").breaker is Breaker.CLOSED
    assert t.snapshot("a")["consecutive_failures"] == 2


def test_degraded_before_open_and_window_expiry(clock: FakeClock) -> None:
    t = make(clock)
    for ok in (True, True, False, True, False):
        t.record_success("a", 0.1) if ok else fail(t)
    st = t.status("a")
    assert st.breaker is Breaker.CLOSED and st.degraded
    assert st.reason == "degraded: 40% errors over 60s"
    assert t.snapshot("a")["state"] == "degraded"
    assert not t.all_normal(["a"])
    clock.advance(60)
    st = t.status("a")
    assert not st.degraded and st.reason is None
    assert t.snapshot("a")["window"] == {"requests": 0, "failures": 0, "error_rate": 0.0}
    assert t.all_normal(["a", "b"])


def test_too_few_calls_are_not_degraded(clock: FakeClock) -> None:
    t = make(clock)
    t.record_success("a", 0.1)
    t.record_success("a", 0.1)
    fail(t)
    assert not t.status("a").degraded
    assert not t.all_normal(["a"])  # a failure is in the window: keep looking


def test_window_length_is_bounded(clock: FakeClock) -> None:
    t = make(clock)
    for _ in range(WINDOW_MAXLEN + 500):
        t.record_success("a", 0.1)
    assert t.snapshot("a")["window"]["requests"] == WINDOW_MAXLEN


def test_snapshot_drops_samples_older_than_the_window(clock: FakeClock) -> None:
    t = make(clock)
    t.record_success("a", 0.5)
    clock.advance(60)
    snap = t.snapshot("a")
    assert snap["window"]["requests"] == 0 and snap["latency_ms"]["p50"] is None
    assert snap["latency_ms"]["ewma"] == 500.0  # the EWMA is not windowed


def test_snapshot_of_a_fresh_model_is_unknown(clock: FakeClock) -> None:
    snap = make(clock).snapshot("b")
    assert snap["state"] == "unknown" and snap["breaker"] == "closed"
    assert snap["latency_ms"] == {"ewma": None, "p50": None, "p95": None}
    assert snap["last_probe"] is None and snap["last_error"] is None


def test_snapshot_statistics(clock: FakeClock) -> None:
    t = make(clock)
    for i in range(1, 21):
        t.record_success("a", i / 100, ttft_s=i / 1000)
    t.record_success("a", 9.0, probe=True)  # probe latency stays out of the stats
    snap = t.snapshot("a")
    assert snap["state"] == "healthy"
    assert snap["latency_ms"]["p50"] == 100.0
    assert snap["latency_ms"]["p95"] == 190.0
    assert snap["ttft_ms"]["p95"] == 19.0
    assert 100.0 < snap["latency_ms"]["ewma"] < 200.0
    # A probe success on a closed breaker is not a sample: it proves reachability only.
    assert snap["window"] == {"requests": 20, "failures": 0, "error_rate": 0.0}
    assert snap["totals"] == {"requests": 20, "failures": 0}
    assert snap["last_probe"] == {"ok": True, "at": "2023-11-14T22:13:20.000Z", "error": None}


def test_snapshot_of_an_open_model(clock: FakeClock) -> None:
    t = make(clock)
    t.record_failure("a", Failure.TIMEOUT, probe=True, error="probe timed out after 5s")
    clock.advance(1)
    fail(t, 2)
    snap = t.snapshot("a")
    assert snap["state"] == "open" and snap["breaker"] == "open"
    assert snap["opened_at"] == "2023-11-14T22:13:21.000Z"
    assert snap["open_until"] == "2023-11-14T22:13:51.000Z"
    assert snap["consecutive_failures"] == 3
    assert snap["window"] == {"requests": 3, "failures": 3, "error_rate": 1.0}
    assert snap["last_probe"]["error"] == "probe timed out after 5s"
    assert snap["last_error"]["failure"] == "server" and snap["last_error"]["status"] == 503
    assert snap["totals"] == {"requests": 2, "failures": 2}
    clock.advance(30)
    assert t.snapshot("a")["state"] == "half_open"


def test_unknown_model_is_tracked_on_first_use(clock: FakeClock) -> None:
    t = make(clock)
    t.record_failure("zed", Failure.CONNECT)
    assert "zed" in t.models and t.status("zed").breaker is Breaker.CLOSED


def test_probe_success_does_not_excuse_failing_real_calls(clock: FakeClock) -> None:
    t = make(clock)
    t.record_failure("a", Failure.SERVER, status=503)
    t.record_failure("a", Failure.SERVER, status=503)
    t.record_success("a", 0.01, probe=True)  # e.g. GET /models still answers
    t.record_failure("a", Failure.SERVER, status=503)
    assert t.status("a").breaker is Breaker.OPEN
