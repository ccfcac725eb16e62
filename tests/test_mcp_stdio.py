"""``modelrouter mcp --config ...``: MCP over stdio, spawned as a real process."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from tests.fakes.upstream import FakeUpstream, status
from tests.subproc import child_env, modelrouter_command


@pytest.fixture
def first() -> Iterator[FakeUpstream]:
    with FakeUpstream.in_thread("first") as up:
        up.default = status(503)
        yield up


@pytest.fixture
def second() -> Iterator[FakeUpstream]:
    with FakeUpstream.in_thread("second") as up:
        yield up


@pytest.fixture
def config_file(tmp_path: Path, first: FakeUpstream, second: FakeUpstream) -> Path:
    path = tmp_path / "modelrouter.toml"
    path.write_text(
        f"""
[router]
retries_per_model = 0

[health]
probe = "models"
interval_s = 0.2

[providers.p1]
kind = "openai"
base_url = "{first.base_url}"
api_key = "k1"

[providers.p2]
kind = "openai"
base_url = "{second.base_url}"
api_key = "k2"

[models.first]
provider = "p1"

[models.second]
provider = "p2"

[routes.default]
models = ["first", "second"]

[prompts.summarize]
template = "Summarize: {{text}}"
""",
        encoding="utf-8",
    )
    return path


async def test_sdk_stdio_client_chats_with_fallback(config_file: Path) -> None:
    cmd = modelrouter_command()
    params = StdioServerParameters(
        command=cmd[0], args=[*cmd[1:], "mcp", "--config", str(config_file)], env=child_env()
    )
    progress: list[str | None] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with Client(params) as c:
        tools = {t.name for t in (await c.list_tools()).tools}
        result = await c.call_tool("chat", {"prompt": "hi"}, progress_callback=on_progress)
        prompts = [p.name for p in (await c.list_prompts()).prompts]
        # The runtime started with its probe loop (interval 0.2 s): a probe shows up.
        for _ in range(60):
            health = await c.call_tool("model_health", {"model": "second"})
            assert health.structured_content is not None
            if health.structured_content["models"]["second"]["last_probe"]:
                break
            await asyncio.sleep(0.05)
    assert tools == {"chat", "compare", "list_models", "model_health"}
    assert not result.is_error
    out = result.structured_content
    assert out is not None
    assert out["content"] == "hello from second"
    assert [(a["model"], a["status"]) for a in out["attempts"]] == [("first", 503), ("second", 200)]
    assert progress == [
        "trying first",
        "first failed: 503; falling back to second",
        "second answered",
    ]
    assert prompts == ["summarize"]
    assert health.structured_content["models"]["second"]["last_probe"]["ok"] is True


def rpc(id_: int | None, method: str, params: dict[str, Any] | None = None) -> bytes:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id_ is not None:
        msg["id"] = id_
    if params is not None:
        msg["params"] = params
    return (json.dumps(msg) + "\n").encode()


def test_stdout_carries_only_mcp_and_logs_go_to_stderr(config_file: Path) -> None:
    init = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    }
    messages = (
        rpc(1, "initialize", init)
        + rpc(None, "notifications/initialized")
        + rpc(2, "tools/call", {"name": "chat", "arguments": {"prompt": "hi"}})
    )
    proc = subprocess.Popen(
        [*modelrouter_command(), "mcp", "--config", str(config_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(PYTHONUNBUFFERED="1"),
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(messages)
    proc.stdin.flush()
    lines: list[dict[str, Any]] = []
    # Read until the tools/call answer; communicate() then closes stdin: a clean exit.
    while not any(m.get("id") == 2 for m in lines):
        raw = proc.stdout.readline()
        assert raw, "server closed stdout before answering"
        lines.append(json.loads(raw))
    rest, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    lines += [json.loads(line) for line in rest.splitlines() if line.strip()]
    assert all(m["jsonrpc"] == "2.0" for m in lines)
    answer = next(m for m in lines if m.get("id") == 2)
    assert answer["result"]["structuredContent"]["model"] == "second"
    log = [json.loads(x) for x in err.decode().splitlines() if x.startswith("{")]
    assert any(r.get("surface") == "mcp" and r["model"] == "second" for r in log), err.decode()
