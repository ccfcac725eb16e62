"""The MCP Inspector CLI (npm ``@modelcontextprotocol/inspector``) against the running server.

Where the Inspector comes from, first match wins:

1. ``$MODELROUTER_INSPECTOR``: path to its launcher (``.../node_modules/.bin/mcp-inspector``);
2. ``.ci/node/node_modules/.bin/mcp-inspector`` (what ``.ci/run`` installs with
   ``npm install --prefix .ci/node @modelcontextprotocol/inspector@2.12.0``);
3. ``npx --no-install @modelcontextprotocol/inspector@2.12.0`` (an npx cache copy).

The tests skip only when Node itself is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream, status
from tests.router import RunningRouter, router_config, run_router

ROOT = Path(__file__).resolve().parents[1]
PINNED = "@modelcontextprotocol/inspector@2.12.0"
KEY = "sk-inspector-test"


def inspector() -> list[str]:
    """The command that runs the Inspector launcher (see the module docstring)."""
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed: the MCP Inspector CLI tests need node and npx")
    given = os.environ.get("MODELROUTER_INSPECTOR")
    if given:
        return ["node", given] if given.endswith((".js", ".mjs")) else [given]
    local = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "mcp-inspector"
    if local.exists():
        return [str(local)]
    if shutil.which("npx") is None:
        pytest.skip("npx is not installed: the MCP Inspector CLI tests need node and npx")
    return ["npx", "--no-install", PINNED]


@pytest.fixture(scope="module")
def router() -> Iterator[RunningRouter]:
    with FakeUpstream.in_thread("first") as first, FakeUpstream.in_thread("second") as second:
        first.default = status(503)
        cfg = router_config(
            providers={
                "p1": {"kind": "openai", "base_url": first.base_url, "api_key": "k1"},
                "p2": {"kind": "openai", "base_url": second.base_url, "api_key": "k2"},
            },
            models={"first": {"provider": "p1"}, "second": {"provider": "p2"}},
            routes={"default": {"models": ["first", "second"]}},
            router={"retries_per_model": 0},
            server={"api_keys": [KEY], "host": "127.0.0.1", "port": 0},
            prompts={"summarize": {"template": "Summarize: {text}"}},
        )
        with run_router(cfg) as r:
            yield r


def run(r: RunningRouter, *args: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    auth = ["--header", f"Authorization: Bearer {key}"] if key else []
    cmd = [*inspector(), "--cli", f"{r.url}/mcp", "--transport", "http", *auth, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if "canceled due to missing packages" in proc.stderr:
        pytest.fail(
            f"MCP Inspector not installed: npm install --prefix .ci/node {PINNED} "
            "(or set MODELROUTER_INSPECTOR to its node_modules/.bin/mcp-inspector)"
        )
    return proc


def output(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


def test_tools_list(router: RunningRouter) -> None:
    proc = run(router, "--method", "tools/list")
    assert proc.returncode == 0, proc.stderr
    tools = {t["name"]: t for t in output(proc)["tools"]}
    assert set(tools) == {"chat", "compare", "list_models", "model_health"}
    assert "outputSchema" in tools["chat"]


def test_chat_falls_back(router: RunningRouter) -> None:
    call_chat = ["--method", "tools/call", "--tool-name", "chat", "--tool-arg"]
    proc = run(router, *call_chat, "prompt=hello", 'models=["first","second"]', "max_tokens=5")
    assert proc.returncode == 0, proc.stderr
    result = output(proc)
    assert result.get("isError") is not True
    out = result["structuredContent"]
    assert (out["content"], out["model"]) == ("hello from second", "second")
    assert [(a["model"], a["status"]) for a in out["attempts"]] == [("first", 503), ("second", 200)]


def test_tool_error_is_a_result(router: RunningRouter) -> None:
    call_chat = ["--method", "tools/call", "--tool-name", "chat", "--tool-arg"]
    result = output(run(router, *call_chat, "prompt=hello", "model=nope"))
    assert result["isError"] is True
    assert "model_not_found" in result["content"][0]["text"]


def test_resource_and_prompt(router: RunningRouter) -> None:
    proc = run(router, "--method", "resources/read", "--uri", "modelrouter://routes/default")
    assert proc.returncode == 0, proc.stderr
    route = json.loads(output(proc)["contents"][0]["text"])
    assert route["models"] == ["first", "second"]
    get = ["--method", "prompts/get", "--prompt-name", "summarize", "--prompt-args"]
    proc = run(router, *get, "text=abc")
    assert proc.returncode == 0, proc.stderr
    assert output(proc)["messages"][0]["content"]["text"] == "Summarize: abc"


def test_no_key_is_refused(router: RunningRouter) -> None:
    proc = run(router, "--method", "tools/list", key=None)
    assert proc.returncode != 0
    assert "tools" not in proc.stdout
    assert "auth" in proc.stderr.lower()
