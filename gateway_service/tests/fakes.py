"""In-process stand-ins for storage services and time, for the gateway's unit tests."""

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import uvicorn

from gateway_service.settings import StorageURL
from gateway_service.upstream import UpstreamError, UpstreamResponse


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
async def serving(server: uvicorn.Server) -> AsyncIterator[int]:
    """Run `server` in this event loop on a free 127.0.0.1 port until the block ends; the port."""
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
