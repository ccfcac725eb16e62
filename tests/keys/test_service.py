"""The key service under the API, on SQLite and PostgreSQL: whole transactions, the
change counter that tells every process to reload, batched ``last_used_at``, and a
store that does not answer at start."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from modelrouter.config import parse
from modelrouter.governance.directory import KeyDirectory
from modelrouter.governance.watch import KeyService
from modelrouter.settings import Settings
from modelrouter.store import keyrows
from tests.keys.helpers import asql, store_of
from tests.subproc import free_port


def settings(url: str) -> Settings:
    data = {
        "providers": {"sim": {"kind": "simulated"}},
        "models": {"m": {"provider": "sim"}},
        "routes": {"default": {"models": ["m"]}},
        "teams": {"research": {"rpm": 100}},
        "store": {"url": url},
    }
    return parse(data, "test").settings


def service(url: str) -> KeyService:
    s = settings(url)
    return KeyService(s, store_of(url), KeyDirectory(s), poll_s=3600, flush_s=3600)


async def version(url: str) -> int:
    return int((await asql(url, "SELECT version FROM changes"))[0]["version"])


def test_a_write_that_fails_midway_leaves_nothing(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run() -> None:
        svc = service(store_url)
        await svc.start()
        try:
            assert svc.store is not None
            made = await svc.store.create_key({"name": "whole"})
            before = await version(store_url)

            async def broken(*args: Any) -> None:
                raise RuntimeError("the store went away mid-write")

            monkeypatch.setattr(keyrows, "get_key", broken)
            with pytest.raises(RuntimeError):
                await svc.store.create_key({"name": "half", "team": "research", "rpm": 5})
            monkeypatch.setattr(keyrows, "get_team", broken)
            with pytest.raises(RuntimeError):
                await svc.store.create_team({"name": "half-team"})
            monkeypatch.undo()
            monkeypatch.setattr(keyrows, "update_key", broken)
            with pytest.raises(RuntimeError):
                await svc.store.rotate_key(made["id"], {"grace_s": 60})
            monkeypatch.undo()
            assert await version(store_url) == before
            rows = await asql(store_url, "SELECT name, key_prefix, previous_hash FROM keys")
            assert rows == [
                {"name": "whole", "key_prefix": made["key_prefix"], "previous_hash": None}
            ]
            assert await asql(store_url, "SELECT name FROM teams") == []
        finally:
            await svc.aclose()

    asyncio.run(run())


def test_every_process_reloads_when_the_counter_moves_and_only_then(store_url: str) -> None:
    async def run() -> None:
        one, two = service(store_url), service(store_url)
        await one.start()
        await two.start()
        try:
            assert one.store is not None
            assert two.directory.open  # no key anywhere yet
            made = await one.store.create_key({"name": "shared", "rpm": 9})
            loads = two.reloads
            await two.refresh()
            assert two.reloads == loads + 1
            found = two.directory.identify(made["key"], 0.0)
            assert found is not None and found.key_id == made["id"]
            assert not two.directory.open and two.directory.identify(None, 0.0) is None
            await two.refresh()
            assert two.reloads == loads + 1  # nothing changed: nothing read but the counter
            await one.store.revoke_key(made["id"])
            await two.refresh()
            assert two.directory.identify(made["key"], 0.0) is None
            # The last key revoked: the router stays closed, it does not open to all.
            assert not two.directory.open and two.directory.identify(None, 0.0) is None
            assert two.health()["state"] == "ok" and two.health()["virtual_keys"] == 0
        finally:
            await one.aclose()
            await two.aclose()

    asyncio.run(run())


def test_last_use_is_written_in_batches_and_never_moves_back(store_url: str) -> None:
    async def run() -> None:
        one, two = service(store_url), service(store_url)
        await one.start()
        await two.start()
        try:
            assert one.store is not None
            made = await one.store.create_key({"name": "busy"})
            await one.load()
            await two.load()
            before = await version(store_url)
            for t in range(1000, 1100):
                found = one.directory.identify(made["key"], float(t))
                assert found is not None and found.key_id == made["id"]
            two.directory.identify(made["key"], 500.0)  # another worker, an older use
            await one.flush()
            await two.flush()
            rows = await asql(store_url, "SELECT last_used_at FROM keys")
            assert rows == [{"last_used_at": 1099 * 1_000_000}]
            assert await version(store_url) == before  # no reload anywhere for a use
            assert one.directory.used == {}
            await one.flush()  # nothing noted: nothing written
        finally:
            await one.aclose()
            await two.aclose()

    asyncio.run(run())


def test_a_store_that_does_not_answer_at_start_keeps_the_router_closed() -> None:
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"

    async def run() -> None:
        svc = service(url)
        await svc.start()
        try:
            assert not svc.directory.open
            assert svc.directory.identify(None, 0.0) is None
            health = svc.health()
            assert health["state"] == "stale" and health["last_error"]
            assert "nobody" not in str(health) or "password" not in str(health)
        finally:
            await svc.aclose()

    asyncio.run(run())


def test_changes_taken_in_one_by_one_equal_a_full_load(store_url: str) -> None:
    async def run() -> None:
        one, two, fresh = service(store_url), service(store_url), service(store_url)
        await one.start()
        await two.start()
        try:
            s = one.store
            assert s is not None
            await s.create_team({"name": "ops", "rpm": 7})
            a = await s.create_key({"name": "a", "team": "ops"})
            b = await s.create_key({"name": "b", "team": "research", "models": ["m"]})
            c = await s.create_key({"name": "c"})
            await two.refresh()
            rebuilds: list[int] = []
            full = two._rebuild

            def counted(*args: Any) -> None:
                rebuilds.append(1)
                full(*args)

            two._rebuild = counted  # type: ignore[method-assign]
            steps = [
                s.rotate_key(a["id"], {"grace_s": 600}),
                s.patch_key(b["id"], {"team": "ops", "tpm": 50}),
                s.revoke_key(c["id"]),
                s.rotate_key(a["id"], {}),  # ends the first rotation's grace too
                s.patch_team("ops", {"rpm": 8}),  # a team change: every identity anew
                s.create_key({"name": "d", "rpm": 1}),
            ]
            for step in steps:
                loads = two.reloads
                await step
                await two.refresh()
                assert two.reloads == loads + 1
                await fresh.start()
                assert dict(two.directory.virtual) == dict(fresh.directory.virtual)
                assert two.keys == fresh.keys and two.teams == fresh.teams
                await fresh.aclose()
            assert len(two.directory.virtual) == 3  # a, b, d: one secret each
            assert len(rebuilds) == 1  # the team change; each key change only its key
        finally:
            await one.aclose()
            await two.aclose()

    asyncio.run(run())
