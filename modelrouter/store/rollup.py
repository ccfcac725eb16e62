"""Usage roll-ups: per-minute and per-hour sums of the call log, with latency histograms.

The writer folds each batch of call rows into roll-up rows (:func:`rollup_rows`) and
adds them to ``usage_rollup`` in the same transaction as the rows themselves, so the
roll-ups always equal the sum of the raw records (and a record replayed from the
spool is counted only if it was not already stored).

Percentiles cannot be summed, histograms can: each roll-up row counts its requests'
latencies in :data:`BOUNDS_MS` buckets (factor ``sqrt(2)`` apart, 0.25 ms to 185 s),
and :func:`percentile` reads p50/p95 back from summed buckets, interpolating
geometrically inside one. The answer lies in the right bucket, so it is off by less
than the bucket's width (at most a factor ``sqrt(2)``; much less in practice).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import Any

from modelrouter.store.record import INDEX, Row
from modelrouter.store.schema import DIMENSIONS, LATENCY_BUCKETS, VALUE_LEN

MINUTE = 60
"""Per-minute roll-ups serve ``interval=1m`` and are kept :data:`MINUTE_KEEP_S`."""
HOUR = 3600
"""Per-hour roll-ups serve ``1h`` and ``1d`` and are kept for good."""
MINUTE_KEEP_S = 2 * 86400
"""How long per-minute roll-ups are kept."""

BOUNDS_MS: tuple[float, ...] = tuple(0.25 * 2 ** (i / 2) for i in range(LATENCY_BUCKETS - 1))
"""Upper bounds of the latency buckets; the last bucket holds everything above."""

SUMS = (
    "requests",
    "errors",
    "fallbacks",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "latency_ms_sum",
)
"""The summed columns of a roll-up besides the histogram."""
HIST = tuple(f"lat_{i:02d}" for i in range(LATENCY_BUCKETS))
"""The histogram columns."""
KEY = ("bucket_s", "t", "dim", "value")
"""A roll-up row's key."""
COLUMNS = KEY + SUMS + HIST
"""A roll-up row's values, in the order :func:`rollup_rows` gives them."""
_DIMS = tuple((dim, INDEX[column]) for dim, column in DIMENSIONS.items())
_ZERO_HIST = (0,) * LATENCY_BUCKETS
_TS, _LATENCY, _ERROR, _FALLBACKS = (
    INDEX[c] for c in ("ts", "latency_ms", "error_code", "fallbacks")
)
_IN, _OUT, _CACHED = (INDEX[c] for c in ("input_tokens", "output_tokens", "cached_tokens"))
_COST = INDEX["cost_usd"]


def bucket_of(latency_ms: float) -> int:
    """The histogram bucket of one latency."""
    return bisect_left(BOUNDS_MS, latency_ms)


def rollup_rows(rows: Iterable[Row]) -> list[tuple[Any, ...]]:
    """Roll-up rows (:data:`COLUMNS` order) for some call rows: per resolution, time
    bucket, dimension and value, sorted by key (concurrent writers then lock rows in one
    order: no deadlocks)."""
    minutes: dict[tuple[Any, ...], list[Any]] = {}
    n_sums = len(SUMS)
    for row in rows:
        t = row[_TS] // 1_000_000
        t -= t % MINUTE
        latency = row[_LATENCY]
        values = (
            1,
            0 if row[_ERROR] is None else 1,
            row[_FALLBACKS],
            row[_IN] or 0,
            row[_OUT] or 0,
            row[_CACHED] or 0,
            row[_COST] or 0.0,
            latency,
        )
        hist = n_sums + bisect_left(BOUNDS_MS, latency)
        for dim, i in _DIMS:
            value = row[i]
            key = (t, dim, value[:VALUE_LEN] if value else "")
            sums = minutes.get(key)
            if sums is None:
                minutes[key] = [*values, *_ZERO_HIST]
                minutes[key][hist] += 1
                continue
            for j in range(n_sums):
                sums[j] += values[j]
            sums[hist] += 1
    hours: dict[tuple[Any, ...], list[Any]] = {}
    for (t, dim, value), sums in minutes.items():
        key = (t - t % HOUR, dim, value)
        acc = hours.get(key)
        if acc is None:
            hours[key] = list(sums)
        else:
            for i, v in enumerate(sums):
                acc[i] += v
    out = []
    for span, table in ((MINUTE, minutes), (HOUR, hours)):
        for key in sorted(table):
            out.append((span, *key, *table[key]))
    return out


def percentiles(hist: Sequence[int], qs: Sequence[float]) -> list[float | None]:
    """The ``qs`` quantiles (0..1] of a latency histogram, in ms (``None``: it is empty)."""
    cum = list(accumulate(hist))
    total = cum[-1] if cum else 0
    if not total:
        return [None] * len(qs)
    out: list[float | None] = []
    for q in qs:
        rank = q * total
        i = bisect_left(cum, rank)  # the first bucket that reaches the rank
        if i >= len(BOUNDS_MS):
            out.append(BOUNDS_MS[-1])  # above the last bound: no upper edge to go by
            continue
        count = hist[i]
        frac = (rank - (cum[i] - count)) / count
        hi = BOUNDS_MS[i]
        if i == 0:
            out.append(round(hi * frac, 3))
        else:
            lo = BOUNDS_MS[i - 1]
            out.append(round(lo * (hi / lo) ** frac, 3))
    return out


def percentile(hist: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1] of a latency histogram, in ms; ``None`` if it is empty."""
    return percentiles(hist, (q,))[0]
