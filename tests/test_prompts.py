"""Prompt templates and ``POST /v1/prompts/{name}`` against the real router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import orjson
import pytest

from modelrouter.errors import RouterError
from modelrouter.prompts import fill, prompt_chat_body, render_messages, template_variables
from modelrouter.settings import PromptSettings
from tests.fakes.upstream import FakeUpstream, status
from tests.router import RunningRouter, router_config, run_router

KEY = "sk-prompts-test"
SUMMARIZE = PromptSettings(
    description="Summarize",
    route="cheap",
    system="You write {style} bullet points.",
    template="Summarize in {n} bullets:\n\n{text}",
)
PROMPTS = {"summarize": SUMMARIZE, "plain": PromptSettings(template="No variables here.")}


def test_variables_in_order_of_first_use_once_each() -> None:
    assert template_variables("{b} {a} {b}", "{c}{a}") == ["b", "a", "c"]


def test_escaped_and_foreign_braces_are_not_variables() -> None:
    text = 'JSON {{"k": {v}}} and {"raw": 1} and {not a var} and {0}'
    assert template_variables(text) == ["v"]
    assert fill(text, {"v": "7"}) == 'JSON {"k": 7} and {"raw": 1} and {not a var} and {0}'


def test_render_fills_system_and_template() -> None:
    messages = render_messages("summarize", SUMMARIZE, {"style": "terse", "n": 3, "text": "abc"})
    assert messages == [
        {"role": "system", "content": "You write terse bullet points."},
        {"role": "user", "content": "Summarize in 3 bullets:\n\nabc"},
    ]


def test_missing_and_unknown_variables_are_named() -> None:
    with pytest.raises(RouterError) as info:
        render_messages("summarize", SUMMARIZE, {"text": "abc", "colour": "red", "extra": "x"})
    err = info.value
    assert err.status == 400
    assert err.param == "variables"
    assert "missing variable(s): style, n" in err.message
    assert "unknown variable(s): colour, extra" in err.message


def test_non_scalar_variable_is_refused() -> None:
    with pytest.raises(RouterError, match="'text' must be a string"):
        render_messages("summarize", SUMMARIZE, {"style": "a", "n": "1", "text": ["x"]})


def test_chat_body_uses_route_and_passes_params() -> None:
    body = prompt_chat_body(
        PROMPTS, "plain", {"variables": {}, "temperature": 0.2, "stream": True, "seed": 1}
    )
    assert body == {
        "temperature": 0.2,
        "stream": True,
        "seed": 1,
        "messages": [{"role": "user", "content": "No variables here."}],
    }
    vars_ = {"style": "s", "n": 1, "text": "t"}
    assert prompt_chat_body(PROMPTS, "summarize", {"variables": vars_})["model"] == "cheap"
    chosen = {"variables": vars_, "model": "big"}
    assert prompt_chat_body(PROMPTS, "summarize", chosen)["model"] == "big"


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ({"variables": []}, 400, "'variables' must be an object"),
        ({"messages": []}, 400, "'messages' cannot be sent"),
    ],
)
def test_chat_body_refuses_bad_shapes(body: dict[str, Any], code: int, needle: str) -> None:
    with pytest.raises(RouterError) as info:
        prompt_chat_body(PROMPTS, "plain", body)
    assert info.value.status == code
    assert needle in info.value.message


def test_unknown_prompt_is_404_listing_prompts() -> None:
    with pytest.raises(RouterError) as info:
        prompt_chat_body(PROMPTS, "nope", {})
    assert info.value.status == 404
    assert info.value.code == "prompt_not_found"
    assert "plain, summarize" in info.value.message


# ---- over HTTP ------------------------------------------------------------------------


@pytest.fixture
def cheap() -> Iterator[FakeUpstream]:
    with FakeUpstream.in_thread("cheap") as up:
        yield up


@pytest.fixture
def router(cheap: FakeUpstream, backup: FakeUpstream) -> Iterator[RunningRouter]:
    cfg = router_config(
        providers={
            "p1": {"kind": "openai", "base_url": cheap.base_url, "api_key": "k1"},
            "p2": {"kind": "openai", "base_url": backup.base_url, "api_key": "k2"},
        },
        models={"c": {"provider": "p1", "model": "up-c"}, "b": {"provider": "p2"}},
        routes={"cheap": {"models": ["c", "b"]}, "default": {"models": ["b"]}},
        server={"api_keys": [KEY]},
        prompts={
            "summarize": {
                "description": "Summarize",
                "route": "cheap",
                "system": "You write {style} bullet points.",
                "template": "Summarize:\n\n{text}",
            }
        },
    )
    with run_router(cfg) as r:
        yield r


def post(r: RunningRouter, name: str, body: Any, key: str | None = KEY) -> httpx2.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx2.post(f"{r.base_url}/prompts/{name}", json=body, headers=headers, timeout=20)


VARS = {"style": "terse", "text": "The quick brown fox."}


def test_prompt_runs_on_its_route(router: RunningRouter, cheap: FakeUpstream) -> None:
    resp = post(router, "summarize", {"variables": VARS, "temperature": 0.3})
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == "hello from cheap"
    assert resp.headers["x-modelrouter-model"] == "c"
    sent = cheap.requests[-1].json
    assert sent["model"] == "up-c"
    assert sent["temperature"] == 0.3
    assert "variables" not in sent
    assert sent["messages"] == [
        {"role": "system", "content": "You write terse bullet points."},
        {"role": "user", "content": "Summarize:\n\nThe quick brown fox."},
    ]


def test_prompt_falls_back_and_streams(
    router: RunningRouter, cheap: FakeUpstream, backup: FakeUpstream
) -> None:
    cheap.default = status(503)
    body = {"variables": VARS, "stream": True}
    with httpx2.stream(
        "POST",
        f"{router.base_url}/prompts/summarize",
        json=body,
        headers={"authorization": f"Bearer {KEY}"},
        timeout=20,
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["x-modelrouter-model"] == "b"
        events = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(orjson.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert text == "hello from backup"
    assert backup.requests[-1].json["messages"][1]["content"].endswith("quick brown fox.")


def test_missing_and_unknown_variables_give_400(router: RunningRouter) -> None:
    resp = post(router, "summarize", {"variables": {"text": "x", "tone": "dry"}})
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["param"] == "variables"
    assert err["code"] == "invalid_variables"
    assert "missing variable(s): style" in err["message"]
    assert "unknown variable(s): tone" in err["message"]


def test_unknown_prompt_and_no_key(router: RunningRouter) -> None:
    resp = post(router, "nope", {"variables": {}})
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "prompt_not_found"
    assert post(router, "summarize", {"variables": VARS}, key=None).status_code == 401
    assert post(router, "summarize", {"variables": VARS}, key="wrong").status_code == 401
