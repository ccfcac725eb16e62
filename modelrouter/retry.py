"""Backoff before a same-model retry: a pure function, table-tested directly.

Classifying upstream answers is the providers' job (:mod:`providers.failures`);
what each failure leads to is :mod:`modelrouter.policy`.
"""

from __future__ import annotations

import random


def backoff(
    retry: int,
    *,
    base: float = 0.5,
    cap: float = 8.0,
    rand: random.Random | None = None,
) -> float:
    """Delay before same-model retry number ``retry`` (1-based).

    Exponential from ``base``, capped at ``cap``, with "equal jitter": the delay is
    between half and all of the exponential value, so retries spread out without
    ever collapsing to zero.
    """
    exp = min(cap, base * (2 ** max(0, retry - 1)))
    r: float = rand.random() if rand is not None else random.random()
    return float(exp / 2 + r * exp / 2)
