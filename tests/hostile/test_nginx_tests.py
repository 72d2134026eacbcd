"""Cases of nginx's own test suite (nginx/nginx-tests), ported by behaviour: what nginx is held
to in front of an upstream, asked of every gateway here.

- proxy_extra_data.t: bytes past a response's Content-Length (or past `Content-Length: 0`)
  belong to no response; a HEAD answer carries no body whatever the upstream sends.
- proxy_chunked_extra.t: bytes past a chunked body's last chunk belong to no response.
- proxy_keepalive.t (the buffered part): after a response of each framing (length, chunked,
  chunked in 100 pieces with its last CRLF late, a lone last chunk, an empty body, a 304 with
  and without a Content-Length) the upstream connection is reused; a 304 that announces 100
  bytes has none, so nothing waits for them.
- http_keepalive_shutdown.t: a keep-alive client whose request is in flight when the gateway
  is told to stop gets its answer with `Connection: close`.
- proxy_duplicate_headers.t (nginx 1.23's handling): a framing field repeated is refused or
  read as one; a repeated field that has one value reaches the client once, with its first
  value; repeated list fields (and Set-Cookie) reach it whole, in order.
- proxy_unfinished.t: a response the upstream leaves unfinished stays unfinished for the
  client, also when the client pipelined another request behind it (its single-response
  parts are cases 29-32, test_bodies.py).
- upstream.t: 30 requests over two servers are 15 each; when the first closes every third
  connection unanswered, MAX_FAILS=3 takes it out after its third failure, so it answers
  6 and the other 24 (its racy "failures delay" part is left out, as nginx-tests skips it).
"""

import asyncio
import contextlib

import pytest

from tests.hostile.cases import (
    Note,
    clean_after,
    describe,
    is_own,
    new_id,
    rows,
    run,
    within_async,
)
from tests.hostile.client import Got, exchange, fetch, read_one, request_bytes
from tests.hostile.gateways import Gateway, GatewayFactory
from tests.hostile.test_garden import judge_response_framing
from tests.hostile.upstream import (
    LIST_FIELDS,
    NOT_THIS,
    SINGLE_FIELDS,
    UPSTREAM_T_EVERY,
    ScriptedUpstream,
    pattern_digest,
)

pytestmark = pytest.mark.hostile


@pytest.mark.parametrize(
    "kind",
    rows(
        (97, "bytes past the Content-Length (proxy_extra_data)", "length-extra", "length_extra"),
        (98, "bytes past Content-Length: 0 (proxy_extra_data)", "zero-extra", "zero_extra"),
        (99, "bytes past the last chunk (proxy_chunked_extra)", "chunked-extra", "chunked_extra"),
    ),
)
def test_bytes_past_the_response_reach_no_one(
    gw: Gateway, upstream: ScriptedUpstream, note: Note, kind: str
) -> None:
    request_id = new_id(f"extra-{kind}")
    got = run(fetch(gw.port, f"/data?case=nginx_tests&kind={kind}", request_id))
    note.got = describe(got, request_id)
    assert NOT_THIS not in got.body, "bytes past the response reached the client"
    if kind == "zero_extra":
        assert (got.status, got.complete, got.body) == (200, True, b""), got.summary()
    else:
        assert is_own(got, request_id), got.summary()
    assert not run(clean_after(gw.port)), "requests after it got the extra bytes"


