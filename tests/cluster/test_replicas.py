"""Several ``modelrouter serve`` processes, one Redis of the test's own, fake upstreams.

What CONTRACT.md section 8 promises, checked from outside: a breaker opened on one
replica is honoured by the others within 1 s, one replica probes, the probes move
when that replica dies, and Redis trouble never costs a request.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.replicas import Load, Replica, TimedUpstream, replicas, start_replica, stop
from tests.cluster.services import RedisServer, namespace
from tests.fakes.upstream import FakeUpstream, status
from tests.store.helpers import wait_until
from tests.subproc import CLI, child_env

CONFIG = """
[server]
drain_s = 5

[router]
retries_per_model = 0

[health]
probe = "{probe}"
interval_s = {interval}
timeout_s = 1
failure_threshold = 3
open_s = 30
slow_start_s = 0

[providers.bad]
kind = "openai"
base_url = "{bad}"
api_key = "sk-test-bad"

[providers.good]
kind = "openai"
base_url = "{good}"
api_key = "sk-test-good"

[models.primary]
provider = "bad"
model = "fake-model"

[models.backup]
provider = "good"
model = "fake-model"

[routes.default]
models = ["primary", "backup"]

[store]
url = "none"
"""

CLUSTER = """
[cluster]
redis_url = "{url}"
namespace = "{ns}"
"""


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    (tmp_path / "redis").mkdir()
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def primary() -> Iterator[TimedUpstream]:
    with TimedUpstream.in_thread("primary") as up:
        yield up


def write_config(
    tmp: Path,
    primary: FakeUpstream,
    backup: FakeUpstream,
    redis: RedisServer | None,
    *,
    probe: str = "none",
    interval: float = 30,
    name: str = "modelrouter.toml",
) -> Path:
    text = CONFIG.format(probe=probe, interval=interval, bad=primary.base_url, good=backup.base_url)
    if redis is not None:
        text += CLUSTER.format(url=redis.url, ns=namespace())
    path = tmp / name
    path.write_text(text)
    return path


def breaker(r: Replica, model: str = "primary") -> str:
    return str(r.health()["models"][model]["breaker"])


def cluster(r: Replica) -> dict[str, Any]:
    report: dict[str, Any] = r.health()["cluster"]
    return report


def test_a_model_failing_on_one_replica_is_avoided_by_the_others_within_a_second(
    tmp_path: Path, redis_server: RedisServer, primary: TimedUpstream, backup: FakeUpstream
) -> None:
    cfg = write_config(tmp_path, primary, backup, redis_server)
    with replicas(cfg, tmp_path, 3) as (a, b, c):
        assert [r.health()["instance"] for r in (a, b, c)] == [a.instance, b.instance, c.instance]
        assert all(
            cluster(r)["redis"] == "ok" and cluster(r)["mode"] == "shared" for r in (a, b, c)
        )
        load = Load([b, c], threads=2).start()
        try:
            wait_until(lambda: len(load.since(0)) >= 20, what="load on b and c")
            # The primary fails only what comes through A: B and C never see it fail.
            primary.fail_user = "via-a"
            for _ in range(3):  # three failures on A open its breaker; A still answers
                resp = a.chat(user="via-a")
                assert resp.status_code == 200
                assert resp.headers["x-modelrouter-model"] == "backup"
            opened = time.monotonic()
            assert breaker(a) == "open"
            wait_until(lambda: breaker(b) == "open" and breaker(c) == "open", what="b and c")
            seen = time.monotonic() - opened
            calls = primary.calls
            time.sleep(1.0)
        finally:
            load.stop()
        print(f"b and c honoured the breaker {seen * 1000:.0f} ms after a opened it")
        assert not load.errors
        assert primary.failed == 3
        assert seen < 1.0, f"b and c saw the breaker {seen:.2f}s after a opened it"
        late = load.since(opened + 1.0)
        assert len(late) >= 10
        # B and C served from the primary until then (it answers them), never failed a
        # request, and from 1 s after A opened the breaker on, no longer call it.
        assert "primary" in {r[3] for r in load.results if r[0] < opened}
        assert all(r[2] == 200 for r in load.results)
        assert {r[3] for r in late} == {"backup"}
        assert primary.calls == calls
        reason = b.health()["models"]["primary"]["reason"]
        assert a.instance in reason and "3 consecutive failures" in reason


def test_probes_cost_one_replica_whatever_the_count_and_move_when_the_prober_dies(
    tmp_path: Path, redis_server: RedisServer, primary: TimedUpstream, backup: FakeUpstream
) -> None:
    interval = 0.3
    window = 3.0

    def probes_in(window: float) -> int:
        start = time.monotonic()
        time.sleep(window)
        return sum(1 for t in primary.probe_times if start <= t < start + window)

    alone_cfg = write_config(tmp_path, primary, backup, None, probe="models", interval=interval)
    single = start_replica(alone_cfg, tmp_path, "alone")
    try:
        time.sleep(interval)
        one = probes_in(window)
    finally:
        stop(single)
    cfg = write_config(tmp_path, primary, backup, redis_server, probe="models", interval=interval)
    with replicas(cfg, tmp_path, 3) as trio:
        wait_until(lambda: sum(cluster(r)["prober"] for r in trio) == 1, what="one prober")
        three = probes_in(window)
        print(
            f"probes in {window:g}s at interval {interval:g}s: 1 replica {one}, 3 replicas {three}"
        )
        # ~window / interval each: 3 uncoordinated replicas would make it three times that.
        assert abs(three - one) <= 3, (one, three)
        assert 0.6 * window / interval <= three <= 1.3 * window / interval
        assert sum(cluster(r)["prober"] for r in trio) == 1
        # Every replica shows the last probe (of the one that ran it).
        assert all(r.health()["models"]["backup"]["last_probe"] for r in trio)


def test_killing_the_prober_moves_the_probes_within_one_interval(
    tmp_path: Path, redis_server: RedisServer, primary: TimedUpstream, backup: FakeUpstream
) -> None:
    interval = 1.0
    cfg = write_config(tmp_path, primary, backup, redis_server, probe="models", interval=interval)
    with replicas(cfg, tmp_path, 3) as trio:
        wait_until(lambda: sum(cluster(r)["prober"] for r in trio) == 1, what="one prober")
        time.sleep(2 * interval)  # steady probing
        holder = next(r for r in trio if cluster(r)["prober"])
        holder.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        holder.proc.wait(10)
        wait_until(lambda: any(t > killed for t in primary.probe_times), 5, "a probe after")
        gap = min(t for t in primary.probe_times if t > killed) - killed
        rest = [r for r in trio if r is not holder]
        wait_until(lambda: sum(cluster(r)["prober"] for r in rest) == 1, what="a new prober")
        print(f"first probe {gap * 1000:.0f} ms after the prober was killed")
        # The lease (ttl = interval / 2) expires, a survivor takes it within a sixth of an
        # interval and probes each model when it is due (its last probe + interval, no
        # later than one interval after the kill), so the cadence goes on. The slack is
        # for scheduling on a busy machine (the probe's own HTTP round trip included).
        assert gap <= interval + 0.15, f"first probe {gap:.2f}s after the prober died"
        start = time.monotonic()
        time.sleep(3 * interval)
        cadence = sum(1 for t in primary.probe_times if t >= start)
        assert 2 <= cadence <= 4, cadence  # one prober again, not two


def test_redis_down_hung_or_restarted_costs_no_request(
    tmp_path: Path, redis_server: RedisServer, primary: TimedUpstream, backup: FakeUpstream
) -> None:
    cfg = write_config(tmp_path, primary, backup, redis_server)
    with replicas(cfg, tmp_path, 3) as trio:
        load = Load(trio, threads=3).start()
        try:
            wait_until(lambda: len(load.since(0)) >= 30, what="load")

            def all_in(redis: str, mode: str) -> bool:
                return all(
                    cluster(r)["redis"] == redis and cluster(r)["mode"] == mode for r in trio
                )

            before = load.since(0)
            redis_server.kill()
            wait_until(lambda: all_in("down", "local"), 5, "every replica local")
            time.sleep(0.5)
            redis_server.start()
            wait_until(lambda: all_in("ok", "shared"), 5, "every replica shared again")
            redis_server.pause()  # hung: connections open, no answer
            paused = time.monotonic()
            wait_until(lambda: all_in("down", "local"), 5, "local while redis hangs")
            time.sleep(0.5)
            during = load.since(paused)
            redis_server.resume()
            wait_until(lambda: all_in("ok", "shared"), 5, "shared after the hang")
        finally:
            load.stop()
        assert not load.errors, load.errors[:3]
        assert len(load.results) >= 100
        assert {r[2] for r in load.results} == {200}
        worst = max(r[4] for r in during) if during else 0.0
        normal = max(r[4] for r in before)
        print(
            f"{len(load.results)} requests, all 200; slowest while redis hung: "
            f"{worst * 1000:.0f} ms, before any trouble: {normal * 1000:.0f} ms"
        )
        # Health reads never wait on Redis: a hung Redis does not slow requests down.
        assert during and max(r[4] for r in during) < 1.0
        # Shared again after the rejoin: a breaker opened on one is honoured by all.
        primary.default = status(500)
        for _ in range(3):
            assert trio[0].chat().status_code == 200
        wait_until(lambda: all(breaker(r) == "open" for r in trio), 1.5, "shared breaker")
        for r in trio:
            notes = r.notes()
            # Once per transition: connected, down, back, down (hang), back.
            assert sum("unreachable" in n for n in notes) == 2, notes
            assert sum("redis is back" in n for n in notes) == 2, notes
            assert sum("connected to" in n for n in notes) == 1, notes
            assert all(r.instance in n for n in notes if "cluster [" in n)


def test_a_replica_started_while_redis_is_down_serves_and_joins_later(
    tmp_path: Path, redis_server: RedisServer, primary: TimedUpstream, backup: FakeUpstream
) -> None:
    cfg = write_config(tmp_path, primary, backup, redis_server)
    redis_server.kill()
    r = start_replica(cfg, tmp_path, "early")
    try:
        assert cluster(r)["redis"] == "down" and cluster(r)["mode"] == "local"
        assert r.chat().status_code == 200
        redis_server.start()
        wait_until(lambda: cluster(r)["redis"] == "ok", 5, "joined")
    finally:
        stop(r)


def test_sqlite_with_redis_is_refused_at_start(tmp_path: Path) -> None:
    cfg = tmp_path / "modelrouter.toml"
    cfg.write_text(
        '[providers.sim]\nkind = "simulated"\n[models.m]\nprovider = "sim"\n'
        '[routes.default]\nmodels = ["m"]\n'
        '[cluster]\nredis_url = "redis://:secret-pass@127.0.0.1:1/0"\n'
    )
    import subprocess

    for command in ("serve", "check"):
        done = subprocess.run(
            [*CLI, command, "--config", str(cfg)],
            cwd=tmp_path,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert "store.url: several replicas (cluster.redis_url is set) cannot share a SQLite" in (
            done.stderr
        )
        assert "PostgreSQL" in done.stderr and "secret-pass" not in done.stderr
    assert not (tmp_path / "modelrouter.db").exists()
