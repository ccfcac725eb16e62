"""Virtual keys and run-time teams: create, read, change, revoke, rotate.

:class:`KeyStore` is what the admin API (:mod:`modelrouter.api.admin_keys`) and the
CLI (``modelrouter keys``) both call. Every write is one transaction that first bumps
the change counter (:func:`modelrouter.store.keyrows.bump`), then checks and writes:
a failure anywhere leaves nothing behind, and a router polling the counter reloads
exactly when something committed (:mod:`modelrouter.governance.watch`).

A key's secret is ``mr-`` and 32 random bytes in URL-safe base64 (256 bits), shown
once, in the answer that made it (create, rotate). The store keeps its SHA-256 and a
short prefix for people to recognise it by. Keys and teams of the config file
(``[keys.NAME]`` as ``cfg:NAME``, ``[teams.NAME]``) are listed with the rest but are
read-only here: they change in the file.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelrouter.errors import RouterError, bad_request
from modelrouter.governance import fields
from modelrouter.governance.directory import hash_secret, limits_of
from modelrouter.governance.fields import conflict, not_found
from modelrouter.governance.periods import PERIODS, period_start
from modelrouter.governance.types import Limits
from modelrouter.governance.views import (
    US,
    config_key_view,
    config_team_view,
    key_view,
    row_limits,
    team_view,
)
from modelrouter.settings import Settings
from modelrouter.store import keyrows
from modelrouter.store.spend import SpendKind, spend_all, spend_since

SECRET_PREFIX = "mr-"
"""How every virtual key's secret begins."""
SHOWN_CHARS = 8
"""Characters of the secret after ``mr-`` kept as ``key_prefix``."""
CONFIG_ID = "cfg:"
"""Ids of config keys begin so (``cfg:NAME``)."""
MAX_GRACE_S = 30 * 86400
"""Longest rotation grace: the old secret of a rotated key is meant to die soon."""


