"""Limits of virtual keys and run-time teams (made with the admin API, kept in the store,
SQLite and PostgreSQL): enforced like config keys, and edits take effect."""

from __future__ import annotations

import openai
import pytest

from tests.keys.helpers import MESSAGES, admin, chat, client, config, ok, wait_for
from tests.router import run_router
from tests.store.conftest import _own_database, empty_store, store_url

__all__ = ["_own_database", "empty_store", "store_url"]


def refused(r: object, key: str, model: str = "default") -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as info:
        client(r, key).chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
    return info.value


def test_a_virtual_keys_limits_hold_and_an_edit_takes_effect(store_url: str) -> None:
    with run_router(config(store_url)) as r:
        made = ok(admin(r, "POST", "/admin/keys", {"name": "v", "models": ["m"], "rpm": 2}), 201)
        key = made["key"]
        assert refused(r, key, "n").status_code == 403
        assert chat(r, key, "m")
        chat(r, key, "m")
        err = refused(r, key, "m")
        assert err.status_code == 429 and err.code == "rate_limit_exceeded"
        ok(admin(r, "PATCH", f"/admin/keys/{made['id']}", {"rpm": 6000, "models": None}))

        def passes() -> bool:
            try:
                return bool(chat(r, key, "n"))  # the list is gone too
            except openai.APIStatusError:
                return False

        # The raised limit refills at 100 a second from where the bucket was.
        wait_for(passes, 5, "the edited key to pass")


def test_a_run_time_teams_limits_hold_for_its_keys(store_url: str) -> None:
    with run_router(config(store_url)) as r:
        ok(admin(r, "POST", "/admin/teams", {"name": "tiny", "rpm": 1}), 201)
        one = ok(admin(r, "POST", "/admin/keys", {"name": "a", "team": "tiny"}), 201)["key"]
        two = ok(admin(r, "POST", "/admin/keys", {"name": "b", "team": "tiny"}), 201)["key"]
        chat(r, one)
        err = refused(r, two)
        assert err.status_code == 429
        assert "team 'tiny''s limit of 1 requests per minute" in err.message


def test_a_virtual_keys_budget_counts_across_restarts(store_url: str) -> None:
    body = {"name": "spender", "budget_usd": 0.0001, "budget_period": "day"}
    with run_router(config(store_url)) as r:
        made = ok(admin(r, "POST", "/admin/keys", body), 201)
        chat(r, made["key"])  # a few tokens at $1,000 and $2,000 per million: over $0.0001
        err = refused(r, made["key"])
        assert err.status_code == 429 and err.code == "insufficient_quota"
    with run_router(config(store_url)) as again:  # a new process: the spend is the store's
        err = refused(again, made["key"])  # store keys are loaded before serving starts
        assert err.status_code == 429 and err.code == "insufficient_quota"