async def _raw_head_answer(port: int, request: bytes) -> bytes:
    """Everything a HEAD request gets on a connection the client closes after it (EOF, or
    2 s of silence, ends the reading)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionError):
            while chunk := await asyncio.wait_for(reader.read(65536), 2.0):
                received += chunk
        return received
    finally:
        writer.transport.abort()


@pytest.mark.hostile_case(100, "HEAD answered with a body upstream (proxy_extra_data)")
def test_head_answer_carries_no_body(gw: Gateway, note: Note) -> None:
    """The upstream answers HEAD with its whole body, as a broken server would: the client's
    answer is a head and nothing after it."""
    request_id = new_id("head")
    request = request_bytes("/data?case=nginx_tests&kind=length", request_id, method="HEAD")
    received = run(_raw_head_answer(gw.port, request))
    head, _, after = received.partition(b"\r\n\r\n")
    note.got = f"{head.split(b' ', 2)[1:2]} head, {len(after)} bytes after it"
    assert head.startswith(b"HTTP/1.1 200"), received[:80]
    assert after == b"", f"a HEAD answer carried {len(after)} bytes: {after[:40]!r}"
    assert not run(clean_after(gw.port))


KEEPALIVE_REQUESTS = 8
NEW_AT_MOST = 2
"""New upstream connections 8 requests of one client connection may open: one per listener
(a client connection is served by one worker, whatever the gateway's worker count; idle ones
pooled by earlier cases count as reused); without reuse it would be 8."""


def _answered(got: Got, request_id: str, kind: str) -> bool:
    if kind.startswith("304"):
        return got.status == 304 and got.complete and got.body == b""
    if kind in ("empty", "chunk0"):
        return got.status == 200 and got.complete and got.body == b""
    return is_own(got, request_id)


@pytest.mark.parametrize(
    "kind",
    rows(
        (101, "keep-alive after a Content-Length body (proxy_keepalive)", "length", "length"),
        (102, "keep-alive after a chunked body (proxy_keepalive)", "chunked", "chunked"),
        (103, "keep-alive after 100 chunks, last CRLF late", "complex", "complex"),
        (104, "keep-alive after a lone last chunk (proxy_keepalive)", "chunk0", "chunk0"),
        (105, "keep-alive after Content-Length: 0 (proxy_keepalive)", "empty", "empty"),
        (106, "keep-alive after a 304 without length", "304nolen", "304nolen"),
        (107, "keep-alive after a 304 announcing 100 bytes", "304len", "304len"),
    ),
)
def test_upstream_connection_is_reused_after_each_framing(
    gw: Gateway, upstream: ScriptedUpstream, note: Note, kind: str
) -> None:
    """Requests one after another on one keep-alive client connection: each is answered in
    full and at once, and the gateway keeps using the upstream connections it has."""
    ids = [new_id(f"ka-{kind}") for _ in range(KEEPALIVE_REQUESTS)]
    accepted_before = upstream.accepted

    async def one_by_one() -> list[Got]:
        target = f"/data?case=nginx_tests&kind={kind}"
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        answers = []
        try:
            for rid in ids:
                writer.write(request_bytes(target, rid, close=False))
                await writer.drain()
                async with asyncio.timeout(5):
                    answers.append(await read_one(reader))
        finally:
            writer.transport.abort()
        return answers

    answers = run(one_by_one())
    wrong = [
        got.summary()
        for got, rid in zip(answers, ids, strict=True)
        if not _answered(got, rid, kind)
    ]
    connections = {seen.connection for rid in ids for seen in upstream.requests(rid)}
    opened = {c for c in connections if c > accepted_before}
    slowest = max(got.elapsed_s for got in answers)
    note.got = (
        f"{KEEPALIVE_REQUESTS - len(wrong)}/{KEEPALIVE_REQUESTS} answered (slowest "
        f"{slowest:.2f} s) on {len(connections)} upstream connection(s), {len(opened)} new"
    )
    assert not wrong, wrong
    assert slowest < 1.0, "an answer waited: for bytes its framing does not have?"
    assert len(opened) <= NEW_AT_MOST, "upstream connections were not reused"


STOP_DELAY_MS = 1000


@pytest.mark.hostile_case(108, "keep-alive request in flight at stop (keepalive_shutdown)")
def test_keepalive_answer_during_stop_says_close(
    gateway_to: GatewayFactory, upstream: ScriptedUpstream, note: Note
) -> None:
    """The signal the gateway's image is stopped with arrives while a keep-alive client waits
    for its answer: the answer comes, and says `Connection: close`, so the client does not send
    its next request to a gateway that is going away."""
    gw = gateway_to(upstream.ports)
    request_id = new_id("ka-stop")

    async def ask_then_stop() -> Got:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        try:
            target = f"/data?case=slow&delay_ms={STOP_DELAY_MS}"
            writer.write(request_bytes(target, request_id, close=False))
            await writer.drain()
            await within_async(lambda: upstream.attempts(request_id), 5.0)
            gw.process.popen.send_signal(gw.stop_signal)
            async with asyncio.timeout(STOP_DELAY_MS / 1000 + 5):
                return await read_one(reader)
        finally:
            writer.transport.abort()

    got = run(ask_then_stop())
    connection = got.value("connection")
    note.got = f"{describe(got, request_id)}, Connection: {connection!r}"
    assert is_own(got, request_id), got.summary()
    assert connection is not None
    assert connection.lower() == b"close"


@pytest.mark.parametrize(
    ("kind", "readable"),
    rows(
        (109, "response Content-Length twice, one value (proxy_duplicate_headers)", "cl-twice",
         "cl_twice", True),
        (110, "response Transfer-Encoding: chunked twice (proxy_duplicate_headers)", "te-twice",
         "te_twice", False),
    ),
)  # fmt: skip
def test_repeated_framing_field_is_refused_or_read_once(
    gw: Gateway, upstream: ScriptedUpstream, note: Note, kind: str, readable: bool
) -> None:
    """The same Content-Length twice has one reading (RFC 9110 8.6 lets a recipient take it as
    one, nginx 1.23 refuses it); chunked twice has none (RFC 9112 6.1: chunked is applied once),
    so only a refusal is right."""
    judge_response_framing(gw, upstream, note, kind, readable=readable)


@pytest.mark.hostile_case(111, "repeated single-valued response fields (proxy_duplicate_headers)")
def test_repeated_single_valued_field_reaches_the_client_once(
    gw: Gateway, upstream: ScriptedUpstream, note: Note
) -> None:
    """Content-Type, Location, ETag, Last-Modified and Expires each sent twice, with two values:
    the client gets one value of each, the first, as nginx (since 1.23) passes them; two values
    of a field that has one let a cache and a browser read one response two ways."""
    request_id = new_id("single")
    got = run(fetch(gw.port, "/data?case=repeated&fields=single", request_id))
    seen = {name.decode(): got.values(name.decode()) for name, _, _ in SINGLE_FIELDS}
    note.got = f"{describe(got, request_id)}, " + ", ".join(
        f"{name} x{len(values)}" for name, values in seen.items()
    )
    assert is_own(got, request_id), got.summary()
    wrong = {
        name.decode(): got.values(name.decode())
        for name, first, _ in SINGLE_FIELDS
        if got.values(name.decode()) != [first]
    }
    assert not wrong, f"not the one first value: {wrong}"


def _joined(values: list[bytes]) -> list[bytes]:
    """A field's values as a list, whether its lines were kept apart or joined with commas."""
    return [item.strip() for value in values for item in value.split(b",")]


