"""``/admin/keys`` and ``/admin/teams``: virtual keys and run-time teams over HTTP.

Behind the same admin keys as the rest of ``/admin`` (:class:`AdminGate`). Each
handler parses the request, calls :class:`~modelrouter.governance.keystore.KeyStore`
and answers its view; after a write, this process reloads its keys at once (the
others see the change counter move within a poll). Config keys and teams are listed
too, read-only. Without a store (``[store] url = "none"``) the lists and reads show
the config's keys and teams, and every write is a 404 saying there is no store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelrouter.api.admin import AdminGate
from modelrouter.api.common import error_response, json_response, read_body, request_id
from modelrouter.errors import RouterError, bad_request, unauthorized
from modelrouter.governance.fields import not_found
from modelrouter.governance.keystore import CONFIG_ID, KeyStore
from modelrouter.governance.views import config_key_view, config_team_view
from modelrouter.governance.watch import KeyService
from providers.base import InvalidBody, decode_object

log = logging.getLogger("modelrouter.keys")

Job = Callable[[KeyStore, Request], Awaitable[Any]]

NO_STORE = (
    'There is no store ([store] url = "none"): virtual keys and run-time teams live in '
    "the store. Keys and teams of the config file work without one."
)


async def _body(http: Request, limit_mb: float) -> dict[str, Any]:
    raw = await read_body(http, limit_mb)
    if not raw.strip():
        return {}
    try:
        return decode_object(raw)
    except InvalidBody as err:
        raise bad_request(str(err)) from None


def admin_key_routes(service: KeyService, admin_keys: list[str], max_body_mb: float) -> list[Route]:
    """The key and team routes, or none when no admin key is configured."""
    if not admin_keys:
        return []
    gate = AdminGate(admin_keys)

    def handler(
        job: Job,
        *,
        write: bool = False,
        status: int = 200,
        offline: Callable[[Request], Any] | None = None,
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(http: Request) -> Response:
            rid = request_id(http)
            try:
                if not gate.allows(http):
                    err = unauthorized()
                    err.message = "Invalid or missing admin key (server.admin_keys)."
                    raise err
                store = service.store
                if store is None:
                    if offline is None:
                        raise RouterError(404, NO_STORE, code="store_disabled")
                    return json_response(offline(http), rid)
                answer = await job(store, http)
                if write:
                    await _reload(service)
                return json_response(answer, rid, status)
            except RouterError as err:
                return error_response(err, rid)

        return run

    async def body(http: Request) -> dict[str, Any]:
        return await _body(http, max_body_mb)

    def key_id(http: Request) -> str:
        return str(http.path_params["key_id"])

    def team(http: Request) -> str:
        return str(http.path_params["name"])

    async def list_keys(s: KeyStore, http: Request) -> Any:
        return {"object": "list", "data": await s.list_keys()}

    async def list_teams(s: KeyStore, http: Request) -> Any:
        return {"object": "list", "data": await s.list_teams()}

    def offline_keys(http: Request) -> Any:
        now = time.time()
        data = [config_key_view(n, k, None, now) for n, k in service.settings.keys.items()]
        return {"object": "list", "data": data}

    def offline_key(http: Request) -> Any:
        name = key_id(http).removeprefix(CONFIG_ID)
        spec = service.settings.keys.get(name)
        if not key_id(http).startswith(CONFIG_ID) or spec is None:
            raise not_found(f"No key {key_id(http)!r}. {NO_STORE}")
        return config_key_view(name, spec, None, time.time())

    def offline_teams(http: Request) -> Any:
        now = time.time()
        data = [config_team_view(n, t, None, now) for n, t in service.settings.teams.items()]
        return {"object": "list", "data": data}

    def offline_team(http: Request) -> Any:
        spec = service.settings.teams.get(team(http))
        if spec is None:
            raise not_found(f"No team {team(http)!r}. {NO_STORE}")
        return config_team_view(team(http), spec, None, time.time())

    async def create_key(s: KeyStore, http: Request) -> Any:
        return await s.create_key(await body(http))

    async def get_key(s: KeyStore, http: Request) -> Any:
        return await s.get_key(key_id(http))

    async def patch_key(s: KeyStore, http: Request) -> Any:
        return await s.patch_key(key_id(http), await body(http))

    async def revoke_key(s: KeyStore, http: Request) -> Any:
        return await s.revoke_key(key_id(http))

    async def rotate_key(s: KeyStore, http: Request) -> Any:
        return await s.rotate_key(key_id(http), await body(http))

    async def create_team(s: KeyStore, http: Request) -> Any:
        return await s.create_team(await body(http))

    async def get_team(s: KeyStore, http: Request) -> Any:
        return await s.get_team(team(http))

    async def patch_team(s: KeyStore, http: Request) -> Any:
        return await s.patch_team(team(http), await body(http))

    async def delete_team(s: KeyStore, http: Request) -> Any:
        return await s.delete_team(team(http))

    keys_path, one_key = "/admin/keys", "/admin/keys/{key_id}"
    teams_path, one_team = "/admin/teams", "/admin/teams/{name}"
    return [
        Route(keys_path, handler(list_keys, offline=offline_keys), methods=["GET"]),
        Route(keys_path, handler(create_key, write=True, status=201), methods=["POST"]),
        Route(one_key, handler(get_key, offline=offline_key), methods=["GET"]),
        Route(one_key, handler(patch_key, write=True), methods=["PATCH"]),
        Route(one_key, handler(revoke_key, write=True), methods=["DELETE"]),
        Route(one_key + "/rotate", handler(rotate_key, write=True), methods=["POST"]),
        Route(teams_path, handler(list_teams, offline=offline_teams), methods=["GET"]),
        Route(teams_path, handler(create_team, write=True, status=201), methods=["POST"]),
        Route(one_team, handler(get_team, offline=offline_team), methods=["GET"]),
        Route(one_team, handler(patch_team, write=True), methods=["PATCH"]),
        Route(one_team, handler(delete_team, write=True), methods=["DELETE"]),
    ]


async def _reload(service: KeyService) -> None:
    """This process takes its own change in at once (the write is done either way)."""
    try:
        await service.load()
    except Exception as err:
        # The change is committed; the poll picks it up once the store answers again.
        log.warning("keys: reload after a change failed: %s", type(err).__name__)