def new_secret() -> str:
    """A fresh key secret (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    """A fresh key id (what URLs, logs and usage name the key by)."""
    return "key_" + secrets.token_hex(8)


def _read_only(what: str, where: str) -> RouterError:
    return conflict(
        f"{what} is declared in the config file ({where}) and is read-only here: change it "
        "there and restart.",
        "read_only",
    )


class KeyStore:
    """Keys and teams in one store, for the admin API and the CLI."""

    def __init__(
        self,
        settings: Settings,
        writer: AsyncEngine,
        reader: AsyncEngine,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._writer = writer
        self._reader = reader
        self._clock = clock

    # --- keys ---------------------------------------------------------------------------

    async def create_key(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Make a key; the answer holds its secret (``key``) and any ``warnings``."""
        now = self._clock()
        values = fields.parse_body(body, fields.KEY_FIELDS, now=now, patch=False)
        secret = new_secret()
        stamp = int(now * US)
        values.update(
            id=new_key_id(),
            key_hash=hash_secret(secret),
            key_prefix=secret[: len(SECRET_PREFIX) + SHOWN_CHARS],
            created_at=stamp,
            updated_at=stamp,
        )
        async with self._writer.begin() as conn:
            await keyrows.bump(conn)
            await self._check_team(conn, values["team"])
            await keyrows.insert_key(conn, values)
            row = await keyrows.get_key(conn, values["id"])
        assert row is not None
        view = {**key_view(row, 0.0, now), "key": secret}
        return self._warn(view, values.get("models"))

    async def list_keys(self) -> list[dict[str, Any]]:
        """Every key, config keys first, with its spend in its current budget period."""
        now = self._clock()
        async with self._reader.connect() as conn:
            rows = await keyrows.list_keys(conn)
        periods = {r["budget_period"] for r in rows}
        periods |= {spec.budget_period for spec in self.settings.keys.values()}
        spend = await self._spends("key", periods, now)
        out = [
            config_key_view(
                name, spec, spend[spec.budget_period].get(f"{CONFIG_ID}{name}", 0.0), now
            )
            for name, spec in self.settings.keys.items()
        ]
        for row in rows:
            out.append(key_view(row, spend[row["budget_period"]].get(row["id"], 0.0), now))
        return out

    async def get_key(self, key_id: str) -> dict[str, Any]:
        """One key (404 if there is none by that id)."""
        now = self._clock()
        if key_id.startswith(CONFIG_ID):
            name = key_id[len(CONFIG_ID) :]
            spec = self.settings.keys.get(name)
            if spec is None:
                raise not_found(f"No key {key_id!r} in the config file.")
            return config_key_view(
                name, spec, await self._spend("key", key_id, limits_of(spec), now), now
            )
        async with self._reader.connect() as conn:
            row = await keyrows.get_key(conn, key_id)
        if row is None:
            raise not_found(f"No key {key_id!r}.")
        return key_view(row, await self._spend("key", key_id, row_limits(row), now), now)

    async def patch_key(self, key_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Change a key's name, team, models, limits, expiry or metadata."""
        now = self._clock()
        self._writable_key(key_id)
        values = fields.parse_body(body, fields.KEY_FIELDS, now=now, patch=True)
        values["updated_at"] = int(now * US)
        async with self._writer.begin() as conn:
            await keyrows.bump(conn)
            await self._live_key(conn, key_id)
            if "team" in values:
                await self._check_team(conn, values["team"])
            await keyrows.update_key(conn, key_id, values)
            row = await keyrows.get_key(conn, key_id)
        assert row is not None
        view = key_view(row, await self._spend("key", key_id, row_limits(row), now), now)
        return self._warn(view, values.get("models"))

    async def revoke_key(self, key_id: str) -> dict[str, Any]:
        """Revoke a key for good (revoking it again changes nothing)."""
        now = self._clock()
        self._writable_key(key_id)
        async with self._writer.begin() as conn:
            await keyrows.bump(conn)
            row = await keyrows.get_key(conn, key_id)
            if row is None:
                raise not_found(f"No key {key_id!r}.")
            if row["revoked_at"] is None:
                stamp = int(now * US)
                # The rotation grace ends with the key: its old secret dies too.
                done = {"revoked_at": stamp, "updated_at": stamp, "previous_expires_at": None}
                await keyrows.update_key(conn, key_id, done)
                row = {**row, **done}
        return key_view(row, await self._spend("key", key_id, row_limits(row), now), now)

    async def rotate_key(self, key_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Give a key a new secret; the old one keeps working ``grace_s`` seconds
        (default 0). A grace still running from an earlier rotation ends now."""
        now = self._clock()
        self._writable_key(key_id)
        grace = self._grace(body)
        secret = new_secret()
        async with self._writer.begin() as conn:
            await keyrows.bump(conn)
            row = await self._live_key(conn, key_id)
            stamp = int(now * US)
            values = {
                "key_hash": hash_secret(secret),
                "key_prefix": secret[: len(SECRET_PREFIX) + SHOWN_CHARS],
                "previous_hash": row["key_hash"] if grace else None,
                "previous_expires_at": stamp + int(grace * US) if grace else None,
                "updated_at": stamp,
            }
            await keyrows.update_key(conn, key_id, values)
            row = {**row, **values}
        spend = await self._spend("key", key_id, row_limits(row), now)
        return {**key_view(row, spend, now), "key": secret}

    # --- teams --------------------------------------------------------------------------

    async def create_team(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Make a run-time team (its name must not be a config team's)."""
        now = self._clock()
        values = fields.parse_body(body, fields.TEAM_FIELDS, now=now, patch=False)
        name = fields.check_team_name(values["name"])
        if name in self.settings.teams:
            raise conflict(
                f"Team {name!r} is declared in the config file ([teams.{name}]): choose "
                "another name.",
                "team_exists",
            )
        stamp = int(now * US)
        values.update(created_at=stamp, updated_at=stamp)
        async with self._writer.begin() as conn:
            await keyrows.bump(conn)
            if await keyrows.get_team(conn, name) is not None:
                raise conflict(f"Team {name!r} exists already.", "team_exists")
            await keyrows.insert_team(conn, values)
            row = await keyrows.get_team(conn, name)
        assert row is not None
        return self._warn(team_view(row, 0.0, now), values.get("models"))

    async def list_teams(self) -> list[dict[str, Any]]:
        """Every team, config teams first, with its spend in its current budget period."""
        now = self._clock()
        async with self._reader.connect() as conn:
            rows = await keyrows.list_teams(conn)
        periods = {r["budget_period"] for r in rows}
        periods |= {spec.budget_period for spec in self.settings.teams.values()}
        spend = await self._spends("team", periods, now)
        out = [
            config_team_view(name, spec, spend[spec.budget_period].get(name, 0.0), now)
            for name, spec in self.settings.teams.items()
        ]
        out += [team_view(r, spend[r["budget_period"]].get(r["name"], 0.0), now) for r in rows]
        return out

    async def get_team(self, name: str) -> dict[str, Any]:
        """One team (404 if there is none by that name)."""
        now = self._clock()
        spec = self.settings.teams.get(name)
        if spec is not None:
            return config_team_view(
                name, spec, await self._spend("team", name, limits_of(spec), now), now
            )
        async with self._reader.connect() as conn:
            row = await keyrows.get_team(conn, name)
        if row is None:
            raise not_found(f"No team {name!r}.")
        return team_view(row, await self._spend("team", name, row_limits(row), now), now)

    async def patch_team(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Change a run-time team's models, limits or metadata (not its name)."""
        now = self._clock()
        if name in self.settings.teams:
            raise _read_only(f"Team {name!r}", f"[teams.{name}]")
        if "name" in body:
            raise bad_request("A team's name cannot change: make a new team.", "name")
        values = fields.parse_body(body, fields.TEAM_FIELDS[1:], now=now, patch=True)
        values["updated_at"] = int(now * US)
        async with self._writer.begin() as conn:
            await keyrows.bump(conn)
            if await keyrows.get_team(conn, name) is None:
                raise not_found(f"No team {name!r}.")
            await keyrows.update_team(conn, name, values)
            row = await keyrows.get_team(conn, name)
        assert row is not None
        view = team_view(row, await self._spend("team", name, row_limits(row), now), now)
        return self._warn(view, values.get("models"))

    async def delete_team(self, name: str) -> dict[str, Any]:
        """Delete a run-time team that no live key belongs to."""
        if name in self.settings.teams:
            raise _read_only(f"Team {name!r}", f"[teams.{name}]")
        async with self._writer.begin() as conn:
            await keyrows.bump(conn)
            if await keyrows.get_team(conn, name) is None:
                raise not_found(f"No team {name!r}.")
            live = await keyrows.live_keys_in(conn, name)
            if live:
                raise conflict(
                    f"Team {name!r} still has {live} key(s) that are not revoked: revoke them "
                    "or move them to another team first.",
                    "team_in_use",
                )
            await keyrows.delete_team(conn, name)
        return {"name": name, "object": "team", "deleted": True}

    # --- helpers ------------------------------------------------------------------------

    def _writable_key(self, key_id: str) -> None:
        if key_id.startswith(CONFIG_ID):
            name = key_id[len(CONFIG_ID) :]
            if name in self.settings.keys:
                raise _read_only(f"Key {key_id!r}", f"[keys.{name}]")
            raise not_found(f"No key {key_id!r} in the config file.")

    async def _live_key(self, conn: AsyncConnection, key_id: str) -> dict[str, Any]:
        row = await keyrows.get_key(conn, key_id)
        if row is None:
            raise not_found(f"No key {key_id!r}.")
        if row["revoked_at"] is not None:
            raise conflict(f"Key {key_id!r} is revoked: make a new key.", "key_revoked")
        return row

    async def _check_team(self, conn: AsyncConnection, team: str | None) -> None:
        if team is None or team in self.settings.teams:
            return
        if await keyrows.get_team(conn, team) is None:
            raise bad_request(
                f"Unknown team {team!r}: create it first (POST /admin/teams) or declare it "
                f"in the config file ([teams.{team}]).",
                "team",
            )

    @staticmethod
    def _grace(body: Mapping[str, Any]) -> float:
        for field in body:
            if field != "grace_s":
                raise bad_request(f"Unknown field {field!r}: the only field is 'grace_s'.", field)
        grace = body.get("grace_s", 0)
        if grace is None:
            return 0.0
        ok = isinstance(grace, int | float) and not isinstance(grace, bool) and math.isfinite(grace)
        if not ok or not 0 <= grace <= MAX_GRACE_S:
            raise bad_request(
                f"'grace_s' must be a number of seconds from 0 to {MAX_GRACE_S}.", "grace_s"
            )
        return float(grace)

    def _warn(self, view: dict[str, Any], models: str | None) -> dict[str, Any]:
        known = [*self.settings.routes, *self.settings.models]
        warnings = fields.model_warnings(models, known)
        if warnings:
            view["warnings"] = warnings
        return view

    async def _spend(self, kind: SpendKind, key: str, limits: Limits, now: float) -> float:
        return await spend_since(self._reader, kind, key, period_start(limits.budget_period, now))

    async def _spends(
        self, kind: SpendKind, periods: set[str], now: float
    ) -> dict[str, dict[str, float]]:
        """Spend of every key (or team) from the start of each budget period in use:
        one query per period, whatever the number of keys."""
        out: dict[str, dict[str, float]] = {}
        for p in PERIODS:
            if p in periods:
                out[p] = await spend_all(self._reader, kind, period_start(p, now))
        return out