@pytest.mark.hostile_case(112, "repeated list-valued response fields (proxy_duplicate_headers)")
def test_repeated_list_fields_reach_the_client_whole(
    gw: Gateway, upstream: ScriptedUpstream, note: Note
) -> None:
    """Cache-Control, Link, an unknown field and Set-Cookie each sent on two lines: every value
    reaches the client, in order; Set-Cookie's lines stay apart (RFC 9110 5.3)."""
    request_id = new_id("list")
    got = run(fetch(gw.port, "/data?case=repeated&fields=list", request_id))
    note.got = f"{describe(got, request_id)}, " + ", ".join(
        f"{name.decode()} x{len(got.values(name.decode()))}" for name, _, _ in LIST_FIELDS
    )
    assert is_own(got, request_id), got.summary()
    for name, first, second in LIST_FIELDS:
        values = got.values(name.decode())
        if name == b"Set-Cookie":
            assert values == [first, second], f"Set-Cookie: {values}"
        else:
            assert _joined(values) == _joined([first, second]), f"{name.decode()}: {values}"


UNFINISHED_SIZE = 4 * 1024 * 1024
UNFINISHED_CUT = 1024 * 1024
"""Past RESPONSE_BUFFER_BYTES: every gateway has begun to send the body when it stops."""


@pytest.mark.parametrize(
    "framing",
    rows(
        (113, "pipelined request behind an unfinished body (CL) (proxy_unfinished)", "length",
         "length"),
        (114, "pipelined request behind an unfinished body (chunked) (proxy_unfinished)",
         "chunked", "chunked"),
    ),
)  # fmt: skip
def test_unfinished_body_stays_unfinished_with_a_request_behind_it(
    gw: Gateway, upstream: ScriptedUpstream, note: Note, framing: str
) -> None:
    """A keep-alive client pipelines a second request behind one whose body the upstream
    stops sending midway: the first answer ends short of its framing (the connection closes),
    and nothing of the second answer is read as the rest of the first."""
    first_id, after_id = new_id("unfinished"), new_id("after")
    target = (
        f"/data?case=big&size={UNFINISHED_SIZE}&framing={framing}&cut={UNFINISHED_CUT}"
        "&pause_ms=100&on=all"
    )
    request = request_bytes(target, first_id, close=False)
    request += request_bytes("/data?case=echo", after_id)
    answers = run(exchange(gw.port, request, responses=2, timeout_s=15))
    first = answers[0]
    note.got = " then ".join(got.summary() for got in answers)
    assert first.status == 200, first.summary()
    assert not first.complete, "an unfinished body was presented as complete"
    assert first.body_len <= UNFINISHED_CUT, "bytes that are not the upstream's body were added"
    assert first.sha256 != pattern_digest(UNFINISHED_SIZE)
    assert len(answers) == 1, "an answer followed an unfinished one on its connection"
    assert not run(clean_after(gw.port))


