"""How an upstream frames its body: by closing, by chunks with trailers, or not at all."""

import pytest

from tests.hostile.cases import Note, clean_after, describe, is_own, new_id, rows, run
from tests.hostile.client import fetch
from tests.hostile.gateways import Gateway

pytestmark = pytest.mark.hostile


@pytest.mark.parametrize(
    "version",
    rows(
        (6, "HTTP/1.0 body ended by close", "1.0", "1.0"),
        (7, "HTTP/1.1 body ended by close", "1.1", "1.1"),
    ),
)
def test_body_delimited_by_close(gw: Gateway, note: Note, version: str) -> None:
    """A response with neither Content-Length nor chunking ends when the connection does
    (RFC 9112 6.3, rule 8): a complete, valid answer, not a failure of the upstream."""
    answers = []
    for _ in range(3):
        request_id = new_id("close")
        got = run(fetch(gw.port, f"/data?case=close_delimited&version={version}", request_id))
        answers.append(describe(got, request_id))
    note.got = ", ".join(sorted(set(answers)))
    assert answers == ["own 200"] * 3
    assert not run(clean_after(gw.port))


@pytest.mark.hostile_case(8, "chunked body with trailers")
def test_trailers_do_not_become_headers(gw: Gateway, note: Note) -> None:
    """Trailer fields (a Set-Cookie, a second Content-Type) arrive after the body: they must
    not turn into response headers, which would let the end of a body rewrite its head."""
    request_id = new_id("trailers")
    got = run(fetch(gw.port, "/data?case=trailers", request_id))
    cookies = got.values("set-cookie") + [v for n, v in got.trailers if n == b"set-cookie"]
    note.got = f"{describe(got, request_id)}, content-type x{len(got.values('content-type'))}"
    note.got += ", set-cookie" if cookies else ""
    assert is_own(got, request_id), got.summary()
    assert got.values("content-type") == [b"application/json"]
    assert not cookies, f"the trailer's Set-Cookie reached the client: {cookies}"


@pytest.mark.parametrize(
    "code",
    rows(
        (9, "204 keeps no Content-Length", "204", 204),
        (10, "304 keeps no Content-Length", "304", 304),
    ),
)
def test_no_content_length_added_to_bodiless_status(gw: Gateway, note: Note, code: int) -> None:
    """RFC 9110 8.6: no Content-Length in a 204, and in a 304 only the 200's own length; the
    upstream sent none, so the gateway must not invent `content-length: 0`."""
    got = run(fetch(gw.port, f"/data?case=no_body_status&code={code}", new_id("nobody")))
    lengths = got.values("content-length")
    note.got = got.summary() + (f", content-length: {lengths[0].decode()}" if lengths else "")
    assert got.status == code
    assert got.value("x-marker") == b"kept"
    assert not lengths, f"a {code} with content-length {lengths}"
    assert not run(clean_after(gw.port))
