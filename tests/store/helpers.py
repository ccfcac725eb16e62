"""What the store tests share: schema set-up, direct reads, waiting for the writer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx2
from sqlalchemy import text

from modelrouter.settings import StoreSettings
from modelrouter.store import migrate
from modelrouter.store.engine import make_engine, resolve

ADMIN = "admin-key-1"
ADMIN_HEADERS = {"authorization": f"Bearer {ADMIN}"}


def _store(url: str) -> Any:
    store = resolve(StoreSettings(url=url), None)
    assert store is not None
    return store


def upgrade(url: str, target: str = "head") -> tuple[str | None, str | None]:
    """Migrate the store at ``url`` to ``target``."""

    async def run() -> tuple[str | None, str | None]:
        engine = make_engine(_store(url), name="test-migrate", writer=True)
        try:
            return await migrate.upgrade(engine, target)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def sql(url: str, statement: str, **params: Any) -> list[dict[str, Any]]:
    """Run one statement on the store directly; its rows as dicts."""

    async def run() -> list[dict[str, Any]]:
        engine = make_engine(_store(url), name="test-read", writer=True)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement), params)
                return [dict(r._mapping) for r in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def wait_until(check: Callable[[], bool], timeout: float = 15, what: str = "condition") -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def count(url: str, where: str = "1=1") -> int:
    """Rows in ``calls`` matching ``where``."""
    return int(sql(url, f"SELECT count(*) AS n FROM calls WHERE {where}")[0]["n"])


def wait_records(url: str, n: int, timeout: float = 15) -> None:
    """Wait until the store holds at least ``n`` call records."""
    wait_until(lambda: count(url) >= n, timeout, f"{n} records in the store")


def admin_get(base: str, path: str, **params: Any) -> Any:
    """GET an admin endpoint with the admin key; the JSON answer (200 asserted)."""
    resp = httpx2.get(base + path, params=params, headers=ADMIN_HEADERS, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()
