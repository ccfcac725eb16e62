"""Without a store, without admin keys, and with no key at all (an open router)."""

from __future__ import annotations

from pathlib import Path

import httpx2
import openai
import pytest

from tests.keys.helpers import ADMIN, CFG_SECRET, admin, chat, config, error_of, ok
from tests.router import router_config, run_router


def test_without_a_store_config_keys_work_and_key_writes_say_why_not() -> None:
    with run_router(config("none")) as r:
        assert "Hello" in chat(r, CFG_SECRET)
        for method, path in [
            ("POST", "/admin/keys"),
            ("PATCH", "/admin/keys/key_x"),
            ("DELETE", "/admin/keys/key_x"),
            ("POST", "/admin/keys/key_x/rotate"),
            ("POST", "/admin/teams"),
            ("DELETE", "/admin/teams/research"),
        ]:
            err = error_of(admin(r, method, path, {"name": "x"}), 404)
            assert err["code"] == "store_disabled" and 'url = "none"' in err["message"], path
        listed = ok(admin(r, "GET", "/admin/keys"))["data"]
        assert [k["id"] for k in listed] == ["cfg:ci"] and listed[0]["spend_usd"] is None
        assert ok(admin(r, "GET", "/admin/keys/cfg:ci"))["name"] == "ci"
        assert "no store" in error_of(admin(r, "GET", "/admin/keys/key_x"), 404)["message"].lower()
        assert [t["name"] for t in ok(admin(r, "GET", "/admin/teams"))["data"]] == ["research"]
        assert ok(admin(r, "GET", "/admin/teams/research"))["rpm"] == 1000
        view = ok(admin(r, "GET", "/v1/key", headers={"authorization": f"Bearer {CFG_SECRET}"}))
        assert view["name"] == "ci" and view["spend"]["key"]["spend_usd"] is None


def test_without_admin_keys_the_key_admin_surface_is_not_there(tmp_path: Path) -> None:
    with run_router(config(f"sqlite:///{tmp_path / 's.db'}", admin_keys=[])) as r:
        for method, path in [("GET", "/admin/keys"), ("POST", "/admin/teams")]:
            resp = httpx2.request(
                method, r.url + path, json={}, headers={"authorization": f"Bearer {ADMIN}"}
            )
            assert error_of(resp, 404)["code"] == "not_found"


def test_an_open_router_closes_once_a_virtual_key_exists_even_revoked(tmp_path: Path) -> None:
    cfg = router_config(
        providers={"sim": {"kind": "simulated", "latency_ms": 1}},
        models={"m": {"provider": "sim"}},
        routes={"default": {"models": ["m"]}},
        server={"admin_keys": [ADMIN]},
        store={"url": f"sqlite:///{tmp_path / 's.db'}"},
    )
    with run_router(cfg) as r:
        anyone = openai.OpenAI(base_url=r.base_url, api_key="anything", max_retries=0)
        anyone.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        view = ok(httpx2.get(r.url + "/v1/key"))
        assert view["open"] and view["unrestricted"] and "anyone" in view["message"]
        made = ok(admin(r, "POST", "/admin/keys", {"name": "first"}), 201)
        with pytest.raises(openai.AuthenticationError):
            anyone.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert error_of(httpx2.get(r.url + "/v1/key"), 401)["code"] == "invalid_api_key"
        chat(r, made["key"], "m")
        ok(admin(r, "DELETE", f"/admin/keys/{made['id']}"))
        with pytest.raises(openai.AuthenticationError):
            anyone.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
