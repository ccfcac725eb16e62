"""Every command in README.md, run against the demo config on a free port.

Which blocks run: fenced ``bash`` and ``python`` blocks, unless the nearest non-blank
line before the fence is ``<!-- not-run: reason -->``. ``json``, ``toml`` and ``text`` blocks are
data (``toml`` blocks must parse); a fence with any other language, or none, fails
:func:`test_every_block_is_labelled`, so a new command cannot hide from this test.

How they run: each command of a bash block on its own (its variable assignments
first), with bash, in a temporary directory whose ``modelrouter.toml`` is the demo
config. ``modelrouter`` on ``PATH`` is this checkout's CLI, the server has one API key
and ``MODELROUTER_API_KEY`` holds it (``MODELROUTER_ADMIN_KEY`` its admin key). The
only changes made to the README's text are in :func:`rewrite`: the port, and the pinned
Inspector started from its install in ``.ci/node`` instead of by ``npx -y`` (which would
fetch it again).

Each command must exit 0 and print what its kind promises (:func:`check_output`).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.inspector import PINNED, inspector
from tests.subproc import CLI, ROOT, child_env, command_shim, free_port, wait_ready

README = ROOT / "README.md"
DEMO = ROOT / "modelrouter" / "demo.toml"
KEY = "sk-readme-test"
ADMIN_KEY = "sk-readme-admin"
RUNNABLE = {"bash", "python"}
DATA = {"json", "toml", "text"}
FENCE = re.compile(r"^```(.*)$")
NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(.*?)\s*-->$")
ASSIGNMENT = re.compile(r"""^[A-Za-z_][A-Za-z0-9_]*=("[^"]*"|'[^']*'|\S*)$""")
INSPECTOR_NPX = f"npx -y {PINNED}"


@dataclass(frozen=True)
class Block:
    """One fenced block of the README."""

    lang: str
    text: str
    line: int
    """1-based line of the opening fence."""
    not_run: str | None
    """The reason given by a ``<!-- not-run: ... -->`` marker, if any."""


@dataclass(frozen=True)
class Command:
    """One runnable command: a bash command (with its block's assignments) or a script."""

    lang: str
    text: str
    prelude: str
    line: int

    @property
    def id(self) -> str:
        first = self.text.splitlines()[0] if self.lang == "bash" else "python snippet"
        return f"L{self.line} {first[:60]}"


def blocks(markdown: str) -> list[Block]:
    """The fenced blocks, in order."""
    lines = markdown.splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = NOT_RUN.match(before.strip())
        text = "\n".join(lines[i + 1 : end])
        out.append(Block(m.group(1).strip(), text, i + 1, marker.group(1) if marker else None))
        i = end + 1
    return out


def bash_commands(block: Block) -> list[Command]:
    """The block's commands; continuation lines are joined, comments dropped."""
    logical: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for n, raw in enumerate(block.text.splitlines(), block.line + 1):
        if not pending:
            start = n
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line, pending = (pending + raw).strip(), ""
        if line and not line.startswith("#"):
            logical.append((start, line))
    prelude = [text for _, text in logical if ASSIGNMENT.match(text)]
    return [
        Command("bash", text, "\n".join(prelude), n)
        for n, text in logical
        if not ASSIGNMENT.match(text)
    ]


def commands(markdown: str) -> list[Command]:
    """Every command the README shows and does not mark as not run."""
    out: list[Command] = []
    for b in blocks(markdown):
        if b.lang not in RUNNABLE or b.not_run is not None:
            continue
        if b.lang == "bash":
            out.extend(bash_commands(b))
        else:
            out.append(Command("python", b.text, "", b.line))
    return out


COMMANDS = commands(README.read_text(encoding="utf-8"))


def test_every_block_is_labelled() -> None:
    for b in blocks(README.read_text(encoding="utf-8")):
        where = f"README.md line {b.line}"
        assert b.lang in RUNNABLE | DATA, f"{where}: fence language {b.lang!r} (use one of "
        f"{sorted(RUNNABLE | DATA)}; mark commands that cannot run with <!-- not-run: why -->)"
        if b.not_run is not None:
            assert b.lang in RUNNABLE, f"{where}: not-run marker on a {b.lang} block"
            assert b.not_run, f"{where}: a not-run marker needs a reason"
        if b.lang == "toml":
            tomllib.loads(b.text)


