"""``modelrouter serve --workers 2`` as a real process: a key revoked through one worker
is refused by both within 2 s, on SQLite and on PostgreSQL; nothing it logs holds a
secret."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from tests.keys.helpers import ADMIN, dump_store, wait_for
from tests.store.test_serve import engine_url, serve

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def call(base: str, key: str) -> tuple[int, str]:
    """One chat on a fresh connection (so the kernel may hand it to either worker):
    the status and the answering worker (its request-id prefix)."""
    with httpx2.Client(timeout=10) as c:
        resp = c.post(
            base + "/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {key}"}
        )
    return resp.status_code, resp.headers["x-request-id"][:12]


@contextmanager
def hammer(base: str, key: str, threads: int = 4) -> Iterator[list[tuple[float, int, str]]]:
    """Calls from ``threads`` threads until the block ends: ``(time, status, worker)``."""
    seen: list[tuple[float, int, str]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            status, worker = call(base, key)
            seen.append((time.monotonic(), status, worker))

    pool = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    try:
        yield seen
    finally:
        stop.set()
        for t in pool:
            t.join(15)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_revoked_key_is_refused_by_every_worker_within_two_seconds(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = engine_url(engine, tmp_path)
    # serve() writes its own config; the admin key goes in through the environment.
    monkeypatch.setenv("MODELROUTER_SERVER__ADMIN_KEYS", f'["{ADMIN}"]')
    with serve(tmp_path, url, "--workers", "2") as (_proc, base):
        auth = {"authorization": f"Bearer {ADMIN}"}
        made = httpx2.post(base + "/admin/keys", json={"name": "w"}, headers=auth, timeout=10)
        assert made.status_code == 201, made.text
        key, key_id = made.json()["key"], made.json()["id"]

        def both_accept() -> bool:
            answers = [call(base, key) for _ in range(20)]
            return all(s == 200 for s, _ in answers) and len({w for _, w in answers}) == 2

        wait_for(both_accept, timeout=10, what="both workers to accept the new key")
        with hammer(base, key) as seen:
            time.sleep(0.5)
            gone = httpx2.delete(f"{base}/admin/keys/{key_id}", headers=auth, timeout=10)
            revoked = time.monotonic()
            assert gone.status_code == 200 and gone.json()["revoked"]
            time.sleep(3)
        after = [(t - revoked, s, w) for t, s, w in seen if t > revoked]
        late_ok = [a for a in after if a[1] == 200]
        last_ok = max((a[0] for a in late_ok), default=0.0)
        workers = {w for _, _, w in after}
        print(
            f"\n{engine}: {len(after)} calls over {len(workers)} workers after the revoke; "
            f"the last success {last_ok * 1000:.0f} ms after its answer"
        )
        assert last_ok < 2.0, late_ok
        refused = [a for a in after if a[0] > 2.0]
        assert refused and all(s == 401 for _, s, _ in refused)
        assert len({w for _, _, w in refused}) == 2, "only one worker was asked after 2 s"
        assert all(s == 200 for t, s, _ in seen if t < revoked - 0.2)
    log = (tmp_path / "serve.log").read_text()
    assert key not in log and key not in dump_store(url)
    assert ADMIN not in log
