"""glibc malloc settings: applied on glibc, left alone when the user set their own."""

from __future__ import annotations

import platform

import pytest

from modelrouter.memory import tune_malloc


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_applied_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GLIBC_TUNABLES",
        "MALLOC_TOP_PAD_",
        "MALLOC_TRIM_THRESHOLD_",
        "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_MMAP_MAX_",
    ):
        monkeypatch.delenv(name, raising=False)
    assert tune_malloc() is True


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GLIBC_TUNABLES", "glibc.pthread.rseq=0:glibc.malloc.trim_threshold=1"),
        ("MALLOC_TOP_PAD_", "1"),
    ],
)
def test_user_settings_win(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    assert tune_malloc() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_unrelated_glibc_tunables_do_not_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.pthread.rseq=0")
    assert tune_malloc() is True
