"""Registry: resolving names, capability defaults per provider kind, skipping unfit models."""

from __future__ import annotations

import pytest

from modelrouter.errors import RouterError
from modelrouter.registry import Registry
from providers.base import ChatRequest
from tests.router import router_config


def registry() -> Registry:
    cfg = router_config(
        providers={"claude": {"kind": "anthropic", "api_key": "k"}, "sim": {"kind": "simulated"}},
        models={
            "sonnet": {"provider": "claude", "model": "claude-sonnet-4-5"},
            "haiku": {"provider": "claude", "context_window": 1000},
            "text": {"provider": "sim", "supports_vision": False},
        },
        routes={"default": {"models": ["text", "sonnet"]}},
    )
    return Registry(cfg)


def test_kind_defaults_fill_unset_facts_only() -> None:
    reg = registry()
    assert reg.models["sonnet"].settings.context_window == 200_000
    assert reg.models["sonnet"].settings.supports_tools is True
    assert reg.models["haiku"].settings.context_window == 1000  # the model's own fact wins
    assert reg.models["text"].settings.context_window is None  # simulated: no defaults


def test_resolve_routes_models_and_lists() -> None:
    reg = registry()
    assert reg.resolve(None) == ("default", ["text", "sonnet"])
    assert reg.resolve("haiku") == ("haiku", ["haiku"])
    assert reg.resolve_list(["sonnet", "default"]) == ["sonnet", "text"]
    with pytest.raises(RouterError) as info:
        reg.resolve("nope")
    assert info.value.status == 404 and info.value.code == "model_not_found"


def test_images_skip_text_only_model_with_reason() -> None:
    reg = registry()
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ]
    }
    plan = reg.plan("default", ["text", "sonnet"], ChatRequest.from_body(body))
    assert [e.name for e in plan.candidates] == ["sonnet"]
    assert [(e.name, why) for e, why in plan.skipped] == [("text", "no image support")]
