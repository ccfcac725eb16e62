"""Health of every model: breaker, 429 cooldown, slow start and call statistics.

Every outcome (real calls and probes) goes through one :class:`HealthTracker`, which
owns each model's state machine::

    CLOSED --(failure_threshold consecutive failures, error share, or AUTH)--> OPEN
    OPEN --(open_s elapsed; checked lazily against the clock)--> HALF_OPEN
    HALF_OPEN --(trial succeeds)--> CLOSED (+ slow start)   --(trial fails)--> OPEN

Ranking only reads it. Everything runs on one event loop, so there are no locks; the
clock is injected so tests drive time by hand. ``record_*`` and :meth:`status` are on
the request hot path: they are O(1) amortized, and percentiles are only computed when
:meth:`snapshot` asks for them.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelrouter.policy import Health, rule
from modelrouter.settings import HealthSettings
from modelrouter.stats import ewma, ms_stats
from providers.base import Failure

DEFAULT_COOLDOWN_S = 10.0
"""Cooldown after a 429 without Retry-After: long enough to skip the next burst of
requests, short enough not to lose a model to a momentary quota blip."""
WINDOW_MAXLEN = 1024
"""Most outcomes kept per model, whatever window_s is: caps memory under heavy load."""
SLOW_START_FLOOR = 0.1
"""Traffic share of a model the moment it recovers; it grows linearly to 1.0."""
TRIAL_TIMEOUT_MIN_S = 5.0
"""A half-open trial whose result never came frees its slot after max(open_s, this)."""
DEGRADED_MIN_REQUESTS = 5
"""Degraded needs at least min(min_requests, this) outcomes in the window ..."""
DEGRADED_RATE_FACTOR = 0.5
"""... and an error share of at least this fraction of error_rate_threshold."""

_Sample = tuple[float, bool, float | None, float | None]  # (t, ok, latency_s, ttft_s)

STATES = ("healthy", "degraded", "cooling_down", "open", "half_open", "unknown")
"""Every value of a model's one-word state (``/health``, ``modelrouter_model_state``)."""


class Breaker(enum.StrEnum):
    """A model's circuit breaker position."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """What ranking needs to know about one model right now."""

    breaker: Breaker = Breaker.CLOSED
    share: float = 1.0
    """Slow start: the fraction of its route's traffic the model should get (0..1)."""
    degraded: bool = False
    cooling_until: float | None = None
    """Clock time a 429 cooldown ends, if one is running."""
    open_until: float | None = None
    trial_free: bool = True
    """Half-open only: no trial is in flight, so the next attempt may be it."""
    ewma_latency_s: float | None = None
    reason: str | None = None
    """Why the model is not plainly healthy, for humans; ``None`` when it is."""


@dataclass(slots=True)
class _State:
    name: str = ""
    breaker: Breaker = Breaker.CLOSED
    opened_at: float | None = None
    open_until: float = 0.0
    open_cause: str = ""
    misconfigured: str | None = None
    trial_at: float | None = None
    cooling_until: float = 0.0
    recovered_at: float | None = None
    consecutive: int = 0
    window: deque[_Sample] = field(default_factory=deque)
    win_failures: int = 0
    ewma_latency: float | None = None
    ewma_ttft: float | None = None
    last_probe: tuple[bool, float, str | None] | None = None
    last_error: tuple[str, int | None, str | None, float] | None = None
    requests: int = 0
    failures: int = 0


_NORMAL = ModelStatus()


