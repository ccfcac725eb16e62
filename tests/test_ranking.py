"""rank(): tiers, notes and the three strategies, on a tracker driven by a fake clock."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from modelrouter.health import HealthTracker
from modelrouter.ranking import rank
from modelrouter.settings import HealthSettings
from providers.base import Failure
from tests.fakes.clock import FakeClock

NAMES = ["a", "b", "c", "d", "e"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tracker(clock: FakeClock) -> HealthTracker:
    settings = HealthSettings(
        failure_threshold=3, window_s=60, min_requests=10, open_s=30, slow_start_s=30
    )
    return HealthTracker(settings, NAMES, clock=clock, wall=lambda: 1_700_000_000.0)


def ranked(
    tracker: HealthTracker,
    names: list[str] = NAMES,
    *,
    strategy: str = "ordered",
    weights: dict[str, float] | None = None,
    seed: int = 1,
    probing: bool = True,
) -> tuple[list[str], dict[str, str]]:
    return rank(
        names,
        strategy=strategy,
        weights=weights or {},
        tracker=tracker,
        rng=random.Random(seed),
        probing=probing,
    )


def open_(tracker: HealthTracker, name: str) -> None:
    for _ in range(3):
        tracker.record_failure(name, Failure.CONNECT)


def degrade(tracker: HealthTracker, name: str) -> None:
    for ok in (True, True, False, True, False):
        if ok:
            tracker.record_success(name, 0.1)
        else:
            tracker.record_failure(name, Failure.SERVER)


def test_all_healthy_ordered_is_the_configured_list_itself(tracker: HealthTracker) -> None:
    order, notes = ranked(tracker)
    assert order is NAMES and notes == {}


def test_tiers_healthy_degraded_then_unavailable(tracker: HealthTracker) -> None:
    open_(tracker, "a")
    degrade(tracker, "c")
    tracker.record_failure("d", Failure.RATE_LIMIT, retry_after_s=5)
    order, notes = ranked(tracker)
    assert order == ["b", "e", "c", "a", "d"]
    assert set(notes) == {"a", "c", "d"}
    assert notes["a"].startswith("breaker open until 22:13:50 UTC")
    assert notes["c"] == "degraded: 40% errors over 60s"
    assert notes["d"] == "cooling down after 429 until 22:13:25 UTC"


def test_everything_down_still_returns_every_model(tracker: HealthTracker) -> None:
    for name in NAMES:
        open_(tracker, name)
    order, notes = ranked(tracker)
    assert order == NAMES and set(notes) == set(NAMES)


def test_recovered_models_return_to_their_place(tracker: HealthTracker, clock: FakeClock) -> None:
    tracker.record_failure("a", Failure.RATE_LIMIT, retry_after_s=5)
    assert ranked(tracker)[0][0] == "b"
    clock.advance(5)
    assert ranked(tracker) == (NAMES, {})


def test_half_open_free_trial_without_probes_stays_in_place(
    tracker: HealthTracker, clock: FakeClock
) -> None:
    open_(tracker, "a")
    clock.advance(30)
    assert ranked(tracker, probing=False) == (NAMES, {})


def test_half_open_is_left_to_the_probes(tracker: HealthTracker, clock: FakeClock) -> None:
    open_(tracker, "a")
    clock.advance(30)
    order, notes = ranked(tracker, probing=True)
    assert order == ["b", "c", "d", "e", "a"]
    assert notes == {"a": "half-open: awaiting a probe"}


def test_half_open_with_trial_in_flight_goes_last(tracker: HealthTracker, clock: FakeClock) -> None:
    open_(tracker, "a")
    clock.advance(30)
    tracker.on_attempt("a")
    order, notes = ranked(tracker, probing=False)
    assert order == ["b", "c", "d", "e", "a"]
    assert notes == {"a": "half-open: trial in flight"}


def test_slow_start_draw_follows_the_share(tracker: HealthTracker, clock: FakeClock) -> None:
    open_(tracker, "a")
    tracker.record_success("a", 0.1, probe=True)  # closes: share starts at 0.1
    degrade(tracker, "b")
    rng = random.Random(7)
    first = 0
    draws = 10_000
    for _ in range(draws):
        order, notes = rank(
            NAMES, strategy="ordered", weights={}, tracker=tracker, rng=rng, probing=True
        )
        if order[0] == "a":
            first += 1
            assert "a" not in notes
        else:
            # Lost the draw: after the healthy tier, before the degraded one.
            assert order == ["c", "d", "e", "a", "b"]
            assert notes["a"] == "slow start: 10% of traffic"
    assert first / draws == pytest.approx(0.1, abs=0.015)
    clock.advance(15)
    wins = sum(ranked(tracker, seed=s)[0][0] == "a" for s in range(2000))
    assert wins / 2000 == pytest.approx(0.55, abs=0.04)


def test_weighted_spreads_first_choice_by_weight(tracker: HealthTracker) -> None:
    names = ["a", "b", "c"]
    weights = {"a": 5.0, "b": 3.0, "c": 2.0}
    rng = random.Random(42)
    firsts: Counter[str] = Counter()
    seconds_after_a: Counter[str] = Counter()
    for _ in range(10_000):
        order, notes = rank(
            names, strategy="weighted", weights=weights, tracker=tracker, rng=rng, probing=True
        )
        assert sorted(order) == names and notes == {}
        firsts[order[0]] += 1
        if order[0] == "a":
            seconds_after_a[order[1]] += 1
    assert firsts["a"] / 10_000 == pytest.approx(0.5, abs=0.02)
    assert firsts["b"] / 10_000 == pytest.approx(0.3, abs=0.02)
    assert firsts["c"] / 10_000 == pytest.approx(0.2, abs=0.02)
    # Without replacement: once a is drawn, b beats c 3 to 2.
    assert seconds_after_a["b"] / firsts["a"] == pytest.approx(0.6, abs=0.03)


def test_weighted_keeps_unhealthy_models_at_the_end(tracker: HealthTracker) -> None:
    open_(tracker, "a")
    weights = {"a": 100.0, "b": 1.0, "c": 1.0}
    for seed in range(50):
        order, notes = ranked(
            tracker, ["a", "b", "c"], strategy="weighted", weights=weights, seed=seed
        )
        assert order[-1] == "a" and set(notes) == {"a"}


def test_missing_weight_counts_as_one(tracker: HealthTracker) -> None:
    wins = sum(
        ranked(tracker, ["a", "b"], strategy="weighted", weights={"a": 3.0}, seed=s)[0][0] == "a"
        for s in range(4000)
    )
    assert wins / 4000 == pytest.approx(0.75, abs=0.03)


def test_latency_two_choices_prefers_the_faster(tracker: HealthTracker) -> None:
    for name, latency in (("a", 1.0), ("b", 0.5), ("c", 0.1)):
        tracker.record_success(name, latency)
    names = ["a", "b", "c"]
    firsts = Counter(ranked(tracker, names, strategy="latency", seed=s)[0][0] for s in range(3000))
    # Pairs are equally likely: c wins both pairs it is in, b wins (a, b), a wins none.
    assert firsts["a"] == 0
    assert firsts["c"] / 3000 == pytest.approx(2 / 3, abs=0.03)
    assert firsts["b"] / 3000 == pytest.approx(1 / 3, abs=0.03)
    order, _ = ranked(tracker, names, strategy="latency", seed=3)
    assert order[1:] == [n for n in names if n != order[0]]  # the rest in configured order


def test_latency_without_data_counts_as_fast(tracker: HealthTracker) -> None:
    tracker.record_success("a", 0.2)
    for seed in range(20):
        assert ranked(tracker, ["a", "b"], strategy="latency", seed=seed)[0] == ["b", "a"]


def test_latency_strategy_ranks_only_the_healthy_tier(tracker: HealthTracker) -> None:
    tracker.record_success("a", 0.001)
    tracker.record_failure("a", Failure.RATE_LIMIT)
    tracker.record_success("b", 2.0)
    tracker.record_success("c", 1.0)
    for seed in range(20):
        order, notes = ranked(tracker, ["a", "b", "c"], strategy="latency", seed=seed)
        assert order == ["c", "b", "a"] and set(notes) == {"a"}


def test_unknown_strategy_is_an_error(tracker: HealthTracker) -> None:
    with pytest.raises(ValueError, match="unknown route strategy"):
        ranked(tracker, strategy="fastest")
