"""Login throttling: repeated wrong admin keys from one client lock it out for a while.

Per client address, in memory: the first :data:`FREE_FAILURES` wrong keys cost
nothing; each one after that locks the address out for twice as long as the one
before (:data:`BASE_S`, doubling, capped at :data:`MAX_S`). While locked out, a login
is refused without looking at the key, so guessing runs at most one key per lockout.
A right key clears the address's record. At most :data:`MAX_CLIENTS` addresses are
remembered (the one seen longest ago is forgotten first), and a record is forgotten
:data:`FORGET_S` after its last failure: memory stays bounded whoever knocks.

Per process: with ``--workers N`` a guesser gets N times the attempts, still
exponentially few.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

FREE_FAILURES = 3
"""Wrong keys an address may send before the first lockout."""
BASE_S = 1.0
"""The first lockout."""
MAX_S = 300.0
"""The longest lockout."""
FORGET_S = 3600.0
"""A record with no failure for this long is forgotten."""
MAX_CLIENTS = 10_000
"""Addresses remembered at most."""


@dataclass(slots=True)
class _Record:
    failures: int
    last: float
    locked_until: float


class LoginThrottle:
    """Failed-login bookkeeping per client address (see the module docstring)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_clients: int = MAX_CLIENTS
    ) -> None:
        self._clock = clock
        self._max = max_clients
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def wait_s(self, client: str) -> float:
        """Seconds until ``client`` may try again (0: now)."""
        rec = self._records.get(client)
        if rec is None:
            return 0.0
        now = self._clock()
        if now - rec.last > FORGET_S:
            del self._records[client]
            return 0.0
        return max(0.0, rec.locked_until - now)

    def failed(self, client: str) -> float:
        """Note a wrong key from ``client``; the lockout it now has, in seconds."""
        now = self._clock()
        rec = self._records.pop(client, None)
        if rec is None or now - rec.last > FORGET_S:
            rec = _Record(0, now, now)
        rec.failures += 1
        rec.last = now
        over = rec.failures - FREE_FAILURES
        lock = 0.0 if over <= 0 else min(MAX_S, BASE_S * 2 ** min(over - 1, 30))
        rec.locked_until = now + lock
        self._records[client] = rec  # most recent last
        while len(self._records) > self._max:
            self._records.popitem(last=False)
        return lock

    def succeeded(self, client: str) -> None:
        """A right key from ``client``: its failures are forgiven."""
        self._records.pop(client, None)

    def __len__(self) -> int:
        return len(self._records)


def retry_text(seconds: float) -> str:
    """``seconds`` as a person reads a wait: ``1 second``, ``4 seconds``, ``5 minutes``."""
    whole = max(1, math.ceil(seconds))
    if whole < 120:
        return f"{whole} second{'s' if whole != 1 else ''}"
    return f"{math.ceil(whole / 60)} minutes"
