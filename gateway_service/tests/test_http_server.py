"""The client side (gateway_service/http_server.py) over real sockets, in-process: its limits,
its deadlines, pipelining, keep-alive, and what a client that goes away does to a request."""

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from gateway_service import limits
from gateway_service.connections import ConnectionGuard
from gateway_service.http_server import (
    ClientDisconnected,
    HttpConnection,
    Receive,
    Scope,
    Send,
    ServerContext,
)
from gateway_service.logs import EventLog
from gateway_service.tests.conftest import LogSink
from gateway_service.tests.fakes import FakeClock, eventually

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    return "asyncio", {"use_uvloop": True}  # what the gateway runs on


@dataclass
class Held:
    """An ASGI app answering `GET /<name>` with `<name>` once the test opens that name's gate
    (names starting `now` answer at once). It records what it saw and how each request ended."""

    arrived: list[str] = field(default_factory=list)
    scopes: list[Scope] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    ended: dict[str, str] = field(default_factory=dict)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = str(scope["path"]).strip("/")
        self.arrived.append(name)
        self.scopes.append(scope)
        self.bodies.append((await receive())["body"])
        try:
            if not name.startswith("now"):
                await self.gate(name).wait()
            body = name.encode()
            headers = [(b"content-length", str(len(body)).encode()), *self.headers]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            self.ended[name] = "answered"
        except asyncio.CancelledError:
            self.ended[name] = "cancelled"
            raise


@dataclass
class Server:
    port: int
    ctx: ServerContext
    guard: ConnectionGuard
    clock: FakeClock
    logs: LogSink

    def events(self, name: str) -> list[dict[str, object]]:
        self.ctx.log.flush()
        lines = (json.loads(line) for line in self.logs.text.splitlines())
        return [line for line in lines if line["event"] == name]


@asynccontextmanager
async def serving(
    app: object, *, client_timeout: float = 10.0, max_connections: int = 100
) -> AsyncIterator[Server]:
    clock, logs = FakeClock(), LogSink()
    log = EventLog(logs, fmt="json")  # type: ignore[arg-type]
    guard = ConnectionGuard(
        client_timeout=client_timeout, max_connections=max_connections, log=log, clock=clock
    )
    ctx = ServerContext(app, guard, log, access_log=True)  # type: ignore[arg-type]
    server = await asyncio.get_running_loop().create_server(ctx.connection, "127.0.0.1", 0)
    try:
        yield Server(server.sockets[0].getsockname()[1], ctx, guard, clock, logs)
    finally:
        server.close()
        for connection in list(guard.open):
            connection.abort()
        await server.wait_closed()


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


