"""HTTP Garden's proxy classes (narfindustries/http-garden): framing that one parser reads one
way and the next another way, which is how a request is smuggled past a proxy or a response
handed to the wrong client.

Each case is reject-or-normalise. On the client side the gateway either refuses the request
(4xx or 501, nothing reaches the upstream) or forwards one clean request whose body is exactly
the one the client framed; a request pipelined after it is then answered in order, and the
body, itself a request for /smuggled, never reaches the upstream as a request of its own. On
the upstream side the gateway either refuses the response (the client gets the retried good
answer, or a 5xx) or relays exactly the body the upstream framed; the response nobody asked
for that follows it on the connection never reaches a client.
"""

import pytest

from tests.hostile.cases import Note, clean_after, describe, is_own, new_id, owner, rows, run
from tests.hostile.client import Got, exchange, request_bytes
from tests.hostile.gateways import Gateway
from tests.hostile.upstream import POISON, ScriptedUpstream, Seen

pytestmark = pytest.mark.hostile

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: gateway\r\n\r\n"
"""The body of the Content-Length cases: a request, should a parser take the body for one."""
HELLO = b"hello"
CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"
GET_BODY = (HELLO, b"")
"""What a GET's body may become upstream: itself, or nothing (consumed by the gateway)."""
REFUSALS = range(400, 600)
"""A refusal is any 4xx, or 501 for a coding the gateway does not know (RFC 9112 6.1)."""


def _head(
    request_id: str, lines: list[bytes], *, method: bytes = b"POST", eol: bytes = b"\r\n"
) -> bytes:
    start = method + b" /data?case=echo HTTP/1.1"
    fields = [b"Host: gateway", b"X-Request-ID: " + request_id.encode(), *lines]
    return eol.join([start, *fields]) + eol + eol


CLIENT = [
    # (number, title, id, head lines, body, the body a normalising gateway forwards)
    (62, "request Content-Length: 0x..", "cl-hex", [b"Content-Length: 0x%x" % len(SMUGGLED)],
     SMUGGLED, (SMUGGLED,)),
    (63, "request Content-Length with a plus sign", "cl-plus",
     [b"Content-Length: +%d" % len(SMUGGLED)], SMUGGLED, (SMUGGLED,)),
    (64, "request Content-Length negative", "cl-minus", [b"Content-Length: -%d" % len(SMUGGLED)],
     SMUGGLED, ()),
    (65, "request Content-Length: (empty)", "cl-empty", [b"Content-Length: "], SMUGGLED, ()),
    (66, "request chunk size 0x5", "chunk-hex", [b"Transfer-Encoding: chunked"],
     b"0x5\r\nhello\r\n0\r\n\r\n", (HELLO,)),
    (67, "request chunk size with a plus sign", "chunk-plus", [b"Transfer-Encoding: chunked"],
     b"+5\r\nhello\r\n0\r\n\r\n", (HELLO,)),
    (68, "request chunk size negative", "chunk-minus", [b"Transfer-Encoding: chunked"],
     b"-5\r\nhello\r\n0\r\n\r\n", ()),
    (69, "request Transfer-Encoding with a leading comma", "te-comma",
     [b"Transfer-Encoding: ,chunked"], CHUNKED_HELLO, (HELLO,)),
    (70, "request Transfer-Encoding with a trailing comma", "te-trailing-comma",
     [b"Transfer-Encoding: chunked,"], CHUNKED_HELLO, (HELLO,)),
    (71, "request Transfer-Encoding: identity, chunked", "te-identity-chunked",
     [b"Transfer-Encoding: identity, chunked"], CHUNKED_HELLO, (HELLO,)),
    (72, "request Transfer-Encoding: chunked, chunked", "te-chunked-twice",
     [b"Transfer-Encoding: chunked, chunked"], CHUNKED_HELLO, ()),
]  # fmt: skip


def _pipelined_after(after_id: str) -> bytes:
    return request_bytes("/data?case=echo", after_id, close=True)


