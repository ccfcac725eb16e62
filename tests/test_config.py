"""Config loading: interpolation, env overrides, and errors that name the key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelrouter.config import ConfigError, expand_vars, load_demo, load_file, parse

SECRET = "sk-very-secret-value"


def base(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "providers": {"sim": {"kind": "simulated"}, "oa": {"kind": "openai", "api_key": "k"}},
        "models": {"a": {"provider": "sim"}, "b": {"provider": "oa", "model": "gpt-x"}},
        "routes": {"default": {"models": ["a", "b"]}},
    }
    data.update(over)
    return data


def problems(data: dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(data, "test", env or {})
    return info.value.problems


def test_valid_config_resolves() -> None:
    cfg = parse(base(), "test", {})
    assert cfg.settings.routes["default"].models == ["a", "b"]
    assert cfg.providers["oa"].kind == "openai"
    assert cfg.settings.server.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"models": {"a": {"provider": "ghost"}}}, "models.a.provider: unknown provider 'ghost'"),
        (
            {"routes": {"default": {"models": ["a", "zzz"]}}},
            "routes.default.models[1]: unknown model 'zzz'",
        ),
        (
            {"routes": {"default": {"models": ["a", "a"]}}},
            "routes.default.models[1]: 'a' is listed twice",
        ),
        ({"routes": {"a": {"models": ["b"]}, "default": {"models": ["a"]}}}, "routes.a: a model"),
        ({"server": {"port": "eighty"}}, "server.port: Input should be a valid integer"),
        ({"router": {"max_attempts": 0}}, "router.max_attempts: Input should be greater"),
        ({"routes": {"default": {"models": []}}}, "routes.default.models: List should have"),
        (
            {"routes": {"default": {"models": ["a"], "strategy": "random"}}},
            "routes.default.strategy: Input should be",
        ),
        ({"server": {"prot": 1}}, "server.prot: Extra inputs are not permitted"),
        ({"providers": {"sim": {"kind": "nope"}}}, "providers.sim.kind: unknown provider kind"),
        (
            {"providers": {"sim": {"kind": "simulated", "latency_ms": -1}}},
            "providers.sim.latency_ms: Input should be greater than or equal to 0",
        ),
        ({"providers": {"sim": {}}}, "providers.sim.kind: field required"),
        ({"router": {"default_route": "missing"}}, "router.default_route: unknown route"),
        ({"prompts": {"p": {"template": "x", "route": "nope"}}}, "prompts.p.route: unknown"),
    ],
)
def test_errors_name_the_key_path(change: dict[str, Any], expected: str) -> None:
    found = problems(base(**change))
    assert any(p.startswith(expected) for p in found), found


def test_missing_variable_names_key_and_variable() -> None:
    data = base(
        providers={
            "sim": {"kind": "simulated"},
            "oa": {"kind": "openai", "api_key": "${NO_SUCH_KEY}"},
        }
    )
    assert problems(data) == ["providers.oa.api_key: environment variable NO_SUCH_KEY is not set"]


def test_interpolation_with_defaults_and_lists() -> None:
    out = expand_vars(
        {"a": "${X}-${Y:-dflt}", "l": ["${X}", {"n": "${Z:-}"}], "n": 3},
        {"X": "x"},
        (),
        problems := [],
    )
    assert out == {"a": "x-dflt", "l": ["x", {"n": ""}], "n": 3}
    assert problems == []


def test_empty_api_key_from_unset_variable_means_no_auth() -> None:
    cfg = parse(base(server={"api_keys": ["${MODELROUTER_API_KEY:-}"]}), "t", {})
    assert cfg.settings.server.api_keys == []
    cfg = parse(
        base(server={"api_keys": ["${MODELROUTER_API_KEY:-}"]}), "t", {"MODELROUTER_API_KEY": "k1"}
    )
    assert cfg.settings.server.api_keys == ["k1"]


def test_env_overrides_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELROUTER_SERVER__PORT", "9123")
    monkeypatch.setenv("MODELROUTER_ROUTER__MAX_ATTEMPTS", "2")
    cfg = parse(base(server={"port": 8000}), "t", {})
    assert cfg.settings.server.port == 9123
    assert cfg.settings.router.max_attempts == 2


def test_bad_env_override_names_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELROUTER_SERVER__PORT", "not-a-port")
    assert any(p.startswith("server.port:") for p in problems(base()))


def test_errors_never_print_secrets() -> None:
    data = base(
        providers={
            "sim": {"kind": "simulated", "latency_ms": SECRET},
            "oa": {"kind": "openai", "api_key": SECRET, "bogus": SECRET},
        },
        server={"port": SECRET, "api_keys": SECRET},
    )
    with pytest.raises(ConfigError) as info:
        parse(data, "test", {})
    assert SECRET not in str(info.value)
    assert len(info.value.problems) >= 3


def test_toml_syntax_and_duplicate_tables(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[server]\nport = 1\n[server]\nport = 2\n")
    with pytest.raises(ConfigError) as info:
        load_file(f)
    assert info.value.problems[0].startswith("(syntax):")
    with pytest.raises(ConfigError, match="not found"):
        load_file(tmp_path / "missing.toml")


def test_example_and_demo_configs_are_valid() -> None:
    root = Path(__file__).resolve().parent.parent
    cfg = load_file(root / "config.example.toml", env={})
    assert cfg.settings.routes
    demo = load_demo(env={})
    assert demo.is_demo
    assert any(p.kind == "simulated" for p in demo.providers.values())
