"""Budget periods: UTC calendar starts and ends, at and around their edges."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelrouter.governance.periods import PERIODS, period_end, period_start


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("period", "now", "start", "end"),
    [
        ("day", "2026-12-01T17:45:12.5", "2026-12-01T00:00", "2026-12-02T00:00"),
        ("day", "2026-12-31T23:59:59.999", "2026-12-31T00:00", "2027-01-01T00:00"),
        # 2026-12-02 is a Wednesday; weeks start on Monday 2026-11-30.
        ("week", "2026-12-02T08:00", "2026-11-30T00:00", "2026-12-07T00:00"),
        ("week", "2026-11-30T00:00", "2026-11-30T00:00", "2026-12-07T00:00"),
        ("week", "2026-12-06T23:59:59", "2026-11-30T00:00", "2026-12-07T00:00"),
        # A week across a year's end.
        ("week", "2027-01-01T12:00", "2026-12-28T00:00", "2027-01-04T00:00"),
        ("month", "2026-12-15T10:00", "2026-12-01T00:00", "2027-01-01T00:00"),
        ("month", "2028-02-29T23:00", "2028-02-01T00:00", "2028-03-01T00:00"),
        ("month", "2027-01-01T00:00", "2027-01-01T00:00", "2027-02-01T00:00"),
    ],
)
def test_a_period_starts_and_ends_on_utc_calendar_edges(
    period: str, now: str, start: str, end: str
) -> None:
    assert period in PERIODS
    assert period_start(period, at(now)) == at(start)  # type: ignore[arg-type]
    assert period_end(period, at(now)) == at(end)  # type: ignore[arg-type]


def test_total_starts_at_the_epoch_and_never_ends() -> None:
    assert period_start("total", at("2026-12-01T10:00")) == 0.0
    assert period_end("total", at("2026-12-01T10:00")) is None


def test_the_instant_a_period_ends_belongs_to_the_next() -> None:
    edge = at("2026-12-01T00:00")
    assert period_start("day", edge - 0.001) == at("2026-11-30T00:00")
    assert period_start("day", edge) == edge
    assert period_start("month", edge - 0.001) == at("2026-11-01T00:00")


def test_an_unknown_period_is_refused() -> None:
    with pytest.raises(ValueError, match="fortnight"):
        period_start("fortnight", 0.0)  # type: ignore[arg-type]
