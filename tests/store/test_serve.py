"""``modelrouter serve`` as a real process: SIGTERM under load, ``--workers 2`` on one
SQLite file, and a spool that hits the file-size limit (as on a full disk)."""

from __future__ import annotations

import asyncio
import resource
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from tests.store.helpers import sql, upgrade, wait_until
from tests.store.load import CUT, Load
from tests.store.load import KEY as LOAD_KEY
from tests.store.proxy import TcpProxy
from tests.store.services import PG_HOST, PG_PORT, require_pg, reset_pg
from tests.subproc import CLI, child_env, free_port

CONFIG = """
[server]
drain_s = 10
api_keys = ["{key}"]

[providers.sim]
kind = "simulated"
latency_ms = 2

[models.m]
provider = "sim"

[routes.default]
models = ["m"]

[store]
url = "{url}"
spool_dir = "{spool}"
"""


@contextmanager
def serve(
    tmp: Path, url: str, *args: str, limit_files: int | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``modelrouter serve`` on a free port; yields the process and its base URL."""
    cfg = tmp / "modelrouter.toml"
    cfg.write_text(CONFIG.format(url=url, spool=tmp / "spool", key=LOAD_KEY))
    port = free_port()

    def limits() -> None:
        if limit_files is not None:
            # Past the limit a write fails with EFBIG (as ENOSPC on a full disk), and the
            # signal that would otherwise kill the process is ignored.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_files, limit_files))

    # stderr to a file: a pipe nobody reads would fill up (an access-log line per request)
    # and block the server.
    log = tmp / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [*CLI, "serve", "--config", str(cfg), "--port", str(port), *args],
            cwd=tmp,
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            preexec_fn=limits,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(proc, base, log), timeout=30, what="the server to start")
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _ready(proc: subprocess.Popen[str], base: str, log: Path) -> bool:
    assert proc.poll() is None, log.read_text()
    try:
        return httpx2.get(base + "/healthz", timeout=1).status_code == 200
    except httpx2.HTTPError:
        return False


def engine_url(engine: str, tmp: Path) -> str:
    if engine == "sqlite":
        return f"sqlite:///{tmp / 'calls.db'}"
    url = require_pg()
    asyncio.run(reset_pg(url))
    upgrade(url)
    return url


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_sigterm_under_load_loses_no_record(engine: str, tmp_path: Path) -> None:
    url = engine_url(engine, tmp_path)
    with serve(tmp_path, url) as (proc, base):
        load = Load(base, threads=8).start()
        wait_until(lambda: load.count >= 300, what="load")
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        load.stop()
    assert proc.returncode in (0, -signal.SIGTERM), (tmp_path / "serve.log").read_text()
    stored = {row["id"] for row in sql(url, "SELECT id FROM calls")}
    assert len(load.answered) >= 300
    missing = set(load.answered) - stored
    log = (tmp_path / "serve.log").read_text().splitlines()
    notes = [line for line in log if not line.startswith("{")]
    lines = len(log) - len(notes)
    assert not missing, (
        f"{len(missing)} of {len(load.answered)} have no record; {lines} log lines; {notes}"
    )
    assert set(load.answered.values()) <= {200, CUT}
    # Written straight to the store, not left in the spool.
    assert not list((tmp_path / "spool").glob("*.jsonl"))


def test_two_workers_share_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    with serve(tmp_path, url, "--workers", "2") as (proc, base):
        load = Load(base, threads=8, keepalive=False).start()

        def stored() -> set[str]:
            return {row["id"] for row in sql(url, "SELECT id FROM calls")}

        def both_writing() -> bool:
            # Each worker writes with its own process-unique id prefix; the second one
            # may still be starting when the load begins.
            return load.count >= 300 and len({rid[:12] for rid in stored()}) == 2

        wait_until(both_writing, timeout=30, what="records from both workers")
        load.stop()
        wait_until(lambda: set(load.answered) <= stored(), what="every record stored")
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    ids = stored()
    assert len(ids) == len(load.answered)
    assert len({rid[:12] for rid in ids}) == 2
    rolled = sql(
        url, "SELECT sum(requests) AS n FROM usage_rollup WHERE bucket_s = 3600 AND dim = 'team'"
    )
    assert rolled[0]["n"] == len(ids)


def test_a_full_disk_for_the_spool_is_reported_not_a_crash(tmp_path: Path) -> None:
    pg = engine_url("postgresql", tmp_path)
    with TcpProxy((PG_HOST, PG_PORT)) as proxy:
        proxy.stop()  # the store is down from the start: records go to the spool
        proxied = pg.replace(f"{PG_HOST}:{PG_PORT}", f"127.0.0.1:{proxy.port}")
        with serve(tmp_path, proxied, limit_files=32 * 1024) as (proc, base):
            load = Load(base, threads=4, stream_every=0).start()

            def store() -> dict[str, object]:
                auth = {"authorization": f"Bearer {LOAD_KEY}"}
                h: dict[str, object] = httpx2.get(
                    base + "/health", headers=auth, timeout=10
                ).json()["store"]
                return h

            wait_until(lambda: bool(store()["spool_error"]), what="the spool write failing")
            health = store()
            assert "File too large" in str(health["spool_error"])
            assert health["queue_depth"]  # held in memory while neither can take them
            wait_until(lambda: load.count > int(str(store()["spooled"])) + 200, what="more load")
            proxy.start()
            load.stop()
            wait_until(
                lambda: store()["queue_depth"] == 0 and store()["spool_depth"] == 0,
                timeout=30,
                what="everything written once the store is back",
            )
            assert store()["dropped"] == 0
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    stored = [row["id"] for row in sql(pg, "SELECT id FROM calls")]
    assert len(stored) == len(set(stored)) == len(load.answered)
    assert set(stored) == set(load.answered)
