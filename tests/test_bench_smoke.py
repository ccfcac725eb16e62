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

REPO = Path(__file__).resolve().parent.parent
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
