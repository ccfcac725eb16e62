"""First render of every dashboard page within 1 s over a big call log.

The store holds ``MODELROUTER_UI_ROWS`` records (1,000,000 by default: about 30 s to
write and 640 MB on disk, deleted afterwards; set it lower for a quick local run),
written straight into SQLite by :mod:`tests.ui.bulk`. Each page is loaded afresh in
Chromium and timed from navigation start to the moment its view has drawn its data
(``body[data-ready-ms]``). The times are written to ``.ci/artifacts/render-times.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.router import RunningRouter, run_router
from tests.ui.browser import ARTIFACTS
from tests.ui.bulk import fill_store
from tests.ui.conftest import log_in, open_tab
from tests.ui.helpers import ADMIN, config

ROWS = int(os.environ.get("MODELROUTER_UI_ROWS", "1000000"))
BOUND_MS = 1000
PAGES = [
    "/ui?range=24h&by=model",
    "/ui?range=7d&by=key",
    "/ui?range=1h&by=route",
    "/ui/models",
    "/ui/logs",
    "/ui/logs?model=sonnet",
    "/ui/logs?key=key-007",
    "/ui/logs?team=team-1&status=error",
    "/ui/logs?status=error&since=24h",
    "/ui/logs/bulk000000000064",
    "/ui/keys",
    "/ui/playground",
]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    path = tmp_path_factory.mktemp("ui-big") / "calls.db"
    fill_store(path, ROWS)
    with (
        FakeUpstream.in_thread("first") as first,
        FakeUpstream.in_thread("second") as second,
        run_router(config(first, second, path)) as r,
    ):
        yield r
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()  # hundreds of MB: not left in the temp folder


def test_every_page_draws_its_data_within_a_second(big: RunningRouter, browser: Any) -> None:
    # ``big`` first: the store is filled before Playwright's event loop runs.
    t = open_tab(browser, big.url)
    log_in(t, ADMIN)
    t.go("/ui")  # warm-up: the first load after start compiles the modules
    times: dict[str, int] = {}
    for path in PAGES:
        page = t.go(path)
        times[path] = int(page.evaluate("document.body.dataset.readyMs"))
        if path.startswith("/ui/logs?") or path == "/ui/logs":
            assert page.locator("table.logs tbody tr").count() == 50, path
        if path.startswith("/ui?"):
            requests = page.locator(".card[data-card='Requests'] .card-value").inner_text()
            assert int(requests.replace(",", "")) > 0, path
        if path.startswith("/ui/logs/"):
            assert page.locator("li.attempt").count() == 1, path
    ARTIFACTS.parent.mkdir(parents=True, exist_ok=True)
    report = {"rows": ROWS, "bound_ms": BOUND_MS, "first_render_ms": times}
    (ARTIFACTS.parent / "render-times.json").write_text(json.dumps(report, indent=2))
    slow = {p: ms for p, ms in times.items() if ms > BOUND_MS}
    assert not slow, f"first render over {BOUND_MS} ms with {ROWS} records: {slow}"
    t.check_clean()
    t.context.close()
