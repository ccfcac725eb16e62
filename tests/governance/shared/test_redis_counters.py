"""The pure parts of the shared counters: periods, key names, arguments, headers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelrouter.governance.redis_counters import (
    NANO,
    SCHEMA,
    Admitted,
    NeedSeed,
    Refused,
    acquire_args,
    decode,
    hash_tag,
    period_window,
    plan,
    script,
    settle_item,
)
from modelrouter.governance.types import Limits, Scope

PINNED = {
    1: {
        "acquire": "a922fb91056bda3a2149b012adbe32657b4b3aac",
        "settle": "a90de581d1e72eab53b7fb6b7193c2ac6b3d38f8",
    }
}
"""The scripts' SHA-1 per schema. A changed script with the same schema would share
counters with replicas still running the old one during a rolling upgrade: change a
script, bump ``SCHEMA``, and pin the new SHAs here."""


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("period", "now", "label", "start", "end"),
    [
        ("day", "2026-12-01T23:59:59", "2026-12-01", "2026-12-01T00:00:00", "2026-12-02T00:00:00"),
        ("week", "2026-12-03T10:00:00", "2026-W49", "2026-11-30T00:00:00", "2026-12-07T00:00:00"),
        ("week", "2026-11-30T00:00:00", "2026-W49", "2026-11-30T00:00:00", "2026-12-07T00:00:00"),
        ("week", "2027-01-01T12:00:00", "2026-W53", "2026-12-28T00:00:00", "2027-01-04T00:00:00"),
        ("month", "2026-12-31T23:00:00", "2026-12", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
        ("month", "2027-02-10T00:00:00", "2027-02", "2027-02-01T00:00:00", "2027-03-01T00:00:00"),
    ],
)
def test_period_windows_are_utc_calendar_periods(
    period: str, now: str, label: str, start: str, end: str
) -> None:
    assert period_window(period, ts(now)) == (label, ts(start), ts(end))  # type: ignore[arg-type]


def test_total_period_never_ends() -> None:
    assert period_window("total", ts("2026-12-01T00:00:00")) == ("total", 0.0, float("inf"))


def test_keys_carry_the_schema_and_one_hash_tag_per_request() -> None:
    key = Scope("key", "k1", Limits(rpm=5, budget_usd=2.0, budget_period="day"))
    team = Scope("team", "research", Limits(tpm=100))
    p = plan("ns:", [key, team], ts("2026-12-01T12:00:00"), 60)
    assert hash_tag([key, team]) == "team:research"
    assert hash_tag([key]) == "key:k1"
    assert p.keys[:3] == (
        "ns:lim1:{team:research}:key:k1:rate",
        "ns:lim1:{team:research}:key:k1:spend:2026-12-01",
        "ns:lim1:{team:research}:key:k1:resv:2026-12-01",
    )
    assert p.keys[3] == "ns:lim1:{team:research}:team:research:rate"
    assert all(k.startswith(f"ns:lim{SCHEMA}:{{team:research}}:") for k in p.keys)
    # the budget's counter lives until its period's end plus the slack
    assert p.specs == (f"5 - {2 * NANO} {int(ts('2026-12-02T00:00:00') + 60)}", "- 100 - 0")
    assert acquire_args(p, "r1", 300, 0.0123, 5000, {}) == [
        "r1",
        "300",
        str(12_300_000),
        "5000",
        str(35 * 86_400),
        *p.specs,
    ]
    # seeds only on the call after the script asked for them, one per scope
    assert acquire_args(p, "r1", 300, 0.0123, 5000, {0: 1.5})[-2:] == ["1500000000", "-"]
    assert settle_item("r1", -20, 0.5) == ("r1", "-20", "500000000")


def test_script_shas_are_pinned_per_schema() -> None:
    for name in ("acquire", "settle"):
        assert script(name).sha == PINNED[SCHEMA][name], (
            f"lua/{name}.lua changed: bump SCHEMA in redis_counters.py and pin the new SHA"
        )


def test_decode_answers() -> None:
    ok = decode([1, 5000, 10, 9, 6000, -1, -1, -1])
    assert isinstance(ok, Admitted)
    assert (ok.requests, ok.tokens) == ((10, 9, 6.0), None)
    no = decode([0, 5000, 3, 2, 0, NANO, NANO // 2, 2 * NANO, -1, -1, -1, -1, -1, -1])
    assert isinstance(no, Refused)
    assert (no.reason, no.scope, no.spent_usd, no.reserved_usd, no.budget_usd) == (
        "budget",
        1,
        1.0,
        0.5,
        2.0,
    )
    rate = decode([0, 5000, 2, 1, 1500, -20, 0, 0, 10, 3, 42000, 100, -20, 72000])
    assert isinstance(rate, Refused)
    assert (rate.reason, rate.scope, rate.wait_s, rate.level) == ("tpm", 0, 1.5, -20)
    assert (rate.requests, rate.tokens) == ((10, 3, 42.0), (100, -20, 72.0))
    seed = decode([2, 5000, 1, 2])
    assert isinstance(seed, NeedSeed) and seed.scopes == [0, 1]
