"""A minimal pooled HTTP/1.1 client for talking to storage services.

The gateway's hot path is one small GET per request. httpx costs about 1 ms of CPU per request
here (its pool's expiry bookkeeping dominates; see docs/performance.md), so the gateway speaks
HTTP/1.1 itself over asyncio protocols and parses responses with httptools, the parser uvicorn
already uses. It handles exactly what a reverse proxy needs: keep-alive connections per backend,
connect and read timeouts, Content-Length and chunked bodies, and a clear error class per failure.
"""

import asyncio
import time
from collections.abc import Sequence
from typing import NamedTuple, cast

import httptools

# How long an idle pooled connection may be reused. Below uvicorn's default keep-alive (5 s), so
# a storage service running with defaults never closes a connection just as we reuse it.
IDLE_REUSE_SECONDS = 4.0
MAX_IDLE_PER_BACKEND = 256


class UpstreamError(Exception):
    """An attempt failed before a complete response arrived; `kind` says how."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = (
            kind  # connect_refused, connect_error, connect_timeout, read_timeout, reset, ...
        )
        self.detail = detail


class _StaleConnection(Exception):
    """A reused keep-alive connection was closed by the server before it sent anything."""


class UpstreamResponse(NamedTuple):
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries one request at a time."""

    def __init__(self, pool: "ConnectionPool") -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[UpstreamResponse] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._received = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(UpstreamError("protocol_error", f"bad response: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if not self._received and self.idle_since:
                waiter.set_exception(_StaleConnection())
            else:
                waiter.set_exception(UpstreamError("reset", "connection closed before a response"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.close()  # a response nobody asked for: this connection can't be trusted
            return
        status = self.parser.get_status_code()
        if not self.parser.should_keep_alive():
            self.close()
        waiter.set_result(UpstreamResponse(status, self._headers, b"".join(self._body)))

    # The exchange

    async def exchange(self, request: bytes, read_timeout: float) -> UpstreamResponse:
        """Send one request and wait for its whole response, at most `read_timeout` seconds."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[UpstreamResponse] = loop.create_future()
        self._waiter = waiter
        self._headers = []
        self._body = []
        self._received = False
        self.transport.write(request)
        timer = loop.call_later(read_timeout, self._timed_out, read_timeout)
        try:
            response = await waiter
        except BaseException:
            self.close()  # state unknown after a failure or a cancellation: never reuse it
            raise
        finally:
            timer.cancel()
            self._waiter = None
        self.pool.release(self)
        return response

    def _timed_out(self, timeout: float) -> None:
        self._fail(UpstreamError("read_timeout", f"no response within {timeout:g} s"))

    def _fail(self, error: UpstreamError) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class ConnectionPool:
    """Keep-alive connections to one storage service."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._idle: list[_Connection] = []
        self._closed = False

    async def request(
        self, request: bytes, connect_timeout: float, read_timeout: float
    ) -> UpstreamResponse:
        """Send `request` on a pooled connection (or a new one) and return the response."""
        connection = self._take_idle()
        if connection is not None:
            try:
                return await connection.exchange(request, read_timeout)
            except _StaleConnection:
                pass  # the server closed it while idle; one fresh connection below decides
        connection = await self._connect(connect_timeout)
        try:
            return await connection.exchange(request, read_timeout)
        except _StaleConnection:
            raise UpstreamError("reset", "connection closed before a response") from None

    def release(self, connection: _Connection) -> None:
        if connection.closed or self._closed or len(self._idle) >= MAX_IDLE_PER_BACKEND:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)

    def close(self) -> None:
        self._closed = True
        for connection in self._idle:
            connection.close()
        self._idle.clear()

    def _take_idle(self) -> _Connection | None:
        idle = self._idle
        oldest_usable = time.monotonic() - IDLE_REUSE_SECONDS
        while idle:
            connection = idle.pop()  # most recently used first: the warmest connection
            if not connection.closed and connection.idle_since >= oldest_usable:
                return connection
            connection.close()
        return None

    async def _connect(self, connect_timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        connection = _Connection(self)
        try:
            async with asyncio.timeout(connect_timeout):
                await loop.create_connection(lambda: connection, self.host, self.port)
        except TimeoutError:
            detail = f"no connection within {connect_timeout:g} s"
            raise UpstreamError("connect_timeout", detail) from None
        except ConnectionRefusedError:
            raise UpstreamError("connect_refused", "connection refused") from None
        except OSError as error:
            raise UpstreamError("connect_error", error.strerror or str(error)) from None
        return connection


def build_request(path: bytes, host_header: bytes, headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    """Encode a bodiless GET request."""
    lines = [b"GET ", path, b" HTTP/1.1\r\nhost: ", host_header, b"\r\n"]
    for name, value in headers:
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)
