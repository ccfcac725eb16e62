"""The Messages door's errors: Anthropic's shape and status codes, as the SDK's own classes."""

from __future__ import annotations

import anthropic
import httpx2
import orjson
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.upstream import rate_limited
from tests.providers.openai_like import FakeOpenAI
from tests.router import RunningRouter

from .conftest import KEY
from .test_messages_sdk import WEATHER, client

HI: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hi"}]


def test_wrong_key_is_authentication_error(router: RunningRouter) -> None:
    with pytest.raises(anthropic.AuthenticationError) as info:
        client(router, key="sk-wrong").messages.create(model="gpt", max_tokens=9, messages=HI)
    assert info.value.type == "authentication_error"


def test_key_as_x_api_key_or_bearer(router: RunningRouter) -> None:
    as_header = anthropic.Anthropic(base_url=router.url, api_key=KEY, max_retries=0)
    as_bearer = anthropic.Anthropic(base_url=router.url, auth_token=KEY, max_retries=0)
    for c in (as_header, as_bearer):
        assert c.messages.create(model="gpt", max_tokens=9, messages=HI).type == "message"


def test_unknown_model_is_not_found(router: RunningRouter) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client(router).messages.create(model="no-such-model", max_tokens=9, messages=HI)
    assert info.value.type == "not_found_error"
    assert "no-such-model" in str(info.value.api_message)


def test_every_model_failed_is_overloaded(router: RunningRouter) -> None:
    with pytest.raises(anthropic.OverloadedError) as info:
        client(router).messages.create(model="all-dead", max_tokens=9, messages=HI)
    assert info.value.status_code == 529
    assert info.value.type == "overloaded_error"
    # Not worth retrying: the router already tried every model.
    assert info.value.response.headers["x-should-retry"] == "false"
    body = info.value.body
    assert isinstance(body, dict)
    assert [a["model"] for a in body["error"]["attempts"]] == ["dead", "dead"]


def test_rate_limited_everywhere_is_rate_limit_error(
    router: RunningRouter, openai_up: FakeOpenAI
) -> None:
    openai_up.script(rate_limited(0), rate_limited(0))
    with pytest.raises(anthropic.RateLimitError) as info:
        client(router).messages.create(model="gpt", max_tokens=9, messages=HI)
    assert info.value.type == "rate_limit_error"
    assert info.value.response.headers["retry-after"] == "1"


def test_requests_anthropic_would_refuse(router: RunningRouter) -> None:
    c = client(router)
    with pytest.raises(anthropic.BadRequestError) as info:
        c.messages.create(
            model="gpt",
            max_tokens=9,
            messages=HI,
            tools=[WEATHER],
            tool_choice={"type": "sometimes"},  # type: ignore[typeddict-item]
        )
    assert info.value.type == "invalid_request_error"
    assert "tool_choice" in str(info.value.api_message)
    missing = httpx2.post(
        router.url + "/v1/messages",
        json={"model": "gpt", "messages": HI},
        headers={"x-api-key": KEY},
    )
    assert missing.status_code == 400
    assert missing.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }
    broken = httpx2.post(
        router.url + "/v1/messages",
        content=b"{not json",
        headers={"x-api-key": KEY, "content-type": "application/json"},
    )
    assert broken.status_code == 400
    assert broken.json()["type"] == "error"
    assert broken.json()["error"]["type"] == "invalid_request_error"


def test_anthropic_upstream_refusal_comes_back_as_sent(
    router: RunningRouter, anthropic_up: FakeAnthropic
) -> None:
    # A tool_result that answers no tool_use: the fake refuses as the API does.
    bad: list[anthropic.types.MessageParam] = [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]}
    ]
    with pytest.raises(anthropic.BadRequestError) as info:
        client(router).messages.create(model="claude", max_tokens=9, messages=bad)
    assert anthropic_up.rejected and info.value.api_message == anthropic_up.rejected[0]
    assert info.value.response.headers["x-modelrouter-model"] == "claude"


def test_count_tokens(router: RunningRouter) -> None:
    c = client(router)
    small = c.messages.count_tokens(model="gpt", messages=HI)
    bigger = c.messages.count_tokens(model="gpt", messages=HI, system="x" * 400, tools=[WEATHER])
    assert small.input_tokens >= 1
    assert bigger.input_tokens > small.input_tokens + 100
    with pytest.raises(anthropic.AuthenticationError):
        client(router, key="sk-wrong").messages.count_tokens(model="gpt", messages=HI)


def test_errors_carry_request_id(router: RunningRouter) -> None:
    r = httpx2.post(
        router.url + "/v1/messages",
        json={"model": "nope", "max_tokens": 9, "messages": HI},
        headers={"x-api-key": KEY, "x-request-id": "req-42"},
    )
    assert r.status_code == 404
    assert r.headers["request-id"] == "req-42"
    assert orjson.loads(r.content)["error"]["type"] == "not_found_error"


def test_guard_refusals_are_anthropic_shaped_on_this_door(router: RunningRouter) -> None:
    r = httpx2.post(
        router.url + "/v1/messages",
        content=b"max_tokens=9",
        headers={"x-api-key": KEY, "content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400  # 415 is not a status Anthropic answers
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "not JSON" in r.json()["error"]["message"]
    wrong_method = httpx2.get(router.url + "/v1/messages", headers={"x-api-key": KEY})
    assert wrong_method.json()["type"] == "error"
    assert wrong_method.json()["error"]["type"] == "not_found_error"
