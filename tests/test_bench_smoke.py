"""The benchmark keeps working: ``python -m bench --smoke`` end to end, no timing checks.

The smoke run uses the Python upstream and load driver (always available); when wrk
is installed its runner is checked on its own, since smoke runs are count-bounded and
wrk's runs are timed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.loadgen import Wrk
from bench.procs import Procs, free_port, wait_port
from tests.inspector import unavailable

REPO = Path(__file__).resolve().parent.parent
SHORT = ("--rounds", "1", "--seconds", "1")
"""One round of 1 s per scenario: ``bench.replicas`` works, nothing is measured."""
SECTIONS = (
    "meta",
    "throughput",
    "added_latency",
    "workers",
    "streaming",
    "prompts",
    "failover",
    "memory",
    "litellm",
    "targets",
)


@pytest.mark.timeout(180)
def test_smoke_run_writes_every_section(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--python-only", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "Targets" in out.stdout
    [path] = tmp_path.glob("*-smoke.json")
    res = json.loads(path.read_text())
    assert all(key in res for key in SECTIONS)
    assert res["meta"]["smoke"] is True
    tools = res["meta"]["environment"]["tools"]
    assert tools["upstream"].startswith("python") and tools["load"].startswith("python")

    conns = {r["conns"] for r in res["throughput"]["rows"]}
    assert conns == {1, 16, 64}
    assert {r["target"] for r in res["throughput"]["rows"]} == {"direct", "router", "router-2w"}
    assert all(r["requests"] > 0 and r["errors"] == 0 for r in res["throughput"]["rows"])
    assert {a["conns"] for a in res["added_latency"]} == {1, 16, 64}

    st = res["streaming"]
    assert st["passthrough_identical"] and st["passthrough_one_event_per_chunk"]
    assert st["router"]["events_per_stream"] == [st["events_per_stream"]]

    assert [r["tokens"] for r in res["prompts"]["rows"]] == [1_000, 10_000, 100_000]
    fo = {(r["primary"], r["retries_per_model"]): r for r in res["failover"]["rows"]}
    assert set(fo) == {("refused", 0), ("refused", 1), ("500", 0), ("500", 1), ("breaker open", 1)}
    assert all(r["served_by"] == "good" and r["failover"]["errors"] == 0 for r in fo.values())
    assert fo[("breaker open", 1)]["primary_breaker"] == "open"
    assert fo[("breaker open", 1)]["attempts"] == 1
    assert fo[("refused", 1)]["attempts"] == 2

    mem = res["memory"]
    assert mem["requests"] >= 2_000 and len(mem["samples"]) >= 3
    assert len(res["targets"]) == 11
    if res["meta"]["chart"]:
        assert (tmp_path / res["meta"]["chart"]).stat().st_size > 0


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed")
def test_wrk_runner_parses_its_report(tmp_path: Path) -> None:
    procs = Procs(tmp_path)
    try:
        port = free_port()
        argv = [sys.executable, "-m", "bench.upstream", "--port", str(port)]
        up = procs.start("up", argv, env={"PYTHONPATH": str(REPO)})
        wait_port(port, 20, up)
        body = tmp_path / "body.json"
        body.write_bytes(b'{"model":"x","messages":[{"role":"user","content":"hi"}]}')
        res = Wrk(shutil.which("wrk") or "wrk", tmp_path).run(port, body, 4, 1)
    finally:
        procs.close()
    assert res.requests > 0 and res.errors == 0
    assert 0 < res.p50_ms <= res.p99_ms <= res.max_ms


@pytest.mark.timeout(180)
def test_replicas_benchmark_runs_every_scenario(tmp_path: Path) -> None:
    # ``python -m bench.replicas`` with one short round: every scenario answers, the
    # routers with Redis ask it, the one without does not (no timing checks).
    missing = [t for t in ("nginx", "wrk", "redis-server") if not _tool(t)]
    if missing:
        unavailable(f"bench.replicas needs {', '.join(missing)}")
    out = subprocess.run(
        [sys.executable, "-m", "bench.replicas", *SHORT, "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    res = json.loads((tmp_path / "replicas.json").read_text())
    assert set(res["median"]) == {
        "local c16",
        "redis c16",
        "local c1",
        "redis c1",
        "lb-1 c16",
        "lb-2 c16",
        "workers-2 c16",
    }
    assert res["summary"]["errors"] == 0
    assert all(row["requests"] > 0 for row in res["median"].values())
    # An acquire per request with Redis (a stall may send a few to the fallback); the
    # router without it runs none (the other routers' health scripts are all it sees).
    assert res["median"]["redis c16"]["redis_scripts"] >= 0.5
    assert res["median"]["local c16"]["redis_scripts"] < 0.1
    assert res["median"]["lb-2 c16"]["lb_cpu_us"] > 0


def _tool(name: str) -> bool:
    return shutil.which(name) is not None or Path(f"/usr/sbin/{name}").exists()