def test_every_kind_of_command_is_found() -> None:
    # A parser that finds nothing would pass every run below; this says what it found.
    kinds = {kind(c) for c in COMMANDS}
    assert kinds >= {"curl", "inspector", "python", "check", "models", "status", "version"}


def test_the_inspector_version_is_the_installed_one() -> None:
    text = "\n".join(c.prelude + "\n" + c.text for c in COMMANDS)
    named = set(re.findall(r"@modelcontextprotocol/inspector@\S+", text))
    assert named == {PINNED}, f"README names {named}; tests/inspector.py installs {PINNED}"


def kind(c: Command) -> str:
    """What a command is, for :func:`check_output`."""
    if c.lang == "python":
        return "python"
    words = c.text.split()
    if words[0] == "curl":
        return "curl"
    if "--method" in words:
        return "inspector"
    if words[0] == "modelrouter" and len(words) > 1:
        return words[1].removeprefix("--")
    return "other"


@dataclass
class Demo:
    """The demo server and where the README's commands run."""

    port: int
    cwd: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    cwd = tmp_path_factory.mktemp("readme")
    port = free_port()
    text = DEMO.read_text(encoding="utf-8")
    assert text.count("port = 8080") == 1
    (cwd / "modelrouter.toml").write_text(text.replace("port = 8080", f"port = {port}"))
    bin_dir = command_shim(cwd / "bin")
    env = child_env(MODELROUTER_API_KEY=KEY, MODELROUTER_ADMIN_KEY=ADMIN_KEY)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    env.pop("MODELROUTER_CONFIG", None)
    server_env = dict(env, MODELROUTER_SERVER__API_KEYS=json.dumps([KEY]))
    proc = subprocess.Popen(
        [*CLI, "serve"],
        cwd=cwd,
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}/healthz")
        yield Demo(port, cwd, env)
    finally:
        proc.terminate()
        proc.wait(15)


def rewrite(text: str, port: int) -> str:
    """The README's text as run here; these two replacements are the only changes."""
    # The README's default port → the test server's.
    text = text.replace(":8080", f":{port}")
    if INSPECTOR_NPX in text:
        # The same pinned version, from its install (skips when there is none).
        text = text.replace(INSPECTOR_NPX, shlex.join(inspector()))
    return text


def parse_json(out: str) -> Any:
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        pytest.fail(f"not JSON: {out[:500]!r}")


INSPECTOR_RESULT = {
    "tools/list": "tools",
    "tools/call": "structuredContent",
    "resources/read": "contents",
    "prompts/get": "messages",
}


def check_output(c: Command, out: str) -> None:
    """What each kind of command must print (beyond exiting 0)."""
    k = kind(c)
    if k == "curl":
        data = parse_json(out)
        # A Response object always has "error": null; an error answer's is an object.
        assert data.get("error") is None, data
        if "/chat/completions" in c.text or "/v1/prompts/" in c.text:
            assert data["object"] == "chat.completion"
            assert data["choices"][0]["message"]["content"]
        elif "/v1/messages" in c.text:
            assert data["type"] == "message" and data["content"][0]["text"]
        elif "/v1/responses" in c.text:
            assert data["status"] == "completed" and data["output"][0]["content"][0]["text"]
        elif "/v1/embeddings" in c.text:
            assert data["object"] == "list" and data["data"][0]["embedding"]
    elif k == "inspector":
        data = parse_json(out)
        method = c.text.split("--method", 1)[1].split()[0]
        assert INSPECTOR_RESULT[method] in data, data
        assert data.get("isError") is not True, data
    elif k in ("check", "models", "status"):
        assert "MODEL" in out or "config OK" in out, out
    elif k == "version":
        assert re.fullmatch(r"modelrouter \d+\.\d+\S*\n", out), out
    else:
        assert out.strip(), "no output"


@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_readme_command(command: Command, demo: Demo) -> None:
    if command.lang == "python":
        argv = [sys.executable, "-c", rewrite(command.text, demo.port)]
    else:
        script = f"set -euo pipefail\n{command.prelude}\n{command.text}\n"
        argv = ["bash", "-c", rewrite(script, demo.port)]
    proc = subprocess.run(
        argv, cwd=demo.cwd, env=demo.env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    check_output(command, proc.stdout)
