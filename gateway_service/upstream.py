"""A minimal pooled HTTP/1.1 client for talking to storage services.

The gateway's hot path is one small GET per request. httpx costs about 1 ms of CPU per request
here and aiohttp about three times our own (docs/performance.md), so the gateway speaks HTTP/1.1
itself over asyncio protocols. Parsing is llhttp's, through httptools (the parser uvicorn and
Node use); this module owns only what a reverse proxy must decide on top of it, each rule proved
against hostile upstreams in tests/hostile and gateway_service/tests:

- A response is the first final one: 1xx interim responses are read and dropped (an unasked
  `101` is a protocol error), so their bytes never reach the next request on the connection.
- Framing is Content-Length, chunked, or the connection's close (HTTP/1.0 style); chunked
  trailers are dropped.
- The response head (status line, interim responses and header fields) is limited in size and
  count like a client's request head (`gateway_service/limits.py`); over the limit the attempt
  fails, as nginx fails one with "upstream sent too big header".
- A body up to `buffer_limit` bytes is read whole before anything is returned, so a failure
  before then is an ordinary failed attempt the caller may retry. A larger body is returned as
  a `BodyStream`; reading from the connection pauses while more than `buffer_limit` bytes wait,
  so a request holds at most about that much however large the body is.
- A connection goes back to the pool only after a complete, correctly framed response with
  keep-alive, and holds nothing of it there. Any byte arriving while no request is in flight
  means the connection cannot be trusted: it is closed.
"""

import asyncio
import time
from collections.abc import Sequence
from typing import NamedTuple, cast

import httptools

from gateway_service.limits import MAX_HEADER_BYTES, over_limits

# How long an idle pooled connection may be reused. Below uvicorn's default keep-alive (5 s), so
# a storage service running with defaults never closes a connection just as we reuse it.
IDLE_REUSE_SECONDS = 4.0
# Idle connections kept per storage service (nginx's `keepalive 32` in the project's config).
# Every one is an open file; gateway_service/server.py counts them when it sizes the
# connection cap from the open-file limit.
MAX_IDLE_PER_BACKEND = 32
DEFAULT_BUFFER_LIMIT = 64 * 1024
_HTTP_1 = frozenset({"1.1", "1.0"})


class UpstreamError(Exception):
    """An attempt failed before a complete response arrived; `kind` says how."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        # connect_refused, connect_error, connect_timeout, read_timeout, reset,
        # protocol_error, head_too_large
        self.kind = kind
        self.detail = detail


class _StaleConnection(Exception):
    """A reused keep-alive connection was closed by the server before it sent anything."""


class UpstreamResponse(NamedTuple):
    """A final response. `body` is the whole body when `stream` is None; otherwise its first
    part, and the rest comes from `stream` (which the caller must close)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    stream: "BodyStream | None" = None


class BodyStream:
    """The rest of a body too large to buffer: `read()` until it returns b""."""

    __slots__ = ("_exchange",)

    def __init__(self, exchange: "_Exchange") -> None:
        self._exchange = exchange

    async def read(self) -> bytes:
        """The next part of the body; b"" at its end. Raises UpstreamError when the body cannot
        be completed (reset, read timeout, bad framing): the caller has a truncated body."""
        return await self._exchange.read()

    def close(self) -> None:
        """Stop reading: an unfinished body takes its connection with it."""
        self._exchange.abandon()


