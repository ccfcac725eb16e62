"""``GET /v1/key``: what the calling key may do and how much of its budget is left.

Read from what the process already holds (the config, and the keys the watcher
loaded), plus the spend of the key and its team in their current budget periods from
the store's roll-ups (records reach them within the call-log writer's flush, a
fraction of a second).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from modelrouter.governance.directory import limits_of
from modelrouter.governance.keystore import CONFIG_ID
from modelrouter.governance.periods import period_end, period_start
from modelrouter.governance.types import Identity, Limits
from modelrouter.governance.views import US, row_limits, spend_view
from modelrouter.governance.watch import KeyService
from modelrouter.store.spend import SpendKind, spend_since
from modelrouter.store.timespec import iso

OPEN = "No key is configured: anyone may call this router, with no limits."
UNRESTRICTED = "An unrestricted key (server.api_keys): every model, no limits, no budget."


def _limits(limits: Limits) -> dict[str, Any]:
    return {
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "budget_usd": limits.budget_usd,
        "budget_period": limits.budget_period,
    }


def _own(identity: Identity, service: KeyService) -> tuple[Limits, list[str] | None, str | None]:
    """The key's own limits, models and expiry (ISO)."""
    key_id = identity.key_id or ""
    if key_id.startswith(CONFIG_ID):
        spec = service.settings.keys[key_id[len(CONFIG_ID) :]]
        return limits_of(spec), spec.models, spec.expires_at
    row = service.keys.get(key_id)
    if row is None:  # loaded a moment ago and gone since: what the identity says
        return Limits(), None, None
    models = None if row["models"] is None else list(orjson.loads(row["models"]))
    expires = None if row["expires_at"] is None else iso(row["expires_at"] / US)
    return row_limits(row), models, expires


def _team(name: str, service: KeyService) -> tuple[Limits, list[str] | None]:
    spec = service.settings.teams.get(name)
    if spec is not None:
        return limits_of(spec), spec.models
    row: Mapping[str, Any] | None = service.teams.get(name)
    if row is None:
        return Limits(), None
    models = None if row["models"] is None else list(orjson.loads(row["models"]))
    return row_limits(row), models


async def _spent(
    service: KeyService, kind: SpendKind, who: str, limits: Limits, now: float
) -> dict[str, Any]:
    spend = None
    engine = service.reader
    if engine is not None:
        spend = await spend_since(engine, kind, who, period_start(limits.budget_period, now))
    end = period_end(limits.budget_period, now)
    return {**spend_view(limits, spend, now), "resets_at": None if end is None else iso(end)}


async def describe(
    identity: Identity, *, open: bool, service: KeyService, now: float
) -> dict[str, Any]:
    """The ``GET /v1/key`` answer for ``identity``."""
    if identity.key_id is None:
        return {
            "object": "key",
            "unrestricted": True,
            "open": open,
            "message": OPEN if open else UNRESTRICTED,
        }
    limits, models, expires = _own(identity, service)
    out: dict[str, Any] = {
        "object": "key",
        "id": identity.key_id,
        "name": identity.name,
        "team": identity.team,
        "unrestricted": False,
        "expires_at": expires,
        "models": {"key": models, "team": None},
        "limits": {"key": _limits(limits), "team": None},
        "spend": {"key": await _spent(service, "key", identity.key_id, limits, now), "team": None},
    }
    if identity.team is not None:
        team_limits, team_models = _team(identity.team, service)
        out["models"]["team"] = team_models
        out["limits"]["team"] = _limits(team_limits)
        out["spend"]["team"] = await _spent(service, "team", identity.team, team_limits, now)
    return out
