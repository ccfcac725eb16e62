"""Store rows become directory identities: scopes, model lists, expiry, rotation grace
(on an injected clock), and the directory's open/closed rule with virtual keys."""

from __future__ import annotations

from typing import Any

from modelrouter.config import parse
from modelrouter.governance.directory import KeyDirectory, hash_secret
from modelrouter.governance.types import Limits, Scope
from modelrouter.governance.views import US, identities

T0 = 1_800_000_000.0


def settings(**extra: Any) -> Any:
    data = {
        "providers": {"sim": {"kind": "simulated"}},
        "models": {"m": {"provider": "sim"}},
        "routes": {"default": {"models": ["m"]}},
        "teams": {"research": {"rpm": 100, "models": ["default"]}},
        "store": {"url": "none"},
        **extra,
    }
    return parse(data, "test").settings


def key_row(key_id: str, secret: str, **kw: Any) -> dict[str, Any]:
    row = {
        "id": key_id,
        "name": f"name-{key_id}",
        "key_hash": hash_secret(secret),
        "key_prefix": secret[:11],
        "team": None,
        "models": None,
        "rpm": None,
        "tpm": None,
        "budget_usd": None,
        "budget_period": "month",
        "expires_at": None,
        "metadata": "{}",
        "created_at": int(T0 * US),
        "updated_at": int(T0 * US),
        "revoked_at": None,
        "last_used_at": None,
        "previous_hash": None,
        "previous_expires_at": None,
    }
    row.update(kw)
    return row


TEAM_ROW = {
    "name": "ops",
    "models": '["m"]',
    "rpm": None,
    "tpm": 5000,
    "budget_usd": 3.0,
    "budget_period": "day",
    "metadata": "{}",
    "created_at": 0,
    "updated_at": 0,
}


def test_live_keys_resolve_with_their_own_and_their_teams_limits() -> None:
    rows = [
        key_row("k1", "mr-one", team="research", rpm=10, models='["m", "gpt-*"]'),
        key_row("k2", "mr-two", team="ops", budget_usd=1.0, budget_period="week"),
        key_row("k3", "mr-three"),
        key_row("k4", "mr-four", revoked_at=int(T0 * US)),
    ]
    found = identities(rows, [TEAM_ROW], settings(), T0)
    assert set(found) == {hash_secret(s) for s in ("mr-one", "mr-two", "mr-three")}
    one = found[hash_secret("mr-one")]
    assert (one.key_id, one.name, one.team) == ("k1", "name-k1", "research")
    assert one.scopes == (
        Scope("key", "k1", Limits(rpm=10)),
        Scope("team", "research", Limits(rpm=100)),  # from [teams.research]
    )
    assert one.models == (("m", "gpt-*"), ("default",))
    two = found[hash_secret("mr-two")]
    assert two.scopes == (
        Scope("key", "k2", Limits(budget_usd=1.0, budget_period="week")),
        Scope("team", "ops", Limits(tpm=5000, budget_usd=3.0, budget_period="day")),
    )
    assert two.models == (("m",),)
    three = found[hash_secret("mr-three")]
    assert three.scopes == () and three.models == () and not three.limited


def test_rotation_grace_keeps_the_old_secret_until_its_deadline() -> None:
    grace_end = T0 + 30
    row = key_row(
        "k1",
        "mr-new",
        previous_hash=hash_secret("mr-old"),
        previous_expires_at=int(grace_end * US),
        rpm=5,
    )
    directory = KeyDirectory(settings())
    directory.replace_virtual(identities([row], [], settings(), T0))
    for now, old_ok in ((T0, True), (grace_end - 0.001, True), (grace_end, False)):
        assert directory.identify("mr-new", now) is not None
        old = directory.identify("mr-old", now)
        assert (old is not None) is old_ok, now
        if old is not None:
            assert old.key_id == "k1" and old.scopes == (Scope("key", "k1", Limits(rpm=5)),)
    # A reload after the grace has ended drops the old secret's entry altogether.
    assert hash_secret("mr-old") not in identities([row], [], settings(), grace_end + 1)


def test_the_old_secret_never_outlives_the_key() -> None:
    row = key_row(
        "k1",
        "mr-new",
        expires_at=int((T0 + 10) * US),
        previous_hash=hash_secret("mr-old"),
        previous_expires_at=int((T0 + 60) * US),
    )
    directory = KeyDirectory(settings())
    directory.replace_virtual(identities([row], [], settings(), T0))
    assert directory.identify("mr-old", T0 + 9) is not None
    assert directory.identify("mr-old", T0 + 10) is None
    assert directory.identify("mr-new", T0 + 10) is None


def test_the_directory_is_closed_while_store_keys_are_unread_and_open_without_keys() -> None:
    directory = KeyDirectory(settings())
    assert directory.open
    directory.expect_virtual()
    assert not directory.open
    assert directory.identify(None, T0) is None and directory.identify("mr-x", T0) is None
    directory.replace_virtual({})  # the store had no key
    assert directory.open
    directory.replace_virtual(identities([key_row("k1", "mr-one")], [], settings(), T0))
    assert not directory.open
    assert directory.identify(None, T0) is None
    assert directory.identify("mr-two", T0) is None
    # Every key revoked: still closed (the store has held keys).
    revoked = key_row("k1", "mr-one", revoked_at=int(T0 * US))
    directory.replace_virtual(identities([revoked], [], settings(), T0), made=True)
    assert not directory.open and directory.identify(None, T0) is None


def test_lookups_note_the_last_use_of_each_key_once() -> None:
    directory = KeyDirectory(settings(server={"api_keys": ["sk-plain"]}))
    directory.replace_virtual(identities([key_row("k1", "mr-one")], [], settings(), T0))
    for i in range(100):
        directory.identify("mr-one", T0 + i)
    directory.identify("sk-plain", T0)
    directory.identify("mr-unknown", T0)
    assert directory.used == {"k1": T0 + 99}
