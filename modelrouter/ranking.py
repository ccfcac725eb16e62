"""Order a route's models for one request from their health.

Pure apart from the injected random generator: ranking reads the tracker and never
writes to it. Every configured model comes back exactly once, in tiers:

1. healthy (the route's strategy orders this tier), including half-open models whose
   trial slot is free when there are no probes (a user request must be the trial)
   and slow-starting models that won their draw;
2. slow-starting models that lost their draw (probability ``1 - share``);
3. degraded models (high error share, breaker still closed);
4. unavailable models: open, half-open with the trial taken (or left to the probes),
   cooling down after a 429. They stay on the list so that a route never fails
   without having tried everything.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from modelrouter.health import Breaker, HealthTracker

STRATEGIES = ("ordered", "weighted", "latency")
"""Values of ``[routes.NAME] strategy``."""


def rank(
    names: Sequence[str],
    *,
    strategy: str,
    weights: Mapping[str, float],
    tracker: HealthTracker,
    rng: random.Random,
    probing: bool,
) -> tuple[list[str], dict[str, str]]:
    """Return ``names`` in the order to try them, and a note per demoted model.

    ``weights`` maps names to positive weights (missing names weigh 1.0); ``probing``
    says whether a probe loop is running. When every model is healthy and the
    strategy is ``"ordered"``, the returned list may be ``names`` itself: callers
    must not mutate it.
    """
    if tracker.all_normal(names):
        if strategy == "ordered" or len(names) < 2:
            return (names if isinstance(names, list) else list(names)), {}
        return order_healthy(list(names), strategy, weights, tracker, rng), {}
    healthy: list[str] = []
    slow: list[str] = []
    degraded: list[str] = []
    down: list[str] = []
    notes: dict[str, str] = {}
    for name in names:
        st = tracker.status(name)
        if st.reason is None:
            healthy.append(name)
        elif st.breaker is Breaker.OPEN or st.cooling_until is not None:
            down.append(name)
            notes[name] = st.reason
        elif st.breaker is Breaker.HALF_OPEN:
            if st.trial_free and not probing:
                healthy.append(name)
            else:
                down.append(name)
                notes[name] = "half-open: awaiting a probe" if st.trial_free else st.reason
        elif st.degraded:
            degraded.append(name)
            notes[name] = st.reason
        elif rng.random() < st.share:
            healthy.append(name)
        else:
            slow.append(name)
            notes[name] = st.reason
    if len(healthy) > 1 and strategy != "ordered":
        healthy = order_healthy(healthy, strategy, weights, tracker, rng)
    healthy += slow
    healthy += degraded
    healthy += down
    return healthy, notes


def order_healthy(
    names: list[str],
    strategy: str,
    weights: Mapping[str, float],
    tracker: HealthTracker,
    rng: random.Random,
) -> list[str]:
    """Apply a route strategy to the healthy tier (``names`` may be reordered in place)."""
    if strategy == "weighted":
        return weighted_order(names, weights, rng)
    if strategy == "latency":
        return two_choices(names, tracker, rng)
    if strategy == "ordered":
        return names
    raise ValueError(f"unknown route strategy {strategy!r}; expected one of {STRATEGIES}")


def weighted_order(names: list[str], weights: Mapping[str, float], rng: random.Random) -> list[str]:
    """A random order where each next pick is drawn by weight among those left.

    Efraimidis-Spirakis keys (``u ** (1/w)``, largest first) give exactly the
    distribution of successive weighted draws without replacement, in one pass.
    """
    names.sort(key=lambda n: rng.random() ** (1.0 / weights.get(n, 1.0)), reverse=True)
    return names


def two_choices(names: list[str], tracker: HealthTracker, rng: random.Random) -> list[str]:
    """Power of two choices: of two random models the faster goes first.

    The rest keep their configured order. A model without latency data counts as
    fast, so new and recovered models get tried and measured.
    """
    n = len(names)
    if n < 2:
        return names
    i = rng.randrange(n)
    j = rng.randrange(n - 1)
    if j >= i:
        j += 1
    if i > j:
        i, j = j, i  # ties go to the earlier configured model
    latency_i = tracker.ewma_latency(names[i]) or 0.0
    latency_j = tracker.ewma_latency(names[j]) or 0.0
    first = j if latency_j < latency_i else i
    if first:
        names.insert(0, names.pop(first))
    return names
