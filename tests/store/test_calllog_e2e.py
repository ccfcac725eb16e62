"""The call log through the real server: the openai SDK and the mcp client in, the store
read back (admin API and SQL), on SQLite and PostgreSQL alike.

One router per engine serves a scripted scenario (fallback, stream, failures, refusals,
MCP); each test then checks one side of what the store made of it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx2
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.router import run_router
from tests.store.helpers import ADMIN, ADMIN_HEADERS, admin_get, sql, wait_records
from tests.store.scenario import (
    IN_PRICE,
    KEY,
    OTHER_KEY,
    OUT_PRICE,
    UPSTREAM_KEY,
    Scenario,
    config,
    run,
    store_for,
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def scenario(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    url = store_for(request.param, tmp_path_factory.mktemp(request.param))
    with (
        FakeUpstream.in_thread("primary", require_key=UPSTREAM_KEY) as first,
        FakeUpstream.in_thread("backup") as second,
        run_router(config(first, second, url)) as r,
    ):
        s = Scenario(r, url, time.time())
        run(s, first, second)
        wait_records(url, s.total)
        yield s


def record(s: Scenario, name: str) -> dict[str, Any]:
    return admin_get(s.router.url, f"/admin/logs/{s.ids[name]}")  # type: ignore[no-any-return]


def all_records(s: Scenario, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = admin_get(
            s.router.url, "/admin/logs", **params, **({"cursor": cursor} if cursor else {})
        )
        out += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return out


def test_every_field_of_a_fallback_record(scenario: Scenario) -> None:
    r = record(scenario, "fallback")
    assert r["request_id"] == "client-rid-1"
    assert r["id"] != r["request_id"]  # the client's id may repeat; the key is ours
    ts = datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp()
    assert scenario.started - 1 <= ts <= scenario.ended + 1
    attempts = r.pop("attempts")
    assert [(a["model"], a["provider"], a["outcome"], a["status"]) for a in attempts] == [
        ("first", "p1", "server", 500),
        ("second", "p2", "ok", 200),
    ]
    assert all(a["duration_ms"] > 0 for a in attempts)
    assert 0 < r.pop("latency_ms") < (scenario.ended - scenario.started) * 1000
    for name in ("id", "ts"):
        r.pop(name)
    assert r == {
        "request_id": "client-rid-1",
        "surface": "http",
        "endpoint": "/v1/chat/completions",
        "key_id": None,
        "key_name": None,
        "team": None,
        "route": "default",
        "requested_model": "default",
        "model": "second",
        "provider": "p2",
        "status": 200,
        "error_code": None,
        "stream": False,
        "ttft_ms": None,
        "input_tokens": 3,
        "output_tokens": 3,
        "cached_tokens": 0,  # the upstream reported no cache reads
        "cost_usd": 0.0,
        "price_unknown": True,  # "second" has no price configured
        "usage_estimated": False,
        "fallbacks": 1,
        "user": "alice",
        "tags": ["team-a", "nightly"],
    }


def test_a_stream_record_has_ttft_tokens_and_cost(scenario: Scenario) -> None:
    r = record(scenario, "stream")
    assert (r["stream"], r["status"], r["model"], r["fallbacks"]) == (True, 200, "first", 0)
    assert 0 < r["ttft_ms"] <= r["latency_ms"]
    assert (r["input_tokens"], r["output_tokens"], r["cached_tokens"]) == (3, 3, 2)
    assert r["cost_usd"] == pytest.approx((3 * IN_PRICE + 3 * OUT_PRICE) / 1e6, rel=1e-12)
    assert r["price_unknown"] is False
    assert r["error_code"] is None


def test_failures_and_refusals_are_recorded(scenario: Scenario) -> None:
    failed = record(scenario, "failed")
    assert (failed["status"], failed["error_code"], failed["model"]) == (
        502,
        "all_models_failed",
        None,
    )
    assert [(a["model"], a["status"]) for a in failed["attempts"]] == [
        ("first", 503),
        ("second", 500),
    ]
    assert failed["fallbacks"] == 1 and failed["input_tokens"] is None
    unknown = record(scenario, "unknown")
    assert (unknown["status"], unknown["error_code"], unknown["requested_model"]) == (
        404,
        "model_not_found",
        "nope",
    )
    assert unknown["route"] is None and unknown["attempts"] == []
    refused = record(scenario, "refused")
    assert (refused["status"], refused["error_code"]) == (401, "invalid_api_key")


def test_an_mcp_chat_is_recorded(scenario: Scenario) -> None:
    mcp = all_records(scenario, limit=1)
    assert len(mcp) == scenario.total  # (every page walked)
    newest = mcp[0]
    assert (newest["surface"], newest["endpoint"], newest["model"], newest["status"]) == (
        "mcp",
        "chat",
        "second",
        200,
    )
    assert newest["requested_model"] == "second" and newest["input_tokens"] == 3


def test_pages_return_each_record_exactly_once_newest_first(scenario: Scenario) -> None:
    for limit in (1, 4, 7, 1000):
        records = all_records(scenario, limit=limit)
        ids = [r["id"] for r in records]
        assert len(ids) == len(set(ids)) == scenario.total
        keys = [(r["ts"], r["id"]) for r in records]
        assert keys == sorted(keys, reverse=True)
    stored = {row["id"] for row in sql(scenario.url, "SELECT id FROM calls")}
    assert set(ids) == stored


def test_filters(scenario: Scenario) -> None:
    s = scenario

    def ids(**params: Any) -> set[str]:
        return {r["request_id"] for r in all_records(s, limit=5, **params)}

    bulk = {k: v for k, v in s.ids.items() if k.startswith("bulk")}
    on_first = {v for k, v in bulk.items() if int(k[4:]) % 3} | {s.ids["stream"]}
    assert ids(model="first") == on_first
    assert len(ids(model="second")) == 6 + 1 + 1  # bulk, fallback, MCP
    assert ids(route="first") == on_first
    assert ids(status="404") == {s.ids["unknown"]}
    assert ids(status="error") == {s.ids["failed"], s.ids["unknown"], s.ids["refused"]}
    assert ids(status="200") == {r["request_id"] for r in all_records(s)} - ids(status="error")
    assert ids(key="none-yet") == set() and ids(team="none-yet") == set()
    everything = all_records(s, limit=100)
    middle = everything[len(everything) // 2]["ts"]
    newer = {r["request_id"] for r in everything if r["ts"] >= middle}
    assert ids(since=middle) == newer
    assert ids(until=middle) == {r["request_id"] for r in everything} - newer
    assert ids(since="1h") == {r["request_id"] for r in everything}
    assert ids(since="2000-01-01T00:00:00Z", until="2000-01-02") == set()


DIMENSIONS = {
    "model": "model",
    "route": "route",
    "provider": "provider",
    "key": "key_id",
    "team": "team",
}
SUMMED = ("requests", "errors", "fallbacks", "input_tokens", "output_tokens", "cached_tokens")


def raw_sums(url: str, column: str) -> dict[str, dict[str, Any]]:
    rows = sql(
        url,
        f"SELECT coalesce({column}, '') AS value, count(*) AS requests,"
        " sum(CASE WHEN error_code IS NULL THEN 0 ELSE 1 END) AS errors,"
        " sum(fallbacks) AS fallbacks, coalesce(sum(input_tokens), 0) AS input_tokens,"
        " coalesce(sum(output_tokens), 0) AS output_tokens,"
        " coalesce(sum(cached_tokens), 0) AS cached_tokens,"
        f" coalesce(sum(cost_usd), 0) AS cost_usd FROM calls GROUP BY coalesce({column}, '')",
    )
    return {r["value"]: r for r in rows}


def test_rollups_equal_the_sum_of_raw_records(scenario: Scenario) -> None:
    for dim, column in DIMENSIONS.items():
        raw = raw_sums(scenario.url, column)
        assert sum(r["requests"] for r in raw.values()) == scenario.total
        for span in (60, 3600):
            rolled = sql(
                scenario.url,
                "SELECT value, sum(requests) AS requests, sum(errors) AS errors,"
                " sum(fallbacks) AS fallbacks, sum(input_tokens) AS input_tokens,"
                " sum(output_tokens) AS output_tokens, sum(cached_tokens) AS cached_tokens,"
                " sum(cost_usd) AS cost_usd FROM usage_rollup"
                " WHERE bucket_s = :span AND dim = :dim GROUP BY value",
                span=span,
                dim=dim,
            )
            assert {r["value"] for r in rolled} == set(raw), (dim, span)
            for r in rolled:
                want = raw[r["value"]]
                assert [int(r[n]) for n in SUMMED] == [int(want[n]) for n in SUMMED], (dim, r)
                assert float(r["cost_usd"]) == pytest.approx(float(want["cost_usd"]), rel=1e-9)
        usage = admin_get(scenario.router.url, "/admin/usage", since="2h", group_by=dim)
        by_group = {s["group"] or "": s["totals"] for s in usage["series"]}
        assert set(by_group) == set(raw)
        for value, want in raw.items():
            got = by_group[value]
            assert [got[n] for n in SUMMED] == [int(want[n]) for n in SUMMED], (dim, value)
            assert got["cost_usd"] == pytest.approx(float(want["cost_usd"]), rel=1e-9)
        assert usage["totals"]["requests"] == scenario.total
    minute = admin_get(scenario.router.url, "/admin/usage", since="1h", interval="1m")
    assert minute["totals"]["requests"] == scenario.total
    daily = admin_get(scenario.router.url, "/admin/usage", since="2d", interval="1d")
    assert daily["totals"]["requests"] == scenario.total


def test_usage_percentiles_come_from_the_histograms(scenario: Scenario) -> None:
    latencies = sorted(
        float(r["latency_ms"])
        for r in sql(scenario.url, "SELECT latency_ms FROM calls WHERE model = 'first'")
    )
    usage = admin_get(scenario.router.url, "/admin/usage", since="2h", group_by="route")
    first = next(s for s in usage["series"] if s["group"] == "first")["totals"]
    # Within one histogram bucket (a factor of sqrt(2)) of the exact quantile.
    exact = latencies[len(latencies) // 2]
    assert exact / 2**0.5 <= first["latency_p50_ms"] <= exact * 2**0.5


def test_no_secret_reaches_the_store(scenario: Scenario) -> None:
    rows = sql(scenario.url, "SELECT * FROM calls")
    dump = repr(rows) + repr(sql(scenario.url, "SELECT * FROM usage_rollup"))
    for secret in (KEY, UPSTREAM_KEY, OTHER_KEY, ADMIN, "wrong-key-xyz"):
        assert secret not in dump
    # Bodies are kept only with server.log_bodies.
    assert all(r["request_body"] is None and r["response_body"] is None for r in rows)


def test_admin_surface_needs_an_admin_key(scenario: Scenario) -> None:
    base = scenario.router.url
    for headers in ({}, {"authorization": f"Bearer {KEY}"}, {"authorization": "Bearer nope"}):
        resp = httpx2.get(base + "/admin/logs", headers=headers, timeout=5)
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "invalid_api_key"
    for path, param in [
        ("/admin/logs?limit=0", "limit"),
        ("/admin/logs?limit=1001", "limit"),
        ("/admin/logs?status=oops", "status"),
        ("/admin/logs?since=yesterday", "since"),
        ("/admin/logs?cursor=zzz", "cursor"),
        ("/admin/usage?interval=5m", "interval"),
        ("/admin/usage?group_by=user", "group_by"),
        ("/admin/usage?interval=1m&since=3d", "since"),
    ]:
        resp = httpx2.get(base + path, headers=ADMIN_HEADERS, timeout=5)
        assert resp.status_code == 400, path
        assert resp.json()["error"]["param"] == param
    resp = httpx2.get(base + "/admin/logs/no-such-id", headers=ADMIN_HEADERS, timeout=5)
    assert resp.status_code == 404


def test_health_shows_the_store_and_hides_its_address_without_a_key(scenario: Scenario) -> None:
    base = scenario.router.url
    full = httpx2.get(base + "/health", headers={"authorization": f"Bearer {KEY}"}, timeout=5)
    store = full.json()["store"]
    assert store["state"] == "ok" and store["spool_depth"] == 0 and store["dropped"] == 0
    assert store["written"] >= scenario.total and store["url"]
    public = httpx2.get(base + "/health", timeout=5).json()["store"]
    assert public["state"] == "ok" and public["spool_depth"] == 0
    assert "url" not in public and "spool_dir" not in public and "last_error" not in public