class HealthTracker:
    """All health state for all models; see the module docstring."""

    def __init__(
        self,
        settings: HealthSettings,
        models: Iterable[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._s = settings
        self._clock = clock
        self._wall = wall
        self._models: dict[str, _State] = {}
        # Models that may be anything but plainly healthy. Added on every failure or
        # transition, dropped by status() once healthy with no failure left in the
        # window, so an all-healthy route is answered without looking at any state.
        self._attention: set[str] = set()
        self._trial_timeout = max(settings.open_s, TRIAL_TIMEOUT_MIN_S)
        self._degraded_min = min(settings.min_requests, DEGRADED_MIN_REQUESTS)
        self._degraded_rate = settings.error_rate_threshold * DEGRADED_RATE_FACTOR
        self.on_transition: Callable[[str, Breaker], None] | None = None
        """Told of every breaker move (model, position moved to): the metrics."""
        for name in models:
            self.add_model(name)

    @property
    def models(self) -> list[str]:
        """Every tracked model name, in the order they were added."""
        return list(self._models)

    def add_model(self, name: str) -> None:
        """Start tracking ``name`` (no-op if it is already tracked)."""
        self._models.setdefault(name, _State(name))

    def _get(self, model: str) -> _State:
        st = self._models.get(model)
        if st is None:
            st = self._models[model] = _State(model)
        return st

    def all_normal(self, names: Iterable[str]) -> bool:
        """True when none of ``names`` needs a closer look: ranking's fast path."""
        attention = self._attention
        if not attention:
            return True
        return all(name not in attention for name in names)

    def ewma_latency(self, model: str) -> float | None:
        """Recent latency of real calls in seconds, ``None`` before the first success."""
        st = self._models.get(model)
        return st.ewma_latency if st is not None else None

    def on_attempt(self, model: str, *, probe: bool = False) -> None:
        """An attempt (real call or probe alike) is about to start.

        On a half-open model with a free trial slot, this attempt takes the slot.
        """
        st = self._get(model)
        if st.breaker is Breaker.CLOSED:
            return
        now = self._clock()
        self._refresh(st, now)
        if st.breaker is Breaker.HALF_OPEN and st.trial_at is None:
            st.trial_at = now

    def record_success(
        self, model: str, latency_s: float, ttft_s: float | None = None, *, probe: bool = False
    ) -> None:
        """A call or probe succeeded. Any success closes a breaker: the model answers.

        A probe success on a closed breaker changes nothing else: a ``models`` probe
        only proves the upstream is reachable, so it must neither reset the count of
        consecutive real-call failures nor dilute their error share. Probe latency is
        not mixed into the latency statistics either: a probe is usually a cheap list
        call and would make the model look faster than it answers chats.
        """
        st = self._get(model)
        now = self._clock()
        if probe:
            st.last_probe = (True, now, None)
            if st.breaker is Breaker.CLOSED:
                return
        else:
            st.requests += 1
            st.ewma_latency = ewma(st.ewma_latency, latency_s)
            if ttft_s is not None:
                st.ewma_ttft = ewma(st.ewma_ttft, ttft_s)
        if st.breaker is not Breaker.CLOSED and self._holds_open(st, now, latency_s):
            return
        st.consecutive = 0
        if st.breaker is not Breaker.CLOSED:
            self._close(st, now)
        self._push(st, (now, True, None, None) if probe else (now, True, latency_s, ttft_s))

    def _holds_open(self, st: _State, now: float, latency_s: float) -> bool:
        """Whether a success at ``now`` after ``latency_s`` leaves an open or half-open
        breaker as it is (here never: the model answered; replicas refine this)."""
        return False

    def record_failure(
        self,
        model: str,
        failure: Failure,
        *,
        retry_after_s: float | None = None,
        status: int | None = None,
        probe: bool = False,
        error: str | None = None,
    ) -> None:
        """A call or probe failed with ``failure``; ``error`` is a secret-free message."""
        st = self._get(model)
        now = self._clock()
        if probe:
            st.last_probe = (False, now, error or failure.value)
        else:
            st.requests += 1
            st.failures += 1
        effect = rule(failure).health
        if effect in (Health.IGNORED, Health.COOLS_DOWN):
            # The upstream answered, so a trial this was is over, but it proved nothing
            # either way: free the slot and leave the breaker where it is.
            st.trial_at = None
            if effect is Health.COOLS_DOWN:
                st.last_error = (failure.value, status, error, now)
                wait = DEFAULT_COOLDOWN_S if retry_after_s is None else max(0.0, retry_after_s)
                st.cooling_until = max(st.cooling_until, now + wait)
                self._attention.add(model)
            return
        st.last_error = (failure.value, status, error, now)
        st.consecutive += 1
        self._push(st, (now, False, None, None))
        self._attention.add(model)
        if effect is Health.MISCONFIGURED:
            why = f"upstream answered {status}" if status else "upstream rejected key or model id"
            self._open(st, now, "misconfigured", f"misconfigured: {why}")
        elif st.breaker is not Breaker.CLOSED:
            self._open(st, now, "failed again while open")
        elif st.consecutive >= self._s.failure_threshold:
            self._open(st, now, f"{st.consecutive} consecutive failures")
        else:
            self._prune(st, now)
            n = len(st.window)
            if n >= self._s.min_requests and st.win_failures / n >= self._s.error_rate_threshold:
                self._open(st, now, f"{st.win_failures / n:.0%} errors over {self._s.window_s:g}s")

    def status(self, model: str) -> ModelStatus:
        """The model's state now (applies clock-driven transitions first)."""
        st = self._get(model)
        if model not in self._attention:
            return (
                _NORMAL if st.ewma_latency is None else ModelStatus(ewma_latency_s=st.ewma_latency)
            )
        now = self._clock()
        self._refresh(st, now)
        n = len(st.window)
        rate = st.win_failures / n if n else 0.0
        degraded = (
            st.breaker is Breaker.CLOSED and n >= self._degraded_min and rate >= self._degraded_rate
        )
        share = self._share(st, now)
        cooling = st.cooling_until or None
        reason: str | None = None
        if st.breaker is Breaker.OPEN:
            reason = st.misconfigured or f"breaker open until {self._hms(st.open_until, now)}"
            if not st.misconfigured:
                reason += f" ({st.open_cause})"
        elif st.breaker is Breaker.HALF_OPEN:
            trial = "trial in flight" if st.trial_at is not None else "awaiting a trial"
            reason = f"half-open: {trial}"
        elif cooling is not None:
            reason = f"cooling down after 429 until {self._hms(cooling, now)}"
        elif degraded:
            reason = f"degraded: {rate:.0%} errors over {self._s.window_s:g}s"
        elif share < 1.0:
            reason = f"slow start: {share:.0%} of traffic"
        elif st.win_failures == 0:
            self._attention.discard(model)
        return ModelStatus(
            breaker=st.breaker,
            share=share,
            degraded=degraded,
            cooling_until=cooling,
            open_until=st.open_until if st.breaker is Breaker.OPEN else None,
            trial_free=st.trial_at is None,
            ewma_latency_s=st.ewma_latency,
            reason=reason,
        )

    def state(self, model: str) -> str:
        """The model's state in one word, one of :data:`STATES` (as ``/health`` says it)."""
        return self._word(self.status(model), self._get(model))

    @staticmethod
    def _word(stat: ModelStatus, st: _State) -> str:
        if stat.breaker is not Breaker.CLOSED:
            return stat.breaker.value
        if stat.cooling_until is not None:
            return "cooling_down"
        if stat.degraded:
            return "degraded"
        if st.requests == 0 and st.last_probe is None:
            return "unknown"
        return "healthy"

    def snapshot(self, model: str) -> dict[str, Any]:
        """JSON-ready detail for ``GET /health``; times are ISO-8601 UTC.

        ``window`` counts health-relevant outcomes of calls and probes alike;
        ``totals`` counts real calls only, whatever their failure class.
        """
        stat = self.status(model)
        st = self._get(model)
        now = self._clock()
        self._prune(st, now)  # status() skips this for healthy models
        state = self._word(stat, st)
        n = len(st.window)
        lat = sorted(s[2] for s in st.window if s[2] is not None)
        ttft = sorted(s[3] for s in st.window if s[3] is not None)
        probe, err = st.last_probe, st.last_error
        return {
            "state": state,
            "breaker": stat.breaker.value,
            "reason": stat.reason,
            "opened_at": self._iso(st.opened_at, now),
            "open_until": self._iso(stat.open_until, now),
            "cooling_until": self._iso(stat.cooling_until, now),
            "traffic_share": round(stat.share, 3),
            "consecutive_failures": st.consecutive,
            "window": {
                "requests": n,
                "failures": st.win_failures,
                "error_rate": round(st.win_failures / n, 4) if n else 0.0,
            },
            "latency_ms": ms_stats(st.ewma_latency, lat),
            "ttft_ms": ms_stats(st.ewma_ttft, ttft),
            "last_probe": None
            if probe is None
            else {"ok": probe[0], "at": self._iso(probe[1], now), "error": probe[2]},
            "last_error": None
            if err is None
            else {
                "failure": err[0],
                "status": err[1],
                "message": err[2],
                "at": self._iso(err[3], now),
            },
            "totals": {"requests": st.requests, "failures": st.failures},
        }

    def _push(self, st: _State, sample: _Sample) -> None:
        window = st.window
        # Evict by hand rather than deque(maxlen=...) so the failure count stays exact.
        if len(window) >= WINDOW_MAXLEN and not window.popleft()[1]:
            st.win_failures -= 1
        window.append(sample)
        if not sample[1]:
            st.win_failures += 1

    def _prune(self, st: _State, now: float) -> None:
        window, cutoff = st.window, now - self._s.window_s
        while window and window[0][0] <= cutoff:
            if not window.popleft()[1]:
                st.win_failures -= 1

    def _refresh(self, st: _State, now: float) -> None:
        if st.breaker is Breaker.OPEN and now >= st.open_until:
            st.breaker = Breaker.HALF_OPEN
            self._moved(st, Breaker.HALF_OPEN)
        # A trial whose caller vanished (cancelled request) must not block the model.
        if st.trial_at is not None and now - st.trial_at >= self._trial_timeout:
            st.trial_at = None
        if st.cooling_until and now >= st.cooling_until:
            st.cooling_until = 0.0
        if st.recovered_at is not None and now - st.recovered_at >= self._s.slow_start_s:
            st.recovered_at = None
        self._prune(st, now)

    def _open(self, st: _State, now: float, cause: str, misconfigured: str | None = None) -> None:
        if st.breaker is Breaker.CLOSED:
            st.opened_at = now
        if st.breaker is not Breaker.OPEN:
            self._moved(st, Breaker.OPEN)
        st.breaker = Breaker.OPEN
        st.open_until = now + self._s.open_s
        st.open_cause = cause
        st.misconfigured = misconfigured
        st.trial_at = None
        st.recovered_at = None

    def _close(self, st: _State, now: float) -> None:
        self._moved(st, Breaker.CLOSED)
        st.breaker = Breaker.CLOSED
        st.opened_at = None
        st.misconfigured = None
        st.trial_at = None
        # The window's failures belong to the outage that was already acted on; kept,
        # they would reopen the breaker on the first failure after recovery.
        st.window.clear()
        st.win_failures = 0
        st.recovered_at = now if self._s.slow_start_s > 0 else None

    def _moved(self, st: _State, to: Breaker) -> None:
        if self.on_transition is not None:
            self.on_transition(st.name, to)

    def _share(self, st: _State, now: float) -> float:
        if st.recovered_at is None:
            return 1.0
        ramp = (now - st.recovered_at) / self._s.slow_start_s
        return min(1.0, SLOW_START_FLOOR + (1.0 - SLOW_START_FLOOR) * ramp)

    def _hms(self, t: float, now: float) -> str:
        return time.strftime("%H:%M:%S UTC", time.gmtime(self._wall() + (t - now)))

    def _iso(self, t: float | None, now: float) -> str | None:
        if t is None:
            return None
        stamp = datetime.fromtimestamp(self._wall() + (t - now), UTC)
        return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
