"""Scenario 10: bad input at the edge is refused cleanly and leaves the gateway serving."""

import contextlib
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from tests.harness.gateways import STORAGE_NAMES
from tests.harness.stack import Stack
from tests.harness.wire import Wire

pytestmark = [pytest.mark.integration, pytest.mark.scenario(10, "bad input at the edge")]


def raw_exchange(stack: Stack, request: bytes) -> int | None:
    """Send raw bytes, return the response's status code (None: closed without a response)."""
    url = urlsplit(stack.base_url)
    assert url.hostname is not None
    assert url.port is not None
    with socket.create_connection((url.hostname, url.port), timeout=5.0) as conn:
        # The server may refuse before reading everything; its answer still counts.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(request)
        received = b""
        try:
            while b"\r\n" not in received:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                received += chunk
        except ConnectionResetError:
            pass
    status_line = received.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/"):
        return None
    return int(status_line[1])


def assert_still_serving(stack: Stack) -> None:
    response = stack.get("/data")
    assert response.status_code == 200, "the gateway stopped serving after bad input"


@pytest.mark.parametrize("path", ["/nope", "/data/extra", "/admin/fault", "/datax"])
def test_unknown_paths_are_404(stack: Stack, path: str) -> None:
    """Paths outside the contract answer 404 (the storage services' own /admin is not exposed)."""
    assert stack.get(path).status_code == 404
    assert_still_serving(stack)


def test_path_escaping_the_root_is_refused(stack: Stack) -> None:
    """An encoded `../` path is refused: 400 (nginx) or 404, never served."""
    assert stack.get("/%2e%2e/%2e%2e/etc/passwd").status_code in {400, 404}
    assert_still_serving(stack)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_unsupported_methods_on_data_are_405(stack: Stack, method: str) -> None:
    """Only GET and HEAD are served on /data."""
    response = stack.http.request(method, stack.url("/data"), content=b"{}")

    assert response.status_code == 405
    assert_still_serving(stack)


def test_head_on_data_is_served_without_a_body(stack: Stack) -> None:
    response = stack.http.head(stack.url("/data"))

    assert response.status_code == 200
    assert response.content == b""


REJECTED = {400, 413, 414, 431}

OVERSIZED = {
    "64 KiB header": b"GET /data HTTP/1.1\r\nHost: gw\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n",
    "64 KiB request line": b"GET /data?" + b"q" * 65536 + b" HTTP/1.1\r\nHost: gw\r\n\r\n",
    "1000 headers": b"GET /data HTTP/1.1\r\nHost: gw\r\n"
    + b"".join(b"X-H%d: v\r\n" % i for i in range(1000))
    + b"\r\n",
}

MALFORMED = {
    "space before the colon": b"GET /data HTTP/1.1\r\nHost: gw\r\nX-Bad : x\r\n\r\n",
    "control byte in a value": b"GET /data HTTP/1.1\r\nHost: gw\r\nX-A: a\x01b\r\n\r\n",
    "not HTTP at all": b"\x16\x03\x01 not http at all\r\n\r\n",
    "bad Content-Length": b"GET /data HTTP/1.1\r\nHost: gw\r\nContent-Length: -1\r\n\r\n",
}

DROPPABLE = {
    # RFC 9110 lets a server ignore a field it cannot parse; nginx does (ignore_invalid_headers).
    "header line without a colon": b"GET /data HTTP/1.1\r\nHost: gw\r\nNoColonHere\r\n\r\n",
}


@pytest.mark.parametrize("request_bytes", OVERSIZED.values(), ids=OVERSIZED.keys())
def test_oversized_requests_are_rejected_cleanly(stack: Stack, request_bytes: bytes) -> None:
    """A 4xx (400/413/414/431), not a crash, a hang or a forwarded monster; then the next works."""
    assert raw_exchange(stack, request_bytes) in REJECTED
    assert_still_serving(stack)


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_requests_are_rejected_cleanly(stack: Stack, request_bytes: bytes) -> None:
    """Unparseable requests get a 4xx, not a 5xx or a dropped connection; the next one works."""
    assert raw_exchange(stack, request_bytes) in REJECTED
    assert_still_serving(stack)


@pytest.mark.parametrize("request_bytes", DROPPABLE.values(), ids=DROPPABLE.keys())
def test_unparseable_header_is_rejected_or_dropped(
    stack: Stack, wire: Callable[[], Wire], deviation: Callable[[str], None], request_bytes: bytes
) -> None:
    """Either a 4xx, or the request is served with the bad line dropped: never forwarded."""
    deviation("header-line-without-colon")
    with wire() as seen:
        status = raw_exchange(stack, request_bytes)

    sent = b"".join(b"".join(seen.data_requests(n)) for n in STORAGE_NAMES)
    assert status in REJECTED or (status == 200 and b"NoColonHere" not in sent), status
    assert_still_serving(stack)
