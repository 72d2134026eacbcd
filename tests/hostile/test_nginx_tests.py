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
from tests.hostile.client import Got, fetch, read_one, request_bytes
from tests.hostile.gateways import Gateway, GatewayFactory
from tests.hostile.upstream import NOT_THIS, ScriptedUpstream

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