def request(name: str, *extra: str, version: str = "1.1") -> bytes:
    lines = [f"GET /{name} HTTP/{version}", "host: gateway", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    """One response: status, headers (lower-cased names), body (by length or chunked)."""
    async with asyncio.timeout(5):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
        if b"content-length" in headers:
            return status, headers, await reader.readexactly(int(headers[b"content-length"]))
        if headers.get(b"transfer-encoding") == b"chunked":
            body = b""
            while size := int((await reader.readline()).strip(), 16):
                body += await reader.readexactly(size)
                await reader.readline()
            await reader.readline()
            return status, headers, body
        return status, headers, await reader.read()


async def closed(reader: asyncio.StreamReader) -> bool:
    """True when the server closed the connection (EOF or reset) within 5 s."""
    try:
        async with asyncio.timeout(5):
            return await reader.read() == b""
    except ConnectionResetError:
        return True


async def refused(port: int, data: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """Send `data` on a new connection; the answer, which must close the connection."""
    reader, writer = await connect(port)
    writer.write(data)
    answer = await response(reader)
    assert answer[1].get(b"connection") == b"close"
    assert await closed(reader)
    writer.close()
    return answer


class TestLimits:
    @pytest.mark.parametrize(
        ("data", "status"),
        [
            pytest.param(request("a" * 9000), 414, id="request line over 8 KiB"),
            pytest.param(request("now", "x-long: " + "a" * 9000), 431, id="header line over 8 KiB"),
            pytest.param(
                request("now", *(f"x-{i}: {'b' * 7000}" for i in range(5))),
                431,
                id="header fields over 32 KiB",
            ),
            pytest.param(request("now", *(f"x-{i}: 1" for i in range(101))), 431, id="101 fields"),
            pytest.param(request("now", "content-length: 1048577"), 413, id="body over 1 MiB"),
            pytest.param(
                request("now", "transfer-encoding: xchunked"), 501, id="unknown transfer coding"
            ),
            pytest.param(
                request("now", "transfer-encoding: chunked", "transfer-encoding: chunked"),
                400,
                id="two transfer-encodings",
            ),
            pytest.param(
                request("now", "transfer-encoding: chunked") + b"5\nhello\r\n0\r\n\r\n",
                400,
                id="bare LF after a chunk size",
            ),
            pytest.param(request("now", "expect: 200-ok"), 417, id="unknown expectation"),
            pytest.param(
                request("now", "content-length: 3", "transfer-encoding: chunked"),
                400,
                id="content-length and chunked",
            ),
        ],
    )
    async def test_a_refused_request_never_reaches_the_app_and_its_status_is_logged(
        self, data: bytes, status: int
    ) -> None:
        app = Held()
        async with serving(app) as server:
            got, headers, body = await refused(server.port, data)
            assert got == status
            assert b"x-request-id" in headers
            assert json.loads(body)["detail"]
            assert app.arrived == []
            [line] = server.events("request")
            assert line["status"] == status

    async def test_a_head_that_never_ends_is_answered_once_a_line_passes_8_kib(self) -> None:
        loop = asyncio.get_running_loop()
        async with serving(Held()) as server:
            with socket.socket() as sock:
                sock.setblocking(False)
                await loop.sock_connect(sock, ("127.0.0.1", server.port))
                await loop.sock_sendall(sock, b"GET /now HTTP/1.1\r\nhost: gateway\r\nx-endless: ")
                sent, answer = 0, b""
                while sent < 1024 * 1024 and not answer:
                    await loop.sock_sendall(sock, b"a" * 1024)
                    sent += 1024
                    with contextlib.suppress(TimeoutError):
                        answer = await asyncio.wait_for(loop.sock_recv(sock, 65536), 0.005)
            assert answer.startswith(b"HTTP/1.1 431 ")
            assert sent <= limits.MAX_LINE_BYTES + 2 * 4096

    async def test_the_app_gets_the_request_only_once_its_body_is_complete(self) -> None:
        app = Held()
        async with serving(app) as server:
            reader, writer = await connect(server.port)
            writer.write(request("now", "content-length: 10") + b"12345")
            await eventually(lambda: bool(server.guard.open))
            await asyncio.sleep(0.05)  # a chance for a wrong server to start the app early
            assert app.arrived == []
            writer.write(b"67890")
            assert (await response(reader))[2] == b"now"
            assert app.bodies == [b"1234567890"]
            writer.close()

    async def test_a_chunked_body_is_read_and_its_trailer_fields_are_not_headers(self) -> None:
        app = Held()
        async with serving(app) as server:
            reader, writer = await connect(server.port)
            writer.write(
                request("now", "transfer-encoding: chunked")
                + b"5\r\nhello\r\n0\r\nx-trailer: smuggled\r\n\r\n"
            )
            assert (await response(reader))[0] == 200
            assert app.bodies == [b"hello"]
            assert (b"x-trailer", b"smuggled") not in app.scopes[0]["headers"]
            writer.close()

    async def test_expect_100_continue_is_answered_before_the_body(self) -> None:
        app = Held()
        async with serving(app) as server:
            reader, writer = await connect(server.port)
            writer.write(request("now", "content-length: 2", "expect: 100-continue"))
            async with asyncio.timeout(5):
                assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(b"ok")
            assert (await response(reader))[0] == 200
            writer.close()


class TestKeepAlive:
    async def test_an_http_1_1_connection_stays_open_and_http_1_0_closes(self) -> None:
        async with serving(Held()) as server:
            reader, writer = await connect(server.port)
            writer.write(request("now1") + request("now2"))
            assert [(await response(reader))[2] for _ in range(2)] == [b"now1", b"now2"]
            writer.write(request("now3", version="1.0"))
            _status, headers, body = await response(reader)
            assert (body, headers[b"connection"]) == (b"now3", b"close")
            assert await closed(reader)
            writer.close()

    @pytest.mark.parametrize("who", ["client", "app"])
    async def test_connection_close_from_either_side_closes_after_the_response(
        self, who: str
    ) -> None:
        app = Held()
        if who == "app":
            app.headers = [(b"connection", b"close")]
        async with serving(app) as server:
            reader, writer = await connect(server.port)
            extra = ["connection: close"] if who == "client" else []
            writer.write(request("now", *extra) + request("never"))
            status, headers, _ = await response(reader)
            assert (status, headers[b"connection"]) == (200, b"close")
            assert await closed(reader)
            assert app.arrived == ["now"]
            writer.close()

    async def test_a_body_without_a_length_is_chunked_and_a_head_response_has_no_body(
        self,
    ) -> None:
        async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"one,", "more_body": True})
            await send({"type": "http.response.body", "body": b"two"})

        async with serving(streaming) as server:
            reader, writer = await connect(server.port)
            writer.write(request("x"))
            _status, headers, body = await response(reader)
            assert (headers[b"transfer-encoding"], body) == (b"chunked", b"one,two")
            writer.write(b"HEAD /x HTTP/1.1\r\nhost: gateway\r\n\r\n" + request("x"))
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
            assert b"transfer-encoding" not in head
            assert (await response(reader))[2] == b"one,two"  # the next answer follows at once
            writer.close()

    async def test_an_upgrade_is_answered_as_plain_http_and_the_connection_closes(self) -> None:
        app = Held()
        async with serving(app) as server:
            reader, writer = await connect(server.port)
            writer.write(
                request("now", "connection: upgrade", "upgrade: websocket")
                + b"not http at all\r\n\r\n"
            )
            status, headers, _ = await response(reader)
            assert (status, headers[b"connection"]) == (200, b"close")
            assert await closed(reader)
            writer.close()


