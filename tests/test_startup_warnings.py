"""Start-up warnings: hosted providers without a key, upstreams that are the router itself."""

from __future__ import annotations

from typing import Any

import pytest

from modelrouter.config import LoadedConfig, parse, startup_warnings


def load(server: dict[str, Any], provider: dict[str, Any], env: dict[str, str]) -> LoadedConfig:
    data = {
        "server": server,
        "providers": {"up": provider},
        "models": {"m": {"provider": "up"}},
        "routes": {"default": {"models": ["m"]}},
    }
    return parse(data, "test config", env)


@pytest.mark.parametrize(
    ("host", "base_url", "loops"),
    [
        ("127.0.0.1", "http://localhost:8080/v1", True),
        ("127.0.0.1", "http://127.0.0.1:8080/v1", True),
        ("127.0.0.1", "http://[::1]:8080/v1", True),
        ("127.0.0.1", "http://0.0.0.0:8080", True),
        ("0.0.0.0", "http://LOCALHOST:8080/v1", True),
        ("::", "http://127.0.0.1:8080/v1", True),
        ("localhost", "http://127.0.0.1:8080/v1", True),
        ("10.1.2.3", "http://10.1.2.3:8080/v1", True),
        ("127.0.0.1", "http://localhost:8081/v1", False),  # another port
        ("10.1.2.3", "http://localhost:8080/v1", False),  # bound elsewhere
        ("127.0.0.1", "http://models.example:8080/v1", False),
        ("127.0.0.1", "http://localhost/v1", False),  # port 80
    ],
)
def test_upstream_at_the_routers_own_address(host: str, base_url: str, loops: bool) -> None:
    cfg = load({"host": host, "port": 8080}, {"kind": "openai", "base_url": base_url}, {})
    found = [w for w in startup_warnings(cfg) if "own address" in w]
    assert bool(found) is loops, found


def test_the_llamacpp_preset_default_is_the_routers_default_address() -> None:
    cfg = load({}, {"kind": "llamacpp"}, {})
    assert startup_warnings(cfg) == (
        "providers.up.base_url points at this router's own address (localhost:8080, "
        "[server] listens on 127.0.0.1:8080): the router would call itself; change the port "
        "of one of them",
    )
    # Port 0: the OS picks it, nothing to compare.
    assert startup_warnings(load({"port": 0}, {"kind": "llamacpp"}, {})) == ()


@pytest.mark.parametrize(
    ("provider", "env", "warned"),
    [
        (
            {"kind": "openai", "api_key": "${OPENAI_API_KEY:-}"},
            {},
            "($OPENAI_API_KEY unset or empty)",
        ),
        ({"kind": "openai"}, {}, "providers.up: no api_key: calls to api.openai.com"),
        ({"kind": "openai", "base_url": "https://api.groq.com/openai/v1"}, {}, "api.groq.com"),
        ({"kind": "groq", "api_key": "${GROQ_API_KEY:-}"}, {}, "($GROQ_API_KEY unset or empty)"),
        ({"kind": "gemini", "api_key": ""}, {}, "api_key is empty: calls to generative"),
        ({"kind": "azure", "base_url": "https://r.openai.azure.com", "api_key": ""}, {}, "r.open"),
        # Not warned: a key, a local server, a credential header, a kind that needs none.
        ({"kind": "openai", "api_key": "${OPENAI_API_KEY:-}"}, {"OPENAI_API_KEY": "sk-x"}, None),
        ({"kind": "openai", "base_url": "http://127.0.0.1:8000/v1"}, {}, None),
        ({"kind": "vllm", "api_key": "${VLLM_API_KEY:-}"}, {}, None),
        ({"kind": "ollama"}, {}, None),
        ({"kind": "simulated"}, {}, None),
        (
            {
                "kind": "azure",
                "base_url": "https://r.openai.azure.com",
                "api_key": "",
                "headers": {"Authorization": "Bearer entra-token"},
            },
            {},
            None,
        ),
    ],
)
def test_hosted_provider_without_a_key(
    provider: dict[str, Any], env: dict[str, str], warned: str | None
) -> None:
    warnings = startup_warnings(load({"port": 9}, provider, env))
    if warned is None:
        assert warnings == ()
    else:
        assert len(warnings) == 1 and warned in warnings[0], warnings
        assert "sk-" not in warnings[0] and "entra" not in warnings[0]
