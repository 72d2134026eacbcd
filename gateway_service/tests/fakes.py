"""In-process stand-ins for storage services and time, for the gateway's unit tests."""

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import uvicorn

from gateway_service.connections import ConnectionGuard
from gateway_service.http_server import ASGIApp, ServerContext
from gateway_service.logs import EventLog
from gateway_service.settings import StorageURL
from gateway_service.upstream import UpstreamError, UpstreamResponse
from gateway_service.worker import Periodic


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeStorage:
    """Answers like a storage service, or fails the way `behaviour` says.

    `behaviour` is an HTTP status (answer with it) or an UpstreamError (raise it).
    """

    def __init__(self, storage: StorageURL, name: str | None = None) -> None:
        self.storage = storage
        self.name = storage.host if name is None else name
        self.behaviour: int | UpstreamError = 200
        self.health_status = 200
        self.requests: list[bytes] = []
        self.closed = False
        self.gate: asyncio.Event | None = None  # when set, /data requests wait for it

    async def request(
        self, request: bytes, connect_timeout: float, read_timeout: float
    ) -> UpstreamResponse:
        self.requests.append(request)
        if request.startswith(b"GET /health "):
            return UpstreamResponse(self.health_status, [], b'{"status": "?"}')
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(self.behaviour, UpstreamError):
            raise self.behaviour
        body = json.dumps({"instance": self.name, "items": []}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"date", b"Mon, 01 Jan 2024 00:00:00 GMT"),
            (b"server", b"uvicorn"),
            (b"x-storage", b"kept"),
        ]
        return UpstreamResponse(self.behaviour, headers, body)

    def close(self) -> None:
        self.closed = True

    @property
    def data_requests(self) -> list[bytes]:
        return [r for r in self.requests if r.startswith(b"GET /data")]


def header(request: bytes, name: bytes) -> bytes | None:
    """The value of header `name` in an encoded request, if present."""
    for line in request.split(b"\r\n")[1:]:
        key, _, value = line.partition(b": ")
        if key.lower() == name:
            return value
    return None


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until `condition()` holds, polling; fail after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.005)


@asynccontextmanager
async def serving(
    app: ASGIApp, log: EventLog, *, client_timeout: float = 10.0, sock: socket.socket | None = None
) -> AsyncIterator[int]:
    """`app` served by the gateway's own HTTP server (as deployed) on 127.0.0.1 (on `sock`, or
    a free port) until the block ends, with the request deadline swept every second; the port.
    """
    guard = ConnectionGuard(client_timeout=client_timeout, max_connections=1000, log=log)
    ctx = ServerContext(app, guard, log, access_log=True)
    loop = asyncio.get_running_loop()
    if sock is None:
        server = await loop.create_server(ctx.connection, "127.0.0.1", 0)
    else:
        server = await loop.create_server(ctx.connection, sock=sock)
    sweeper = Periodic(1.0, guard.sweep)
    sweeper.start()
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        sweeper.stop()
        server.close()
        for connection in list(guard.open):
            connection.abort()
        await server.wait_closed()


@asynccontextmanager
async def uvicorn_serving(server: uvicorn.Server) -> AsyncIterator[int]:
    """Run `server` (a storage service: uvicorn is its server) in this event loop on a free
    127.0.0.1 port until the block ends; the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


class CountingStorage:
    """A storage service on a real socket (a thread of the test process) that counts what it
    is asked: `/health` and `/data` hits, and how many /data requests are in flight. `status`
    is what /data answers with; `delay` holds each /data answer that long."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.status = 200
        self.delay = 0.0
        self.hits: dict[str, int] = {"/health": 0, "/data": 0}
        self.in_flight = 0
        self._lock = threading.Lock()
        storage = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the gateway's pool expects

            def do_GET(self) -> None:
                path = self.path.partition("?")[0]
                with storage._lock:
                    storage.hits[path] = storage.hits.get(path, 0) + 1
                    storage.in_flight += path == "/data"
                try:
                    if path == "/data" and storage.delay:
                        time.sleep(storage.delay)
                    status = storage.status if path == "/data" else 200
                    body = json.dumps({"instance": storage.name}).encode()
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    with storage._lock:
                        storage.in_flight -= path == "/data"

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "CountingStorage":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
