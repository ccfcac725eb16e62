"""``modelrouter keys create|list|show|revoke|rotate``: virtual keys from the shell.

They work on the store the config names, directly (no running server needed), through
the same :class:`~modelrouter.governance.keystore.KeyStore` as ``/admin/keys``; a
running router sees each change within a second. A secret is printed once, by the
command that made it (``create``, ``rotate``); nothing prints a hash.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from modelrouter.cli_store import CommandError, Loader, _run, _store, _table
from modelrouter.config import LoadedConfig

if TYPE_CHECKING:
    from modelrouter.governance.keystore import KeyStore

KEY_HEAD = ["ID", "NAME", "TEAM", "PREFIX", "MODELS", "RPM", "TPM", "BUDGET $", "SPEND $"]
KEY_HEAD += ["LAST USED", "STATE"]


async def _with_store(cfg: LoadedConfig, job: Callable[[KeyStore], Any]) -> Any:
    from modelrouter.errors import RouterError
    from modelrouter.governance.keystore import KeyStore
    from modelrouter.store import migrate
    from modelrouter.store.engine import StoreError, make_engine

    store = _store(cfg)
    writer = make_engine(store, name="modelrouter-cli", pool_size=1, writer=True)
    reader = make_engine(store, name="modelrouter-cli", pool_size=1)
    try:
        # As `serve` does: a SQLite store is made or upgraded here, a PostgreSQL one
        # must already be at this version's schema (`modelrouter db upgrade`).
        await migrate.prepare(store, writer)
        return await job(KeyStore(cfg.settings, writer, reader))
    except StoreError as err:
        raise CommandError(str(err)) from None
    except RouterError as err:
        where = f" ({err.param})" if err.param else ""
        raise CommandError(f"{err.message}{where}") from None
    finally:
        await writer.dispose()
        await reader.dispose()


def _state(view: dict[str, Any]) -> str:
    if view["revoked"]:
        return "revoked"
    if view["expired"]:
        return "expired"
    return "config" if view["read_only"] else "active"


def _num(v: Any) -> str:
    return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def _row(v: dict[str, Any]) -> list[str]:
    return [
        v["id"],
        v["name"],
        v["team"] or "-",
        v["key_prefix"] or "-",
        ",".join(v["models"]) if v["models"] is not None else "*",
        _num(v["rpm"]),
        _num(v["tpm"]),
        "-" if v["budget_usd"] is None else f"{v['budget_usd']:g}/{v['budget_period']}",
        _num(v["spend_usd"]),
        (v["last_used_at"] or "-").replace("T", " ").rstrip("Z")[:19],
        _state(v),
    ]


def _show(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(orjson.dumps(view, option=orjson.OPT_INDENT_2).decode())
        return
    width = max(len(k) for k in view)
    for name, value in view.items():
        if name == "key":
            continue
        shown = orjson.dumps(value).decode() if isinstance(value, list | dict) else value
        print(f"{name.ljust(width)}  {'-' if shown is None else shown}")


def _secret(view: dict[str, Any], as_json: bool, verb: str) -> None:
    for warning in view.get("warnings", []):
        print(f"modelrouter: warning: {warning}", file=sys.stderr)
    if as_json:
        _show(view, True)
        return
    print(f"{verb} key {view['id']} ({view['name']}).")
    print("Its secret, shown this once (store it now; it cannot be shown again):")
    print()
    print(f"    {view['key']}")
    print()
    _show(view, False)


def _body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"name": args.name}
    if args.team is not None:
        body["team"] = args.team
    if args.models is not None:
        body["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    for name in ("rpm", "tpm", "budget_usd", "budget_period", "expires_at"):
        value = getattr(args, name)
        if value is not None:
            body[name] = value
    if args.metadata is not None:
        try:
            body["metadata"] = orjson.loads(args.metadata)
        except orjson.JSONDecodeError:
            raise CommandError("--metadata must be a JSON object") from None
    return body


async def _keys(args: argparse.Namespace, cfg: LoadedConfig) -> None:
    action = args.action

    async def job(store: KeyStore) -> None:
        if action == "create":
            _secret(await store.create_key(_body(args)), args.json, "Created")
        elif action == "list":
            views = await store.list_keys()
            if args.json:
                print(orjson.dumps(views, option=orjson.OPT_INDENT_2).decode())
            elif views:
                print(_table([KEY_HEAD] + [_row(v) for v in views]))
            else:
                print("no keys yet: make one with `modelrouter keys create --name NAME`")
        elif action == "show":
            _show(await store.get_key(args.id), args.json)
        elif action == "revoke":
            view = await store.revoke_key(args.id)
            if args.json:
                _show(view, True)
            else:
                print(f"Revoked key {view['id']} ({view['name']}).")
        else:
            body = {} if args.grace_s is None else {"grace_s": args.grace_s}
            view = await store.rotate_key(args.id, body)
            _secret(view, args.json, "Rotated")
            if not args.json and view["previous_key_valid_until"]:
                print(f"\nThe old secret works until {view['previous_key_valid_until']}.")

    await _with_store(cfg, job)


def add_key_commands(command: Callable[..., argparse.ArgumentParser], load: Loader) -> None:
    """Add ``keys`` to the CLI (``command`` as in :mod:`modelrouter.cli`)."""

    def cmd_keys(args: argparse.Namespace) -> int:
        """Virtual keys in the config's store: create, list, show, revoke, rotate."""
        return _run(load, args, _keys, args)

    keys = command("keys", "virtual keys: create, list, show, revoke, rotate", cmd_keys)
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, summary: str) -> argparse.ArgumentParser:
        sp = actions.add_parser(name, help=summary, description=summary)
        # Also after the action (`keys list --config X`); SUPPRESS keeps one given before.
        sp.add_argument("--config", default=argparse.SUPPRESS, help="TOML config")
        sp.add_argument("--json", action="store_true", help="print JSON")
        return sp

    create = action("create", "make a key and print its secret (once)")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--team", help="a team of the config or made at run time")
    create.add_argument("--models", help="routes and models allowed, comma-separated (globs ok)")
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute")
    create.add_argument("--budget-usd", type=float, help="spend cap per budget period")
    create.add_argument("--budget-period", choices=["day", "week", "month", "total"])
    create.add_argument("--expires-at", help="a date (2027-06-30) or an ISO UTC time")
    create.add_argument("--metadata", help="a JSON object kept with the key")
    action("list", "every key, without secrets")
    action("show", "one key").add_argument("id", help="the key's id (key_... or cfg:NAME)")
    action("revoke", "revoke a key for good").add_argument("id", help="the key's id")
    rotate = action("rotate", "give a key a new secret")
    rotate.add_argument("id", help="the key's id")
    rotate.add_argument(
        "--grace-s", type=float, help="seconds the old secret keeps working (default 0)"
    )
