"""The MCP Inspector CLI (npm ``@modelcontextprotocol/inspector``) against the running server.

The Inspector is installed on first use (see :mod:`tests.inspector`); without Node.js
these tests skip, or fail under ``MODELROUTER_REQUIRE_SERVICES=1``.
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

from tests import inspector as insp
from tests.fakes.upstream import FakeUpstream, status
from tests.inspector import inspector
from tests.router import RunningRouter, router_config, run_router

KEY = "sk-inspector-test"


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
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


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


def test_install_reports_missing_node(tmp_path: Path) -> None:
    found = insp.install(tmp_path / "node", {"PATH": str(tmp_path)})
    assert isinstance(found, str) and "npm" in found
    assert not (tmp_path / "node").exists()


def test_install_reports_unreachable_registry(tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    env = {
        **os.environ,
        "npm_config_registry": "http://127.0.0.1:9/",  # discard port: connection refused
        "npm_config_cache": str(tmp_path / "npm-cache"),  # no cached copy to fall back on
        "npm_config_fetch_retries": "0",
    }
    found = insp.install(tmp_path / "node", env)
    assert isinstance(found, str) and found.startswith(f"could not install {insp.PINNED}")
    assert not (tmp_path / "node" / f".installed-{insp.VERSION}").exists()


def test_missing_service_skips_unless_required() -> None:
    with pytest.raises(pytest.skip.Exception, match="no node"):
        insp.unavailable("no node", {})
    with pytest.raises(pytest.fail.Exception, match="MODELROUTER_REQUIRE_SERVICES=1"):
        insp.unavailable("no node", {"MODELROUTER_REQUIRE_SERVICES": "1"})
