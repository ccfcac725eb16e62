"""Latency statistics the health tracker keeps: a moving average and percentiles."""

from __future__ import annotations

import math

EWMA_ALPHA = 0.3
"""Weight of the newest sample: a latency shift shows within a handful of calls."""


def ewma(old: float | None, sample: float) -> float:
    """The exponentially weighted moving average after ``sample``."""
    return sample if old is None else old + EWMA_ALPHA * (sample - old)


def ms_stats(average: float | None, ordered: list[float]) -> dict[str, float | None]:
    """``{ewma, p50, p95}`` in milliseconds from seconds (``ordered`` sorted ascending)."""

    def ms(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds * 1000, 1)

    def pct(p: float) -> float | None:  # nearest-rank percentile
        return ordered[math.ceil(p * len(ordered)) - 1] if ordered else None

    return {"ewma": ms(average), "p50": ms(pct(0.5)), "p95": ms(pct(0.95))}