def _judge_client_side(
    answers: list[Got],
    seen: list[Seen],
    upstream: ScriptedUpstream,
    after_id: str,
    meant: tuple[bytes, ...],
    request_id: str,
) -> None:
    first = answers[0]
    assert not any("/smuggled" in target for target in upstream.targets()), (
        "the body reached the upstream as a request of its own"
    )
    for got in answers:
        assert owner(got) in (None, request_id, after_id), f"another's data: {got.summary()}"
    if first.status in REFUSALS:
        assert not seen, f"refused with {first.status}, yet the upstream got it"
    else:
        assert meant, f"no clean reading of this framing, yet {first.summary()}"
        assert is_own(first, request_id), f"neither refused nor served: {first.summary()}"
        assert len(seen) == 1, f"{len(seen)} attempts upstream"
        assert not seen[0].body_short, f"the upstream got {seen[0].body!r}, short of its framing"
        assert seen[0].body in meant, f"the upstream got {seen[0].body!r}, not one of {meant!r}"
        assert len(answers) == 2, "the request pipelined after it was not answered"
        assert is_own(answers[1], after_id), "the request pipelined after it got another answer"
    if len(answers) == 2 and answers[1].status is not None:
        assert is_own(answers[1], after_id), f"pipelined request got {answers[1].summary()}"


@pytest.mark.parametrize(("lines", "body", "meant"), rows(*CLIENT))
def test_request_framing_is_refused_or_normalised(
    gw: Gateway,
    upstream: ScriptedUpstream,
    note: Note,
    lines: list[bytes],
    body: bytes,
    meant: tuple[bytes, ...],
) -> None:
    request_id, after_id = new_id("garden"), new_id("after")
    request = _head(request_id, lines) + body + _pipelined_after(after_id)
    answers = run(exchange(gw.port, request, method="POST", responses=2, timeout_s=5))
    seen = upstream.requests(request_id)
    note.got = " then ".join(got.summary() for got in answers) + f", {len(seen)} upstream"
    _judge_client_side(answers, seen, upstream, after_id, meant, request_id)
    assert not run(clean_after(gw.port))


@pytest.mark.hostile_case(73, "request head with bare LF line ends")
def test_bare_lf_head_is_refused_or_normalised(
    gw: Gateway, upstream: ScriptedUpstream, note: Note
) -> None:
    """RFC 9112 2.2: a recipient MAY take a bare LF for a line end; either way the request is
    one request, and the one pipelined after it is answered in order."""
    request_id, after_id = new_id("lf"), new_id("after")
    request = _head(request_id, [b"Content-Length: 5"], method=b"GET", eol=b"\n") + HELLO
    answers = run(exchange(gw.port, request + _pipelined_after(after_id), responses=2))
    seen = upstream.requests(request_id)
    note.got = " then ".join(got.summary() for got in answers) + f", {len(seen)} upstream"
    _judge_client_side(answers, seen, upstream, after_id, GET_BODY, request_id)


@pytest.mark.hostile_case(74, "request header line without a colon")
def test_header_line_without_colon_is_refused_or_dropped(
    gw: Gateway, upstream: ScriptedUpstream, note: Note
) -> None:
    """RFC 9112 5: a field line is `name: value`; a line without a colon is either a 400 or
    dropped, never forwarded as a field of some other shape."""
    request_id, after_id = new_id("colon"), new_id("after")
    request = _head(request_id, [b"NoColonHere", b"Content-Length: 5"], method=b"GET") + HELLO
    answers = run(exchange(gw.port, request + _pipelined_after(after_id), responses=2))
    seen = upstream.requests(request_id)
    forwarded = [name for s in seen for name, _ in s.headers if b"nocolon" in name]
    note.got = " then ".join(got.summary() for got in answers) + f", forwarded {forwarded}"
    _judge_client_side(answers, seen, upstream, after_id, GET_BODY, request_id)
    assert not forwarded, "the line without a colon reached the upstream"