UPSTREAM_T_REQUESTS = 30
UPSTREAM_T_MAX_FAILS = 3


def _shares(upstream: ScriptedUpstream, ids: list[str]) -> tuple[int, int]:
    """How many of the requests each listener answered."""
    answered = [seen.listener for rid in ids for seen in upstream.requests(rid) if seen.answered]
    return answered.count(0), answered.count(1)


def _one_by_one(port: int, run_id: str, failing: bool) -> tuple[list[str], list[Got]]:
    ids = [new_id(run_id) for _ in range(UPSTREAM_T_REQUESTS)]
    target = f"/data?case=upstream_t&run={run_id}&failing={int(failing)}"

    async def each() -> list[Got]:
        return [await fetch(port, target, rid) for rid in ids]

    return ids, run(each())


@pytest.mark.hostile_case(115, "30 requests over two servers, 15 each (upstream.t)")
def test_round_robin_shares_are_exact(gw: Gateway, upstream: ScriptedUpstream, note: Note) -> None:
    """upstream.t's 'balanced': one request after another, each on a connection of its own,
    alternate between the two servers exactly."""
    ids, answers = _one_by_one(gw.port, new_id("balanced"), failing=False)
    shares = _shares(upstream, ids)
    note.got = f"{sum(is_own(g, i) for g, i in zip(answers, ids, strict=True))} own, {shares}"
    assert all(is_own(g, i) for g, i in zip(answers, ids, strict=True))
    half = UPSTREAM_T_REQUESTS // 2
    assert shares == (half, half)


@pytest.mark.hostile_case(
    116, "a server failing every third request out after MAX_FAILS (upstream.t)"
)
def test_failing_server_is_out_after_max_fails(
    gateway_to: GatewayFactory, upstream: ScriptedUpstream, note: Note
) -> None:
    """upstream.t's 'failures': the first server closes every third connection unanswered.
    With MAX_FAILS=3 in a FAIL_TIMEOUT longer than the run, its third failure takes it out: it
    answers 2 x 3 = 6 requests (two between failures), the other server the other 24; the
    failed attempts are retried there, so every client gets its answer. Failures counted in a
    row instead never reach 3, and the failing server keeps its share."""
    gw = gateway_to(upstream.ports, {"MAX_FAILS": UPSTREAM_T_MAX_FAILS, "FAIL_TIMEOUT": 60})
    ids, answers = _one_by_one(gw.port, new_id("failures"), failing=True)
    shares = _shares(upstream, ids)
    own = sum(is_own(g, i) for g, i in zip(answers, ids, strict=True))
    note.got = f"{own}/{UPSTREAM_T_REQUESTS} own, shares {shares}"
    assert own == UPSTREAM_T_REQUESTS, [g.summary() for g in answers if g.status != 200]
    good_between = UPSTREAM_T_EVERY - 1
    first = good_between * UPSTREAM_T_MAX_FAILS
    assert shares == (first, UPSTREAM_T_REQUESTS - first)
