"""The lean client against h11 on a corpus of upstream byte streams.

Each case is replayed over a real TCP connection (see :mod:`tests.providers.replay`)
as its given pieces, as one piece and byte by byte. The lean client must agree with
h11 fed the same bytes (status, headers, body, whether the connection may be
reused) and with the case's own expectation; where h11 rejects the bytes, the lean
client must fail with a :class:`ProviderError`. After every case a second request
must get its own answer, on the same connection exactly when it was pooled.
"""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from providers.base import Failure
from tests.providers.replay import Outcome, Run, h11_outcome, lean_outcome, ok


@dataclass(frozen=True)
class Case:
    """An upstream answer and what the lean client must make of it."""

    name: str
    pieces: tuple[bytes, ...]
    closes: bool
    status: int = 0
    """Expected status; 0 when an error is expected."""
    body: bytes = b""
    reusable: bool = False
    failure: Failure | None = None
    h11_differs: str = ""
    """Why h11 reads these bytes differently, if it does."""


OK_REAL = ok(b'{"real": true}')
CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
HINTS = (
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n"
    b"Content-Type: text/x-hint\r\n\r\n"
)
SSE = b'data: {"a":1}\n\n'

CORPUS = [
    Case("content-length", (OK_REAL,), False, 200, b'{"real": true}', True),
    Case("100 then 200", (CONTINUE + OK_REAL,), False, 200, b'{"real": true}', True),
    Case("100 / 200", (CONTINUE, OK_REAL), False, 200, b'{"real": true}', True),
    Case("103 then 200", (HINTS + OK_REAL,), False, 200, b'{"real": true}', True),
    Case(
        "103 / 200 split",
        (HINTS[:10], HINTS[10:] + OK_REAL[:5], OK_REAL[5:]),
        False,
        200,
        b'{"real": true}',
        True,
    ),
    Case("100, 103, 200", (CONTINUE, HINTS, OK_REAL), False, 200, b'{"real": true}', True),
    Case(
        "103 then a stream",
        (HINTS, CHUNKED_HEAD, b"%x\r\n%s\r\n" % (len(SSE), SSE), b"0\r\n\r\n"),
        False,
        200,
        SSE,
        True,
    ),
    Case(
        "100 with Connection: close, then 200",
        (b"HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\n" + OK_REAL,),
        False,
        200,
        b'{"real": true}',
        True,
    ),
    Case(
        "1xx headers are not the answer's",
        (b"HTTP/1.1 103 Early Hints\r\nX-Only-Interim: 1\r\n\r\n", ok(b"x", b"X-Final: 2\r\n")),
        False,
        200,
        b"x",
        True,
    ),
    Case(
        "101 with Upgrade",
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: upgrade\r\n\r\n\x81\x05hello",
        ),
        False,
        failure=Failure.MALFORMED,
    ),
    Case(
        "101 then a 200",
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n" + OK_REAL,),
        False,
        failure=Failure.MALFORMED,
    ),
    Case("204", (b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",), False, 204, b"", True),
    Case(
        "whitespace around header values",
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: \t text/plain \t\r\nX-Empty:  \r\n"
            b"Content-Length: 1\r\n\r\nx",
        ),
        False,
        200,
        b"x",
        True,
    ),
    Case(
        "204 with Content-Length: 0",
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",),
        False,
        204,
        b"",
        True,
    ),
    Case(
        "304 with a Content-Length",
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n",),
        False,
        304,
        b"",
        True,
    ),
    Case(
        "204 followed by bytes",
        (b"HTTP/1.1 204 No Content\r\n\r\nsurprise",),
        False,
        204,
        b"",
        False,
    ),
    Case(
        "chunked, extensions and trailers",
        (
            CHUNKED_HEAD
            + b'5;ext=1\r\nhello\r\n6;a="b c";d\r\n world\r\n'
            + b"0;last\r\nX-Trailer: t\r\nX-Other: 2\r\n\r\n",
        ),
        False,
        200,
        b"hello world",
        True,
    ),
    Case(
        "chunked, split inside CRLFs",
        (CHUNKED_HEAD + b"5\r", b"\nhel", b"lo\r", b"\n0\r", b"\n\r", b"\n"),
        False,
        200,
        b"hello",
        True,
    ),
    Case(
        "chunked, upper-case hex",
        (CHUNKED_HEAD + b"A\r\n0123456789\r\n0\r\n\r\n",),
        False,
        200,
        b"0123456789",
        True,
    ),
    Case(
        "Content-Length shorter than the body",
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and more",),
        False,
        200,
        b"hello",
        False,
    ),
    Case(
        "the rest of a too-long body comes later",
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b" world"),
        False,
        200,
        b"hello",
        False,
    ),
    Case(
        "Content-Length too long, then close",
        (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly part",),
        True,
        failure=Failure.INTERRUPTED,
    ),
    Case(
        "close-delimited body",
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ", b"the end"),
        True,
        200,
        b"until the end",
        False,
    ),
    Case(
        "Transfer-Encoding not ending in chunked",
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n1\r\nx\r\n0\r\n\r\n",),
        True,
        200,
        b"1\r\nx\r\n0\r\n\r\n",
        False,
        h11_differs="RFC 9112 6.3 reads such a body until close; h11 knows only chunked",
    ),
    Case("HTTP/1.0 close-delimited", (b"HTTP/1.0 200 OK\r\n\r\n{}",), True, 200, b"{}", False),
    Case(
        "HTTP/1.0 with a length",
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",),
        False,
        200,
        b"{}",
        False,
    ),
    Case(
        "pipelined garbage after the body",
        (ok(b"one") + b"GARBAGE\r\n\r\n",),
        False,
        200,
        b"one",
        False,
    ),
    Case(
        "a whole second answer after the first",
        (ok(b"one") + ok(b"smuggled"),),
        False,
        200,
        b"one",
        False,
    ),
    Case("a CRLF after the body", (ok(b"one") + b"\r\n",), False, 200, b"one", False),
    Case(
        "CRLFs after a chunked body",
        (CHUNKED_HEAD + b"1\r\nx\r\n0\r\n\r\n\r\n\r\n",),
        False,
        200,
        b"x",
        False,
    ),
    Case(
        "one LF after a chunked body",
        (CHUNKED_HEAD + b"1\r\nx\r\n0\r\n\r\n\n",),
        False,
        200,
        b"x",
        False,
    ),
    Case("a late LF after the body", (ok(b"one"), b"\n"), False, 200, b"one", False),
    Case("body ending in LFs, exact", (ok(b"data: x\n\n"),), False, 200, b"data: x\n\n", True),
    Case(
        "body ending in LFs, plus one",
        (ok(b"data: x\n\n") + b"\n",),
        False,
        200,
        b"data: x\n\n",
        False,
    ),
    Case(
        "Connection: close, server keeps it open",
        (ok(b"bye", b"Connection: close\r\n"),),
        False,
        200,
        b"bye",
        False,
    ),
    Case(
        "Connection: close, server closes",
        (ok(b"bye", b"Connection: close\r\n"),),
        True,
        200,
        b"bye",
        False,
    ),
    Case(
        "error status",
        (b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nRetry-After: 1\r\n\r\nbusy",),
        False,
        503,
        b"busy",
        True,
    ),
    Case("closed before any byte", (), True, failure=Failure.CONNECT),
    Case(
        "cut inside the head",
        (b"HTTP/1.1 200 OK\r\nContent-Le",),
        True,
        failure=Failure.INTERRUPTED,
    ),
    Case("a CRLF before the status line", (b"\r\n" + OK_REAL,), False, failure=Failure.MALFORMED),
    Case("only a CRLF, connection left open", (b"\r\n",), False, failure=Failure.MALFORMED),
    Case(
        "a CRLF between 100 and 200",
        (CONTINUE + b"\r\n" + OK_REAL,),
        False,
        failure=Failure.MALFORMED,
    ),
    Case(
        "an LF after 103, connection left open",
        (HINTS, b"\n"),
        False,
        failure=Failure.MALFORMED,
    ),
    Case(
        "a folded header line",
        (b"HTTP/1.1 103 Early Hints\r\nLink: a\r\n b\r\n\r\n" + OK_REAL,),
        False,
        failure=Failure.MALFORMED,
        h11_differs="llhttp refuses obs-fold, which RFC 9112 5.2 asks a user agent to unfold",
    ),
    Case("not HTTP", (b"SSH-2.0-OpenSSH_9.6\r\n",), False, failure=Failure.MALFORMED),
    Case(
        "bad chunk size",
        (CHUNKED_HEAD + b"zz\r\nhello\r\n0\r\n\r\n",),
        False,
        failure=Failure.MALFORMED,
    ),
    Case(
        "negative Content-Length",
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",),
        False,
        failure=Failure.MALFORMED,
    ),
    Case(
        "Content-Length and chunked together",
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"1\r\nx\r\n0\r\n\r\n",
        ),
        False,
        failure=Failure.MALFORMED,
        h11_differs="RFC 9112 6.3: both at once 'ought to be handled as an error' (smuggling)",
    ),
    Case(
        "two equal Content-Lengths",
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",),
        False,
        failure=Failure.MALFORMED,
        h11_differs="RFC 9112 6.3 lets a recipient reject duplicates; llhttp does",
    ),
    Case(
        "bare LF line ends",
        (b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",),
        False,
        failure=Failure.MALFORMED,
        h11_differs="llhttp is strict about CRLF; h11 accepts a bare LF",
    ),
]


def split_variants(case: Case) -> list[tuple[str, tuple[bytes, ...]]]:
    """The case's own pieces, all in one piece, and one byte at a time."""
    whole = b"".join(case.pieces)
    variants = [("as given", case.pieces)]
    if len(case.pieces) > 1:
        variants.append(("one piece", (whole,)))
    if len(whole) > 1:
        variants.append(("bytewise", tuple(whole[i : i + 1] for i in range(len(whole)))))
    return variants


def expected(case: Case) -> Outcome:
    """The case's expectation (headers are checked against h11 only)."""
    if case.failure is not None:
        return Outcome(error=case.failure.value)
    return Outcome(case.status, (), case.body, case.reusable)


def check(case: Case, pieces: tuple[bytes, ...], run: Run) -> None:
    """The lean run agrees with the case, with h11, and left the pool sound."""
    got = run.outcome
    assert run.loop_errors == []
    want = expected(case)
    assert (got.status, got.body, got.reusable, got.error) == (
        want.status,
        want.body,
        want.reusable,
        want.error,
    )
    ref = h11_outcome(pieces, case.closes)
    if case.h11_differs:
        assert ref != got, "h11 agrees: drop h11_differs"
    elif case.failure is not None:
        assert ref.error != "", f"h11 accepts what the lean client rejects: {ref}"
    else:
        assert got == ref
    # The next request gets its own answer, on the same connection iff it was pooled.
    assert run.second == Outcome(200, run.second.headers, b"own:req-2")
    assert run.connections == (1 if got.reusable else 2)
    assert run.first_connection_requests == (2 if got.reusable else 1)


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
async def test_corpus_against_h11(case: Case) -> None:
    for _, pieces in split_variants(case):
        run = await lean_outcome(pieces, case.closes)
        check(case, pieces, run)


def test_corpus_names_are_unique() -> None:
    assert len({c.name for c in CORPUS}) == len(CORPUS)


@pytest.fixture(scope="module")
def tls_contexts(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts for a self-signed 127.0.0.1 certificate."""
    tmp: Path = tmp_path_factory.mktemp("tls")
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


TLS_CASES = [
    "100 / 200",
    "103 then a stream",
    "a whole second answer after the first",
    "close-delimited body",
    "101 with Upgrade",
]


@pytest.mark.parametrize("name", TLS_CASES)
async def test_corpus_over_tls(
    name: str, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    case = next(c for c in CORPUS if c.name == name)
    for _, pieces in split_variants(case)[:2]:
        run = await lean_outcome(pieces, case.closes, tls=tls_contexts)
        check(case, pieces, run)
