"""Budget periods: where the current UTC calendar period starts and ends.

A budget resets at the start of each period (CONTRACT.md section 5): ``"day"`` at
00:00 UTC, ``"week"`` at 00:00 UTC on Monday (ISO weeks), ``"month"`` at 00:00 UTC on
the 1st, and ``"total"`` never (its period starts at the epoch). Everything here is
pure: the time is a parameter, so tests and the limiter pass their own clocks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelrouter.governance.types import Period

PERIODS: tuple[Period, ...] = ("day", "week", "month", "total")
"""Every budget period, as the config and the admin API spell them."""


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)


def _start(period: Period, moment: datetime) -> datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())  # Monday is 0
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown budget period {period!r}")


def period_start(period: Period, at: float) -> float:
    """Epoch seconds at which the period holding ``at`` (epoch seconds) began;
    ``0.0`` for ``"total"``."""
    if period == "total":
        return 0.0
    return _start(period, _utc(at)).timestamp()


def period_end(period: Period, at: float) -> float | None:
    """Epoch seconds at which the period holding ``at`` ends (the next one starts);
    ``None`` for ``"total"``, which never ends."""
    if period == "total":
        return None
    start = _start(period, _utc(at))
    if period == "day":
        end = start + timedelta(days=1)
    elif period == "week":
        end = start + timedelta(days=7)
    elif start.month == 12:
        end = start.replace(year=start.year + 1, month=1)
    else:
        end = start.replace(month=start.month + 1)
    return end.timestamp()
