"""Small helpers shared by the benchmark modules: event loop choice and percentiles."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on uvloop when it is installed (as the router does), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile ``p`` (0..100) of an already sorted sequence; NaN if empty."""
    if not ordered:
        return math.nan
    k = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(k, len(ordered)) - 1]


def ms(seconds: float) -> float:
    """Seconds to milliseconds, rounded to the microsecond."""
    return round(seconds * 1000, 3)
