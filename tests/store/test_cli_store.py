"""``modelrouter logs``, ``usage`` and ``db upgrade`` as real commands on a real store."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from modelrouter.cli import main
from modelrouter.settings import StoreSettings
from modelrouter.store import migrate
from modelrouter.store.engine import make_engine, resolve
from modelrouter.store.record import row_of
from modelrouter.store.sink import Sink
from tests.store.helpers import upgrade
from tests.store.test_parts import rec
from tests.subproc import CLI, child_env, free_port


def config(tmp: Path, url: str) -> Path:
    cfg = tmp / "modelrouter.toml"
    cfg.write_text(
        '[providers.sim]\nkind = "simulated"\n[models.m]\nprovider = "sim"\n'
        f'[routes.default]\nmodels = ["m"]\n[store]\nurl = "{url}"\n'
    )
    return cfg


def cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``modelrouter`` command in a child process."""
    return subprocess.run(
        [*CLI, *args, "--config", str(cfg)],
        cwd=cfg.parent,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )


def run_main(capsys: pytest.CaptureFixture[str], cfg: Path, *args: str) -> tuple[int, str, str]:
    """The same command through ``modelrouter.cli.main`` in this process (faster)."""
    code = main([*args, "--config", str(cfg)])
    out, err = capsys.readouterr()
    return code, out, err


def write(url: str, records: list[Any]) -> None:
    async def run() -> None:
        store = resolve(StoreSettings(url=url), None)
        assert store is not None
        engine = make_engine(store, name="test-fill", writer=True)
        sink = Sink(engine)
        await sink.write([row_of(r) for r in records])
        await sink.drop()
        await engine.dispose()

    asyncio.run(run())


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, str]:
    # SQLite only: the queries behind these commands run on both engines in the admin
    # API tests; here it is the commands themselves.
    store_url = f"sqlite:///{tmp_path / 'calls.db'}"
    upgrade(store_url)
    now = time.time()
    records = [rec(i, ts=now - 100 + i, model="a" if i % 2 else "b") for i in range(10)]
    records.append(rec(10, ts=now - 50, model=None, status=502, error_code="all_models_failed"))
    write(store_url, records)
    return config(tmp_path, store_url), store_url


def test_logs_prints_a_table_oldest_first_and_json_with_filters(
    filled: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, _ = filled
    out = cli(cfg, "logs", "--limit", "4")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["TIME", "(UTC)", "STATUS"]
    # The newest four, printed oldest first (as a log reads).
    assert [line.split()[-1] for line in lines[1:]] == [
        "rec000007",
        "rec000008",
        "rec000009",
        "rec000010",
    ]
    assert lines[-1].split()[2:6] == ["502", "http", "default", "-"]
    code, stdout, _ = run_main(capsys, cfg, "logs", "--json", "--model", "a")
    records = [json.loads(line) for line in stdout.splitlines()]
    assert code == 0 and [r["id"] for r in records] == [f"rec{i:06d}" for i in (1, 3, 5, 7, 9)]
    code, stdout, _ = run_main(capsys, cfg, "logs", "--json", "--status", "error")
    assert [json.loads(line)["error_code"] for line in stdout.splitlines()] == ["all_models_failed"]
    code, _, stderr = run_main(capsys, cfg, "logs", "--status", "oops")
    assert code == 2 and "HTTP status code" in stderr
    code, _, stderr = run_main(capsys, cfg, "logs", "--since", "last week")
    assert code == 2 and "--since" in stderr


def test_usage_by_model_and_json(
    filled: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, _ = filled
    code, stdout, stderr = run_main(capsys, cfg, "usage", "--by", "model")
    assert code == 0, stderr
    rows = {line.split()[0]: line.split() for line in stdout.splitlines()[2:]}
    assert [rows[g][1] for g in ("a", "b", "(none)", "TOTAL")] == ["5", "5", "1", "11"]
    assert rows["(none)"][2] == "1"  # the error
    code, stdout, _ = run_main(capsys, cfg, "usage", "--by", "route", "--json")
    report = json.loads(stdout)
    assert report["group_by"] == "route" and report["totals"]["requests"] == 11
    assert report["totals"]["input_tokens"] == 110


def test_logs_follow_prints_new_records(filled: tuple[Path, str]) -> None:
    cfg, url = filled
    proc = subprocess.Popen(
        [*CLI, "logs", "--follow", "--json", "--limit", "1", "--config", str(cfg)],
        cwd=cfg.parent,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["id"] == "rec000010"
        write(url, [rec(100, model="fresh"), rec(101, model="fresh")])
        new = [json.loads(proc.stdout.readline()) for _ in range(2)]
        assert [r["id"] for r in new] == ["rec000100", "rec000101"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_db_upgrade_and_a_server_refusing_an_old_postgres_schema(
    empty_store: str, tmp_path: Path
) -> None:
    cfg = config(tmp_path, empty_store)
    upgrade(empty_store, "0001")
    if empty_store.startswith("postgresql"):
        try:
            out = cli(cfg, "serve", "--port", str(free_port()))
        except subprocess.TimeoutExpired as err:
            pytest.fail(f"serve started on an old schema: {err.stderr!r}")
        assert out.returncode == 2
        assert "revision 0001" in out.stderr and "modelrouter db upgrade" in out.stderr
    out = cli(cfg, "db", "upgrade")
    assert out.returncode == 0, out.stderr
    assert f"upgraded from 0001 to revision {migrate.HEAD}" in out.stdout
    again = cli(cfg, "db", "upgrade")
    assert f"already at revision {migrate.HEAD}" in again.stdout


def test_logs_without_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, stderr = run_main(capsys, config(tmp_path, "none"), "logs")
    assert code == 2 and 'url = "none"' in stderr
    missing = config(tmp_path, f"sqlite:///{tmp_path / 'nothing.db'}")
    code, _, stderr = run_main(capsys, missing, "logs")
    assert code == 2 and "no call log yet" in stderr
    assert not (tmp_path / "nothing.db").exists()  # reading never creates a store
