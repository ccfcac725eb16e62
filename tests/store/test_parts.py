"""The store's parts on their own: spool, roll-ups, times, cost, the writer's paths,
retention (the last two on both engines)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import String
from sqlalchemy.dialects import sqlite

from modelrouter import recording
from modelrouter.errors import Attempt
from modelrouter.settings import StoreSettings
from modelrouter.store import retention, writer
from modelrouter.store.engine import make_engine, resolve
from modelrouter.store.queries import LogFilter, encode_cursor, get_log, logs_statement
from modelrouter.store.record import CallRecord, row_dict, row_of
from modelrouter.store.rollup import BOUNDS_MS, bucket_of, percentile, rollup_rows
from modelrouter.store.rollup import COLUMNS as ROLLUP_COLUMNS
from modelrouter.store.schema import calls
from modelrouter.store.sink import Sink
from modelrouter.store.spool import Spool
from modelrouter.store.timespec import iso, parse_time
from modelrouter.store.writer import Writer
from tests.store.helpers import count, sql, upgrade
from tests.store.services import require_pg, reset_pg


def rec(n: int, *, ts: float | None = None, **kw: Any) -> CallRecord:
    fields: dict[str, Any] = dict(
        id=f"rec{n:06d}",
        request_id=f"rec{n:06d}",
        ts=time.time() if ts is None else ts,
        surface="http",
        endpoint="/v1/chat/completions",
        route="default",
        requested_model="default",
        model="m",
        provider="p",
        status=200,
        error_code=None,
        stream=False,
        latency_ms=12.5,
        ttft_ms=None,
        input_tokens=10,
        output_tokens=5,
        cached_tokens=None,
        cost_usd=0.001,
        price_unknown=False,
        usage_estimated=False,
        fallbacks=0,
        attempts=[Attempt("m", "p", 200, None, 12.0, "ok")],
        user=None,
        tags=(),
    )
    fields.update(kw)
    return CallRecord(**fields)


# --- spool -----------------------------------------------------------------------------


def test_spool_reads_back_in_order_and_deletes_what_was_stored(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    assert spool.read(10) is None and not spool.pending
    spool.append([row_of(rec(i)) for i in range(3)])
    chunk = spool.read(2)  # closes the active segment: later rows go to a new one
    assert chunk is not None and [r[0] for r in chunk.rows] == ["rec000000", "rec000001"]
    spool.append([row_of(rec(3))])
    spool.done(chunk)
    assert spool.depth == 2
    rest = spool.read(10)
    assert rest is not None and [r[0] for r in rest.rows] == ["rec000002"]
    spool.done(rest)
    last = spool.read(10)
    assert last is not None and [r[0] for r in last.rows] == ["rec000003"]
    spool.done(last)
    assert spool.depth == 0 and not spool.pending
    assert list(tmp_path.glob("*.jsonl")) == []  # every segment replayed and deleted
    spool.close()
    assert list(tmp_path.iterdir()) == []


def test_a_dead_processes_spool_is_adopted_first_and_a_live_one_is_not(tmp_path: Path) -> None:
    dead, alive, me = Spool(tmp_path), Spool(tmp_path), Spool(tmp_path)
    dead.append([row_of(rec(i)) for i in range(2)])
    alive.append([row_of(rec(10))])
    me.append([row_of(rec(20))])
    # The dead process's lock goes away with it (its files stay).
    assert dead._lock_fd is not None
    os.close(dead._lock_fd)
    assert me.adopt_orphans() == 2
    assert me.adopt_orphans() == 0  # already adopted
    chunk = me.read(10)
    assert chunk is not None and [r[0] for r in chunk.rows] == ["rec000000", "rec000001"]
    me.done(chunk)
    assert not list(tmp_path.glob(f"{dead.prefix}*"))  # segments and lock gone
    nxt = me.read(10)
    assert nxt is not None and [r[0] for r in nxt.rows] == ["rec000020"]
    assert alive.depth == 1  # untouched: its owner holds the lock
    fd = os.open(tmp_path / f"{alive.prefix}.lock", os.O_RDWR)
    with pytest.raises(BlockingIOError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)


def test_a_corrupt_spool_line_is_skipped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([row_of(rec(1))])
    segment = next(tmp_path.glob("*.jsonl"))
    with segment.open("ab") as f:
        f.write(b'{"id": "half-writ\n')
    spool._segments[0].rows += 1
    spool.append([row_of(rec(2))])
    chunk = spool.read(10)
    assert chunk is not None and [r[0] for r in chunk.rows] == ["rec000001", "rec000002"]
    assert spool.corrupt == 1
    spool.done(chunk)
    assert spool.depth == 0


def test_a_spool_row_from_an_older_writer_gets_every_column(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    old = row_dict(row_of(rec(1)))
    del old["price_unknown"], old["usage_estimated"]
    spool.directory.mkdir(exist_ok=True)
    # Left by a process of an older version that ended (its lock file is not locked).
    (tmp_path / "old-writer.00000001.jsonl").write_bytes(orjson.dumps(old) + b"\n")
    (tmp_path / "old-writer.lock").write_bytes(b"")
    assert spool.adopt_orphans() == 1
    chunk = spool.read(1)
    assert chunk is not None
    row = row_dict(chunk.rows[0])
    assert row["price_unknown"] is False and row["usage_estimated"] is False
    assert row["id"] == "rec000001"


# --- roll-ups, times, cost ---------------------------------------------------------------


def test_latency_histogram_and_percentiles() -> None:
    assert bucket_of(0.1) == 0 and bucket_of(0.25) == 0 and bucket_of(0.26) == 1
    assert bucket_of(10**9) == len(BOUNDS_MS)  # the overflow bucket
    latencies = [1.0 + i for i in range(100)]  # 1..100 ms
    hist = [0] * (len(BOUNDS_MS) + 1)
    for v in latencies:
        hist[bucket_of(v)] += 1
    for q, exact in ((0.5, 50.5), (0.95, 95.5)):
        got = percentile(hist, q)
        assert got is not None and exact / 2**0.5 <= got <= exact * 2**0.5
    assert percentile([0] * len(hist), 0.5) is None


def test_rollup_rows_sum_per_minute_hour_dimension_and_value() -> None:
    hour = 1_800_000_000 - 1_800_000_000 % 3600
    rows = [
        row_of(rec(1, ts=hour + 10, model="a", team="x")),
        row_of(rec(2, ts=hour + 70, model="a", error_code="e", fallbacks=2)),
        row_of(rec(3, ts=hour + 80, model=None, cost_usd=None, input_tokens=None)),
    ]
    rolled = [dict(zip(ROLLUP_COLUMNS, r, strict=True)) for r in rollup_rows(rows)]
    out = {(r["bucket_s"], r["t"], r["dim"], r["value"]): r for r in rolled}
    models = {k for k in out if k[2] == "model"}
    assert models == {
        (60, hour, "model", "a"),
        (60, hour + 60, "model", "a"),
        (60, hour + 60, "model", ""),
        (3600, hour, "model", "a"),
        (3600, hour, "model", ""),
    }
    a = out[(3600, hour, "model", "a")]
    assert (a["requests"], a["errors"], a["fallbacks"], a["input_tokens"]) == (2, 1, 2, 20)
    assert a["cost_usd"] == pytest.approx(0.002)
    none = out[(3600, hour, "model", "")]
    assert (none["requests"], none["input_tokens"], none["cost_usd"]) == (1, 0, 0)
    # Every request counts once in every dimension.
    for dim in ("model", "route", "provider", "key", "team"):
        hourly = [r for k, r in out.items() if k[0] == 3600 and k[2] == dim]
        assert sum(r["requests"] for r in hourly) == 3, dim
    assert out[(3600, hour, "team", "x")]["requests"] == 1
    assert out[(3600, hour, "team", "")]["requests"] == 2
    assert sum(r["lat_" + f"{bucket_of(12.5):02d}"] for r in hourly) == 3


def test_times() -> None:
    now = 1_800_000_000.0
    assert parse_time("15m", now=now) == now - 900
    assert parse_time("24h", now=now) == now - 86400
    assert parse_time("7d", now=now) == now - 7 * 86400
    assert parse_time("2027-01-15T10:00:00Z") == parse_time("2027-01-15T10:00:00")
    assert parse_time("2027-01-15T11:00:00+01:00") == parse_time("2027-01-15T10:00:00Z")
    assert iso(parse_time("2027-01-15T10:00:00.5Z")) == "2027-01-15T10:00:00.500000Z"
    with pytest.raises(ValueError, match="neither an ISO time"):
        parse_time("yesterday")


def test_tags_and_fallbacks() -> None:
    # Tokens and cost: tests/test_cost.py and tests/test_cost_math.py.
    assert recording.parse_tags(" a, b ,,c ") == ("a", "b", "c")
    assert len(recording.parse_tags(",".join(["t"] * 40))) == recording.MAX_TAGS
    trail = [
        Attempt("a", "p", None, "capability", 0, "skipped"),
        Attempt("b", "p", 500, "x", 1, "server"),
        Attempt("c", "p", 200, None, 1, "ok"),
    ]
    assert recording.fallbacks_of(trail) == 1


def test_a_record_row_fits_its_columns_and_holds_no_nul() -> None:
    long = "x" * 1000
    row = row_dict(
        row_of(
            rec(
                1,
                request_id=long,
                endpoint=long,
                route=long,
                requested_model=long,
                model=long,
                provider=long,
                key_id=long,
                key_name=long,
                team=long,
                error_code=long,
                user="a\x00" + long,
            )
        )
    )
    assert list(row) == [c.name for c in calls.columns]
    ours = {"id", "surface"}  # made by the router itself, never long
    for column in calls.columns:
        if isinstance(column.type, String) and column.type.length and column.name not in ours:
            assert len(row[column.name]) == column.type.length, column.name
    assert "\x00" not in row["user"]
    assert row_dict(row_of(rec(2, user="a\x00b")))["user"] == "ab"
    attempts = orjson.loads(row["attempts"])
    assert [(a["model"], a["outcome"], a["status"]) for a in attempts] == [("m", "ok", 200)]


# --- the writer and retention, on both engines ------------------------------------------


def _writer(url: str, spool_dir: Path) -> tuple[Writer, Any]:
    store = resolve(StoreSettings(url=url), None)
    assert store is not None
    engine = make_engine(store, name="test-writer", writer=True)

    async def verify() -> None:
        pass

    return Writer(Sink(engine), Spool(spool_dir), queue_size=100_000, verify=verify), engine


def test_a_store_slower_than_the_traffic_is_caught_up_through_the_spool(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "HIGH_WATER", 50)

    async def run() -> tuple[int, int]:
        w, engine = _writer(store_url, tmp_path / "spool")
        w.state, w.verified = writer.OK, True
        for i in range(500):
            w.put(rec(i))
        await w.cycle()  # past the high-water mark: the queue goes to the spool
        spooled = w.spooled
        while w.spool.pending or w.queue:
            await w.cycle()
        await w.finish(5)
        await engine.dispose()
        return spooled, w.written

    spooled, written = asyncio.run(run())
    assert spooled == 500 and written == 500
    assert count(store_url) == 500


def test_rows_the_store_refuses_are_set_aside_and_the_rest_stored(tmp_path: Path) -> None:
    # PostgreSQL only: SQLite stores any integer, so it has no row to refuse.
    store_url = require_pg()
    asyncio.run(reset_pg(store_url))
    upgrade(store_url)

    async def run() -> Writer:
        w, engine = _writer(store_url, tmp_path / "spool")
        w.state, w.verified = writer.OK, True
        for i in range(5):
            w.put(rec(i, input_tokens=2**40 if i == 2 else 10))  # over PostgreSQL's integer
        await w.cycle()
        await w.finish(5)
        await engine.dispose()
        return w

    w = asyncio.run(run())
    assert (w.written, w.rejected) == (4, 1)
    assert count(store_url) == 4
    rejected = (tmp_path / "spool" / "rejected.jsonl").read_text().splitlines()
    assert [orjson.loads(line)["row"]["id"] for line in rejected] == ["rec000002"]


def test_retention_deletes_old_rows_in_batches_and_keeps_hourly_rollups(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "BATCH", 3)
    now = time.time()

    async def run() -> int:
        store = resolve(StoreSettings(url=store_url), None)
        assert store is not None
        engine = make_engine(store, name="test-retention", writer=True)
        sink = Sink(engine)
        ages = [40] * 7 + [31] + [29, 3, 1, 0]
        await sink.write([row_of(rec(i, ts=now - d * 86400)) for i, d in enumerate(ages)])
        gone = await retention.sweep(engine, 30, now=now)
        await sink.drop()
        await engine.dispose()
        return gone

    assert asyncio.run(run()) == 8
    assert count(store_url) == 4
    hourly = sql(
        store_url,
        "SELECT sum(requests) AS n FROM usage_rollup WHERE bucket_s = 3600 AND dim = 'team'",
    )
    assert int(hourly[0]["n"]) == 12  # roll-ups outlive the rows they sum
    minute = sql(store_url, "SELECT t FROM usage_rollup WHERE bucket_s = 60 AND dim = 'model'")
    assert len(minute) == 2 and all(r["t"] >= now - 2 * 86400 - 60 for r in minute)


@pytest.mark.parametrize(
    ("filt", "index"),
    [
        (LogFilter(), "ix_calls_ts"),
        (LogFilter(since=1.0, until=2.0), "ix_calls_ts"),
        (LogFilter(model="m"), "ix_calls_model_ts"),
        (LogFilter(route="r"), "ix_calls_route_ts"),
        (LogFilter(key="k"), "ix_calls_key_ts"),
        (LogFilter(team="t"), "ix_calls_team_ts"),
        (LogFilter(status="error"), "ix_calls_errors_ts"),
        (LogFilter(status="502"), "ix_calls_errors_ts"),
    ],
)
def test_each_log_filter_is_an_index_range_scan_without_sorting(
    tmp_path: Path, filt: LogFilter, index: str
) -> None:
    url = f"sqlite:///{tmp_path / 'plan.db'}"
    upgrade(url)
    cursor = encode_cursor(10**15, "zzz")
    for page in (None, cursor):
        stmt = logs_statement(filt, 100, page).compile(
            dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
        )
        plan = " | ".join(r["detail"] for r in sql(url, f"EXPLAIN QUERY PLAN {stmt}"))
        assert f"INDEX {index}" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # rows come out in index order


def test_a_record_is_found_by_id_and_by_the_clients_request_id(store_url: str) -> None:
    write = [rec(1), rec(2, request_id="client-1"), rec(3, request_id="client-1")]

    async def run() -> list[Any]:
        store = resolve(StoreSettings(url=store_url), None)
        assert store is not None
        engine = make_engine(store, name="test-lookup", writer=True)
        sink = Sink(engine)
        await sink.write([row_of(r) for r in write])
        await sink.drop()
        found = [await get_log(engine, key) for key in ("rec000001", "client-1", "rec000002", "x")]
        await engine.dispose()
        return found

    by_id, by_client, second, missing = asyncio.run(run())
    assert (by_id["id"], by_id["request_id"]) == ("rec000001", "rec000001")
    assert (by_client["id"], by_client["request_id"]) == ("rec000003", "client-1")  # newest
    assert (second["id"], second["request_id"]) == ("rec000002", "client-1")
    assert missing is None
    stored = sql(store_url, "SELECT id, request_id FROM calls ORDER BY id")
    assert [r["request_id"] for r in stored] == [None, "client-1", "client-1"]
