"""What the admin API accepts for keys and teams: each refusal names its field."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelrouter.errors import RouterError
from modelrouter.governance.fields import (
    KEY_FIELDS,
    TEAM_FIELDS,
    check_team_name,
    model_warnings,
    parse_body,
)

NOW = 1_800_000_000.0  # 2027-01-15


def parse(body: dict[str, Any], *, patch: bool = False) -> dict[str, Any]:
    return parse_body(body, KEY_FIELDS, now=NOW, patch=patch)


def refused(body: dict[str, Any], *, patch: bool = False) -> RouterError:
    with pytest.raises(RouterError) as err:
        parse(body, patch=patch)
    assert err.value.status == 400
    payload = err.value.payload()["error"]
    assert payload["type"] == "invalid_request_error"
    return err.value


def test_a_full_key_body_becomes_store_columns() -> None:
    got = parse(
        {
            "name": " ci bot ",
            "team": "research",
            "models": ["default", "gpt-*"],
            "rpm": 60,
            "tpm": 0,
            "budget_usd": 12,
            "budget_period": "week",
            "expires_at": "2027-06-30",
            "metadata": {"owner": "ana"},
        }
    )
    assert got == {
        "name": "ci bot",
        "team": "research",
        "models": '["default","gpt-*"]',
        "rpm": 60,
        "tpm": 0,
        "budget_usd": 12.0,
        "budget_period": "week",
        "expires_at": 1_814_399_999_999_999,  # the end of that UTC day, in microseconds
        "metadata": '{"owner":"ana"}',
    }


def test_a_minimal_body_gets_no_limits_and_a_monthly_period() -> None:
    got = parse({"name": "k"})
    assert got == {
        "name": "k",
        "team": None,
        "models": None,
        "rpm": None,
        "tpm": None,
        "budget_usd": None,
        "budget_period": "month",
        "expires_at": None,
        "metadata": "{}",
    }


def test_a_patch_holds_only_what_it_changes_and_null_clears() -> None:
    assert parse({"rpm": None, "models": None}, patch=True) == {"rpm": None, "models": None}
    assert refused({}, patch=True).param is None


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({}, "name", "required"),
        ({"name": ""}, "name", "non-empty"),
        ({"name": 5}, "name", "non-empty"),
        ({"name": "k", "rpm": -1}, "rpm", "negative"),
        ({"name": "k", "tpm": 1.5}, "tpm", "whole number"),
        ({"name": "k", "rpm": True}, "rpm", "whole number"),
        ({"name": "k", "rpm": "60"}, "rpm", "whole number"),
        ({"name": "k", "budget_usd": -0.01}, "budget_usd", "negative"),
        ({"name": "k", "budget_usd": "5"}, "budget_usd", "number"),
        ({"name": "k", "budget_period": "year"}, "budget_period", "one of day, week, month"),
        ({"name": "k", "expires_at": "2020-01-01"}, "expires_at", "in the past"),
        ({"name": "k", "expires_at": "next week"}, "expires_at", "neither a date"),
        ({"name": "k", "expires_at": 1893456000}, "expires_at", "a date"),
        ({"name": "k", "models": "gpt-*"}, "models", "list"),
        ({"name": "k", "models": ["a", ""]}, "models[1]", "non-empty"),
        ({"name": "k", "models": ["a", 3]}, "models[1]", "non-empty"),
        ({"name": "k", "metadata": [1]}, "metadata", "JSON object"),
        ({"name": "k", "metadata": {"x": "y" * 20000}}, "metadata", "larger than"),
        ({"name": "k", "team": 7}, "team", "team name"),
        ({"name": "k", "budget": 5}, "budget", "Unknown field 'budget'"),
    ],
)
def test_each_bad_field_is_a_400_naming_it(body: dict[str, Any], param: str, words: str) -> None:
    err = refused(body)
    assert err.param == param
    assert words in err.message


def test_team_bodies_take_no_team_or_expiry() -> None:
    for field in ("team", "expires_at"):
        with pytest.raises(RouterError) as err:
            parse_body({"name": "t", field: None}, TEAM_FIELDS, now=NOW, patch=False)
        assert err.value.param == field


@pytest.mark.parametrize("name", ["research", "r2-d2", "a.b_c", "X" * 200])
def test_run_time_team_names(name: str) -> None:
    assert check_team_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", "a/b", "a b", "é", "X" * 201, None])
def test_team_names_that_cannot_sit_in_a_url_are_refused(name: Any) -> None:
    with pytest.raises(RouterError) as err:
        check_team_name(name)
    assert err.value.param == "name"


def test_models_that_match_nothing_configured_are_warned_about() -> None:
    names = ["default", "gpt-4o-mini", "sonnet"]
    models = orjson.dumps(["default", "gpt-*", "claude-*", "sonnet", "nope"]).decode()
    assert model_warnings(models, names) == [
        "models[2]: 'claude-*' matches no configured route or model.",
        "models[4]: 'nope' matches no configured route or model.",
    ]
    assert model_warnings(None, names) == []
