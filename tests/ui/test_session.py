"""Dashboard sessions, login throttling and the after-login redirect: pure logic, an
injected clock."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from modelrouter.api.session import (
    MAX_ENDED,
    SESSION_S,
    Sessions,
    cookie_header,
    session_secret,
)
from modelrouter.ui.pages import safe_next
from modelrouter.ui.throttle import BASE_S, FORGET_S, FREE_FAILURES, MAX_S, LoginThrottle
from tests.fakes.clock import FakeClock

KEYS = ["admin-one", "admin-two"]


def request(
    method: str = "GET", headers: dict[str, str] | None = None, scheme: str = "http"
) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "http",
        "method": method,
        "path": "/admin/logs",
        "headers": [(b"host", b"127.0.0.1"), *raw],
        "scheme": scheme,
        "server": ("127.0.0.1", 80),
        "query_string": b"",
    }
    return Request(scope)


def test_a_session_verifies_until_it_expires() -> None:
    clock = FakeClock(1_000_000.0)
    sessions = Sessions(KEYS, clock=clock)
    value, opened = sessions.open("admin-two")
    assert "admin-two" not in value
    checked = sessions.verify(value)
    assert checked is not None and checked.csrf == opened.csrf
    assert checked.expires == int(clock()) + SESSION_S
    clock.advance(SESSION_S - 1)
    assert sessions.verify(value) is not None
    clock.advance(1)
    assert sessions.verify(value) is None


def test_every_process_with_the_same_keys_accepts_the_cookie() -> None:
    value, opened = Sessions(KEYS).open("admin-one")
    other = Sessions(list(reversed(KEYS))).verify(value)  # another worker or replica
    assert other is not None and other.csrf == opened.csrf


def test_removing_the_admin_key_ends_its_sessions_only() -> None:
    one, _ = Sessions(KEYS).open("admin-one")
    two, _ = Sessions(KEYS).open("admin-two")
    after = Sessions(["admin-two", "admin-three"])
    assert after.verify(one) is None
    assert after.verify(two) is not None


@pytest.mark.parametrize(
    "change",
    [
        lambda v: v[:-2] + ("AA" if not v.endswith("AA") else "BB"),  # signature
        lambda v: v.replace("v1.", "v2.", 1),
        lambda v: "v1." + str(int(v.split(".")[1]) + 3600) + "." + v.split(".", 2)[2],  # expiry
        lambda v: v.split(".")[0] + "." + v.split(".")[1] + ".other." + v.split(".")[3],  # nonce
        lambda v: "",
        lambda v: "x" * 500,
        lambda v: "v1.abc.def.ghi",
    ],
)
def test_a_changed_cookie_is_refused(change: object) -> None:
    sessions = Sessions(KEYS)
    value, _ = sessions.open("admin-one")
    assert callable(change)
    assert sessions.verify(change(value)) is None


def test_each_session_has_its_own_csrf_token() -> None:
    sessions = Sessions(KEYS)
    _, a = sessions.open("admin-one")
    _, b = sessions.open("admin-one")
    assert a.csrf != b.csrf and a.nonce != b.nonce


def test_writes_need_the_csrf_token_reads_do_not() -> None:
    sessions = Sessions(KEYS)
    _, s = sessions.open("admin-one")
    assert sessions.csrf_ok(s, request("GET"))
    assert not sessions.csrf_ok(s, request("POST"))
    assert not sessions.csrf_ok(s, request("DELETE", {"x-csrf-token": s.csrf + "x"}))
    assert sessions.csrf_ok(s, request("PATCH", {"x-csrf-token": s.csrf}))


def test_an_ended_session_is_refused_and_the_book_stays_bounded() -> None:
    clock = FakeClock(5_000.0)
    sessions = Sessions(KEYS, clock=clock)
    value, s = sessions.open("admin-one")
    sessions.end(s)
    assert sessions.verify(value) is None
    for _ in range(MAX_ENDED + 50):
        sessions.end(sessions.open("admin-one")[1])
    assert len(sessions._ended) <= MAX_ENDED
    clock.advance(SESSION_S + 1)
    sessions.end(sessions.open("admin-one")[1])
    assert len(sessions._ended) == 1  # the expired ones went first


def test_the_secret_is_derived_per_key() -> None:
    assert session_secret("admin-one") != session_secret("admin-two")
    assert len(session_secret("admin-one")) == 32


def test_cookie_flags() -> None:
    plain = cookie_header("v", request())
    assert plain.split("; ") == [
        "modelrouter_session=v",
        "Path=/",
        f"Max-Age={SESSION_S}",
        "HttpOnly",
        "SameSite=Strict",
    ]
    assert cookie_header("v", request(scheme="https")).endswith("; Secure")
    assert "Max-Age=0" in cookie_header("", request(), max_age=0)


def test_throttle_locks_out_exponentially_after_the_free_tries() -> None:
    clock = FakeClock()
    t = LoginThrottle(clock)
    for _ in range(FREE_FAILURES):
        assert t.failed("1.2.3.4") == 0
        assert t.wait_s("1.2.3.4") == 0
    locks = [t.failed("1.2.3.4") for _ in range(4)]
    assert locks == [BASE_S, 2 * BASE_S, 4 * BASE_S, 8 * BASE_S]
    assert t.wait_s("1.2.3.4") == 8 * BASE_S
    assert t.wait_s("5.6.7.8") == 0  # others are not affected
    clock.advance(8 * BASE_S)
    assert t.wait_s("1.2.3.4") == 0
    for _ in range(40):
        lock = t.failed("1.2.3.4")
    assert lock == MAX_S
    t.succeeded("1.2.3.4")
    assert t.wait_s("1.2.3.4") == 0 and t.failed("1.2.3.4") == 0


def test_throttle_forgets_old_failures_and_stays_bounded() -> None:
    clock = FakeClock()
    t = LoginThrottle(clock, max_clients=100)
    for _ in range(FREE_FAILURES + 1):
        t.failed("a")
    clock.advance(FORGET_S + 1)
    assert t.failed("a") == 0  # counted from scratch
    for i in range(1000):
        t.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(t) == 100


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "/ui"),
        ("/ui/logs?model=a", "/ui/logs?model=a"),
        ("/ui", "/ui"),
        ("/uix", "/ui"),
        ("https://evil.example/ui", "/ui"),
        ("//evil.example/ui", "/ui"),
        ("/ui//evil.example", "/ui"),
        ("/ui\\..\\x", "/ui"),
        ("/admin/logs", "/ui"),
    ],
)
def test_after_login_only_dashboard_paths(raw: str | None, expected: str) -> None:
    assert safe_next(raw) == expected


def test_every_dashboard_file_is_package_data() -> None:
    # `pip install` alone must give a working dashboard: each file under modelrouter/ui
    # that is not Python must match a package-data pattern of pyproject.toml.
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["modelrouter"]
    package = root / "modelrouter"
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    files = {
        p for p in (package / "ui").rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
    }
    assert files, "no dashboard files found"
    assert files <= shipped, sorted(str(p.relative_to(package)) for p in files - shipped)
