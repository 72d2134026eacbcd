"""Requests refused before routing: HTTP version and Host headers (RFC 9112 3.2, RFC 9110 15.6.6).

The pure functions are checked on their own; the gateway's answers over real sockets, because
httpx always sends exactly one Host and an HTTP/1.1 request line.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from gateway_service.app import create_app
from gateway_service.client_request import host_and_version_problem, request_problem
from gateway_service.logs import EventLog
from gateway_service.settings import load_settings
from gateway_service.tests.conftest import STORAGES, LogSink
from gateway_service.tests.fakes import FakeStorage, serving


class TestHostAndVersionProblem:
    @pytest.mark.parametrize(("host_count", "http_version"), [(1, "1.1"), (1, "1.0"), (0, "1.0")])
    def test_served(self, host_count: int, http_version: str) -> None:
        assert host_and_version_problem(host_count, http_version) is None

    @pytest.mark.parametrize(
        ("host_count", "http_version"), [(0, "1.1"), (2, "1.1"), (3, "1.1"), (2, "1.0")]
    )
    def test_missing_or_repeated_host_is_400(self, host_count: int, http_version: str) -> None:
        answer = host_and_version_problem(host_count, http_version)
        assert answer is not None
        assert answer[0] == 400
        assert "Host" in answer[1]

    @pytest.mark.parametrize("http_version", ["2.0", "2", "3.0", "1.2", "0.9", ""])
    @pytest.mark.parametrize("host_count", [0, 1, 2])
    def test_any_other_version_is_505_before_host_is_looked_at(
        self, http_version: str, host_count: int
    ) -> None:
        answer = host_and_version_problem(host_count, http_version)
        assert answer is not None
        assert answer[0] == 505
        assert http_version in answer[1]


class TestRequestProblem:
    def test_counts_host_headers_by_their_lower_case_asgi_name(self) -> None:
        scope = {
            "http_version": "1.1",
            "headers": [(b"host", b"a"), (b"x-host", b"b"), (b"accept", b"*/*"), (b"host", b"a")],
        }
        assert request_problem(scope) == host_and_version_problem(2, "1.1")

    def test_one_host_is_served(self) -> None:
        scope = {"http_version": "1.1", "headers": [(b"accept", b"*/*"), (b"host", b"a")]}
        assert request_problem(scope) is None

    def test_version_comes_from_the_scope(self) -> None:
        scope = {"http_version": "2.0", "headers": [(b"host", b"a")]}
        answer = request_problem(scope)
        assert answer is not None
        assert answer[0] == 505


@dataclass
class Answer:
    status_line: bytes
    headers: dict[bytes, bytes]
    body: bytes
    rest: bytes  # whatever the server sent after this response, up to its closing


@asynccontextmanager
async def gateway_over_sockets() -> AsyncIterator[int]:
    """The gateway on its own HTTP server (as deployed), on a free port; yields the port."""
    log = EventLog(LogSink(), fmt="json")  # type: ignore[arg-type]
    gateway = create_app(
        load_settings(storage_services=STORAGES, health_interval=0, discovery_interval=0),
        upstream_factory=lambda backend: FakeStorage(backend.storage),
        log=log,
    )
    async with gateway.running(), serving(gateway, log) as port:
        yield port


async def exchange(port: int, raw: bytes) -> Answer:
    """Send `raw`, read until the server closes the connection; the first response, parsed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        # A server that keeps the connection open fails the test here rather than hanging it.
        data = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
    head, _, after = data.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = dict(line.lower().split(b": ", 1) for line in lines)
    length = int(headers[b"content-length"])
    return Answer(status_line, headers, after[:length], after[length:])


@pytest.mark.anyio
class TestOverRealSockets:
    @pytest.fixture
    async def port(self) -> AsyncIterator[int]:
        async with gateway_over_sockets() as port:
            yield port

    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param(b"GET /status HTTP/1.1\r\nHost: a\r\nHost: b\r\n", id="two-hosts-1.1"),
            pytest.param(b"GET /status HTTP/1.1\r\nHost: a\r\nHost: a\r\n", id="same-host-twice"),
            pytest.param(b"GET /status HTTP/1.0\r\nHost: a\r\nHost: b\r\n", id="two-hosts-1.0"),
            pytest.param(b"GET /status HTTP/1.1\r\n", id="no-host-1.1"),
        ],
    )
    async def test_host_problems_get_400_json_and_the_connection_closes(
        self, port: int, raw: bytes
    ) -> None:
        # A second, well-formed request pipelined behind: it must not be answered.
        follow_up = b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n"
        answer = await exchange(port, raw + b"X-Request-ID: bad-host-1\r\n\r\n" + follow_up)
        assert answer.status_line == b"HTTP/1.1 400 Bad Request"
        assert answer.headers[b"content-type"] == b"application/json"
        assert answer.headers[b"connection"] == b"close"
        assert answer.headers[b"x-request-id"] == b"bad-host-1"
        assert "Host" in json.loads(answer.body)["detail"]
        assert answer.rest == b""

    async def test_http_1_0_without_host_is_served(self, port: int) -> None:
        answer = await exchange(port, b"GET /health HTTP/1.0\r\n\r\n")
        assert answer.status_line == b"HTTP/1.1 200 OK"
        assert json.loads(answer.body)["status"] == "ok"

    @pytest.mark.parametrize("version", [b"2.0", b"0.9"])
    async def test_a_version_other_than_1_0_or_1_1_gets_505(
        self, port: int, version: bytes
    ) -> None:
        # uvicorn's httptools parser passes these two through; 1.2 or 3.0 it refuses itself (400).
        answer = await exchange(port, b"GET /status HTTP/" + version + b"\r\nHost: a\r\n\r\n")
        assert answer.status_line == b"HTTP/1.1 505 HTTP Version Not Supported"
        assert answer.headers[b"content-type"] == b"application/json"
        assert answer.headers[b"connection"] == b"close"
        assert version.decode() in json.loads(answer.body)["detail"]

    async def test_data_with_a_trailing_slash_is_404_without_a_redirect(self, port: int) -> None:
        answer = await exchange(
            port, b"GET /data/ HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n"
        )
        assert answer.status_line == b"HTTP/1.1 404 Not Found"
        assert json.loads(answer.body) == {"detail": "Not Found"}
        assert b"location" not in answer.headers

    async def test_a_well_formed_request_is_still_served(self, port: int) -> None:
        answer = await exchange(
            port, b"GET /status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        assert answer.status_line == b"HTTP/1.1 200 OK"
        assert json.loads(answer.body)["total"] == 3
