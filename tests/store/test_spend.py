"""Spend per key and team from the roll-ups, on SQLite and PostgreSQL: hourly rows for
whole hours, per-minute rows for the part of an hour a window starts inside."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelrouter.errors import Attempt
from modelrouter.governance.periods import period_start
from modelrouter.settings import StoreSettings
from modelrouter.store.engine import make_engine, resolve
from modelrouter.store.record import CallRecord, row_of
from modelrouter.store.sink import Sink
from modelrouter.store.spend import spend_all, spend_since

_n = 0


def rec(ts: float, cost: float | None, key: str | None, team: str | None) -> CallRecord:
    global _n
    _n += 1
    return CallRecord(
        id=f"s{_n:08d}",
        request_id=f"s{_n:08d}",
        ts=ts,
        surface="http",
        endpoint="/v1/chat/completions",
        route="default",
        requested_model="default",
        model="m",
        provider="p",
        status=200,
        error_code=None,
        stream=False,
        latency_ms=3.0,
        ttft_ms=None,
        input_tokens=10,
        output_tokens=5,
        cached_tokens=None,
        cost_usd=cost,
        price_unknown=False,
        usage_estimated=False,
        fallbacks=0,
        attempts=[Attempt("m", "p", 200, None, 3.0, "ok")],
        user=None,
        tags=(),
        key_id=key,
        team=team,
    )


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def run(url: str, records: list[CallRecord], job: Any) -> Any:
    async def go() -> Any:
        store = resolve(StoreSettings(url=url), None)
        assert store is not None
        engine = make_engine(store, name="test-spend", writer=True)
        try:
            sink = Sink(engine)
            await sink.write([row_of(r) for r in records])
            await sink.drop()
            return await job(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_spend_counts_each_record_once_from_the_window_start(store_url: str) -> None:
    records = [
        rec(at("2026-11-30T23:59:59"), 100.0, "k1", "red"),  # before the day
        rec(at("2026-12-01T00:00:00"), 1.0, "k1", "red"),
        rec(at("2026-12-01T09:10:00"), 2.0, "k1", "red"),
        rec(at("2026-12-01T09:40:30"), 4.0, "k1", "red"),
        rec(at("2026-12-01T09:40:40"), 8.0, "k2", "red"),
        rec(at("2026-12-01T11:00:00"), 16.0, "k1", None),
        rec(at("2026-12-01T11:00:01"), None, "k1", None),  # no cost known: nothing
        rec(at("2026-12-01T11:00:02"), 32.0, None, None),  # no key, no team
    ]
    day = period_start("day", at("2026-12-01T12:00"))

    async def job(engine: Any) -> dict[str, Any]:
        return {
            "k1_day": await spend_since(engine, "key", "k1", day),
            "k1_total": await spend_since(engine, "key", "k1", 0.0),
            "red_day": await spend_since(engine, "team", "red", day),
            # Inside an hour: the minutes from 09:40 on, then the hours from 10:00.
            "k1_from_0940": await spend_since(engine, "key", "k1", at("2026-12-01T09:40:15")),
            "k1_from_0941": await spend_since(engine, "key", "k1", at("2026-12-01T09:41:00")),
            "nobody": await spend_since(engine, "key", "k9", 0.0),
            "keys": await spend_all(engine, "key", day),
            "teams": await spend_all(engine, "team", 0.0),
        }

    got = run(store_url, records, job)
    assert got["k1_day"] == 1.0 + 2.0 + 4.0 + 16.0
    assert got["k1_total"] == 100.0 + 23.0
    assert got["red_day"] == 1.0 + 2.0 + 4.0 + 8.0
    assert got["k1_from_0940"] == 4.0 + 16.0
    assert got["k1_from_0941"] == 16.0
    assert got["nobody"] == 0.0
    assert got["keys"] == {"k1": 23.0, "k2": 8.0}  # no "" entry for keyless records
    assert got["teams"] == {"red": 115.0}


def test_spend_of_an_empty_store_is_zero(store_url: str, tmp_path: Path) -> None:
    async def job(engine: Any) -> tuple[float, dict[str, float]]:
        return await spend_since(engine, "team", "red", 0.0), await spend_all(engine, "key", 0.0)

    assert run(store_url, [], job) == (0.0, {})
