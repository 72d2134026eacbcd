"""The gateway's HTTP/1.1 client against real sockets on 127.0.0.1 (scripted servers and the
real storage app), since its job is exactly what a mock transport would hide."""

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import uvicorn

from gateway_service.tests.fakes import eventually, uvicorn_serving
from gateway_service.upstream import BodyStream, ConnectionPool, UpstreamError, build_request
from storage_service.app import create_app as create_storage
from storage_service.settings import StorageSettings

pytestmark = pytest.mark.anyio

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"
GET = build_request(b"/data", b"test", [(b"x-request-id", b"r1")])

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class ScriptedServer:
    """A TCP server on 127.0.0.1 that runs `handler` per connection and counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        request = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(request)
        return request


async def start(handler_factory: Callable[[ScriptedServer], Handler]) -> ScriptedServer:
    server = ScriptedServer(lambda r, w: asyncio.sleep(0))
    server.handler = handler_factory(server)
    server.server = await asyncio.start_server(server._serve, "127.0.0.1", 0)
    server.port = server.server.sockets[0].getsockname()[1]
    return server


def keep_alive(responses: int = 100, body: bytes = OK) -> Callable[[ScriptedServer], Handler]:
    def factory(server: ScriptedServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for _ in range(responses):
                try:
                    await server.read_request(reader)
                except asyncio.IncompleteReadError:
                    return
                writer.write(body)
                await writer.drain()

        return handler

    return factory


@pytest.fixture
async def servers() -> AsyncIterator[list[ScriptedServer]]:
    started: list[ScriptedServer] = []
    yield started
    for server in started:
        assert server.server is not None
        server.server.close()


async def pool_for(
    servers: list[ScriptedServer], factory: Callable[[ScriptedServer], Handler]
) -> tuple[ConnectionPool, ScriptedServer]:
    server = await start(factory)
    servers.append(server)
    return ConnectionPool("127.0.0.1", server.port), server


class TestExchange:
    async def test_sequential_requests_reuse_one_connection(
        self, servers: list[ScriptedServer]
    ) -> None:
        pool, server = await pool_for(servers, keep_alive())
        for _ in range(5):
            response = await pool.request(GET, 1.0, 1.0)
            assert (response.status, response.body) == (200, b"ok")
        assert server.connections == 1
        assert server.requests[0].startswith(b"GET /data HTTP/1.1\r\nhost: test\r\n")
        pool.close()

    async def test_a_chunked_body_is_reassembled(self, servers: list[ScriptedServer]) -> None:
        chunked = (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        pool, _ = await pool_for(servers, keep_alive(body=chunked))
        assert (await pool.request(GET, 1.0, 1.0)).body == b"hello world"
        pool.close()

    async def test_connection_close_responses_are_not_reused(
        self, servers: list[ScriptedServer]
    ) -> None:
        closing = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
        pool, server = await pool_for(servers, keep_alive(responses=1, body=closing))
        for _ in range(3):
            assert (await pool.request(GET, 1.0, 1.0)).status == 200
        assert server.connections == 3
        pool.close()

    async def test_a_keep_alive_connection_closed_by_the_server_is_replaced_silently(
        self, servers: list[ScriptedServer]
    ) -> None:
        pool, server = await pool_for(servers, keep_alive(responses=1))
        assert (await pool.request(GET, 1.0, 1.0)).status == 200
        await eventually(lambda: pool._idle[-1].closed)  # the client side has seen the close
        assert (await pool.request(GET, 1.0, 1.0)).status == 200
        assert server.connections == 2
        pool.close()


class TestFailures:
    async def test_refused_connection(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with pytest.raises(UpstreamError) as error:
            await ConnectionPool("127.0.0.1", port).request(GET, 1.0, 1.0)
        assert error.value.kind == "connect_refused"

    async def test_unresolvable_host(self) -> None:
        with pytest.raises(UpstreamError) as error:
            await ConnectionPool("no-such-host.invalid", 80).request(GET, 1.0, 1.0)
        assert error.value.kind in {"connect_error", "connect_timeout"}

    async def test_no_response_within_read_timeout(self, servers: list[ScriptedServer]) -> None:
        def silent(server: ScriptedServer) -> Handler:
            async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await server.read_request(reader)
                await asyncio.sleep(5)

            return handler

        pool, _ = await pool_for(servers, silent)
        with pytest.raises(UpstreamError) as error:
            await pool.request(GET, 1.0, 0.2)
        assert error.value.kind == "read_timeout"
        assert pool._idle == []

    async def test_closed_without_response(self, servers: list[ScriptedServer]) -> None:
        def closer(server: ScriptedServer) -> Handler:
            async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await server.read_request(reader)

            return handler

        pool, _ = await pool_for(servers, closer)
        with pytest.raises(UpstreamError) as error:
            await pool.request(GET, 1.0, 1.0)
        assert error.value.kind == "reset"

    async def test_garbage_response(self, servers: list[ScriptedServer]) -> None:
        pool, _ = await pool_for(servers, keep_alive(body=b"NOT HTTP AT ALL\r\n\r\n"))
        with pytest.raises(UpstreamError) as error:
            await pool.request(GET, 1.0, 1.0)
        assert error.value.kind == "protocol_error"


async def test_against_the_real_storage_service() -> None:
    settings = StorageSettings(instance_name="real-1")
    config = uvicorn.Config(create_storage(settings), log_level="warning", lifespan="off")
    async with uvicorn_serving(uvicorn.Server(config)) as port:
        pool = ConnectionPool("127.0.0.1", port)
        response = await pool.request(GET, 1.0, 1.0)
        assert response.status == 200
        assert b'"instance":"real-1"' in response.body
        pool.close()


async def test_an_idle_connection_that_receives_an_unasked_response_is_not_reused(
    servers: list[ScriptedServer],
) -> None:
    def chatty(server: ScriptedServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                try:
                    await server.read_request(reader)
                except asyncio.IncompleteReadError:
                    return
                writer.write(OK + OK)  # one answer too many

        return handler

    pool, server = await pool_for(servers, chatty)
    assert (await pool.request(GET, 1.0, 1.0)).status == 200
    assert (await pool.request(GET, 1.0, 1.0)).status == 200
    assert server.connections == 2
    pool.close()


def respond_with(*parts: bytes, close: bool = False) -> Callable[[ScriptedServer], Handler]:
    """Answer every request with `parts`, written one by one; close after when `close`."""

    def factory(server: ScriptedServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                try:
                    await server.read_request(reader)
                    for part in parts:
                        writer.write(part)
                        await writer.drain()
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the client closed the connection, as it may at any point
                if close:
                    return

        return handler

    return factory


class TestInterimResponses:
    @pytest.mark.parametrize(
        "interim",
        [
            b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n",
        ],
    )
    async def test_1xx_is_skipped_and_the_final_response_is_this_requests(
        self, servers: list[ScriptedServer], interim: bytes
    ) -> None:
        # Interim and final response in separate writes, so the final one arrives later.
        pool, server = await pool_for(servers, respond_with(interim, OK))
        for _ in range(5):
            response = await pool.request(GET, 1.0, 1.0)
            assert (response.status, response.body) == (200, b"ok")
            assert b"link" not in dict(response.headers)
        assert server.connections == 1  # reused, and never out of step
        pool.close()

    @pytest.mark.parametrize(
        "codings",
        [
            b"transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n",
            b"transfer-encoding: chunked, chunked\r\n",
            b"transfer-encoding: chunked\r\ntransfer-encoding: gzip, chunked\r\n",
        ],
        ids=["two-lines", "one-line", "chunked-then-gzip-chunked"],
    )
    async def test_chunked_applied_twice_is_a_protocol_error(
        self, servers: list[ScriptedServer], codings: bytes
    ) -> None:
        # RFC 9112 6.1: chunked is applied once; llhttp would frame the body by one chunking.
        twice = b"HTTP/1.1 200 OK\r\n" + codings + b"\r\n5\r\nhello\r\n0\r\n\r\n"
        pool, _ = await pool_for(servers, respond_with(twice, OK))
        with pytest.raises(UpstreamError) as error:
            await pool.request(GET, 1.0, 1.0)
        assert error.value.kind == "protocol_error"
        assert pool._idle == []
        pool.close()

    async def test_an_unasked_101_is_a_protocol_error(self, servers: list[ScriptedServer]) -> None:
        switching = (
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: upgrade\r\n\r\n"
        )
        pool, _ = await pool_for(servers, respond_with(switching, OK))
        with pytest.raises(UpstreamError) as error:
            await pool.request(GET, 1.0, 1.0)
        assert error.value.kind == "protocol_error"
        assert pool._idle == []
        pool.close()


class TestFraming:
    @pytest.mark.parametrize(
        "head",
        [b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n"],
    )
    async def test_a_body_delimited_by_the_close_is_complete_at_the_close(
        self, servers: list[ScriptedServer], head: bytes
    ) -> None:
        pool, server = await pool_for(servers, respond_with(head, b"hello ", b"world", close=True))
        for _ in range(2):
            response = await pool.request(GET, 1.0, 1.0)
            assert (response.status, response.body) == (200, b"hello world")
        assert server.connections == 2  # never reused
        pool.close()

    async def test_chunked_trailers_are_dropped(self, servers: list[ScriptedServer]) -> None:
        chunked = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
            b"2\r\nok\r\n0\r\nset-cookie: stolen=1\r\ncontent-type: text/html\r\n\r\n"
        )
        pool, _ = await pool_for(servers, respond_with(chunked))
        response = await pool.request(GET, 1.0, 1.0)
        assert response.body == b"ok"
        names = [name.lower() for name, _ in response.headers]
        assert b"set-cookie" not in names
        assert names.count(b"content-type") == 1
        pool.close()

    @pytest.mark.parametrize(
        "bad",
        [
            b"HTTP/1.1 999 Nine\r\ncontent-length: 2\r\n\r\nok",
            b"HTTP/2.0 200 OK\r\ncontent-length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nx: a\x00b\r\ncontent-length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
        ],
    )
    async def test_malformed_responses_fail_and_are_not_pooled(
        self, servers: list[ScriptedServer], bad: bytes
    ) -> None:
        pool, _ = await pool_for(servers, respond_with(bad))
        with pytest.raises(UpstreamError) as error:
            await pool.request(GET, 1.0, 1.0)
        assert error.value.kind == "protocol_error"
        assert pool._idle == []
        pool.close()


class TestHeadLimits:
    @pytest.mark.parametrize(
        "head",
        [
            b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * (50 * 1024 * 1024) + b"\r\n\r\n",
            b"HTTP/1.1 200 " + b"O" * 100_000 + b"\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n" + b"x: y\r\n" * 1000 + b"content-length: 0\r\n\r\n",
            b"HTTP/1.1 103 Early Hints\r\n\r\n" * 10_000,
        ],
        ids=["50 MB header", "100 KB status line", "1000 headers", "endless 1xx"],
    )
    async def test_an_oversized_head_fails_the_attempt(
        self, servers: list[ScriptedServer], head: bytes
    ) -> None:
        pool, _ = await pool_for(servers, respond_with(head))
        with pytest.raises(UpstreamError) as error:
            await pool.request(GET, 1.0, 5.0)
        assert error.value.kind == "head_too_large"
        pool.close()


async def read_to_end(stream: BodyStream) -> None:
    while await stream.read():
        pass


def big_body(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


class TestStreaming:
    async def test_a_body_over_the_buffer_limit_streams_and_arrives_whole(
        self, servers: list[ScriptedServer]
    ) -> None:
        body = big_body(1_000_000)
        head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body)
        pool, server = await pool_for(servers, respond_with(head, body))
        pool.buffer_limit = 64 * 1024
        for _ in range(2):
            response = await pool.request(GET, 1.0, 1.0)
            assert response.stream is not None
            assert len(response.body) <= 2 * 64 * 1024 + 256 * 1024
            received = [response.body]
            while chunk := await response.stream.read():
                assert len(chunk) <= 64 * 1024 + 256 * 1024  # at most the limit plus one read
                received.append(chunk)
            assert b"".join(received) == body
        assert server.connections == 1  # a streamed body that ended cleanly keeps its connection
        pool.close()

    async def test_a_body_cut_mid_stream_raises_instead_of_ending(
        self, servers: list[ScriptedServer]
    ) -> None:
        head = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n"
        pool, _ = await pool_for(servers, respond_with(head, big_body(300_000), close=True))
        response = await pool.request(GET, 1.0, 1.0)
        assert response.stream is not None
        with pytest.raises(UpstreamError) as error:
            await read_to_end(response.stream)
        assert error.value.kind == "reset"
        pool.close()

    async def test_a_stalled_stream_times_out(self, servers: list[ScriptedServer]) -> None:
        def stalls(server: ScriptedServer) -> Handler:
            async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await server.read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n")
                writer.write(big_body(200_000))
                await asyncio.sleep(5)

            return handler

        pool, _ = await pool_for(servers, stalls)
        response = await pool.request(GET, 1.0, 0.3)
        assert response.stream is not None
        with pytest.raises(UpstreamError) as error:
            await read_to_end(response.stream)
        assert error.value.kind == "read_timeout"
        pool.close()

    async def test_reading_pauses_while_the_consumer_is_behind(
        self, servers: list[ScriptedServer]
    ) -> None:
        body = big_body(20_000_000)
        head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body)
        pool, _ = await pool_for(servers, respond_with(head, body))
        response = await pool.request(GET, 1.0, 5.0)
        assert response.stream is not None
        exchange = response.stream._exchange
        await eventually(lambda: exchange.paused)
        await asyncio.sleep(0.2)  # the server keeps writing; nothing more must be taken in
        assert exchange.buffered <= pool.buffer_limit + 256 * 1024
        response.stream.close()
        pool.close()

    async def test_an_idle_pooled_connection_holds_no_body(
        self, servers: list[ScriptedServer]
    ) -> None:
        body = big_body(10_000)
        head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body)
        pool, _ = await pool_for(servers, respond_with(head, body))
        assert (await pool.request(GET, 1.0, 1.0)).body == body
        (idle,) = pool._idle
        assert idle.exchange is None
        pool.close()
