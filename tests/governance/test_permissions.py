"""Allow-lists (names and globs, all lists apply), the names a request asks for, the
cache, and the wire formats of limits."""

from __future__ import annotations

import pytest

from modelrouter.governance.permissions import Permissions, matches, requested_names
from modelrouter.governance.types import Identity
from modelrouter.governance.wire import Gauge, LimitExceeded, duration, put_headers
from providers.base import ChatRequest


def ident(*lists: tuple[str, ...], team: str | None = None) -> Identity:
    return Identity(key_id="k", name="k", team=team, models=lists)


@pytest.mark.parametrize(
    ("allow", "name", "ok"),
    [
        (("default",), "default", True),
        (("default",), "default2", False),
        (("gpt-*",), "gpt-4o-mini", True),
        (("gpt-*",), "GPT-4o", False),  # case-sensitive
        (("gpt-?o",), "gpt-4o", True),
        (("gpt-[45]o",), "gpt-5o", True),
        (("gpt-[45]o",), "gpt-6o", False),
        ((), "anything", False),
        (("*",), "anything", True),
    ],
)
def test_matches_names_and_globs(allow: tuple[str, ...], name: str, ok: bool) -> None:
    assert matches(allow, name) is ok


def test_every_list_applies_key_and_team() -> None:
    perms = Permissions()
    who = ident(("gpt-*", "default"), ("gpt-4o*",), team="research")
    assert perms.may_use(who, "gpt-4o-mini")
    assert not perms.may_use(who, "gpt-3.5")  # the key allows it, the team does not
    assert not perms.may_use(who, "default")  # the team does not allow the route
    assert perms.visible(who, ["gpt-4o", "gpt-3.5", "sonnet"]) == ["gpt-4o"]


def test_refusal_names_the_first_refused_and_what_is_allowed() -> None:
    perms = Permissions()
    who = ident(("a", "b*"), team="t")
    with pytest.raises(LimitExceeded) as info:
        perms.check(who, ["a", "bee", "c", "d"])
    err = info.value
    assert (err.status, err.code, err.type, err.param) == (
        403,
        "model_not_allowed",
        "permission_error",
        "model",
    )
    assert err.message.startswith("'c' is not allowed for this key or its team 't'")
    assert "a, b*" in err.message
    perms.check(who, ["a", "bee"])


def test_results_are_cached_per_list_and_name() -> None:
    perms = Permissions()
    allow = ("gpt-*",)
    assert perms.allows(allow, "gpt-4o")
    assert perms._cache == {(allow, "gpt-4o"): True}
    perms._cache[(allow, "gpt-4o")] = False  # the cache answers, not fnmatch
    assert not perms.allows(allow, "gpt-4o")


def test_requested_names_model_list_header_and_default_route() -> None:
    body = b'{"model": "r1", "models": ["m2", "r3"], "messages": []}'
    request = ChatRequest.from_json(body)
    assert requested_names("r1", request, "x,y", "default") == ["r1", "m2", "r3"]
    plain = ChatRequest.from_json(b'{"messages": []}')
    assert requested_names(None, plain, " x , y ,", "default") == ["x", "y"]
    assert requested_names(None, plain, None, "default") == ["default"]
    assert requested_names("m", plain, None, "default") == ["m"]
    listed = ChatRequest.from_body({"models": ["a"], "messages": []})
    assert requested_names(None, listed, None, "default") == ["a"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-1, "0s"),
        (0.02, "20ms"),
        (0.9996, "1s"),
        (1, "1s"),
        (6.5, "6.5s"),
        (2.8361, "2.836s"),
        (60, "1m0s"),
        (86.4, "1m26.4s"),
        (3723, "1h2m3s"),
    ],
)
def test_durations_are_written_as_openai_writes_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_headers_report_the_limit_with_least_remaining() -> None:
    headers: dict[str, str] = {}
    put_headers(headers, "tokens", [Gauge(1000, 900.7, 6.0), Gauge(500, -20.0, 84.0)])
    assert headers == {
        "x-ratelimit-limit-tokens": "500",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "1m24s",
    }
    put_headers(headers, "requests", [])
    assert len(headers) == 3
