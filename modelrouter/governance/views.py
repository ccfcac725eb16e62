"""Keys and teams as the admin API shows them, and as the key directory holds them.

A store row becomes two things here: its JSON view (never the secret, never its
hash) and, for a live key, the :class:`~modelrouter.governance.types.Identity` the
directory resolves its secret to. Config keys and teams (``[keys.NAME]``,
``[teams.NAME]``) get the same views, marked ``read_only``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, cast

import orjson

from modelrouter.governance.directory import limits_of, parse_expiry
from modelrouter.governance.periods import period_start
from modelrouter.governance.types import Identity, Limits, Period, Scope
from modelrouter.settings import KeySettings, LimitSettings, Settings
from modelrouter.store.timespec import iso

US = 1_000_000
"""Microseconds in a second (store times are microseconds)."""


def _time(us: int | None) -> str | None:
    return None if us is None else iso(us / US)


def row_limits(row: Mapping[str, Any]) -> Limits:
    """The limits of a key or team row."""
    return Limits(row["rpm"], row["tpm"], row["budget_usd"], cast(Period, row["budget_period"]))


def _models(row: Mapping[str, Any]) -> list[str] | None:
    text = row["models"]
    return None if text is None else list(orjson.loads(text))


def _limit_view(models: list[str] | None, limits: Limits) -> dict[str, Any]:
    return {
        "models": models,
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "budget_usd": limits.budget_usd,
        "budget_period": limits.budget_period,
    }


def spend_view(limits: Limits, spend: float | None, now: float) -> dict[str, Any]:
    """Spend in the current budget period and what is left of the budget."""
    remaining = None
    if limits.budget_usd is not None and spend is not None:
        remaining = max(0.0, limits.budget_usd - spend)
    return {
        "spend_usd": spend,
        "remaining_usd": remaining,
        "period_start": iso(period_start(limits.budget_period, now)),
    }


def key_view(row: Mapping[str, Any], spend: float | None, now: float) -> dict[str, Any]:
    """A store key as ``GET /admin/keys`` shows it."""
    limits = row_limits(row)
    expires = row["expires_at"]
    grace = row["previous_expires_at"]
    return {
        "id": row["id"],
        "object": "key",
        "name": row["name"],
        "key_prefix": row["key_prefix"],
        "team": row["team"],
        **_limit_view(_models(row), limits),
        "expires_at": _time(expires),
        "expired": expires is not None and expires <= now * US,
        "metadata": orjson.loads(row["metadata"]),
        "created_at": _time(row["created_at"]),
        "updated_at": _time(row["updated_at"]),
        "revoked": row["revoked_at"] is not None,
        "revoked_at": _time(row["revoked_at"]),
        "last_used_at": _time(row["last_used_at"]),
        "previous_key_valid_until": _time(grace) if grace and grace > now * US else None,
        **spend_view(limits, spend, now),
        "source": "store",
        "read_only": False,
    }


def config_key_view(
    name: str, spec: KeySettings, spend: float | None, now: float
) -> dict[str, Any]:
    """A ``[keys.NAME]`` key as ``GET /admin/keys`` shows it (read-only, id ``cfg:NAME``)."""
    limits = limits_of(spec)
    expires = parse_expiry(spec.expires_at) if spec.expires_at else None
    return {
        "id": f"cfg:{name}",
        "object": "key",
        "name": name,
        "key_prefix": None,  # a config secret may be short: not even a part of it is shown
        "team": spec.team,
        **_limit_view(spec.models, limits),
        "expires_at": None if expires is None else iso(expires),
        "expired": expires is not None and expires <= now,
        "metadata": spec.metadata,
        "created_at": None,
        "updated_at": None,
        "revoked": False,
        "revoked_at": None,
        "last_used_at": None,
        "previous_key_valid_until": None,
        **spend_view(limits, spend, now),
        "source": "config",
        "read_only": True,
    }


def team_view(row: Mapping[str, Any], spend: float | None, now: float) -> dict[str, Any]:
    """A run-time team as ``GET /admin/teams`` shows it."""
    limits = row_limits(row)
    return {
        "name": row["name"],
        "object": "team",
        **_limit_view(_models(row), limits),
        "metadata": orjson.loads(row["metadata"]),
        "created_at": _time(row["created_at"]),
        "updated_at": _time(row["updated_at"]),
        **spend_view(limits, spend, now),
        "source": "store",
        "read_only": False,
    }


def config_team_view(
    name: str, spec: LimitSettings, spend: float | None, now: float
) -> dict[str, Any]:
    """A ``[teams.NAME]`` team as ``GET /admin/teams`` shows it (read-only)."""
    limits = limits_of(spec)
    return {
        "name": name,
        "object": "team",
        **_limit_view(spec.models, limits),
        "metadata": {},
        "created_at": None,
        "updated_at": None,
        **spend_view(limits, spend, now),
        "source": "config",
        "read_only": True,
    }


def team_scope(
    name: str, settings: Settings, team_rows: Mapping[str, Mapping[str, Any]]
) -> tuple[Limits, tuple[str, ...] | None]:
    """A team's limits and models, from the config or the store (no limits if neither
    knows it, e.g. a team deleted while a revoked key still names it)."""
    spec = settings.teams.get(name)
    if spec is not None:
        return limits_of(spec), None if spec.models is None else tuple(spec.models)
    row = team_rows.get(name)
    if row is None:
        return Limits(), None
    models = _models(row)
    return row_limits(row), None if models is None else tuple(models)


def key_identity(
    row: Mapping[str, Any], settings: Settings, team_rows: Mapping[str, Mapping[str, Any]]
) -> Identity:
    """The identity a live store key's secret resolves to."""
    scopes = [Scope("key", row["id"], row_limits(row))]
    models: list[tuple[str, ...]] = []
    own = _models(row)
    if own is not None:
        models.append(tuple(own))
    team = row["team"]
    if team is not None:
        limits, team_models = team_scope(team, settings, team_rows)
        scopes.append(Scope("team", team, limits))
        if team_models is not None:
            models.append(team_models)
    expires = row["expires_at"]
    return Identity(
        key_id=row["id"],
        name=row["name"],
        team=team,
        models=tuple(models),
        scopes=tuple(s for s in scopes if s.limits.any),
        expires_at=None if expires is None else expires / US,
        metadata=orjson.loads(row["metadata"]),
    )


def identities(
    key_rows: Iterable[Mapping[str, Any]],
    team_rows: Iterable[Mapping[str, Any]],
    settings: Settings,
    now: float,
) -> dict[str, Identity]:
    """Every live store key by the hash of its secret, and, during a rotation's grace,
    by the hash of its previous secret (valid until the grace ends)."""
    teams = {row["name"]: row for row in team_rows}
    out: dict[str, Identity] = {}
    for row in key_rows:
        if row["revoked_at"] is not None:
            continue
        identity = key_identity(row, settings, teams)
        out[row["key_hash"]] = identity
        grace = row["previous_expires_at"]
        if row["previous_hash"] and grace is not None and grace > now * US:
            until = grace / US
            if identity.expires_at is not None:
                until = min(until, identity.expires_at)
            out[row["previous_hash"]] = replace(identity, expires_at=until)
    return out