class _Exchange:
    """One request's response as it arrives on a connection."""

    __slots__ = (
        "buffer_limit", "buffered", "chunks", "connection", "done", "error", "head_bytes",
        "head_done", "head_size", "header_count", "headers", "interim", "paused", "read_timeout",
        "reader", "received", "status", "streaming", "timer", "waiter",
    )  # fmt: skip

    def __init__(
        self,
        connection: "_Connection",
        buffer_limit: int,
        read_timeout: float,
        waiter: "asyncio.Future[UpstreamResponse]",
    ) -> None:
        self.connection = connection
        self.buffer_limit = buffer_limit
        self.read_timeout = read_timeout
        self.waiter = waiter
        self.timer: asyncio.TimerHandle | None = None
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_count = 0  # interim responses' fields count too: endless 1xx is a flood
        self.head_size = 0
        self.head_bytes = 0  # bytes received before the final head was complete
        self.head_done = False
        self.interim = False
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.received = False
        self.streaming = False
        self.paused = False
        self.reader: asyncio.Future[None] | None = None
        self.done = False
        self.error: UpstreamError | None = None

    # Events from the connection.

    def head(self, status: int) -> None:
        self.status = status
        self.head_done = True

    def body(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.buffered += len(chunk)
        if self.buffered <= self.buffer_limit:
            if self.streaming:
                self._wake_reader()
            return
        if not self.streaming:
            self._start_streaming()
        elif not self.paused and self.connection.transport is not None:
            # Backpressure: the client is slower than the storage service.
            self.paused = True
            self.connection.transport.pause_reading()
        self._wake_reader()

    def complete(self) -> None:
        self.done = True
        self._cancel_timer()
        if self.streaming:
            self._wake_reader()
            return
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = []
        if not self.waiter.done():
            self.waiter.set_result(UpstreamResponse(self.status, self.headers, body))

    def fail(self, error: UpstreamError | _StaleConnection) -> None:
        if self.done:
            return
        self.done = True
        self._cancel_timer()
        if isinstance(error, UpstreamError):
            self.error = error
        if not self.waiter.done():
            self.waiter.set_exception(error)
        else:
            self._wake_reader()

    # The consumer's side.

    def arm_timer(self) -> None:
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.read_timeout, self._timed_out)

    async def read(self) -> bytes:
        while not self.chunks:
            if self.error is not None:
                raise self.error
            if self.done:
                return b""
            self.reader = asyncio.get_running_loop().create_future()
            self.arm_timer()
            try:
                await self.reader
            finally:
                self.reader = None
                self._cancel_timer()
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = []
        self.buffered = 0
        if self.paused:
            self.paused = False
            transport = self.connection.transport
            if transport is not None and not self.connection.closed:
                transport.resume_reading()
        return data

    def abandon(self) -> None:
        self.chunks = []
        if not self.done:
            self.fail(UpstreamError("reset", "body abandoned by the gateway"))
            self.connection.close()

    # Internals.

    def _start_streaming(self) -> None:
        self.streaming = True
        self._cancel_timer()  # from here the read timeout runs per wait, in read()
        first = b"".join(self.chunks)
        self.chunks = []
        self.buffered = 0
        if not self.waiter.done():
            self.waiter.set_result(
                UpstreamResponse(self.status, self.headers, first, BodyStream(self))
            )

    def _wake_reader(self) -> None:
        reader = self.reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    def _timed_out(self) -> None:
        self.timer = None
        self.fail(UpstreamError("read_timeout", f"no response within {self.read_timeout:g} s"))
        self.connection.close()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries one request at a time."""

    def __init__(self, pool: "ConnectionPool") -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.exchange: _Exchange | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None or exchange.done:
            self.close()  # bytes nobody asked for: this connection can't be trusted
            return
        exchange.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(exchange, "protocol_error", "an upgrade nobody asked for")
            return
        except httptools.HttpParserError as error:
            self._fail(exchange, "protocol_error", f"bad response: {error}")
            return
        if not exchange.head_done:
            exchange.head_bytes += len(data)
            if exchange.head_bytes > MAX_HEADER_BYTES:
                self._fail(exchange, "head_too_large", f"head over {MAX_HEADER_BYTES} bytes")
                return
        if exchange.done and self.exchange is exchange:
            self._finish(exchange)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        exchange = self.exchange
        self.exchange = None
        if exchange is None or exchange.done:
            return
        if exchange.head_done and _close_delimited(exchange.status, exchange.headers):
            exchange.complete()  # the close is the end of this body
        elif not exchange.received and self.idle_since:
            exchange.fail(_StaleConnection())
        else:
            exchange.fail(UpstreamError("reset", "connection closed before the response ended"))

    # httptools callbacks (called from feed_data, inside data_received)

    def on_message_begin(self) -> None:
        exchange = self.exchange
        if exchange is not None and exchange.head_done:
            # A second response to one request: everything after it is suspect.
            self._fail(exchange, "protocol_error", "more than one response to one request")

    def on_status(self, status: bytes) -> None:
        if self.exchange is not None:
            self.exchange.head_size += len(status)

    def on_header(self, name: bytes, value: bytes) -> None:
        exchange = self.exchange
        if exchange is None or exchange.head_done:
            return  # chunked trailers: dropped, as nginx does
        exchange.header_count += 1
        exchange.head_size += len(name) + len(value)
        if (
            len(name) == _TE_LENGTH
            and name.lower() == b"transfer-encoding"
            and _chunked_before(exchange.headers, value)
        ):
            # llhttp frames `chunked, chunked` (on one line or two) as one chunking; it says the
            # body was chunked twice (RFC 9112 6.1 forbids that), which no reading frames.
            self._fail(exchange, "protocol_error", "Transfer-Encoding: chunked repeated")
            return
        exchange.headers.append((name, value))

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        if over_limits(exchange.header_count, exchange.head_size):
            self._fail(exchange, "head_too_large", "too many or too large header fields")
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            if status == 101:
                self._fail(exchange, "protocol_error", "101 Switching Protocols nobody asked for")
                return
            exchange.interim = True
            exchange.headers = []
            return
        if not 200 <= status <= 599:
            self._fail(exchange, "protocol_error", f"status {status} out of range")
            return
        if self.parser.get_http_version() not in _HTTP_1:
            # llhttp reads "HTTP/2.0 200" as a status line; an HTTP/1.1 exchange cannot have it.
            version = self.parser.get_http_version()
            self._fail(exchange, "protocol_error", f"HTTP/{version} status line")
            return
        exchange.head(status)

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        if exchange is not None and not exchange.done:
            exchange.body(body)

    def on_message_complete(self) -> None:
        exchange = self.exchange
        if exchange is None or exchange.done:
            return
        if exchange.interim:
            exchange.interim = False
            return
        if not self.parser.should_keep_alive():
            self.closed = True  # closed in _finish, after the parser has returned
        exchange.complete()

    # The exchange

    async def exchange_with(
        self, request: bytes, read_timeout: float, buffer_limit: int
    ) -> UpstreamResponse:
        """Send one request; wait for its head and whole body (or its first `buffer_limit`
        bytes), at most `read_timeout` seconds."""
        assert self.transport is not None
        waiter: asyncio.Future[UpstreamResponse] = asyncio.get_running_loop().create_future()
        exchange = _Exchange(self, buffer_limit, read_timeout, waiter)
        self.exchange = exchange
        self.transport.write(request)
        exchange.arm_timer()
        try:
            return await waiter
        except BaseException:
            self.close()  # state unknown after a failure or a cancellation: never reuse it
            raise

    def _finish(self, exchange: _Exchange) -> None:
        """The exchange is over (complete or failed): detach it; reuse or close."""
        self.exchange = None
        if exchange.error is None and not self.closed:
            self.pool.release(self)
        else:
            self.close()

    def _fail(self, exchange: _Exchange, kind: str, detail: str) -> None:
        exchange.fail(UpstreamError(kind, detail))
        self.exchange = None
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


_TE_LENGTH = len(b"transfer-encoding")


def _chunked_before(headers: list[tuple[bytes, bytes]], value: bytes) -> bool:
    """Whether `chunked` comes before the last coding of the Transfer-Encoding list that
    `value` ends (the earlier Transfer-Encoding fields and `value`, in order)."""
    codings = [
        coding.strip().lower()
        for name, earlier in headers
        if name.lower() == b"transfer-encoding"
        for coding in earlier.split(b",")
    ]
    codings += [coding.strip().lower() for coding in value.split(b",")]
    return b"chunked" in codings[:-1]


def _close_delimited(status: int, headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a final response to a GET ends with its connection (RFC 9112 6.3).

    llhttp completes Content-Length and chunked bodies itself; a body with neither (or with a
    transfer coding that is not chunked) runs until the connection closes, which only the
    connection sees."""
    if status in (204, 304):
        return False
    for name, _ in headers:
        lowered = name.lower()
        if lowered == b"content-length":
            return False
        if lowered == b"transfer-encoding":
            return not _chunked(headers)
    return True


def _chunked(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"transfer-encoding":
            return value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
    return False


class ConnectionPool:
    """Keep-alive connections to one storage service."""

    def __init__(self, host: str, port: int, buffer_limit: int = DEFAULT_BUFFER_LIMIT) -> None:
        self.host = host
        self.port = port
        self.buffer_limit = buffer_limit
        self._idle: list[_Connection] = []
        self._closed = False

    async def request(
        self, request: bytes, connect_timeout: float, read_timeout: float
    ) -> UpstreamResponse:
        """Send `request` on a pooled connection (or a new one) and return the response."""
        connection = self._take_idle()
        if connection is not None:
            try:
                return await connection.exchange_with(request, read_timeout, self.buffer_limit)
            except _StaleConnection:
                pass  # the server closed it while idle; one fresh connection below decides
        connection = await self._connect(connect_timeout)
        try:
            return await connection.exchange_with(request, read_timeout, self.buffer_limit)
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
