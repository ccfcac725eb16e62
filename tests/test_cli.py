"""The real ``modelrouter`` command, run as a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import openai
import pytest

CLI = [sys.executable, "-m", "modelrouter.cli"]
SECRET = "sk-cli-secret-value-42"

CONFIG = """
[server]
api_keys = ["${ROUTER_KEY}"]
drain_s = 10

[health]
probe = "none"

[providers.up]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key = "${UP_KEY}"

[providers.sim]
kind = "simulated"
chunk_ms = 40

[models.dead]
provider = "up"

[models.sim]
provider = "sim"

[routes.default]
models = ["dead", "sim"]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ, ROUTER_KEY="rk", UP_KEY=SECRET, **extra)
    e.pop("MODELROUTER_CONFIG", None)
    return e


@contextmanager
def serve(args: list[str], cwd: Path, **extra: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), *args],
        cwd=cwd,
        env=env(**extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "server did not start: " + (proc.stderr.read() if proc.stderr else "")
                )
            time.sleep(0.1)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    f = tmp_path / "modelrouter.toml"
    f.write_text(CONFIG)
    return f


def test_serve_subprocess_answers_and_falls_back(config_file: Path, tmp_path: Path) -> None:
    with serve(["--config", str(config_file)], tmp_path) as (proc, port):
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="rk", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="default", messages=[{"role": "user", "content": "hello"}]
        )
        assert raw.headers["x-modelrouter-model"] == "sim"
        assert "hello" in (raw.parse().choices[0].message.content or "")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    # uvicorn re-raises the signal after its graceful shutdown, so the exit says SIGTERM.
    assert proc.returncode in (0, -signal.SIGTERM)
    assert SECRET not in err
    # One structured access-log line, naming both attempts.
    assert '"attempts":["dead:connect","sim:ok"]' in err


def test_serve_without_config_uses_demo(tmp_path: Path) -> None:
    with serve([], tmp_path) as (proc, port):
        models = httpx2.get(f"http://127.0.0.1:{port}/v1/models", timeout=5).json()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert "built-in demo config" in err
    assert any(m["id"] == "default" for m in models["data"])


def test_sigterm_drains_inflight_stream(config_file: Path, tmp_path: Path) -> None:
    with serve(["--config", str(config_file)], tmp_path) as (proc, port):
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="rk", max_retries=0)
        stream = client.chat.completions.create(
            model="sim", messages=[{"role": "user", "content": "a b c d e f"}], stream=True
        )
        first = next(iter(stream))
        threading.Timer(0.05, proc.send_signal, (signal.SIGTERM,)).start()
        rest = [c for c in stream]
        proc.wait(15)
    text = (first.choices[0].delta.content or "") + "".join(
        c.choices[0].delta.content or "" for c in rest if c.choices
    )
    assert text.endswith("a b c d e f")
    assert rest[-1].choices[0].finish_reason == "stop"
    assert proc.returncode in (0, -signal.SIGTERM)


def test_workers_two_processes_serve(config_file: Path, tmp_path: Path) -> None:
    with serve(["--config", str(config_file), "--workers", "2"], tmp_path) as (proc, port):
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="rk", max_retries=0)
        for _ in range(6):
            out = client.chat.completions.create(
                model="sim", messages=[{"role": "user", "content": "x"}]
            )
            assert out.choices[0].message.content
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def run_cli(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env(**extra), capture_output=True, text=True, timeout=30
    )


def test_check_prints_routes_without_secrets(config_file: Path, tmp_path: Path) -> None:
    out = run_cli("check", "--config", str(config_file), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "default" in out.stdout and "dead" in out.stdout and "sim" in out.stdout
    assert SECRET not in out.stdout + out.stderr
    out = run_cli("models", "--config", str(config_file), cwd=tmp_path)
    assert out.returncode == 0 and "simulated" in out.stdout


def test_check_and_serve_refuse_invalid_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.replace('models = ["dead", "sim"]', 'models = ["dead", "ghost"]'))
    out = run_cli("check", "--config", str(bad), cwd=tmp_path)
    assert out.returncode == 2
    assert "routes.default.models[1]: unknown model 'ghost'" in out.stderr
    out = run_cli("serve", "--config", str(bad), "--port", str(free_port()), cwd=tmp_path)
    assert out.returncode == 2
    assert "routes.default.models[1]" in out.stderr
    out = run_cli("check", "--config", str(tmp_path / "modelrouter.toml"), cwd=tmp_path)
    assert out.returncode == 2
    missing = tmp_path / "vars.toml"
    missing.write_text(CONFIG)
    e = env()
    e.pop("UP_KEY")
    res = subprocess.run(
        [*CLI, "check", "--config", str(missing)], env=e, capture_output=True, text=True, timeout=30
    )
    assert res.returncode == 2
    assert "providers.up.api_key: environment variable UP_KEY is not set" in res.stderr


def test_status_prints_table(config_file: Path, tmp_path: Path) -> None:
    with serve(["--config", str(config_file)], tmp_path) as (_proc, port):
        url = f"http://127.0.0.1:{port}"
        out = run_cli("status", "--url", url, "--api-key", "rk", cwd=tmp_path)
    assert out.returncode in (0, 1), out.stderr
    assert "MODEL" in out.stdout and "sim" in out.stdout and "dead" in out.stdout
    assert SECRET not in out.stdout
