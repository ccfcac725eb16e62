"""What the router counts, fed from the call-log record and a few hooks.

:meth:`Metrics.record` takes the record the front door builds at the end of every
request (:func:`modelrouter.recording.make_record`) and updates requests, latency,
time to first token, attempts, fallbacks, tokens and cost at once: one dictionary
lookup finds the slots of the request's series, then a handful of additions into the
process's :class:`~modelrouter.observe.tally.Tally` (about 1 µs a request). The
health tracker reports breaker moves (:meth:`Metrics.transition`), the probe loop
its probes (:meth:`Metrics.probe`), the limiter its refusals (:meth:`Metrics.limited`).

Label values are bounded by the configuration. What a request names but the
configuration does not have never becomes one:

- ``route``: a configured route or model name; an ad-hoc fallback list (``models``
  in the body, ``x-modelrouter-models``) is ``"adhoc"``; a request refused before it
  was routed (unknown model, bad body, no key) is ``""``.
- ``model``, ``provider``, ``from_model``, ``to_model``: configured names; ``""`` when
  no model served the request.
- ``team``: the caller's team (from the config or the store's teams), ``""`` without.
- ``surface``: ``http`` or ``mcp``; ``code``: the HTTP status answered, e.g. ``"200"``.
- ``outcome``: ``ok`` or a failure kind (``server``, ``rate_limit``, ``timeout``, ...).

Any other value (which the router does not produce) is counted as ``"other"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from bisect import bisect_left
from collections.abc import Sequence
from pathlib import Path

from modelrouter.errors import Attempt
from modelrouter.observe import families as f
from modelrouter.observe.tally import Tally
from modelrouter.settings import Settings
from modelrouter.store.calllog import CallLog
from modelrouter.store.record import CallRecord
from providers.base import Failure

log = logging.getLogger("modelrouter.metrics")

ADHOC = "adhoc"
"""The ``route`` label of a request with an ad-hoc fallback list."""
OTHER = "other"
"""A label value the router should never produce, counted rather than exposed."""
SURFACES = frozenset({"http", "mcp"})
OUTCOMES = frozenset({"ok", "error"} | {x.value for x in Failure})
"""Attempt and probe outcomes (``error``: a probe that hit a bug in the router)."""
BREAKER_POSITIONS = frozenset({"closed", "open", "half_open"})
LIMIT_SCOPES = frozenset({"key", "team"})
LIMIT_REASONS = frozenset({"rpm", "tpm", "budget", "models"})
SAMPLE_S = 1.0
"""How often a worker copies its call-log queue depth and spool count into its tally."""

_LAT_INF = len(f.LATENCY_BUCKETS)
_TTFT_INF = len(f.TTFT_BUCKETS)
_NO_MODEL = -1

_RequestKey = tuple[str, str | None, str | None, str | None, int, str | None]
_Slots = tuple[int, int, int, int, int, int, int]
"""requests, duration, ttft, input, output, cached tokens, cost (the last five are
``_NO_MODEL`` when no model served)."""


class Metrics:
    """One process's metrics: counters, histograms and gauges in a :class:`Tally`.

    ``directory``: where the workers of one server keep their tallies (``None``: this
    process alone, in memory).
    """

    def __init__(self, settings: Settings, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.tally = Tally(self.directory)
        self._models = frozenset(settings.models)
        self._routes = frozenset(settings.routes) | self._models
        self._providers = frozenset(settings.providers)
        self._requests: dict[_RequestKey, _Slots] = {}
        self._attempts: dict[tuple[str, str, str], int] = {}
        self._fallbacks: dict[tuple[str, str, str], int] = {}
        self._queue_slot = self.tally.slot(f.LOG_QUEUE_DEPTH.name, ())
        self._spooled_slot = self.tally.slot(f.LOG_SPOOLED.name, ())
        self._calls: CallLog | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._broken = False

    # --- the request path -------------------------------------------------------------

    def record(self, record: CallRecord) -> None:
        """Count one finished request (never raises: a metric must not fail a request)."""
        try:
            self._record(record)
        except Exception:
            if not self._broken:
                self._broken = True
                log.exception("metrics: a request could not be counted")

    def _record(self, r: CallRecord) -> None:
        route = r.route
        if route is not None and route not in self._routes:
            route = ADHOC
        key = (r.surface, route, r.model, r.provider, r.status, r.team)
        s = self._requests.get(key)
        if s is None:
            s = self._request_slots(key)
        v = self.tally.values
        v[s[0]] += 1.0
        latency = r.latency_ms * 0.001
        d = s[1]
        v[d + bisect_left(f.LATENCY_BUCKETS, latency)] += 1.0
        v[d + _LAT_INF + 1] += latency
        if s[2] != _NO_MODEL:
            if r.ttft_ms is not None:
                ttft = r.ttft_ms * 0.001
                t = s[2]
                v[t + bisect_left(f.TTFT_BUCKETS, ttft)] += 1.0
                v[t + _TTFT_INF + 1] += ttft
            if r.input_tokens:
                v[s[3]] += r.input_tokens
            if r.output_tokens:
                v[s[4]] += r.output_tokens
            if r.cached_tokens:
                v[s[5]] += r.cached_tokens
            if r.cost_usd:
                v[s[6]] += r.cost_usd
        if r.attempts:
            self._count_attempts(r.attempts, route or "")

    def _count_attempts(self, attempts: Sequence[Attempt], route: str) -> None:
        previous: str | None = None
        for a in attempts:
            if a.outcome == "skipped":
                continue
            key = (a.model, a.provider, a.outcome)
            slot = self._attempts.get(key)
            if slot is None:
                labels = (self._model(a.model), self._provider(a.provider), _bounded(a.outcome))
                slot = self._attempts[key] = self.tally.slot(f.ATTEMPTS.name, labels)
            self.tally.values[slot] += 1.0
            if previous is not None and previous != a.model:
                move = (route, previous, a.model)
                slot = self._fallbacks.get(move)
                if slot is None:
                    labels = (route, self._model(previous), self._model(a.model))
                    slot = self._fallbacks[move] = self.tally.slot(f.FALLBACKS.name, labels)
                self.tally.values[slot] += 1.0
            previous = a.model

    def _request_slots(self, key: _RequestKey) -> _Slots:
        surface, route, model, provider, status, team = key
        model_label, route_label = self._model(model), route or ""
        t = self.tally
        requests = t.slot(
            f.REQUESTS.name,
            (
                surface if surface in SURFACES else OTHER,
                route_label,
                model_label,
                self._provider(provider),
                str(status),
            ),
        )
        duration = t.slot(f.DURATION.name, (route_label, model_label), f.DURATION.width)
        if model is None:
            none = _NO_MODEL
            slots = (requests, duration, none, none, none, none, none)
        else:
            slots = (
                requests,
                duration,
                t.slot(f.TTFT.name, (model_label,), f.TTFT.width),
                t.slot(f.TOKENS.name, (model_label, "input")),
                t.slot(f.TOKENS.name, (model_label, "output")),
                t.slot(f.TOKENS.name, (model_label, "cached")),
                t.slot(f.COST.name, (model_label, team or "")),
            )
        self._requests[key] = slots
        return slots

    def _model(self, name: str | None) -> str:
        return "" if name is None else name if name in self._models else OTHER

    def _provider(self, name: str | None) -> str:
        return "" if name is None else name if name in self._providers else OTHER

    # --- hooks --------------------------------------------------------------------------

    def transition(self, model: str, to: str) -> None:
        """A model's breaker moved to ``to`` (``closed``, ``open``, ``half_open``)."""
        to = to if to in BREAKER_POSITIONS else OTHER
        self._count(f.TRANSITIONS.name, (self._model(model), to))

    def probe(self, model: str, outcome: str) -> None:
        """A health probe of ``model`` ended: ``ok`` or its failure's kind."""
        self._count(f.PROBES.name, (self._model(model), _bounded(outcome)))

    def limited(self, scope_kind: str, reason: str) -> None:
        """A limit refused a request: ``scope_kind`` ``key`` or ``team``, ``reason``
        ``rpm``, ``tpm``, ``budget`` or ``models`` (an allow-list)."""
        scope = scope_kind if scope_kind in LIMIT_SCOPES else OTHER
        self._count(f.LIMITED.name, (scope, reason if reason in LIMIT_REASONS else OTHER))

    def _count(self, name: str, labels: tuple[str, ...]) -> None:
        slot = self.tally.slot(name, labels)
        self.tally.values[slot] += 1.0

    # --- the call log's numbers -------------------------------------------------------

    def sample_log(self) -> None:
        """Copy this process's call-log queue depth and spooled count into the tally."""
        w = self._calls.writer if self._calls is not None else None
        v = self.tally.values
        v[self._queue_slot] = len(w.queue) if w is not None else 0
        v[self._spooled_slot] = w.spooled if w is not None else 0

    async def start(self, calls: CallLog) -> None:
        """Keep the call log's numbers fresh (every :data:`SAMPLE_S`) until :meth:`stop`."""
        self._calls = calls
        if self._sampler is None:
            self._sampler = asyncio.create_task(self._sample(), name="modelrouter-metrics")

    async def _sample(self) -> None:
        while True:
            self.sample_log()
            await asyncio.sleep(SAMPLE_S)

    async def stop(self) -> None:
        """Stop sampling, take a last sample (records spooled at shutdown) and close."""
        task, self._sampler = self._sampler, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.sample_log()
        self.tally.close()


def _bounded(outcome: str) -> str:
    return outcome if outcome in OUTCOMES else OTHER
