"""The key directory: every accepted key, looked up by the hash of what was presented.

Three kinds of key resolve here: ``server.api_keys`` (unrestricted), keys declared in
the config (``[keys.NAME]``, with their team's limits), and virtual keys from the store
(:meth:`KeyDirectory.replace_virtual`, fed by whoever watches the store). Lookups are
one SHA-256 and one dict probe: no store query and no work that grows with the number
of keys. Comparing digests rather than secrets is what makes the lookup safe against
timing: a caller cannot steer the hash of what they send towards a stored one.

The router is *open* (anyone may call) only while no key of any kind exists: once a
single key exists, a request without one is refused, so no limit or budget can be
bypassed by sending no key at all. While a configured store's keys have not been read
yet (a PostgreSQL store that does not answer at start), the router is not open either:
it cannot know that no key exists.

Each lookup also notes when a key was last used (:attr:`KeyDirectory.used`, one dict
store); the key watcher writes those times to the store in batches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

from modelrouter.governance.types import UNRESTRICTED, Identity, Limits, Scope
from modelrouter.settings import LimitSettings, Settings


def hash_secret(secret: str) -> str:
    """The stored form of a key: hex SHA-256 (keys carry ≥ 128 random bits, so a slow
    password hash would add cost and no safety)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def parse_expiry(value: str) -> float:
    """Epoch seconds of ``2027-06-30`` (the end of that UTC day) or an ISO time (UTC
    unless it says otherwise). Raises :class:`ValueError` on anything else."""
    text = value.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime.combine(day, time.max, tzinfo=UTC).timestamp()
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def limits_of(section: LimitSettings) -> Limits:
    """The :class:`Limits` of a config team or key."""
    return Limits(section.rpm, section.tpm, section.budget_usd, section.budget_period)


def config_identities(settings: Settings) -> dict[str, Identity]:
    """Every ``[keys.NAME]`` of the config by the hash of its secret.

    A config key's id is ``cfg:NAME``, so it never collides with a store key's id.
    """
    out: dict[str, Identity] = {}
    for name, spec in settings.keys.items():
        if not spec.key:
            continue
        key_id = f"cfg:{name}"
        scopes = [Scope("key", key_id, limits_of(spec))]
        models: list[tuple[str, ...]] = []
        if spec.models is not None:
            models.append(tuple(spec.models))
        team = settings.teams.get(spec.team) if spec.team else None
        if team is not None and spec.team is not None:
            scopes.append(Scope("team", spec.team, limits_of(team)))
            if team.models is not None:
                models.append(tuple(team.models))
        expires = parse_expiry(spec.expires_at) if spec.expires_at else None
        out[hash_secret(spec.key)] = Identity(
            key_id=key_id,
            name=name,
            team=spec.team,
            models=tuple(models),
            scopes=tuple(s for s in scopes if s.limits.any),
            expires_at=expires,
            metadata=dict(spec.metadata),
        )
    return out


class KeyDirectory:
    """Resolves a presented key to an :class:`Identity` from memory."""

    def __init__(self, settings: Settings, *, local: bool = False) -> None:
        # ``local``: the caller is whoever started this process (MCP over stdio); keys
        # guard network doors only.
        self._local = local
        self._static: dict[str, Identity] = {}
        if not local:
            self._static = {hash_secret(k): UNRESTRICTED for k in settings.server.api_keys}
            self._static.update(config_identities(settings))
        self._virtual: Mapping[str, Identity] = {}
        self._waiting = False
        self.used: dict[str, float] = {}
        """Key id -> when it was last accepted (epoch seconds), since the last flush."""

    @property
    def open(self) -> bool:
        """Whether requests need no key (no key of any kind exists)."""
        return self._local or not (self._static or self._virtual or self._waiting)

    def expect_virtual(self) -> None:
        """A store holds keys that are not loaded yet: not open until they are."""
        self._waiting = not self._local

    def replace_virtual(self, identities: Mapping[str, Identity]) -> None:
        """Swap in the store's keys (by secret hash), e.g. after a change was seen."""
        self._virtual = identities
        self._waiting = False

    def identify(self, credential: str | None, now: float) -> Identity | None:
        """The identity of ``credential``, or ``None`` if it is not an accepted key
        (unknown, revoked or expired). Open: everyone is :data:`UNRESTRICTED`."""
        if self.open:
            return UNRESTRICTED
        if not credential:
            return None
        digest = hash_secret(credential)
        found = self._static.get(digest) or self._virtual.get(digest)
        if found is None:
            return None
        if found.expires_at is not None and now >= found.expires_at:
            return None
        if found.key_id is not None:
            self.used[found.key_id] = now
        return found

    def describe(self) -> dict[str, Any]:
        """Counts for ``/health`` (never a secret or a hash)."""
        return {"static_keys": len(self._static), "virtual_keys": len(self._virtual)}
