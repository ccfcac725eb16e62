"""A big call log, fast: rows written straight into a SQLite store with their roll-ups.

For the dashboard's first-render bound (≤ 1 s with a million logged requests): the
rows go in through ``sqlite3`` in one transaction (``executemany``; no router, no
writer), spread over the last seven days, with the per-hour and per-minute roll-ups
the writer would have made (:func:`modelrouter.store.rollup.rollup_rows`, summed
across chunks). Per-minute roll-ups are kept for the last two days only, as in a
real store.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson

from modelrouter.store.record import COLUMNS
from modelrouter.store.rollup import COLUMNS as ROLLUP_COLUMNS
from modelrouter.store.rollup import MINUTE, MINUTE_KEEP_S, rollup_rows
from tests.store.helpers import upgrade

MODELS = [("gpt-small", "openai"), ("gpt-large", "openai"), ("sonnet", "claude"), ("local", "vllm")]
ROUTES = ["default", "fast"]
KEYS = [(f"key-{i:03d}", f"bot-{i}", f"team-{i % 3}") for i in range(20)]
CHUNK = 50_000
SPAN_S = 7 * 86400


def _attempts(model: str, provider: str, ok: bool, ms: float) -> str:
    outcome = "ok" if ok else "server"
    status = 200 if ok else 502
    one = {
        "model": model,
        "provider": provider,
        "status": status,
        "error": None,
        "duration_ms": ms,
        "outcome": outcome,
    }
    return orjson.dumps([one]).decode()


def _rows(start: int, count: int, n: int, now: float, rng: random.Random) -> list[tuple[Any, ...]]:
    rows = []
    for i in range(start, start + count):
        model, provider = MODELS[i % len(MODELS)]
        key_id, key_name, team = KEYS[i % len(KEYS)] if i % 4 else (None, None, None)
        ok = i % 50 != 0
        latency = rng.lognormvariate(5.5, 0.6)
        ts = int((now - SPAN_S * (i + 0.5) / n) * 1_000_000)  # record 0 is the newest
        row = {
            "id": f"bulk{i:012x}",
            "request_id": None,
            "ts": ts,
            "surface": "http",
            "endpoint": "/v1/chat/completions",
            "key_id": key_id,
            "key_name": key_name,
            "team": team,
            "route": ROUTES[i % 2],
            "requested_model": ROUTES[i % 2],
            "model": model if ok else None,
            "provider": provider if ok else None,
            "status": 200 if ok else 502,
            "error_code": None if ok else "all_models_failed",
            "stream": i % 3 == 0,
            "latency_ms": latency,
            "ttft_ms": latency / 3 if i % 3 == 0 else None,
            "input_tokens": 120 if ok else None,
            "output_tokens": 80 if ok else None,
            "cached_tokens": 0 if ok else None,
            "cost_usd": 0.0004 if ok else None,
            "fallbacks": 0 if ok else 1,
            "attempts": _attempts(model, provider, ok, latency),
            "user": None,
            "tags": None,
            "request_body": None,
            "response_body": None,
            "price_unknown": False,
            "usage_estimated": False,
        }
        rows.append(tuple(row[c] for c in COLUMNS))
    return rows


def _insert(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"


def fill_store(path: Path, n: int, now: float | None = None) -> float:
    """Write ``n`` call records (and their roll-ups) into a new SQLite store; seconds taken."""
    started = time.monotonic()
    now = time.time() if now is None else now
    url = f"sqlite:///{path}"
    upgrade(url)
    rng = random.Random(7)
    sums: dict[tuple[Any, ...], list[Any]] = {}
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    with db:
        for start in range(0, n, CHUNK):
            rows = _rows(start, min(CHUNK, n - start), n, now, rng)
            db.executemany(_insert("calls", COLUMNS), rows)
            for r in rollup_rows(rows):
                key, values = r[:4], r[4:]
                acc = sums.get(key)
                if acc is None:
                    sums[key] = list(values)
                else:
                    for j, v in enumerate(values):
                        acc[j] += v
        keep = now - MINUTE_KEEP_S
        rollups = [(*k, *v) for k, v in sums.items() if k[0] != MINUTE or k[1] >= keep]
        db.executemany(_insert("usage_rollup", ROLLUP_COLUMNS), rollups)
    db.execute("ANALYZE")
    db.close()
    return time.monotonic() - started
