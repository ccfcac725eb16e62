"""What the key tests share: a config with every kind of key, and admin calls."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import openai

from modelrouter.config import LoadedConfig
from modelrouter.settings import StoreSettings
from modelrouter.store.engine import resolve
from tests.router import RunningRouter, router_config
from tests.store.helpers import sql

ADMIN = "admin-key-for-keys"
API_KEY = "sk-unrestricted-for-keys"
CFG_SECRET = "cfg-secret-for-keys-0123456789"
IN_PRICE, OUT_PRICE = 1000.0, 2000.0
"""USD per million tokens: dear, so a few calls make a visible spend."""
MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


def config(url: str, **server: Any) -> LoadedConfig:
    """Two models, a route, a config team and a config key, admin and API keys."""
    price = {"input_cost_per_mtok": IN_PRICE, "output_cost_per_mtok": OUT_PRICE}
    return router_config(
        providers={"sim": {"kind": "simulated", "latency_ms": 1}},
        models={"m": {"provider": "sim", **price}, "n": {"provider": "sim", **price}},
        routes={"default": {"models": ["m"]}},
        server={"api_keys": [API_KEY], "admin_keys": [ADMIN], **server},
        store={"url": url},
        teams={"research": {"rpm": 1000, "models": ["default", "m"]}},
        keys={"ci": {"key": CFG_SECRET, "team": "research", "budget_usd": 50.0}},
    )


def admin(r: RunningRouter, method: str, path: str, body: Any = None, **kw: Any) -> httpx2.Response:
    """One admin call with the admin key."""
    headers = {"authorization": f"Bearer {ADMIN}", **kw.pop("headers", {})}
    return httpx2.request(method, r.url + path, json=body, headers=headers, timeout=10, **kw)


def ok(resp: httpx2.Response, status: int = 200) -> Any:
    """The JSON of an answer that must have ``status``."""
    assert resp.status_code == status, resp.text
    return resp.json()


def error_of(resp: httpx2.Response, status: int) -> dict[str, Any]:
    """The OpenAI-shaped error of an answer that must have ``status``."""
    assert resp.status_code == status, resp.text
    err: dict[str, Any] = resp.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    return err


def client(r: RunningRouter, key: str) -> openai.OpenAI:
    """The OpenAI SDK on the router with ``key`` (no retries: each refusal shows)."""
    return openai.OpenAI(base_url=r.base_url, api_key=key, max_retries=0)


def chat(r: RunningRouter, key: str, model: str = "default") -> str:
    """One chat completion with ``key``; the content of its answer."""
    answer = client(r, key).chat.completions.create(model=model, messages=MESSAGES)
    return answer.choices[0].message.content or ""


def dump_store(url: str) -> str:
    """Every row of every table as text (to look for secrets in)."""
    rows = []
    for table in ("calls", "usage_rollup", "keys", "teams", "changes"):
        rows += [repr(row) for row in sql(url, f"SELECT * FROM {table}")]
    return "\n".join(rows)


def wait_for(check: Any, timeout: float = 10, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def store_of(url: str) -> Any:
    """The resolved store of ``url``."""
    return resolve(StoreSettings(url=url), None)


async def asql(url: str, statement: str) -> list[dict[str, Any]]:
    """:func:`tests.store.helpers.sql` for code already inside an event loop."""
    from sqlalchemy import text

    from modelrouter.store.engine import make_engine

    engine = make_engine(store_of(url), name="test-read")
    try:
        async with engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(text(statement))]
    finally:
        await engine.dispose()