class TestTargets:
    async def test_the_path_is_decoded_the_raw_path_kept_and_absolute_form_reduced(
        self,
    ) -> None:
        app = Held()
        async with serving(app) as server:
            reader, writer = await connect(server.port)
            writer.write(b"GET /now%2Fa?x=%20 HTTP/1.1\r\nhost: gateway\r\n\r\n")
            await response(reader)
            writer.write(b"GET http://elsewhere.example/now?q=1 HTTP/1.1\r\nhost: gateway\r\n\r\n")
            await response(reader)
            first, second = app.scopes
            assert (first["path"], first["raw_path"], first["query_string"]) == (
                "/now/a",
                b"/now%2Fa",
                b"x=%20",
            )
            assert (second["path"], second["query_string"]) == ("/now", b"q=1")
            writer.close()


class TestPipelining:
    async def test_pipelined_requests_are_answered_in_order_and_never_counted_late(
        self,
    ) -> None:
        app = Held()
        async with serving(app) as server:
            reader, writer = await connect(server.port)
            writer.write(request("first") + request("second") + request("third"))
            await eventually(lambda: app.arrived == ["first"])
            assert server.guard.waiting == {}
            app.gate("first").set()
            await eventually(lambda: app.arrived == ["first", "second"])
            server.clock.advance(100)
            assert server.guard.sweep() == 0
            app.gate("second").set()
            app.gate("third").set()
            answers = [(await response(reader))[2] for _ in range(3)]
            assert answers == [b"first", b"second", b"third"]
            await eventually(lambda: len(server.guard.waiting) == 1)
            writer.close()

    async def test_a_flood_on_one_connection_is_parsed_a_few_requests_ahead_at_most(
        self,
    ) -> None:
        app = Held()
        async with serving(app) as server:
            reader, writer = await connect(server.port)
            writer.write(request("held") + request("now") * 900)
            await eventually(lambda: app.arrived == ["held"])
            await asyncio.sleep(0.05)  # whatever the server will read and parse, it has
            [connection] = server.guard.open
            assert isinstance(connection, HttpConnection)
            queued = len(connection.queue or ())
            assert queued <= limits.MAX_PIPELINED + 4096 // len(request("now"))
            assert connection.reading_paused
            app.gate("held").set()
            answers = [(await response(reader))[2] for _ in range(901)]
            assert answers == [b"held"] + [b"now"] * 900
            writer.close()

    async def test_a_connection_serves_at_most_its_request_limit(self) -> None:
        app = Held()
        async with serving(app) as server:
            reader, writer = await connect(server.port)
            writer.write(request("now") * (limits.MAX_REQUESTS_PER_CONNECTION + 5))
            for served in range(1, limits.MAX_REQUESTS_PER_CONNECTION + 1):
                _, headers, _ = await response(reader)
                last = served == limits.MAX_REQUESTS_PER_CONNECTION
                assert (headers.get(b"connection") == b"close") is last
            assert await closed(reader)
            assert len(app.arrived) == limits.MAX_REQUESTS_PER_CONNECTION
            writer.close()


