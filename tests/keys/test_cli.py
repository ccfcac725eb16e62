"""``modelrouter keys`` as a real command on SQLite and PostgreSQL: secrets printed once
(never a hash), errors that name the field, and a running router that follows."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import openai
import pytest

from modelrouter.governance.directory import hash_secret
from tests.keys.helpers import chat, config, dump_store, wait_for
from tests.router import run_router
from tests.subproc import CLI, child_env

CONFIG = """
[providers.sim]
kind = "simulated"

[models.m]
provider = "sim"

[routes.default]
models = ["m"]

[teams.research]
rpm = 100

[store]
url = "{url}"
"""


def keys(tmp: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    cfg = tmp / "modelrouter.toml"
    done = subprocess.run(
        [*CLI, "keys", *args, "--config", str(cfg)],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=tmp,
        timeout=60,
    )
    assert done.returncode == code, done.stderr + done.stdout
    return done


def secret_in(out: str) -> str:
    found = [line.strip() for line in out.splitlines() if line.strip().startswith("mr-")]
    assert len(found) == 1, out
    return found[0]


def test_keys_are_made_shown_rotated_and_revoked_from_the_shell(
    store_url: str, tmp_path: Path
) -> None:
    (tmp_path / "modelrouter.toml").write_text(CONFIG.format(url=store_url))
    made = keys(
        tmp_path,
        "create",
        "--name",
        "ci bot",
        "--team",
        "research",
        "--models",
        "m,gpt-*",
        "--rpm",
        "5",
        "--budget-usd",
        "2",
        "--budget-period",
        "day",
        "--metadata",
        '{"owner": "ana"}',
    )
    secret = secret_in(made.stdout)
    assert "shown this once" in made.stdout
    assert "'gpt-*' matches no configured route or model" in made.stderr
    key_id = next(line.split()[1] for line in made.stdout.splitlines() if line.startswith("id "))
    outputs = [made.stdout.replace(secret, "")]

    listed = keys(tmp_path, "list")
    assert key_id in listed.stdout and "ci bot" in listed.stdout and "2/day" in listed.stdout
    shown = json.loads(keys(tmp_path, "show", key_id, "--json").stdout)
    assert (shown["rpm"], shown["metadata"], shown["models"]) == (
        5,
        {"owner": "ana"},
        ["m", "gpt-*"],
    )
    rotated = keys(tmp_path, "rotate", key_id, "--grace-s", "60")
    new = secret_in(rotated.stdout)
    assert new != secret and "old secret works until" in rotated.stdout
    revoked = keys(tmp_path, "revoke", key_id)
    assert f"Revoked key {key_id}" in revoked.stdout
    assert "revoked" in keys(tmp_path, "list").stdout
    outputs += [listed.stdout, json.dumps(shown), rotated.stdout.replace(new, ""), revoked.stdout]
    everything = "\n".join(outputs)
    for s in (secret, new):
        assert s not in everything and hash_secret(s) not in everything
        assert s not in dump_store(store_url)

    bad = keys(tmp_path, "create", "--name", "x", "--team", "nobody", code=2)
    assert "Unknown team 'nobody'" in bad.stderr and "(team)" in bad.stderr
    past = keys(tmp_path, "create", "--name", "x", "--expires-at", "2001-01-01", code=2)
    assert "(expires_at)" in past.stderr
    assert "No key 'key_nope'" in keys(tmp_path, "show", "key_nope", code=2).stderr


def test_a_running_router_follows_what_the_cli_does(store_url: str, tmp_path: Path) -> None:
    (tmp_path / "modelrouter.toml").write_text(CONFIG.format(url=store_url))
    with run_router(config(store_url)) as r:
        made = keys(tmp_path, "create", "--name", "from-shell")
        secret = secret_in(made.stdout)
        key_id = next(
            line.split()[1] for line in made.stdout.splitlines() if line.startswith("id ")
        )

        def works() -> bool:
            try:
                chat(r, secret)
                return True
            except openai.AuthenticationError:
                return False

        started = time.monotonic()
        wait_for(works, timeout=2, what="the router to accept a key made by the CLI")
        keys(tmp_path, "revoke", key_id)
        started = time.monotonic()
        wait_for(lambda: not works(), timeout=2, what="the router to refuse the revoked key")
        assert time.monotonic() - started < 2
        with pytest.raises(openai.AuthenticationError):
            chat(r, secret)