@pytest.mark.hostile_case(75, "GET with a body, then a pipelined GET")
def test_get_body_is_forwarded_with_its_length_or_consumed(
    gw: Gateway, upstream: ScriptedUpstream, note: Note
) -> None:
    """A GET may carry a body (RFC 9110 9.3.1 gives it no meaning): the gateway forwards it
    with its own length, or consumes it; what it must not do is forward a length without the
    body, or the body without a length, which leaves the next request on that upstream
    connection misframed."""
    request_id, after_id = new_id("getbody"), new_id("after")
    request = _head(request_id, [b"Content-Length: 5"], method=b"GET") + HELLO
    answers = run(exchange(gw.port, request + _pipelined_after(after_id), responses=2))
    seen = upstream.requests(request_id)
    framing = [
        (n, v) for s in seen for n, v in s.headers if n in (b"content-length", b"transfer-encoding")
    ]
    ids = [request_id, after_id]
    note.got = " then ".join(describe(g, i) for g, i in zip(answers, ids, strict=False))
    note.got += f"; upstream framing {framing}, body {[s.body for s in seen]}"
    if answers[0].status in REFUSALS:
        assert not seen
        return
    assert is_own(answers[0], request_id)
    assert len(seen) == 1
    assert not seen[0].body_short, "a length was forwarded without its body"
    assert seen[0].body in (b"", HELLO)
    assert bool(seen[0].body) == bool(framing), "the body and its framing went apart"
    assert len(answers) == 2
    assert is_own(answers[1], after_id)
    assert not run(clean_after(gw.port))


UPSTREAM = [
    (76, "response Content-Length: 0x..", "cl_hex"),
    (77, "response Content-Length with a plus sign", "cl_plus"),
    (78, "response Content-Length negative", "cl_minus"),
    (79, "response Content-Length: (empty)", "cl_empty"),
    (80, "response chunk size 0x..", "chunk_hex"),
    (81, "response chunk size with a plus sign", "chunk_plus"),
    (82, "response chunk size negative", "chunk_minus"),
    (83, "response Transfer-Encoding with a leading comma", "te_comma"),
    (84, "response Transfer-Encoding: identity, chunked", "te_list"),
    (85, "response head with bare LF line ends", "bare_lf"),
    (86, "response header line without a colon", "no_colon"),
]


@pytest.mark.parametrize("kind", rows(*((n, t, k, k) for n, t, k in UPSTREAM)))
def test_response_framing_is_refused_or_normalised(
    gw: Gateway, upstream: ScriptedUpstream, note: Note, kind: str
) -> None:
    """The first attempt gets the malformed response (and, after it on the connection, one
    nobody asked for); the other listener answers well."""
    judge_response_framing(gw, upstream, note, kind, readable=True)


def judge_response_framing(
    gw: Gateway, upstream: ScriptedUpstream, note: Note, kind: str, *, readable: bool
) -> None:
    """Ask for the `garden` script's `kind`: the client gets the retried good answer, a 5xx,
    or (when the framing has a clean reading, `readable`) the malformed response relayed as
    the upstream framed it; never the response nobody asked for that follows it."""
    request_id = new_id(f"rgarden-{kind}")
    got = run(exchange(gw.port, request_bytes(f"/data?case=garden&kind={kind}", request_id)))[0]
    attempts = upstream.attempts(request_id)
    note.got = f"{describe(got, request_id)} ({attempts} attempt{'s' * (attempts > 1)})"
    poison = POISON + b"-" + request_id.encode()
    assert b"UNSOLICITED" not in got.body, "the response nobody asked for reached the client"
    assert len(got.values("content-length")) <= 1
    if got.status == 200 and got.body.startswith(POISON):
        # Normalised: the malformed response relayed, framed as the upstream meant it.
        assert readable, f"no clean reading of this framing, yet it was relayed: {got.summary()}"
        assert got.complete, got.summary()
        assert got.body == poison, got.summary()
    else:
        assert is_own(got, request_id) or (got.status is not None and got.status >= 500), (
            got.summary()
        )
        assert POISON not in got.body
    assert not run(clean_after(gw.port)), "plain requests after the case went wrong"