class TestDeadlines:
    async def test_a_late_request_is_closed_while_a_slow_response_is_not(self) -> None:
        app = Held()
        async with serving(app, client_timeout=10) as server:
            slow_reader, slow_writer = await connect(server.port)
            slow_writer.write(b"GET /never HTTP/1.1\r\nhost: gat")
            await eventually(lambda: len(server.guard.waiting) == 1)
            server.clock.advance(5)
            busy_reader, busy_writer = await connect(server.port)
            busy_writer.write(request("busy"))
            await eventually(lambda: app.arrived == ["busy"])
            server.clock.advance(5)
            assert server.guard.sweep() == 1
            assert await closed(slow_reader)
            server.clock.advance(100)
            assert server.guard.sweep() == 0
            app.gate("busy").set()
            assert (await response(busy_reader))[2] == b"busy"
            # Kept alive: the next request is due within the timeout of that response.
            await eventually(lambda: len(server.guard.waiting) == 1)
            server.clock.advance(10)
            assert server.guard.sweep() == 1
            assert await closed(busy_reader)
            for writer in (slow_writer, busy_writer):
                writer.close()

    async def test_a_body_that_trickles_past_the_deadline_is_closed(self) -> None:
        app = Held()
        async with serving(app, client_timeout=10) as server:
            reader, writer = await connect(server.port)
            writer.write(request("now", "content-length: 100") + b"x" * 10)
            await eventually(lambda: len(server.guard.waiting) == 1)
            server.clock.advance(10)
            assert server.guard.sweep() == 1
            assert await closed(reader)
            assert app.arrived == []
            writer.close()

    async def test_a_client_that_reads_nothing_is_dropped_and_the_app_is_told(self) -> None:
        told: list[str] = []

        async def firehose(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            try:
                while True:
                    await send(
                        {"type": "http.response.body", "body": b"x" * 65536, "more_body": True}
                    )
            except (ClientDisconnected, asyncio.CancelledError):
                told.append("told")  # by the send that failed, or by cancellation
                raise

        async with serving(firehose, client_timeout=10) as server:
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(request("x"))
            await eventually(lambda: len(server.guard.stalled) == 1)
            server.clock.advance(10)
            assert server.guard.sweep() == 1
            await eventually(lambda: told == ["told"])
            await eventually(lambda: not server.guard.open)
            sock.close()


class TestClientGone:
    @pytest.mark.parametrize("how", ["close", "half-close"])
    async def test_a_client_that_goes_away_cancels_its_request(self, how: str) -> None:
        app = Held()
        async with serving(app) as server:
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(request("held"))
            await eventually(lambda: app.arrived == ["held"])
            if how == "close":
                sock.close()
            else:
                sock.shutdown(socket.SHUT_WR)
            await eventually(lambda: app.ended.get("held") == "cancelled")
            await eventually(lambda: not server.guard.open)
            sock.close()


class TestAppFailures:
    async def test_an_app_that_fails_before_answering_gets_a_500_and_a_log_line(self) -> None:
        async def broken(scope: Scope, receive: Receive, send: Send) -> None:
            raise RuntimeError("boom")

        async with serving(broken) as server:
            reader, writer = await connect(server.port)
            writer.write(request("x"))
            status, _, body = await response(reader)
            assert (status, json.loads(body)) == (500, {"detail": "internal error"})
            [line] = server.events("app_error")
            assert "boom" in str(line["error"])
            writer.write(request("x"))  # the connection is still good
            assert (await response(reader))[0] == 500
            writer.close()

    async def test_an_app_that_fails_mid_body_leaves_no_body_that_looks_whole(self) -> None:
        async def breaks(scope: Scope, receive: Receive, send: Send) -> None:
            headers = [(b"content-length", b"10")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"12345", "more_body": True})
            raise RuntimeError("boom")

        async with serving(breaks) as server:
            reader, writer = await connect(server.port)
            writer.write(request("x"))
            async with asyncio.timeout(5):
                await reader.readuntil(b"\r\n\r\n")
                assert await reader.read() == b"12345"  # then the connection is dropped
            writer.close()


