"""Tally: slots in memory or in a shared directory; readers add processes up, keep the
counters of processes that are gone and drop their gauges."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from modelrouter.observe import families as f
from modelrouter.observe.exposition import add_up
from modelrouter.observe.tally import INITIAL_SLOTS, Reader, Tally
from tests.subproc import child_env

REQUESTS, DEPTH = f.REQUESTS.name, f.LOG_QUEUE_DEPTH.name
LABELS = ("http", "default", "a", "pa", "200")


def test_slots_are_stable_and_zeroed() -> None:
    t = Tally()
    first = t.slot(REQUESTS, LABELS)
    hist = t.slot(f.DURATION.name, ("default", "a"), f.DURATION.width)
    assert t.slot(REQUESTS, LABELS) == first
    assert hist == first + 1
    assert t.slot(REQUESTS, ("http", "default", "a", "pa", "500")) == hist + f.DURATION.width
    assert all(t.values[i] == 0.0 for i in range(hist + f.DURATION.width + 1))


def test_growing_keeps_every_value(tmp_path: Path) -> None:
    for t in (Tally(), Tally(tmp_path)):
        slots = [t.slot(REQUESTS, (str(i),)) for i in range(3 * INITIAL_SLOTS)]
        for i, s in enumerate(slots):
            t.values[s] += i
        assert [t.values[s] for s in slots] == [float(i) for i in range(len(slots))]
    sums = add_up(Reader(tmp_path).parts())[REQUESTS]
    assert sums == {(str(i),): [float(i)] for i in range(3 * INITIAL_SLOTS)}


def test_reader_adds_processes_up(tmp_path: Path) -> None:
    one, two = Tally(tmp_path), Tally(tmp_path)
    for t, n in ((one, 2.0), (two, 3.0)):
        t.values[t.slot(REQUESTS, LABELS)] += n
        t.values[t.slot(DEPTH, ())] = n
    only_two = two.slot(REQUESTS, ("mcp", *LABELS[1:]))
    two.values[only_two] += 1
    sums = add_up(Reader(tmp_path).parts())
    assert sums[REQUESTS] == {LABELS: [5.0], ("mcp", *LABELS[1:]): [1.0]}
    assert sums[DEPTH] == {(): [5.0]}


def test_a_closed_tally_keeps_its_counters_not_its_gauges(tmp_path: Path) -> None:
    gone, alive = Tally(tmp_path), Tally(tmp_path)
    for t in (gone, alive):
        t.values[t.slot(REQUESTS, LABELS)] += 1
        t.values[t.slot(DEPTH, ())] = 7
    reader = Reader(tmp_path)
    assert add_up(reader.parts())[DEPTH] == {(): [14.0]}
    gone.close()
    gone.values[gone.slot(REQUESTS, LABELS)] += 1  # after close: this process only
    sums = add_up(reader.parts())
    assert sums[REQUESTS] == {LABELS: [2.0]}
    assert sums[DEPTH] == {(): [7.0]}


def test_a_dead_process_is_told_by_its_lock(tmp_path: Path) -> None:
    """A process killed without closing anything: its lock goes with it."""
    code = (
        "import os, sys\n"
        "from modelrouter.observe.tally import Tally\n"
        "t = Tally(sys.argv[1])\n"
        "t.values[t.slot('modelrouter_requests_total', ('x',))] += 4\n"
        "t.values[t.slot('modelrouter_log_queue_depth', ())] = 9\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
        "os._exit(0)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    reader = Reader(tmp_path)
    [part] = reader.parts()
    assert part.alive
    assert add_up([part])[DEPTH] == {(): [9.0]}
    proc.kill()
    proc.wait(10)
    [part] = reader.parts()
    assert not part.alive
    sums = add_up([part])
    assert sums[REQUESTS] == {("x",): [4.0]}
    assert sums[DEPTH] == {}


def test_a_half_written_series_line_waits(tmp_path: Path) -> None:
    t = Tally(tmp_path)
    t.values[t.slot(REQUESTS, ("a",))] += 1
    assert t.path is not None
    series = t.path.with_suffix(".series")
    with series.open("ab") as out:
        out.write(b'[1, "modelrouter_requests_to')  # a line still being written
    reader = Reader(tmp_path)
    assert add_up(reader.parts())[REQUESTS] == {("a",): [1.0]}
    with series.open("ab") as out:
        out.write(b'tal", ["b"]]\n')
    t.values[1] += 2  # the slot the completed line names
    assert add_up(reader.parts())[REQUESTS] == {("a",): [1.0], ("b",): [2.0]}


def test_files_are_private(tmp_path: Path) -> None:
    t = Tally(tmp_path)
    assert t.path is not None
    for p in (t.path, t.path.with_suffix(".series")):
        assert p.stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob("*.tmp"))
