"""Dashboard sessions: a stateless signed cookie that stands for an admin key.

Logging in to ``/ui`` with an admin key (``server.admin_keys``) sets a cookie
``v1.<expiry>.<nonce>.<signature>``: no server state, so a session made by one worker
or replica is good on every other. The signature is HMAC-SHA256 under a secret derived
from the admin key that logged in (:func:`session_secret`), so

* removing or changing an admin key ends every session it opened, and only those;
* the cookie never holds the key or anything it can be read back from, and the
  derivation is slow (PBKDF2, :data:`KDF_ROUNDS`), so a stolen cookie is no shortcut
  to guessing a weak admin key offline.

Every state-changing request made with the cookie (anything but GET/HEAD) must also
carry ``x-csrf-token``: a per-session token (an HMAC of the session's nonce) that
the dashboard's own pages receive in their HTML. Browsers send the cookie with
same-site requests only (``SameSite=Strict``); the token also stops a sibling site
(same site, other origin), which cannot read the token.

Logout clears the cookie in the browser and remembers the session as ended in this
process (:meth:`Sessions.end`); other workers and replicas honour it only when the
cookie expires (:data:`SESSION_S`) or the admin key changes. The cookie is
``HttpOnly``, so a page's scripts can never read it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

COOKIE = "modelrouter_session"
"""The session cookie's name."""
CSRF_HEADER = "x-csrf-token"
"""The header that carries a session's CSRF token on writes."""
SESSION_S = 12 * 3600
"""How long a session lasts after login."""
KDF_ROUNDS = 100_000
"""PBKDF2-HMAC-SHA256 rounds that turn an admin key into a signing secret (~70 ms
once per key and process, at the first session seen)."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing: a cookie alone is enough for them."""
MAX_ENDED = 10_000
"""Ended sessions remembered per process (the oldest forgotten first)."""
_SALT = b"modelrouter dashboard session v1"
_VERSION = "v1"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@functools.lru_cache(maxsize=64)
def session_secret(admin_key: str) -> bytes:
    """The signing secret of sessions opened with ``admin_key`` (same in every process)."""
    return hashlib.pbkdf2_hmac("sha256", admin_key.encode(), _SALT, KDF_ROUNDS)


@dataclass(frozen=True, slots=True)
class Session:
    """A verified session."""

    nonce: str
    expires: int
    """Epoch seconds."""
    csrf: str
    """The token its writes must carry in ``x-csrf-token``."""


class Sessions:
    """Makes and checks session cookies for one set of admin keys."""

    def __init__(self, admin_keys: list[str], clock: Callable[[], float] = time.time) -> None:
        self._keys = [k for k in admin_keys if k]
        self._clock = clock
        self._ended: OrderedDict[str, int] = OrderedDict()

    def _secrets(self) -> list[bytes]:
        # Derived on first use: an app that never sees a session never pays the KDF.
        return [session_secret(k) for k in self._keys]

    @staticmethod
    def _sign(secret: bytes, text: str) -> str:
        return _b64(hmac.new(secret, text.encode(), hashlib.sha256).digest())

    def _csrf(self, secret: bytes, nonce: str) -> str:
        return self._sign(secret, f"csrf.{nonce}")

    def open(self, admin_key: str) -> tuple[str, Session]:
        """A new session for ``admin_key`` (one of the configured keys): its cookie value."""
        secret = session_secret(admin_key)
        expires = int(self._clock()) + SESSION_S
        nonce = _b64(os.urandom(18))
        body = f"{_VERSION}.{expires}.{nonce}"
        value = f"{body}.{self._sign(secret, body)}"
        return value, Session(nonce, expires, self._csrf(secret, nonce))

    def verify(self, value: str | None) -> Session | None:
        """The session a cookie value stands for, if it is genuine, unexpired and not ended."""
        if not value or len(value) > 200:
            return None
        body, _, sig = value.rpartition(".")
        version, _, rest = body.partition(".")
        expiry, _, nonce = rest.partition(".")
        if version != _VERSION or not expiry.isdigit() or not nonce:
            return None
        expires = int(expiry)
        if expires <= self._clock() or nonce in self._ended:
            return None
        found = None
        for secret in self._secrets():
            # Every secret compared: the time taken says nothing about which one matched.
            if hmac.compare_digest(self._sign(secret, body), sig):
                found = secret
        if found is None:
            return None
        return Session(nonce, expires, self._csrf(found, nonce))

    def of(self, request: Request) -> Session | None:
        """The session of a request's cookie, if any."""
        return self.verify(request.cookies.get(COOKIE))

    def end(self, session: Session) -> None:
        """Forget a session in this process (logout), until it would have expired anyway."""
        now = self._clock()
        while self._ended:
            nonce, expires = next(iter(self._ended.items()))
            if expires > now and len(self._ended) < MAX_ENDED:
                break
            del self._ended[nonce]  # expired, or the oldest when full
        self._ended[session.nonce] = session.expires

    @staticmethod
    def csrf_ok(session: Session, request: Request) -> bool:
        """Whether a request made with ``session`` may change state: a safe method, or
        the session's token in ``x-csrf-token``."""
        if request.method in SAFE_METHODS:
            return True
        given = request.headers.get(CSRF_HEADER, "")
        return hmac.compare_digest(given.encode(), session.csrf.encode())


@functools.lru_cache(maxsize=16)
def sessions_for(admin_keys: tuple[str, ...]) -> Sessions:
    """The one :class:`Sessions` of this process for a set of admin keys, so every part
    that checks sessions (the dashboard, each admin module) shares the ended ones."""
    return Sessions(list(admin_keys))


def cookie_header(value: str, request: Request, max_age: int = SESSION_S) -> str:
    """The ``Set-Cookie`` value for a session (``""`` and ``max_age=0`` clear it).

    ``Secure`` when the request came over HTTPS as the server sees it: directly, or
    through a proxy that uvicorn trusts (``--forwarded-allow-ips``, 127.0.0.1 by
    default) and that says so in ``X-Forwarded-Proto``. The header of an untrusted
    client is never read here.
    """
    parts = [f"{COOKIE}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict"]
    if request.url.scheme == "https":
        parts.append("Secure")
    return "; ".join(parts)
