"""The suite's own parts, without a gateway: the client must see what the upstream sends.

A client that took a cut body for a whole one would let every gateway pass the body cases;
these run the client straight against the scripted upstream, whose answers are known.
"""

import asyncio

import pytest

from tests.hostile.board import CaseBoard
from tests.hostile.cases import is_own, new_id, run, within, within_async
from tests.hostile.client import fetch, request_bytes
from tests.hostile.gateways import case_key
from tests.hostile.upstream import POISON, ScriptedUpstream, good_body, pattern_digest

pytestmark = pytest.mark.hostile

MB = 1024 * 1024


def test_a_body_cut_short_of_its_content_length_is_incomplete(upstream: ScriptedUpstream) -> None:
    target = f"/data?case=big&size={MB}&cut=1000&on=all"
    got = run(fetch(upstream.ports[0], target, new_id("unit")))
    assert got.status == 200
    assert not got.complete
    assert got.body_len == 1000
    assert got.declared_length == MB


def test_a_chunked_body_without_its_last_chunk_is_incomplete(upstream: ScriptedUpstream) -> None:
    target = f"/data?case=big&size={MB}&framing=chunked&cut=1000&on=all"
    got = run(fetch(upstream.ports[0], target, new_id("unit")))
    assert got.status == 200
    assert got.framing == "chunked"
    assert not got.complete


def test_whole_bodies_hash_to_the_pattern(upstream: ScriptedUpstream) -> None:
    for framing in ("length", "chunked"):
        target = f"/data?case=big&size={3 * MB + 5}&framing={framing}"
        got = run(fetch(upstream.ports[0], target, new_id("unit")))
        assert got.complete
        assert got.sha256 == pattern_digest(3 * MB + 5)


def test_a_close_delimited_body_is_complete_at_eof(upstream: ScriptedUpstream) -> None:
    request_id = new_id("unit")
    got = run(fetch(upstream.ports[0], "/data?case=close_delimited", request_id))
    assert got.framing == "close"
    assert is_own(got, request_id)


def test_interim_responses_are_skipped_and_counted(upstream: ScriptedUpstream) -> None:
    request_id = new_id("unit")
    target = "/data?case=interim&codes=103,100&gap_ms=5"
    got = run(fetch(upstream.ports[0], target, request_id))
    assert got.interim == [103, 100]
    assert is_own(got, request_id)


def test_trailers_are_kept_apart_from_headers(upstream: ScriptedUpstream) -> None:
    got = run(fetch(upstream.ports[0], "/data?case=trailers", new_id("unit")))
    assert got.complete
    assert got.values("set-cookie") == []
    assert (b"set-cookie", b"hijacked=1; Path=/") in got.trailers


def test_an_oversized_head_is_reported_not_read(upstream: ScriptedUpstream) -> None:
    got = run(fetch(upstream.ports[0], "/data?case=huge_header&mb=3", new_id("unit")))
    assert got.status is None
    assert got.error is not None
    assert got.error.startswith("head >")


def test_only_the_first_attempt_is_spoiled(upstream: ScriptedUpstream) -> None:
    request_id = new_id("unit")
    target = "/data?case=bad_head&kind=nul"
    first = run(fetch(upstream.ports[0], target, request_id))
    second = run(fetch(upstream.ports[1], target, request_id))
    assert first.body.startswith(POISON)
    assert second.body == good_body(request_id)
    assert upstream.attempts(request_id) == 2


def test_slow_answers_late_and_records_a_connection_closed_before(
    upstream: ScriptedUpstream,
) -> None:
    waited, left = new_id("unit"), new_id("unit")
    got = run(fetch(upstream.ports[0], "/data?case=slow&delay_ms=100", waited))
    assert is_own(got, waited)

    async def leave() -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", upstream.ports[0])
        writer.write(request_bytes("/data?case=slow&delay_ms=3000", left))
        await writer.drain()
        await within_async(lambda: upstream.attempts(left), 3.0)
        writer.close()

    run(leave())
    closed = within(lambda: upstream.requests(left)[0].gateway_closed_at, 3.0)
    assert closed is not None
    assert not upstream.requests(left)[0].answered
    (answered,) = upstream.requests(waited)
    assert answered.answered
    assert answered.gateway_closed_at is None


def test_drip_stops_when_its_reader_leaves(upstream: ScriptedUpstream) -> None:
    request_id = new_id("unit")

    async def read_a_little() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", upstream.ports[0])
        writer.write(request_bytes("/data?case=drip", request_id))
        await writer.drain()
        await reader.readexactly(128 * 1024)
        writer.close()

    run(read_a_little())
    closed = within(lambda: upstream.requests(request_id)[0].gateway_closed_at, 3.0)
    assert closed is not None
    assert not upstream.requests(request_id)[0].answered


def test_board_adds_what_the_client_got_and_the_declared_differences() -> None:
    board = CaseBoard()
    board.record(2, "second", "ours", "failed", "503")
    board.record(1, "first", "ours", "passed", "own 200")
    board.record(1, "first", "nginx", "passed", "103 then EOF", declared="no 1xx support")

    lines = board.render()

    header = "scenario ours nginx ours: client got nginx: client got"
    assert lines[0].split() == header.split()
    first = "1. first passed 1 passed 1 own 200 103 then EOF [d1]"
    second = "2. second FAILED 1 - 503 -"
    assert lines[2].split() == first.split()
    assert lines[3].split() == second.split()
    assert lines[-1] == "[d1] nginx: no 1xx support"


def test_a_case_is_named_by_its_title_in_lower_case() -> None:
    assert case_key("Connection: keep-alive, X-Other; TE") == "connection-keep-alive-x-other-te"
    assert case_key("HTTP/2.0 request line") == "http-2-0-request-line"
