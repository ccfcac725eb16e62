"""A health tracker that shares its decisions and its outcomes with other replicas.

:class:`ClusterTracker` is the :class:`~modelrouter.health.HealthTracker` of a process
with ``cluster.redis_url``. Reads (ranking, ``status``) stay what they are: local and
free of Redis. Writes do what they always did, and in addition:

* every outcome is counted in the :class:`Outbox` (a dict increment), which a
  background task merges into the shared window (:data:`~modelrouter.cluster.scripts.SIGNAL`);
* a transition this process made (breaker opened or closed, cooldown started, probe
  result) becomes an event in the outbox, published by the same task;
* :meth:`ClusterTracker.adopt` applies an event that came from Redis.

Shared times are Redis's clock in milliseconds (``shared_now`` is the link's estimate
of it); they are turned into this tracker's own (injectable) clock on arrival, so a
breaker opened elsewhere until ``T`` reopens for a half-open trial at ``T`` here too,
and a recovered model's slow start ramps from the same instant on every replica.
Without a cluster this class is not used, so a lone process pays nothing for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelrouter.health import Breaker, HealthTracker, _State
from modelrouter.policy import Health, rule
from modelrouter.settings import HealthSettings
from providers.base import Failure

MESSAGE_MAX = 300
"""Longest error or cause text carried in an event (they are for humans)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One change to publish: ``order`` decides which of two events wins in Redis."""

    model: str
    kind: str
    """``open``, ``close``, ``cool`` or ``probe``."""
    order: int
    message: bytes
    expire_at: int
    """Redis time (ms) until which the state hash must at least live."""
    fields: tuple[str, ...]
    """Field, value pairs for the state hash."""


@dataclass(slots=True)
class Outbox:
    """What this process has to tell the others, gathered between two flushes."""

    counts: dict[str, list[int]] = field(default_factory=dict)
    """Per model: ``[successes, failures, failures since the last success]``."""
    events: list[Event] = field(default_factory=list)

    def outcome(self, model: str, ok: bool) -> None:
        """Count one outcome that the health window counts."""
        c = self.counts.get(model)
        if c is None:
            c = self.counts[model] = [0, 0, 0]
        if ok:
            c[0] += 1
            c[2] = 0
        else:
            c[1] += 1
            c[2] += 1

    def take(self) -> tuple[dict[str, list[int]], list[Event]]:
        """Everything gathered so far, leaving the outbox empty."""
        counts, events = self.counts, self.events
        self.counts, self.events = {}, []
        return counts, events


def _text(value: str | None) -> str:
    value = value or ""
    return value if len(value) <= MESSAGE_MAX else value[: MESSAGE_MAX - 3] + "..."


class ClusterTracker(HealthTracker):
    """The health tracker of a replica (see the module docstring)."""

    def __init__(
        self,
        settings: HealthSettings,
        models: Iterable[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(settings, models, clock=clock, wall=wall)
        self.outbox = Outbox()
        self.shared_now: Callable[[], float] = wall
        """Redis's clock in epoch seconds (set by :meth:`attach`)."""
        self.token = ""
        """This process's name in events: its own events coming back are skipped."""
        self.instance = ""
        self.grace_ms = int((settings.interval_s + settings.timeout_s + 1.0) * 1000)
        """How long a state outlives its own end in Redis: past an open breaker's end a
        probe (at most an interval away) decides; a late joiner must still see it."""
        self._breaker_at: dict[str, int] = {}
        self._opened_here: dict[str, float] = {}
        """When each model's breaker last opened in this process (own clock)."""

    def attach(self, shared_now: Callable[[], float], token: str, instance: str) -> None:
        """Use ``shared_now`` as the shared clock; name this process's events."""
        self.shared_now, self.token, self.instance = shared_now, token, instance

    # ---- clocks -----------------------------------------------------------------------

    def to_shared(self, t: float) -> int:
        """A time on this tracker's clock as Redis time in milliseconds."""
        return int((self.shared_now() + (t - self._clock())) * 1000)

    def to_local(self, ms: float) -> float:
        """Redis time in milliseconds as a time on this tracker's clock."""
        return self._clock() + (ms / 1000.0 - self.shared_now())

    def probe_due_in(self, model: str) -> float:
        """Seconds until ``model`` is due for a probe (its last one, by any replica,
        plus ``interval_s``); 0 if it is due now or was never probed."""
        last = self._get(model).last_probe
        if last is None:
            return 0.0
        return max(0.0, last[1] + self._s.interval_s - self._clock())

    # ---- writes: the base behaviour, then what the others must learn ------------------

    def record_success(
        self, model: str, latency_s: float, ttft_s: float | None = None, *, probe: bool = False
    ) -> None:
        """As :meth:`HealthTracker.record_success`, then count and publish.

        One difference: a success that began before the breaker opened here does not
        close it. With several replicas, calls that started before an open arrived
        from elsewhere are always in flight; their successes are old news and would
        close, for everyone, a breaker that another replica opened a moment ago.
        """
        st = self._get(model)
        was_closed = st.breaker is Breaker.CLOSED
        super().record_success(model, latency_s, ttft_s, probe=probe)
        if not probe:
            self.outbox.outcome(model, True)
        if not was_closed and st.breaker is not Breaker.CLOSED:
            return  # held open by _holds_open: nothing moved, nothing to tell
        if probe:
            self._probe_event(model, st)
        if not was_closed:
            self._emit_breaker(model, st)

    def _holds_open(self, st: _State, now: float, latency_s: float) -> bool:
        return now - latency_s < self._opened_here.get(st.name, 0.0)

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
        """As :meth:`HealthTracker.record_failure`, then count and publish."""
        st = self._get(model)
        breaker, open_until, cooling = st.breaker, st.open_until, st.cooling_until
        super().record_failure(
            model, failure, retry_after_s=retry_after_s, status=status, probe=probe, error=error
        )
        if probe:
            self._probe_event(model, st)
        if rule(failure).health not in (Health.IGNORED, Health.COOLS_DOWN):
            self.outbox.outcome(model, False)
        if st.cooling_until > cooling:
            until = self.to_shared(st.cooling_until)
            msg = {"m": model, "k": "cool", "until": until, "tok": self.token}
            self._emit(model, "cool", until, msg, until + self.grace_ms, ("cool", str(until)))
        reopened = breaker is not Breaker.OPEN or st.open_until != open_until
        if st.breaker is Breaker.OPEN and reopened:
            self._opened_here[model] = self._clock()
            self._emit_breaker(model, st)

    def _emit(
        self,
        model: str,
        kind: str,
        order: int,
        msg: dict[str, Any],
        expire_at: int,
        fields: tuple[str, ...],
    ) -> None:
        event = Event(model, kind, order, orjson.dumps(msg), expire_at, fields)
        self.outbox.events.append(event)

    def _probe_event(self, model: str, st: _State) -> None:
        assert st.last_probe is not None
        ok, t, error = st.last_probe
        at = self.to_shared(t)
        err = _text(error)
        msg = {"m": model, "k": "probe", "at": at, "ok": ok, "err": err, "tok": self.token}
        expire = at + 3 * int(self._s.interval_s * 1000) + self.grace_ms
        fields = ("p_ok", "1" if ok else "0", "p_at", str(at), "p_err", err)
        self._emit(model, "probe", at, msg, expire, fields)

    def _emit_breaker(self, model: str, st: _State, at: int | None = None) -> None:
        """Publish the breaker as it is now (``at``: the event's time, default now)."""
        at = self.to_shared(self._clock()) if at is None else at
        self._breaker_at[model] = at
        base = {"m": model, "at": at, "by": self.instance, "tok": self.token}
        if st.breaker is Breaker.CLOSED:
            rec = self.to_shared(st.recovered_at) if st.recovered_at is not None else 0
            msg = {**base, "k": "close", "rec": rec}
            expire = max(at, rec + int(self._s.slow_start_s * 1000)) + self.grace_ms
            closed = ("b", "closed", "at", str(at), "rec", str(rec), "by", self.instance)
            self._emit(model, "close", at, msg, expire, closed)
            return
        until = self.to_shared(st.open_until)
        since = self.to_shared(st.opened_at if st.opened_at is not None else self._clock())
        cause, mis = _text(st.open_cause), _text(st.misconfigured)
        msg = {**base, "k": "open", "until": until, "cause": cause, "mis": mis, "since": since}
        fields = (
            *("b", "open", "at", str(at), "until", str(until), "cause", cause),
            *("mis", mis, "since", str(since), "by", self.instance),
        )
        self._emit(model, "open", at, msg, until + self.grace_ms, fields)

    def republish(self) -> None:
        """Queue every model's notable state again (after a rejoin: Redis may have lost
        it, or missed what happened while it was away); the newest still wins."""
        now = self._clock()
        for model, st in self._models.items():
            self._refresh(st, now)
            at = self._breaker_at.get(model)
            if st.breaker is not Breaker.CLOSED or st.recovered_at is not None:
                self._emit_breaker(model, st, at)
            if st.cooling_until > now:
                until = self.to_shared(st.cooling_until)
                msg = {"m": model, "k": "cool", "until": until, "tok": self.token}
                self._emit(model, "cool", until, msg, until + self.grace_ms, ("cool", str(until)))

    # ---- what the others decided ------------------------------------------------------

    def adopt(self, msg: dict[str, Any]) -> bool:
        """Apply one event from Redis; ``False`` if it changed nothing here (our own,
        an older one, or a model this replica does not have)."""
        model = msg.get("m")
        if msg.get("tok") == self.token or not isinstance(model, str) or model not in self._models:
            return False
        kind = msg.get("k")
        st = self._get(model)
        now = self._clock()
        if kind == "cool":
            until = self.to_local(float(msg["until"]))
            if until <= st.cooling_until:
                return False
            st.cooling_until = until
        elif kind == "probe":
            at = self.to_local(float(msg["at"]))
            if st.last_probe is not None and at <= st.last_probe[1]:
                return False
            st.last_probe = (bool(msg["ok"]), at, msg.get("err") or None)
            return True
        elif kind in ("open", "close"):
            at = int(msg["at"])
            if at <= self._breaker_at.get(model, 0):
                return False
            self._breaker_at[model] = at
            if kind == "open":
                self._adopt_open(st, msg, now)
            else:
                self._adopt_close(st, msg, now)
        else:
            return False
        self._attention.add(model)
        return True

    def _adopt_open(self, st: _State, msg: dict[str, Any], now: float) -> None:
        by = msg.get("by")
        cause = str(msg.get("cause") or "opened elsewhere")
        mis = str(msg.get("mis") or "") or None
        self._open(st, now, f"{cause}, on {by}" if by else cause, mis)
        self._opened_here[str(msg["m"])] = now
        st.open_until = self.to_local(float(msg["until"]))
        if msg.get("since"):
            st.opened_at = self.to_local(float(msg["since"]))

    def _adopt_close(self, st: _State, msg: dict[str, Any], now: float) -> None:
        if st.breaker is not Breaker.CLOSED:
            self._close(st, now)
        else:
            # Closed here already: only what a close resets (the outage's failures).
            st.window.clear()
            st.win_failures = 0
        st.consecutive = 0
        rec = float(msg.get("rec") or 0)
        st.recovered_at = self.to_local(rec) if rec and self._s.slow_start_s > 0 else None

    def adopt_snapshot(self, model: str, h: dict[str, str]) -> None:
        """Apply a model's state hash read from Redis (a late join or a rejoin)."""
        b = h.get("b")
        if b == "open":
            keys = ("at", "until", "cause", "mis", "since", "by")
            self.adopt({"m": model, "k": "open", **{k: h.get(k, "") for k in keys}})
        elif b == "closed":
            self.adopt({"m": model, "k": "close", "at": h.get("at", 0), "rec": h.get("rec", 0)})
        if h.get("cool"):
            self.adopt({"m": model, "k": "cool", "until": h["cool"]})
        if h.get("p_at"):
            ok = h.get("p_ok") == "1"
            self.adopt({"m": model, "k": "probe", "at": h["p_at"], "ok": ok, "err": h.get("p_err")})
