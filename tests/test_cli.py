"""The real ``modelrouter`` command, run as a subprocess."""

from __future__ import annotations

import http.server
import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import httpx2
import openai
import pytest

from tests.subproc import CLI, child_env, free_port, wait_ready

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


def env(**extra: str) -> dict[str, str]:
    # child_env: the child runs this checkout's code, wherever the venv's install points.
    e = child_env(ROUTER_KEY="rk", UP_KEY=SECRET, **extra)
    e.pop("MODELROUTER_CONFIG", None)
    return e


@contextmanager
def serve(
    args: list[str], cwd: Path, port: int | None = None, **extra: str
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port() if port is None else port
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), *args],
        cwd=cwd,
        env=env(**extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}/healthz")
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
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    assert [(a["model"], a["outcome"]) for a in lines[0]["attempts"]] == [
        ("dead", "connect"),
        ("sim", "ok"),
    ]
    assert lines[0]["request_id"] == raw.headers["x-request-id"]


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


def test_version_comes_from_package_metadata(tmp_path: Path) -> None:
    out = run_cli("--version", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"modelrouter {metadata.version('modelrouter')}\n"


@pytest.mark.parametrize("command", ["", "serve", "mcp", "check", "models", "status"])
def test_help_reads_as_plain_text(command: str, tmp_path: Path) -> None:
    out = run_cli(*([command] if command else []), "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    # Docstrings feed the help: their reStructuredText markup must not show in a terminal.
    for markup in ("``", ":func:", ":class:", ":mod:"):
        assert markup not in out.stdout
    if command:
        # Each command has a description, not just its usage line.
        assert len(out.stdout.split("\n\n")) >= 3, out.stdout
    else:
        assert "--version" in out.stdout
        for name in ("serve", "mcp", "check", "models", "status"):
            assert f"    {name} " in out.stdout


class FakeHealth(http.server.BaseHTTPRequestHandler):
    """``GET /health`` answering a one-model report; records each request's headers."""

    seen: list[dict[str, str]] = []
    REPORT = {
        "status": "ok",
        "models": {"m": {"provider": "p", "state": "healthy", "breaker": "closed"}},
        "routes": {"default": {"strategy": "ordered", "ready": True, "order": ["m"]}},
    }

    def do_GET(self) -> None:
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        body = json.dumps(self.REPORT).encode() if self.path == "/health" else b"{}"
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def fake_health() -> Iterator[tuple[int, list[dict[str, str]]]]:
    FakeHealth.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHealth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], FakeHealth.seen
    finally:
        server.shutdown()
        server.server_close()


def test_status_asks_the_configured_address_with_the_configured_key(
    config_file: Path, tmp_path: Path, fake_health: tuple[int, list[dict[str, str]]]
) -> None:
    port, seen = fake_health
    # ./modelrouter.toml (port 8080 by default) with the port overridden as for serve.
    out = run_cli("status", cwd=tmp_path, MODELROUTER_SERVER__PORT=str(port))
    assert out.returncode == 0, out.stderr
    assert "route default (ordered, ready): m" in out.stdout
    assert seen[-1]["authorization"] == "Bearer rk"  # server.api_keys[0] of the config
    assert seen[-1]["host"] == f"127.0.0.1:{port}"
    # --config, a wildcard bind address (asked on loopback) and --port.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = run_cli(
        "status", "--config", str(config_file), "--port", str(port),
        cwd=elsewhere, MODELROUTER_SERVER__HOST="0.0.0.0",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert len(seen) == 2
    # --url names another server: the config's key is not sent there.
    out = run_cli("status", "--url", f"http://127.0.0.1:{port}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "authorization" not in seen[-1]
    out = run_cli(
        "status", "--url", f"http://127.0.0.1:{port}", cwd=tmp_path, MODELROUTER_API_KEY="ek"
    )
    assert seen[-1]["authorization"] == "Bearer ek"


def test_status_of_a_running_server_from_its_config(config_file: Path, tmp_path: Path) -> None:
    port = free_port()
    with serve(["--config", str(config_file)], tmp_path, port=port):
        out = run_cli("status", "--config", str(config_file), "--port", str(port), cwd=tmp_path)
    assert out.returncode in (0, 1), out.stderr
    assert "dead" in out.stdout and "sim" in out.stdout


def test_status_without_an_address_says_so(tmp_path: Path) -> None:
    out = run_cli("status", cwd=tmp_path, MODELROUTER_SERVER__PORT="0")
    assert out.returncode == 2
    assert "pass --url" in out.stderr


WARN_CONFIG = """
[server]
port = {port}

[providers.openai]
kind = "openai"
api_key = "${{UNSET_OPENAI_KEY_FOR_TEST:-}}"

[providers.claude]
kind = "anthropic"
api_key = ""

[providers.keyed]
kind = "openai"
api_key = "${{UP_KEY}}"

[providers.local]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"

[providers.llama]
kind = "llamacpp"
base_url = "http://localhost:{port}/v1"

[models.a]
provider = "openai"

[models.b]
provider = "claude"

[models.c]
provider = "keyed"

[models.d]
provider = "local"

[models.e]
provider = "llama"

[routes.default]
models = ["a", "b", "c", "d", "e"]

[health]
probe = "none"
"""


def check_warnings(stderr: str, port: int) -> None:
    lines = [line for line in stderr.splitlines() if "warning:" in line]
    assert len(lines) == 3, stderr
    openai_line, claude_line, loop_line = lines
    assert (
        "providers.openai: api_key is empty ($UNSET_OPENAI_KEY_FOR_TEST unset or empty)"
        in openai_line
    )
    assert "calls to api.openai.com go without a key" in openai_line
    assert "providers.claude: api_key is empty: calls to api.anthropic.com" in claude_line
    assert f"providers.llama.base_url points at this router's own address (localhost:{port}" in (
        loop_line
    )
    assert SECRET not in stderr


def test_check_and_serve_warn_about_missing_keys_and_self_calls(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "warn.toml"
    cfg.write_text(WARN_CONFIG.format(port=port))
    out = run_cli("check", "--config", str(cfg), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "config OK" in out.stdout
    check_warnings(out.stderr, port)
    with serve(["--config", str(cfg)], tmp_path, port=port) as (proc, _):
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    check_warnings(err, port)
    # Served elsewhere (--port), the llama.cpp upstream is no longer the router itself.
    with serve(["--config", str(cfg)], tmp_path) as (proc, _):
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert "own address" not in err
    assert err.count("warning:") == 2
