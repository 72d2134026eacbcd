"""What a client sends: requests a gateway must refuse before anything reaches an upstream,
and pipelined requests it must answer in order."""

import pytest

from tests.hostile.cases import Note, describe, is_own, new_id, run
from tests.hostile.client import exchange, fetch, request_bytes
from tests.hostile.gateways import Gateway
from tests.hostile.upstream import ScriptedUpstream

pytestmark = pytest.mark.hostile


@pytest.mark.hostile_case(33, "GET /data/ (trailing slash)")
def test_trailing_slash_is_not_found(gw: Gateway, note: Note) -> None:
    got = run(fetch(gw.port, "/data/", new_id("slash")))
    note.got = got.summary() + (f" -> {got.value('location')!r}" if got.value("location") else "")
    assert got.status == 404, "/data/ is not /data: no redirect that sends clients elsewhere"


def _head(request_id: str, lines: list[bytes], version: bytes = b"HTTP/1.1") -> bytes:
    start = b"GET /data?case=echo " + version
    return b"\r\n".join([start, *lines, b"X-Request-ID: " + request_id.encode()]) + b"\r\n\r\n"


REFUSED = [
    (34, "two Host headers", [b"Host: a.example", b"Host: b.example"], b"HTTP/1.1", 400),
    (35, "HTTP/1.1 request without Host", [], b"HTTP/1.1", 400),
    (36, "HTTP/2.0 request line", [b"Host: gateway"], b"HTTP/2.0", 505),
]


@pytest.mark.parametrize(
    ("lines", "version", "status"),
    [
        pytest.param(lines, version, status, marks=pytest.mark.hostile_case(n, title), id=title)
        for n, title, lines, version, status in REFUSED
    ],
)
def test_invalid_request_is_refused(
    gw: Gateway,
    upstream: ScriptedUpstream,
    note: Note,
    lines: list[bytes],
    version: bytes,
    status: int,
) -> None:
    """RFC 9112 3.2: 400 for a missing or repeated Host; RFC 9110 15.6.6: 505 for a major
    version the server does not speak. Never answered as if fine, never forwarded."""
    request_id = new_id("refused")
    got = run(exchange(gw.port, _head(request_id, lines, version)))[0]
    note.got = got.summary()
    assert got.status == status
    assert upstream.attempts(request_id) == 0, "the request reached the upstream"


_TAIL = b"GET /smuggled HTTP/1.1\r\nHost: gateway\r\n\r\n"
_CL, _TE = b"Content-Length: 4", b"Transfer-Encoding: chunked"
SMUGGLING = [
    (37, "smuggling: CL + TE", [_CL, _TE], b"0\r\n\r\n" + _TAIL),
    (38, "smuggling: TE + CL", [_TE, _CL], b"0\r\n\r\n" + _TAIL),
    (39, "smuggling: two Content-Lengths", [b"Content-Length: 0", b"Content-Length: 41"], _TAIL),
    (40, "smuggling: obs-fold header line", [b"X-Folded: a", b" Transfer-Encoding: chunked"], b""),
    (41, "smuggling: bare CR in a header", [b"X-A: a\rTransfer-Encoding: chunked"], b""),
    (42, "smuggling: NUL in a header", [b"X-A: a\x00b"], b""),
]


@pytest.mark.parametrize(
    ("lines", "body"),
    [
        pytest.param(lines, body, marks=pytest.mark.hostile_case(n, title), id=title.split(": ")[1])
        for n, title, lines, body in SMUGGLING
    ],
)
def test_request_smuggling_is_refused(
    gw: Gateway, upstream: ScriptedUpstream, note: Note, lines: list[bytes], body: bytes
) -> None:
    request_id = new_id("smuggle")
    request = _head(request_id, [b"Host: gateway", *lines]) + body
    answers = run(exchange(gw.port, request, responses=2, timeout_s=5))
    note.got = " then ".join(got.summary() for got in answers)
    assert answers[0].status == 400
    assert upstream.attempts(request_id) == 0, "the request reached the upstream"
    assert not any("/smuggled" in target for target in upstream.targets())


@pytest.mark.hostile_case(43, "three pipelined requests")
def test_pipelined_requests_are_answered_in_order(gw: Gateway, note: Note) -> None:
    ids = [new_id(f"pipe{i}") for i in range(3)]
    requests = b"".join(
        request_bytes("/data?case=echo", request_id, close=index == len(ids) - 1)
        for index, request_id in enumerate(ids)
    )
    answers = run(exchange(gw.port, requests, responses=3))
    got = [describe(answer, request_id) for answer, request_id in zip(answers, ids, strict=False)]
    note.got = ", ".join(got)
    assert len(answers) == 3, got
    assert all(map(is_own, answers, ids)), got
