"""Times as the admin API and the CLI take them: ISO 8601, or an age such as ``15m``.

``since=24h`` means 24 hours ago; ``since=2026-12-01T10:00:00Z`` is that moment (a time
without a zone is UTC). Output times are ISO 8601 in UTC with a ``Z``.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(value: str, *, now: float | None = None) -> float:
    """Epoch seconds of an ISO time or of an age (``30s``, ``15m``, ``24h``, ``7d``, ``2w``).

    Raises :class:`ValueError` with a message for the user.
    """
    now = time.time() if now is None else now
    text = value.strip()
    age = _AGE.match(text)
    if age:
        return now - float(age.group(1)) * _UNIT_S[age.group(2)]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an ISO time (2026-12-01T10:00:00Z) nor an age (15m, 24h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso(seconds: float) -> str:
    """An ISO 8601 UTC time with a ``Z`` (microseconds only when there are any)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")
