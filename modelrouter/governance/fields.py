"""What the admin API and the CLI accept for a key or a team, checked field by field.

Each problem is a 400 in OpenAI's shape whose ``param`` names the field (``models[2]``
for one entry of a list), so a client can point at what it got wrong. Values come out
ready for the store: lists and objects as JSON text, times in microseconds.

Unknown fields are refused rather than ignored: a typo such as ``budget`` for
``budget_usd`` would otherwise leave a key without the limit its maker meant.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

import orjson

from modelrouter.errors import RouterError, bad_request
from modelrouter.governance.directory import parse_expiry
from modelrouter.governance.periods import PERIODS

LIMIT_FIELDS = ("models", "rpm", "tpm", "budget_usd", "budget_period", "metadata")
"""What keys and teams both have."""
KEY_FIELDS = ("name", "team", *LIMIT_FIELDS, "expires_at")
"""What ``POST /admin/keys`` takes (and ``PATCH`` may change)."""
TEAM_FIELDS = ("name", *LIMIT_FIELDS)
"""What ``POST /admin/teams`` takes (``PATCH``: all but ``name``)."""
MAX_NAME = 200
MAX_METADATA = 16 * 1024
"""Bytes of ``metadata`` as JSON (it is stored, and shown in every listing)."""
MAX_MODELS = 200
TEAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
"""Names of teams made at run time: they appear in URLs (``/admin/teams/NAME``)."""


def _int(value: Any, field: str) -> int | None:
    # bool is an int in Python, never in JSON's sense.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"'{field}' must be a whole number or null.", field)
    if value < 0:
        raise bad_request(f"'{field}' must not be negative.", field)
    if value >= 2**53:
        raise bad_request(f"'{field}' is too large.", field)
    return value


def _budget(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad_request("'budget_usd' must be a number of US dollars or null.", "budget_usd")
    if value < 0:
        raise bad_request("'budget_usd' must not be negative.", "budget_usd")
    return float(value)


def _period(value: Any) -> str:
    if value not in PERIODS:
        raise bad_request(
            f"'budget_period' must be one of {', '.join(PERIODS)} (got {value!r}).", "budget_period"
        )
    return str(value)


def _models(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise bad_request(
            "'models' must be a list of route or model names (or globs), or null.", "models"
        )
    if len(value) > MAX_MODELS:
        raise bad_request(f"'models' may hold at most {MAX_MODELS} entries.", "models")
    for i, name in enumerate(value):
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            raise bad_request(f"'models[{i}]' must be a non-empty name or glob.", f"models[{i}]")
    return orjson.dumps(value).decode()


def _metadata(value: Any) -> str:
    if value is None:
        return "{}"
    if not isinstance(value, dict):
        raise bad_request("'metadata' must be a JSON object.", "metadata")
    text = orjson.dumps(value).decode()
    if len(text) > MAX_METADATA:
        raise bad_request(f"'metadata' is larger than {MAX_METADATA} bytes as JSON.", "metadata")
    return text


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad_request("'name' must be a non-empty string.", "name")
    if len(value) > MAX_NAME or not value.isprintable():
        raise bad_request(f"'name' must be printable and at most {MAX_NAME} characters.", "name")
    return value.strip()


def _team(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise bad_request("'team' must be a team name or null.", "team")
    return value


def _expiry(value: Any, now: float) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(
            "'expires_at' must be a date (2027-06-30) or an ISO time (2027-06-30T12:00:00Z).",
            "expires_at",
        )
    try:
        at = parse_expiry(value)
    except (ValueError, OverflowError):
        raise bad_request(
            f"'expires_at': {value[:60]!r} is neither a date (2027-06-30) nor an ISO time "
            "(2027-06-30T12:00:00Z).",
            "expires_at",
        ) from None
    if at <= now:
        raise bad_request("'expires_at' is in the past.", "expires_at")
    return int(at * 1_000_000)


def _unknown(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    known = set(allowed)
    for field in body:
        if field not in known:
            raise bad_request(
                f"Unknown field {field!r}: the fields are {', '.join(sorted(known))}.", field
            )


def parse_body(
    body: Mapping[str, Any], allowed: tuple[str, ...], *, now: float, patch: bool
) -> dict[str, Any]:
    """The store columns of a create (``patch=False``: ``name`` required, the rest
    defaulted) or of a change (only the fields given; ``null`` clears a limit)."""
    _unknown(body, allowed)
    if not patch and "name" not in body:
        raise bad_request("'name' is required.", "name")
    if patch and not body:
        raise bad_request(f"Nothing to change: give one of {', '.join(allowed)}.")
    parsers: dict[str, Any] = {
        "name": _name,
        "team": _team,
        "models": _models,
        "rpm": lambda v: _int(v, "rpm"),
        "tpm": lambda v: _int(v, "tpm"),
        "budget_usd": _budget,
        "budget_period": lambda v: _period("month" if v is None else v),
        "metadata": _metadata,
        "expires_at": lambda v: _expiry(v, now),
    }
    out: dict[str, Any] = {}
    for field in allowed:
        if field in body:
            out[field] = parsers[field](body[field])
        elif not patch:
            out[field] = parsers[field](None) if field != "name" else None
    return out


def check_team_name(name: Any) -> str:
    """A run-time team's name, or a 400 saying which names are allowed."""
    if not isinstance(name, str) or not TEAM_NAME.fullmatch(name):
        raise bad_request(
            "'name' of a team must be 1-200 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit.",
            "name",
        )
    return name


def model_warnings(models_json: str | None, names: Iterable[str]) -> list[str]:
    """One warning per entry of a models list that matches no configured route or model
    (accepted all the same: the config may gain it later)."""
    if models_json is None:
        return []
    known = list(names)
    out = []
    for i, pattern in enumerate(orjson.loads(models_json)):
        if not any(fnmatchcase(name, pattern) for name in known):
            out.append(f"models[{i}]: {pattern!r} matches no configured route or model.")
    return out


def conflict(message: str, code: str) -> RouterError:
    """409: the request is well formed but the state of things refuses it."""
    return RouterError(409, message, code=code)


def not_found(message: str) -> RouterError:
    """404 for a key or team that does not exist."""
    return RouterError(404, message, code="not_found")
