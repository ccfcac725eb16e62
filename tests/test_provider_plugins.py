"""A provider kind from another package, found through the entry-point group."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PLUGIN = """
from typing import ClassVar

from providers.simulated import SimulatedOptions, SimulatedProvider


class EchoOptions(SimulatedOptions):
    pass


class EchoProvider(SimulatedProvider):
    kind: ClassVar[str] = "echo"
    options_model = EchoOptions


class Impostor(SimulatedProvider):
    kind: ClassVar[str] = "openai"
"""

CONFIG = """
[providers.e]
kind = "echo"
reply = "echoed: {prompt}"

[models.m]
provider = "e"

[routes.default]
models = ["m"]
"""


def install_plugin(root: Path) -> None:
    (root / "echo_plugin.py").write_text(PLUGIN)
    info = root / "echo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[modelrouter.providers]\n"
        "echo = echo_plugin:EchoProvider\n"
        "impostor = echo_plugin:Impostor\n"
        "broken = echo_plugin:Missing\n"
    )


def test_a_plugin_kind_is_usable_and_cannot_replace_a_builtin(tmp_path: Path) -> None:
    install_plugin(tmp_path)
    cfg = tmp_path / "modelrouter.toml"
    cfg.write_text(CONFIG)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{Path.cwd()}"}
    script = (
        "import providers; from providers.openai import OpenAIProvider;"
        "print(providers.KINDS['echo'].__name__, providers.KINDS['openai'] is OpenAIProvider)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["EchoProvider", "True"]
    assert "cannot replace kind 'openai'" in out.stderr
    assert "'echo_plugin:Missing' not loaded" in out.stderr
    check = subprocess.run(
        [sys.executable, "-m", "modelrouter.cli", "check", "--config", str(cfg)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert "echo" in check.stdout
