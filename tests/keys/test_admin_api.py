"""/admin/keys, /admin/teams and GET /v1/key through the real server, on SQLite and
PostgreSQL: the openai SDK calls with the keys, httpx the admin API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import openai
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.keys.helpers import (
    ADMIN,
    API_KEY,
    CFG_SECRET,
    admin,
    chat,
    config,
    dump_store,
    error_of,
    ok,
    wait_for,
)
from tests.router import RunningRouter, run_router
from tests.store.scenario import store_for


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningRouter, str]]:
    url = store_for(request.param, tmp_path_factory.mktemp(request.param))
    with run_router(config(url)) as r:
        yield r, url


def create(r: RunningRouter, **body: Any) -> dict[str, Any]:
    return ok(admin(r, "POST", "/admin/keys", body), 201)  # type: ignore[no-any-return]


def refused(r: RunningRouter, key: str) -> openai.AuthenticationError:
    with pytest.raises(openai.AuthenticationError) as err:
        chat(r, key)
    assert err.value.code == "invalid_api_key"
    return err.value


def test_a_key_is_made_used_and_listed_without_its_secret(
    served: tuple[RunningRouter, str],
) -> None:
    r, url = served
    made = create(r, name="bot", team="research", rpm=60, budget_usd=2.5, metadata={"o": 1})
    secret = made["key"]
    assert secret.startswith("mr-") and len(secret) >= 3 + 43  # 256 random bits
    assert made["key_prefix"] == secret[:11]
    assert made["id"].startswith("key_")
    expected = {
        "name": "bot",
        "team": "research",
        "models": None,
        "rpm": 60,
        "tpm": None,
        "budget_usd": 2.5,
        "budget_period": "month",
        "expires_at": None,
        "metadata": {"o": 1},
        "revoked": False,
        "last_used_at": None,
        "spend_usd": 0.0,
        "read_only": False,
    }
    assert {k: made[k] for k in expected} == expected
    assert "Hello from m" in chat(r, secret)

    shown = admin(r, "GET", f"/admin/keys/{made['id']}")
    listed = admin(r, "GET", "/admin/keys")
    for answer in (shown, listed):
        assert answer.status_code == 200
        assert secret not in answer.text and secret[11:] not in answer.text
        assert '"key":' not in answer.text
    ids = [k["id"] for k in listed.json()["data"]]
    assert "cfg:ci" in ids and made["id"] in ids
    cfg = next(k for k in listed.json()["data"] if k["id"] == "cfg:ci")
    assert cfg["read_only"] and cfg["key_prefix"] is None and cfg["budget_usd"] == 50.0
    assert CFG_SECRET not in listed.text

    # The call log names the key and its team; its spend shows on the key.
    def logged() -> list[Any]:
        data: list[Any] = ok(admin(r, "GET", "/admin/logs", params={"key": made["id"]}))["data"]
        return data

    rec = wait_for(logged, what="the record of the key's call")[0]
    assert (rec["key_id"], rec["key_name"], rec["team"]) == (made["id"], "bot", "research")
    assert rec["cost_usd"] > 0
    spent = wait_for(
        lambda: ok(admin(r, "GET", f"/admin/keys/{made['id']}"))["spend_usd"], what="spend"
    )
    assert spent == pytest.approx(rec["cost_usd"])
    assert ok(admin(r, "GET", f"/admin/keys/{made['id']}"))["remaining_usd"] == pytest.approx(
        2.5 - rec["cost_usd"]
    )
    assert secret not in dump_store(url)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "x", "team": "nobody"}, "team"),
        ({"name": "x", "rpm": -5}, "rpm"),
        ({"name": "x", "budget_period": "year"}, "budget_period"),
        ({"name": "x", "expires_at": "2001-01-01"}, "expires_at"),
        ({"name": "x", "expires_at": "soon"}, "expires_at"),
        ({"name": "x", "colour": "red"}, "colour"),
        ({"name": "x", "tpm": "many"}, "tpm"),
        ({"team": "research"}, "name"),
    ],
)
def test_a_bad_key_body_is_a_400_naming_the_field(
    served: tuple[RunningRouter, str], body: dict[str, Any], param: str
) -> None:
    r, _ = served
    before = len(ok(admin(r, "GET", "/admin/keys"))["data"])
    err = error_of(admin(r, "POST", "/admin/keys", body), 400)
    assert err["param"] == param and err["type"] == "invalid_request_error"
    assert len(ok(admin(r, "GET", "/admin/keys"))["data"]) == before  # nothing made


def test_bodies_must_be_json_objects(served: tuple[RunningRouter, str]) -> None:
    r, _ = served
    plain = admin(
        r, "POST", "/admin/keys", content=b"name=x", headers={"content-type": "text/plain"}
    )
    assert error_of(plain, 415)["code"] == "unsupported_media_type"
    bad = admin(
        r, "POST", "/admin/keys", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert "not valid JSON" in error_of(bad, 400)["message"]
    assert error_of(admin(r, "POST", "/admin/keys", [1]), 400)["message"].endswith("JSON object.")


def test_models_matching_nothing_configured_are_accepted_with_a_warning(
    served: tuple[RunningRouter, str],
) -> None:
    r, _ = served
    made = create(r, name="globs", models=["default", "m*", "claude-*"])
    assert made["models"] == ["default", "m*", "claude-*"]
    assert made["warnings"] == ["models[2]: 'claude-*' matches no configured route or model."]
    assert "warnings" not in create(r, name="fine", models=["n"])


def test_a_revoked_key_is_refused_and_stays_revoked(served: tuple[RunningRouter, str]) -> None:
    r, _ = served
    made = create(r, name="short-lived")
    chat(r, made["key"])
    gone = ok(admin(r, "DELETE", f"/admin/keys/{made['id']}"))
    assert gone["revoked"] and gone["revoked_at"]
    refused(r, made["key"])
    again = ok(admin(r, "DELETE", f"/admin/keys/{made['id']}"))
    assert again["revoked_at"] == gone["revoked_at"]
    assert error_of(admin(r, "PATCH", f"/admin/keys/{made['id']}", {"rpm": 1}), 409)["code"] == (
        "key_revoked"
    )
    assert error_of(admin(r, "POST", f"/admin/keys/{made['id']}/rotate", {}), 409)["code"] == (
        "key_revoked"
    )
    assert error_of(admin(r, "DELETE", "/admin/keys/key_nope"), 404)["code"] == "not_found"


def test_unknown_and_expired_keys_are_refused(served: tuple[RunningRouter, str]) -> None:
    r, _ = served
    refused(r, "mr-" + "x" * 43)
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    made = create(r, name="expiring", expires_at=soon)
    chat(r, made["key"])
    time.sleep(max(0.0, datetime.fromisoformat(soon).timestamp() - time.time()) + 0.05)
    refused(r, made["key"])
    assert ok(admin(r, "GET", f"/admin/keys/{made['id']}"))["expired"]


def test_rotation_keeps_the_old_secret_only_through_its_grace(
    served: tuple[RunningRouter, str],
) -> None:
    r, url = served
    made = create(r, name="rotating")
    rotated = ok(admin(r, "POST", f"/admin/keys/{made['id']}/rotate", {"grace_s": 1.5}))
    started = time.time()
    new, old = rotated["key"], made["key"]
    assert new != old and rotated["key_prefix"] == new[:11] and rotated["id"] == made["id"]
    assert rotated["previous_key_valid_until"]
    chat(r, new)
    chat(r, old)
    assert time.time() - started < 1.5, "too slow to test the grace"
    time.sleep(1.6 - (time.time() - started))
    refused(r, old)
    chat(r, new)
    # Without a grace the old secret dies at once.
    again = ok(admin(r, "POST", f"/admin/keys/{made['id']}/rotate"))
    refused(r, new)
    chat(r, again["key"])
    assert (
        error_of(admin(r, "POST", f"/admin/keys/{made['id']}/rotate", {"grace_s": -1}), 400)[
            "param"
        ]
        == "grace_s"
    )
    dump = dump_store(url)
    assert all(s not in dump for s in (old, new, again["key"]))


def test_a_change_shows_in_the_keys_own_view_at_once(served: tuple[RunningRouter, str]) -> None:
    r, _ = served
    made = create(r, name="changing", models=["m"])
    headers = {"authorization": f"Bearer {made['key']}"}
    patched = ok(
        admin(r, "PATCH", f"/admin/keys/{made['id']}", {"models": ["n"], "tpm": 900, "name": "c2"})
    )
    assert (patched["models"], patched["tpm"], patched["name"]) == (["n"], 900, "c2")
    view = ok(admin(r, "GET", "/v1/key", headers=headers))
    assert view["name"] == "c2" and view["models"]["key"] == ["n"]
    assert view["limits"]["key"]["tpm"] == 900
    err = error_of(admin(r, "PATCH", f"/admin/keys/{made['id']}", {"team": "ghost"}), 400)
    assert err["param"] == "team"
    assert error_of(admin(r, "PATCH", f"/admin/keys/{made['id']}", {}), 400)["param"] is None


def test_config_keys_and_teams_are_read_only(served: tuple[RunningRouter, str]) -> None:
    r, _ = served
    assert ok(admin(r, "GET", "/admin/keys/cfg:ci"))["team"] == "research"
    for method, path in [
        ("PATCH", "/admin/keys/cfg:ci"),
        ("DELETE", "/admin/keys/cfg:ci"),
        ("POST", "/admin/keys/cfg:ci/rotate"),
        ("PATCH", "/admin/teams/research"),
        ("DELETE", "/admin/teams/research"),
    ]:
        err = error_of(admin(r, method, path, {"rpm": 1}), 409)
        assert err["code"] == "read_only" and "config file" in err["message"], path
    clash = error_of(admin(r, "POST", "/admin/teams", {"name": "research"}), 409)
    assert clash["code"] == "team_exists" and "config file" in clash["message"]
    assert error_of(admin(r, "GET", "/admin/keys/cfg:nope"), 404)["code"] == "not_found"
    chat(r, CFG_SECRET)


def test_teams_are_made_changed_and_deleted_when_empty(served: tuple[RunningRouter, str]) -> None:
    r, _ = served
    team = ok(admin(r, "POST", "/admin/teams", {"name": "ops", "tpm": 5000, "budget_usd": 3}), 201)
    assert (team["name"], team["tpm"], team["budget_usd"], team["read_only"]) == (
        "ops",
        5000,
        3.0,
        False,
    )
    assert error_of(admin(r, "POST", "/admin/teams", {"name": "ops"}), 409)["code"] == "team_exists"
    assert error_of(admin(r, "POST", "/admin/teams", {"name": "a/b"}), 400)["param"] == "name"
    names = [t["name"] for t in ok(admin(r, "GET", "/admin/teams"))["data"]]
    assert names[0] == "research" and "ops" in names
    made = create(r, name="op-bot", team="ops")
    headers = {"authorization": f"Bearer {made['key']}"}
    assert ok(admin(r, "GET", "/v1/key", headers=headers))["limits"]["team"]["tpm"] == 5000
    ok(admin(r, "PATCH", "/admin/teams/ops", {"tpm": 7000, "models": ["default"]}))
    view = ok(admin(r, "GET", "/v1/key", headers=headers))
    assert view["limits"]["team"]["tpm"] == 7000 and view["models"]["team"] == ["default"]
    assert error_of(admin(r, "PATCH", "/admin/teams/ops", {"name": "x"}), 400)["param"] == "name"
    busy = error_of(admin(r, "DELETE", "/admin/teams/ops"), 409)
    assert busy["code"] == "team_in_use" and "1 key" in busy["message"]
    ok(admin(r, "DELETE", f"/admin/keys/{made['id']}"))
    assert ok(admin(r, "DELETE", "/admin/teams/ops"))["deleted"] is True
    assert error_of(admin(r, "GET", "/admin/teams/ops"), 404)["code"] == "not_found"
    assert (
        error_of(admin(r, "POST", "/admin/keys", {"name": "k", "team": "ops"}), 400)["param"]
        == "team"
    )


def test_each_kind_of_key_sees_itself_on_v1_key(served: tuple[RunningRouter, str]) -> None:
    r, _ = served

    def view(key: str) -> Any:
        return ok(admin(r, "GET", "/v1/key", headers={"authorization": f"Bearer {key}"}))

    plain = view(API_KEY)
    assert plain["unrestricted"] and not plain["open"] and "server.api_keys" in plain["message"]
    chat(r, CFG_SECRET)
    cfg = view(CFG_SECRET)
    assert (cfg["id"], cfg["name"], cfg["team"], cfg["unrestricted"]) == (
        "cfg:ci",
        "ci",
        "research",
        False,
    )
    assert cfg["limits"]["key"]["budget_usd"] == 50.0 and cfg["limits"]["team"]["rpm"] == 1000
    assert cfg["models"] == {"key": None, "team": ["default", "m"]}
    # Records of this key's calls (here and in earlier tests) may still be landing: the
    # answer must agree with itself (the first test compares spend with the call log).
    wait_for(lambda: view(CFG_SECRET)["spend"]["key"]["spend_usd"], what="spend")
    spend = view(CFG_SECRET)["spend"]
    key_spend = spend["key"]
    assert key_spend["remaining_usd"] == pytest.approx(50.0 - key_spend["spend_usd"])
    assert key_spend["resets_at"].endswith("-01T00:00:00Z")  # a month's budget
    assert spend["team"]["spend_usd"] >= key_spend["spend_usd"] > 0
    assert spend["team"]["remaining_usd"] is None  # the team has no budget
    with pytest.raises(AssertionError):
        view("mr-unknown")
    assert (
        error_of(admin(r, "GET", "/v1/key", headers={"authorization": "Bearer x"}), 401)["code"]
        == "invalid_api_key"
    )


def test_the_admin_surface_needs_an_admin_key(served: tuple[RunningRouter, str]) -> None:
    r, _ = served
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": f"Bearer {API_KEY}"}):
        for method, path in [("GET", "/admin/keys"), ("POST", "/admin/teams")]:
            resp = admin(r, method, path, {"name": "x"}, headers=headers)
            if headers:
                assert error_of(resp, 401)["code"] == "invalid_api_key"
    resp = admin(r, "GET", "/admin/keys", headers={"authorization": "Bearer nope"})
    assert ADMIN not in resp.text


def test_health_shows_the_keys_state_without_secrets(served: tuple[RunningRouter, str]) -> None:
    r, _ = served
    create(r, name="health-check")
    full = ok(admin(r, "GET", "/health", headers={"authorization": f"Bearer {API_KEY}"}))["keys"]
    assert full["state"] == "ok" and full["virtual_keys"] >= 1 and full["static_keys"] == 2
    assert ok(admin(r, "GET", "/health", headers={"authorization": "Bearer no"}))["keys"] == {
        "state": "ok"
    }


def test_a_virtual_key_opens_mcp_until_it_is_revoked(served: tuple[RunningRouter, str]) -> None:
    r, _ = served
    made = create(r, name="agent", team="research")

    async def tools(key: str) -> list[str]:
        hc = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
        async with hc, Client(streamable_http_client(r.url + "/mcp", http_client=hc)) as c:
            result = await c.call_tool("chat", {"prompt": "hi", "model": "m"})
            assert not result.is_error
            return [t.name for t in (await c.list_tools()).tools]

    assert "chat" in asyncio.run(tools(made["key"]))
    rec = wait_for(
        lambda: ok(admin(r, "GET", "/admin/logs", params={"key": made["id"]}))["data"],
        what="the MCP call's record",
    )[0]
    assert (rec["surface"], rec["key_name"], rec["team"]) == ("mcp", "agent", "research")
    ok(admin(r, "DELETE", f"/admin/keys/{made['id']}"))
    resp = httpx2.post(
        r.url + "/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={
            "authorization": f"Bearer {made['key']}",
            "accept": "application/json, text/event-stream",
        },
    )
    assert resp.status_code == 401
