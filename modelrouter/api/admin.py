"""``/admin/logs``, ``/admin/logs/{request_id}`` and ``/admin/usage``: the call log, read.

Behind ``server.admin_keys`` (bearer keys, or a dashboard session cookie: see
:mod:`modelrouter.api.session`): without any, :func:`admin_routes` adds no route and
``/admin/*`` is a 404; a missing or wrong admin key is a 401. The API keys of
``server.api_keys`` are not admin keys. Queries read the store through its reader
engine, never through the writer (see :mod:`modelrouter.store.queries`).
"""

from __future__ import annotations

import hmac
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelrouter.api.common import Handler, bearer, error_response, json_response, request_id
from modelrouter.api.session import Sessions, sessions_for
from modelrouter.errors import RouterError, bad_request, unauthorized
from modelrouter.store import queries
from modelrouter.store.calllog import CallLog
from modelrouter.store.timespec import parse_time

DEFAULT_USAGE_SINCE = "24h"


class AdminGate:
    """Checks admin keys (constant time, every key compared), or a dashboard session."""

    def __init__(self, keys: list[str], sessions: Sessions | None = None) -> None:
        self._keys = [k.encode() for k in keys]
        self.sessions = sessions or sessions_for(tuple(keys))
        """The dashboard's sessions (a cookie stands for the admin key that opened it)."""

    def allows(self, request: Request) -> bool:
        """Whether the request carries an admin key or a dashboard session.

        A session's writes must carry its CSRF token: without it this raises a 403
        (``csrf_failed``) rather than answer as if no key had been sent.
        """
        given = bearer(request)
        if given is None:
            session = self.sessions.of(request)
            if session is None:
                return False
            if not self.sessions.csrf_ok(session, request):
                raise csrf_failed()
            return True
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(given.encode(), key)
        return ok


def csrf_failed() -> RouterError:
    """403 for a write made with the session cookie but without its CSRF token."""
    return RouterError(
        403,
        "A dashboard session changes nothing without its CSRF token (header "
        "'x-csrf-token', given to the dashboard's pages). API clients: send "
        "'Authorization: Bearer <admin key>' instead of the cookie.",
        type="permission_error",
        code="csrf_failed",
    )


def _time(request: Request, name: str, now: float, default: str | None = None) -> float | None:
    raw = request.query_params.get(name, default)
    if raw is None:
        return None
    try:
        return parse_time(raw, now=now)
    except ValueError as err:
        raise bad_request(f"'{name}': {err}", name) from None


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "100")
    if not raw.isdigit():
        raise bad_request(f"'limit' must be a number from 1 to {queries.MAX_LIMIT}.", "limit")
    return int(raw)


def admin_routes(calls: CallLog, keys: list[str]) -> list[Route]:
    """The admin routes, or none when no admin key is configured (the surface is off)."""
    if not keys:
        return []
    gate = AdminGate(keys)

    def guarded(handler: Handler) -> Handler:
        async def run(http: Request) -> Response:
            try:
                if not gate.allows(http):
                    err = unauthorized()
                    err.message = "Invalid or missing admin key (server.admin_keys)."
                    raise err
                if calls.reader is None:
                    raise RouterError(
                        404, 'The call log is off: [store] url = "none".', code="store_disabled"
                    )
                answer = await handler(http)
            except queries.QueryError as err:
                answer = error_response(bad_request(str(err), err.param), request_id(http))
            except RouterError as err:
                answer = error_response(err, request_id(http))
            # Records and usage are nobody's to keep: no browser or proxy cache.
            answer.headers["cache-control"] = "no-store"
            return answer

        return run

    async def logs(http: Request) -> Response:
        assert calls.reader is not None
        now = time.time()
        q = http.query_params
        filt = queries.LogFilter(
            since=_time(http, "since", now),
            until=_time(http, "until", now),
            model=q.get("model"),
            route=q.get("route"),
            key=q.get("key"),
            team=q.get("team"),
            status=q.get("status"),
        )
        data, cursor = await queries.list_logs(
            calls.reader, filt, limit=_limit(http), cursor=q.get("cursor")
        )
        return json_response({"object": "list", "data": data, "next_cursor": cursor})

    async def one(http: Request) -> Response:
        assert calls.reader is not None
        rid = http.path_params["request_id"]
        record = await queries.get_log(calls.reader, rid)
        if record is None:
            raise RouterError(404, f"No call-log record {rid!r}.", code="not_found")
        return json_response(record)

    async def usage(http: Request) -> Response:
        assert calls.reader is not None
        now = time.time()
        q = http.query_params
        since = _time(http, "since", now, DEFAULT_USAGE_SINCE)
        until = _time(http, "until", now)
        assert since is not None
        report = await queries.usage(
            calls.reader,
            since=since,
            until=until if until is not None else now,
            now=now,
            interval=q.get("interval", "1h"),
            group_by=q.get("group_by", "model"),
        )
        return json_response(report)

    return [
        Route("/admin/logs", guarded(logs), methods=["GET"]),
        Route("/admin/logs/{request_id:path}", guarded(one), methods=["GET"]),
        Route("/admin/usage", guarded(usage), methods=["GET"]),
    ]
