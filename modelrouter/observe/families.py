"""The metrics ``GET /metrics`` shows: names, labels, kinds and buckets (CONTRACT.md §7).

Label values come only from the configuration (routes, models, providers, teams) or
from small fixed sets (surfaces, outcomes, directions, HTTP statuses): what a client
sends never becomes a label value (see :mod:`modelrouter.observe.metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)
"""Seconds, 5 ms to the default request timeout: a cached answer to a long reasoning run."""
TTFT_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
)
"""Seconds to the first token: the default first-token timeout is 30 s a model, so
fallbacks push a request's past it."""

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True, slots=True)
class Family:
    """One metric: its exposed name (counters end in ``_total``), kind, help, labels."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    @property
    def width(self) -> int:
        """Slots a series takes in a tally: a histogram's buckets (+Inf last) and sum."""
        return len(self.buckets) + 2 if self.kind == "histogram" else 1


REQUESTS = Family(
    "modelrouter_requests_total",
    "counter",
    "Requests answered, by surface, route, serving model and provider, and HTTP status.",
    ("surface", "route", "model", "provider", "code"),
)
DURATION = Family(
    "modelrouter_request_duration_seconds",
    "histogram",
    "Request latency from arrival to the end of the answer (a stream's last event).",
    ("route", "model"),
    LATENCY_BUCKETS,
)
TTFT = Family(
    "modelrouter_ttft_seconds",
    "histogram",
    "Time from a request's arrival to its first token (failed attempts included).",
    ("model",),
    TTFT_BUCKETS,
)
ATTEMPTS = Family(
    "modelrouter_attempts_total",
    "counter",
    "Upstream attempts (retries and fallbacks included; skipped models are not tried).",
    ("model", "provider", "outcome"),
)
FALLBACKS = Family(
    "modelrouter_fallbacks_total",
    "counter",
    "Moves from one model to the next within a request.",
    ("route", "from_model", "to_model"),
)
TOKENS = Family(
    "modelrouter_tokens_total",
    "counter",
    "Tokens of served requests; cached tokens are part of the input tokens.",
    ("model", "direction"),
)
COST = Family(
    "modelrouter_cost_usd_total",
    "counter",
    "Spend in USD of served requests, by model and the caller's team.",
    ("model", "team"),
)
MODEL_STATE = Family(
    "modelrouter_model_state",
    "gauge",
    "1 for each model's current health state, 0 for the others (the answering worker's view).",
    ("model", "state"),
)
TRANSITIONS = Family(
    "modelrouter_breaker_transitions_total",
    "counter",
    "Circuit breaker moves, by the position moved to.",
    ("model", "to"),
)
PROBES = Family(
    "modelrouter_probes_total",
    "counter",
    "Health probes, by outcome (ok or the failure kind).",
    ("model", "outcome"),
)
LIMITED = Family(
    "modelrouter_limited_total",
    "counter",
    "Requests refused by a limit, by the scope that refused (key, team) and why.",
    ("scope", "reason"),
)
LOG_QUEUE_DEPTH = Family(
    "modelrouter_log_queue_depth",
    "gauge",
    "Call-log records waiting for the store, all live workers together.",
)
LOG_SPOOLED = Family(
    "modelrouter_log_spooled_total",
    "counter",
    "Call-log records written to the local spool because the store could not take them.",
)

ALL = (
    REQUESTS,
    DURATION,
    TTFT,
    ATTEMPTS,
    FALLBACKS,
    TOKENS,
    COST,
    MODEL_STATE,
    TRANSITIONS,
    PROBES,
    LIMITED,
    LOG_QUEUE_DEPTH,
    LOG_SPOOLED,
)
"""Every family in the order of the exposition."""
