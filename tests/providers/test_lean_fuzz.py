"""Property tests of the lean client: split points and mangled bytes.

Each example is a real TCP replay (see :mod:`tests.providers.replay`), run on its own
event loop. Derandomized, without an example database, and bounded in count, so a
run is reproducible and takes seconds. For a longer hunt: LEAN_FUZZ_EXAMPLES=5000
LEAN_FUZZ_RANDOM=1 (new examples each run; pass --hypothesis-seed to repeat one).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.providers.replay import Outcome, Run, h11_outcome, lean_outcome
from tests.providers.test_lean_differential import CORPUS, Case, check

EXAMPLES = int(os.environ.get("LEAN_FUZZ_EXAMPLES", "150"))
"""Examples per property (raise it locally for a longer hunt)."""

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # each example is a real connection: timing varies with the machine
    derandomize=os.environ.get("LEAN_FUZZ_RANDOM") is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def cut(data: bytes, points: list[int]) -> tuple[bytes, ...]:
    """``data`` split at ``points`` (positions into it; duplicates and ends ignored)."""
    edges = sorted({p for p in points if 0 < p < len(data)})
    bounds = [0, *edges, len(data)]
    return tuple(data[a:b] for a, b in itertools.pairwise(bounds) if b > a)


@st.composite
def split_case(draw: st.DrawFn) -> tuple[Case, tuple[bytes, ...]]:
    """A corpus case and a random chunking of its bytes."""
    case = draw(st.sampled_from([c for c in CORPUS if c.pieces]))
    whole = b"".join(case.pieces)
    points = draw(st.lists(st.integers(1, max(1, len(whole) - 1)), max_size=12))
    return case, cut(whole, points)


@given(split_case())
@FUZZ
def test_any_chunking_gives_the_same_answer(drawn: tuple[Case, tuple[bytes, ...]]) -> None:
    case, pieces = drawn
    run = asyncio.run(lean_outcome(pieces, case.closes))
    check(case, pieces, run)


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    """Corpus bytes with a few edits, or bytes that only start like HTTP."""
    if draw(st.integers(0, 9)) == 0:
        return b"HTTP/1.1 " + draw(st.binary(max_size=80))
    data = bytearray(b"".join(draw(st.sampled_from([c for c in CORPUS if c.pieces])).pieces))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["set", "insert", "delete", "repeat", "truncate"]))
        if edit == "set" and at < len(data):
            data[at] = draw(st.sampled_from(b"\r\n :;0123456789aAfFzZ\t\x00\x7f\xff-+"))
        elif edit == "insert":
            data[at:at] = draw(st.sampled_from([b"\r\n", b"\n", b"\r", b"0", b"\r\n\r\n", b" "]))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 4))]
        elif edit == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return bytes(data)


REASON = re.compile(rb"HTTP/[^ ]* [0-9]{3} ?([^\r\n]*)\r\n")
CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def comparable(data: bytes, got: Outcome) -> bool:
    """Whether h11 is a fair judge of an answer the lean client accepted.

    Not when h11 refuses what the lean client rightly reads otherwise: a coding other
    than chunked (h11 implements no other; RFC 9112 6.3 reads such a body until close),
    or control bytes in a reason phrase, which llhttp lets through and nothing reads.
    """
    if dict(got.headers).get("transfer-encoding", "chunked") != "chunked":
        return False
    return not any(CONTROL.search(m.group(1)) for m in REASON.finditer(data))


@given(mangled(), st.lists(st.integers(1, 400), max_size=6))
@FUZZ
def test_mangled_answers_end_cleanly_and_never_poison_the_pool(
    data: bytes, points: list[int]
) -> None:
    pieces = cut(data, points)
    # The server keeps the connection open only when h11 finds a whole answer that
    # leaves it reusable; otherwise it closes, since a client waiting on an open
    # connection for bytes that never come (or for the close that ends a body) is
    # right to wait, and would stall the run.
    closes = not h11_outcome(pieces, closes=False).reusable
    ref = h11_outcome(pieces, closes)
    run: Run = asyncio.run(lean_outcome(pieces, closes, timeout=5.0))
    got = run.outcome
    # A result or a ProviderError (lean_outcome lets anything else through), and
    # nothing for the loop's exception handler.
    assert run.loop_errors == []
    if got.error == "" and comparable(data, got):
        # What the lean client accepts, h11 reads the same way.
        assert (got.status, got.headers, got.body) == (ref.status, ref.headers, ref.body)
    if got.reusable:
        assert ref.reusable and ref.error == ""
    # The pool is sound either way: the next request gets its own answer.
    assert run.second == Outcome(200, run.second.headers, b"own:req-2")
    assert run.connections == (1 if got.reusable else 2)
