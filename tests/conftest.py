"""Fixtures shared by the whole suite: scriptable fake upstreams, one per role.

Each is a real HTTP server on 127.0.0.1 in its own thread (see
:class:`tests.fakes.upstream.FakeUpstream`), started for one test and stopped after
it. A module that needs a differently built fake defines a fixture of the same name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.upstream import FakeUpstream


def _fake(name: str) -> Iterator[FakeUpstream]:
    with FakeUpstream.in_thread(name) as up:
        yield up


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    """The one upstream of a single-upstream test."""
    yield from _fake("up")


@pytest.fixture
def primary() -> Iterator[FakeUpstream]:
    """The first choice of a two-upstream test."""
    yield from _fake("primary")


@pytest.fixture
def backup() -> Iterator[FakeUpstream]:
    """The fallback of a two-upstream test."""
    yield from _fake("backup")