class TestShutdown:
    async def test_idle_connections_close_and_busy_ones_finish_with_connection_close(
        self,
    ) -> None:
        app = Held()
        async with serving(app) as server:
            idle_reader, idle_writer = await connect(server.port)
            busy_reader, busy_writer = await connect(server.port)
            busy_writer.write(request("busy"))
            await eventually(lambda: app.arrived == ["busy"] and len(server.guard.open) == 2)
            server.ctx.begin_shutdown()
            assert await closed(idle_reader)
            app.gate("busy").set()
            status, headers, _ = await response(busy_reader)
            assert (status, headers[b"connection"]) == (200, b"close")
            assert await closed(busy_reader)
            for writer in (idle_writer, busy_writer):
                writer.close()


class TestCap:
    async def test_at_the_cap_a_waiting_connection_makes_room_else_the_new_one_goes(
        self,
    ) -> None:
        app = Held()
        async with serving(app, max_connections=2) as server:
            oldest_reader, oldest_writer = await connect(server.port)
            await eventually(lambda: len(server.guard.open) == 1)
            server.clock.advance(1)
            busy_reader, busy_writer = await connect(server.port)
            busy_writer.write(request("busy"))
            await eventually(lambda: app.arrived == ["busy"])
            new_reader, new_writer = await connect(server.port)
            assert await closed(oldest_reader)
            new_writer.write(request("new"))
            await eventually(lambda: app.arrived == ["busy", "new"])
            # Both connections are busy now: a third is refused, and they are not disturbed.
            refused_reader, refused_writer = await connect(server.port)
            assert await closed(refused_reader)
            app.gate("busy").set()
            app.gate("new").set()
            assert (await response(busy_reader))[2] == b"busy"
            assert (await response(new_reader))[2] == b"new"
            for writer in (oldest_writer, busy_writer, new_writer, refused_writer):
                writer.close()


def test_an_idle_connection_holds_no_parser_until_its_first_byte() -> None:
    log = EventLog(LogSink())  # type: ignore[arg-type]
    guard = ConnectionGuard(client_timeout=1, max_connections=1, log=log)
    ctx = ServerContext(Held(), guard, log, access_log=False)
    assert ctx.connection().parser is None
