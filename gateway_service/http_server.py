"""The side facing clients: HTTP/1.1 connections parsed by llhttp (httptools), served to ASGI.

Why the gateway has its own (docs/performance.md has the measurements): uvicorn, which served
clients before, builds a request head by repeated bytes concatenation with no limit until the head
is complete, queues every pipelined request it parses, has no send timeout, and starts the app at
the end of the head, so a request whose body the parser then rejects has already been proxied.
Each of those let one hostile client take the gateway down where nginx shrugs
(tests/hostile/test_client_*.py). Hardening it from outside meant overriding most of its
protocol, and Granian (I/O in Rust) has no send timeout, no per-connection request limit and cost
more CPU per proxied request here. So this module owns the client side, with nginx's limits built
in (gateway_service/limits.py) and the parsing left to llhttp:

- A request line or header line over 8 KiB, more than 100 header fields or 32 KiB of them, is
  refused while it arrives (414 / 431), so a head that never ends costs a bounded amount.
- The app sees a request only once it is complete, body included (bodies over 1 MiB: 413), so a
  request the parser rejects anywhere (a bad chunk, `Transfer-Encoding: xchunked`: 501, as
  nginx) never reaches a storage service, and its access line says what the client got.
- At most `MAX_PIPELINED` parsed requests wait per connection; past that the connection stops
  reading until they are answered. A connection serves at most 1,000 requests.
- `CLIENT_TIMEOUT` bounds the time to send a request and the time a client may read nothing
  while its responses wait (gateway_service/connections.py): no timer per request.
- A client that closes (or half-closes) its side while its request is in flight gets its request
  cancelled, so the storage service's connection is closed at once; the access line says 499,
  as nginx's does.
- Connection-nominated and hop-by-hop request headers are the proxy's business
  (gateway_service/proxy.py); this module hands the app every header, lower-cased, as ASGI says.
"""

import asyncio
import contextlib
import email.utils
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import unquote

import httptools

from gateway_service import limits
from gateway_service.connections import ConnectionGuard
from gateway_service.logs import EventLog, log_request
from gateway_service.request_id import HEADER as REQUEST_ID
from gateway_service.request_id import accept_or_generate

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Data is parsed this much at a time, so that a read full of tiny pipelined requests parses a
# bounded number of them before the connection checks its queue.
FEED_BYTES = 4096
ASGI_INFO = {"version": "3.0", "spec_version": "2.4"}
DISCONNECT: Message = {"type": "http.disconnect"}
CLIENT_CLOSED = 499  # nginx's code for "the client closed the connection before the answer"
# After its last response, a connection reads and drops what the client still sends, for at most
# this long and this much, before it closes (nginx's lingering close): closing with unread bytes
# would send a reset, and the client could lose the response it had not read yet. A client that
# goes on sending past that (an endless head) gets the reset.
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 * 1024
_CONTENT_LENGTH = b"content-length"
_CONNECTION = b"connection"
_CHUNKED_END = b"0\r\n\r\n"
_NO_BODY_STATUSES = frozenset({204, 304})


class ClientDisconnected(OSError):
    """send() after the client went away (ASGI asks servers for an OSError there)."""


class Refusal(Exception):
    """A request the gateway answers itself, with this status, and then closes the connection."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


_status_lines: dict[int, bytes] = {}


def status_line(status: int) -> bytes:
    line = _status_lines.get(status)
    if line is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Client Closed Request" if status == CLIENT_CLOSED else ""
        line = f"HTTP/1.1 {status} {phrase}\r\n".encode()
        _status_lines[status] = line
    return line


class _DateLine:
    """`date: ...\\r\\n`, formatted once a second rather than per response."""

    __slots__ = ("line", "second")

    def __init__(self) -> None:
        self.second = -1
        self.line = b""

    def __call__(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self.second:
            self.second = second
            self.line = b"date: " + email.utils.formatdate(now, usegmt=True).encode() + b"\r\n"
        return self.line


class ServerContext:
    """What every client connection of a worker shares."""

    def __init__(
        self,
        app: ASGIApp,
        guard: ConnectionGuard,
        log: EventLog,
        *,
        access_log: bool,
        lifespan_state: dict[str, Any] | None = None,
        on_connection: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.on_connection = on_connection  # counts accepted connections
        self.guard = guard
        self.log = log
        self.access_log = access_log
        self.lifespan_state = lifespan_state
        self.date_line = _DateLine()
        self.shutting_down = False

    def connection(self) -> "HttpConnection":
        """The protocol factory for `loop.create_server`."""
        return HttpConnection(self)

    def begin_shutdown(self) -> None:
        """New requests get `Connection: close`; connections waiting for one close now."""
        self.shutting_down = True
        for connection in list(cast("set[HttpConnection]", self.guard.open)):
            connection.close_if_idle()


class _Request:
    """A parsed request waiting for its turn on its connection."""

    __slots__ = ("body", "keep_alive", "scope", "started")

    def __init__(self, scope: Scope, body: bytes, keep_alive: bool, started: float) -> None:
        self.scope = scope
        self.body = body
        self.keep_alive = keep_alive
        self.started = started


class HttpConnection(asyncio.Protocol):
    """One client connection. Requests on it are answered one at a time, in order."""

    __slots__ = (
        "body", "body_bytes", "client", "ctx", "current", "expect_continue", "header_bytes",
        "headers", "in_body", "in_message", "last_call", "line_bytes", "lingering", "parser",
        "queue", "reading_paused", "refused", "requests", "server", "stash", "transport", "url",
        "write_waiter", "writing_paused",
    )  # fmt: skip

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.transport: asyncio.Transport | None = None
        # Made at the first byte: an idle connection holds no parser.
        self.parser: httptools.HttpRequestParser | None = None
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.line_bytes = 0
        self.body: list[bytes] | None = None
        self.body_bytes = 0
        self.in_message = False
        self.in_body = False
        self.expect_continue = False
        self.queue: deque[_Request] | None = None
        self.current: Exchange | None = None
        self.stash = b""  # bytes read but not parsed while the queue is full
        self.reading_paused = False
        self.writing_paused = False
        self.write_waiter: asyncio.Future[None] | None = None
        self.requests = 0
        self.last_call = False  # the request limit is reached: parse nothing more
        self.refused: Refusal | None = None  # to answer once the current response is done
        self.lingering: asyncio.TimerHandle | None = None

    # asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        if self.ctx.on_connection is not None:
            self.ctx.on_connection()
        if not self.ctx.guard.admit(self):
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.last_call or self.refused is not None:
            # Nothing after the last request is parsed; while lingering, only so much is read.
            self.body_bytes += len(data)
            if self.lingering is not None and self.body_bytes > LINGER_BYTES:
                self.abort()
            return
        if self.stash:
            self.stash += data  # a read already under way when reading paused
            return
        self._feed(data)

    def eof_received(self) -> bool | None:
        # A client that shuts its side down while its request is in flight is gone for the
        # gateway's purposes, as for nginx: the request is cancelled (499), nothing is left open.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.ctx.guard.forget(self)
        if self.lingering is not None:
            self.lingering.cancel()
        current = self.current
        if current is not None:
            current.client_gone()
        if self.queue:
            self.queue.clear()
        self.stash = b""
        waiter = self.write_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ClientDisconnected("the client closed the connection"))
        self.write_waiter = None

    def pause_writing(self) -> None:
        self.writing_paused = True
        self.ctx.guard.stalled[self] = self.ctx.guard.clock()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self.ctx.guard.stalled.pop(self, None)
        waiter = self.write_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.write_waiter = None
        if self.current is None:
            self._next()

    # What the guard and the worker call ----------------------------------------------------

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def finish(self) -> None:
        """Close after the last response, lingering (see LINGER_SECONDS): the write side is shut
        once the response is sent, and what still arrives is dropped until the client closes."""
        transport = self.transport
        if transport is None or transport.is_closing() or self.lingering is not None:
            return
        self.last_call = True
        self.stash = b""
        self.body_bytes = 0  # from here, what the client sent after its last request
        self.ctx.guard.waiting.pop(self, None)
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self._resume_reading()
        self.lingering = asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.abort)

    def close_if_idle(self) -> None:
        """Close now if nothing of a request is here (graceful shutdown)."""
        if self.current is None and not self.in_message and not self.queue and not self.stash:
            self.close()

    # Parsing --------------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        parser = self.parser
        if parser is None:
            parser = self.parser = httptools.HttpRequestParser(self)
        size = len(data)
        position = 0
        while position < size:
            piece = data if size <= FEED_BYTES else data[position : position + FEED_BYTES]
            position += len(piece)
            try:
                if not self.in_body:
                    self._check_lines(piece)
                parser.feed_data(piece)
            except Refusal as refusal:
                self._refuse(refusal)
                return
            except httptools.HttpParserCallbackError as error:
                cause = error.__context__
                if isinstance(cause, Refusal):
                    self._refuse(cause)
                else:
                    self._refuse(Refusal(400, f"bad request: {cause or error}"))
                return
            except httptools.HttpParserUpgrade:
                # Upgrade or CONNECT: the gateway switches no protocols. The request was
                # answered as plain HTTP (on_message_complete ran); nothing after it is parsed.
                self.last_call = True
                self._stop_reading()
                return
            except httptools.HttpParserError as error:
                self._refuse(Refusal(400, f"bad request: {error}"))
                return
            queued = len(self.queue) if self.queue is not None else 0
            if self.last_call or queued >= limits.MAX_PIPELINED:
                if not self.last_call:
                    self.stash = data[position:]
                self._stop_reading()
                return

    def _check_lines(self, piece: bytes) -> None:
        """Refuse a head line over 8 KiB before llhttp sees it: httptools gathers a header
        value by concatenation, so a value that never ends must be cut off early."""
        fed = self.line_bytes  # of the current line, already parsed
        first = piece.find(b"\n")
        if first < 0:
            self.line_bytes += len(piece)
            longest = self.line_bytes
        else:
            longest = fed + first
            self.line_bytes = len(piece) - piece.rfind(b"\n") - 1
        if longest > limits.MAX_LINE_BYTES:
            # The request line, when what was parsed of the current line is nearly all target.
            if not self.headers and self.url and fed - len(self.url) < 32:
                raise Refusal(414, "the request line is over 8 KiB")
            raise Refusal(431, "a request header line is over 8 KiB")

    def _stop_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()

    # httptools callbacks (from inside feed_data)

    def on_message_begin(self) -> None:
        self.in_message = True
        self.url = b""
        self.headers = []
        self.header_bytes = 0
        self.body = None
        self.body_bytes = 0
        self.expect_continue = False

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > limits.MAX_LINE_BYTES:
            raise Refusal(414, "the request target is over 8 KiB")

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self.headers
        self.header_bytes += len(name) + len(value)
        if len(headers) >= limits.MAX_HEADER_COUNT or self.header_bytes > limits.MAX_HEADER_BYTES:
            raise Refusal(431, "request header fields too large")
        if self.in_body:
            return  # a chunked body's trailer fields: read, never taken for headers
        name = name.lower()
        if name == b"transfer-encoding":
            # nginx's rule: a request body may be chunked, and nothing else.
            if value.strip().lower() != b"chunked":
                raise Refusal(501, f"transfer coding {value.decode('latin-1')!r} not implemented")
            if any(key == b"transfer-encoding" for key, _ in headers):
                raise Refusal(400, "more than one Transfer-Encoding header")
        elif name == b"expect":
            if value.strip().lower() != b"100-continue":
                raise Refusal(417, "the only expectation met is 100-continue")
            self.expect_continue = True
        elif (
            name == _CONTENT_LENGTH
            and value.strip().isdigit()
            and int(value) > limits.MAX_BODY_BYTES
        ):
            raise Refusal(413, "the request body is over 1 MiB")
        headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_body = True
        self.line_bytes = 0
        if self.expect_continue and self.current is None and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > limits.MAX_BODY_BYTES:
            raise Refusal(413, "the request body is over 1 MiB")
        if self.body is None:
            self.body = [body]
        else:
            self.body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self.in_body = False
        if self.last_call:
            return  # pipelined after the connection's last request: dropped unanswered
        guard = self.ctx.guard
        guard.waiting.pop(self, None)
        parser = self.parser
        assert parser is not None
        self.requests += 1
        keep_alive = parser.should_keep_alive() and not self.ctx.shutting_down
        if self.requests >= limits.MAX_REQUESTS_PER_CONNECTION or parser.should_upgrade():
            keep_alive = False
        if not keep_alive:
            self.last_call = True
        request = _Request(
            self._scope(parser),
            b"".join(self.body) if self.body else b"",
            keep_alive,
            time.perf_counter(),
        )
        self.body = None
        if self.current is None and not self.queue and not self.writing_paused:
            self._start(request)
        else:
            if self.queue is None:
                self.queue = deque()
            self.queue.append(request)

    def _scope(self, parser: httptools.HttpRequestParser) -> Scope:
        url = self.url
        if self.client is None:
            transport = self.transport
            assert transport is not None
            self.client = _address(transport.get_extra_info("peername"))
            self.server = _address(transport.get_extra_info("sockname"))
        if url[:1] == b"/":
            raw_path, _, query = url.partition(b"?")
        elif url == b"*":
            raw_path, query = url, b""
        else:
            # Absolute form (RFC 9112 3.2.2): only its path and query matter here.
            try:
                parsed = httptools.parse_url(url)
            except httptools.HttpParserInvalidURLError:
                raise Refusal(400, "bad request target") from None
            raw_path, query = parsed.path or b"/", parsed.query or b""
        if b"#" in raw_path:
            raw_path = raw_path.partition(b"#")[0]
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path, encoding="latin-1")
        scope: Scope = {
            "type": "http",
            "asgi": ASGI_INFO,
            "http_version": parser.get_http_version(),
            "server": self.server,
            "client": self.client,
            "scheme": "http",
            "method": parser.get_method().decode("latin-1"),
            "root_path": "",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": self.headers,
        }
        if self.ctx.lifespan_state is not None:
            scope["state"] = self.ctx.lifespan_state.copy()
        return scope

    # Answering ------------------------------------------------------------------------------

    def _start(self, request: _Request) -> None:
        exchange = Exchange(self, request)
        self.current = exchange
        exchange.task = asyncio.get_running_loop().create_task(exchange.run())

    def exchange_done(self, exchange: "Exchange") -> None:
        """The current response is complete (or abandoned): the next request's turn."""
        self.current = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not exchange.keep_alive or (self.ctx.shutting_down and not self.queue):
            self.finish()
            return
        if not self.writing_paused:
            self._next()

    def _next(self) -> None:
        """Start the next queued request, or wait for one (parsing what was held back)."""
        refused = self.refused
        if refused is not None:
            self.refused = None
            self._answer_refusal(refused)
            return
        queue = self.queue
        if queue:
            self._start(queue.popleft())
            return
        if self.last_call:
            return
        if self.transport is None or self.transport.is_closing():
            return
        # Waiting for the next request from now, whether or not some of it is here already.
        guard = self.ctx.guard
        if self not in guard.waiting:
            guard.waiting[self] = guard.clock()
        stash = self.stash
        if stash:
            self.stash = b""
            self._feed(stash)
        if not self.stash and not self.last_call and self.refused is None:
            self._resume_reading()

    def _refuse(self, refusal: Refusal) -> None:
        """Answer a request the parser or a limit refused, once the response in flight is done."""
        self.in_message = False
        self.stash = b""
        if self.current is not None or self.queue:
            self._stop_reading()
            self.refused = refusal
            self.last_call = True
            return
        self._answer_refusal(refusal)

    def _answer_refusal(self, refusal: Refusal) -> None:
        self.last_call = True
        request_id = accept_or_generate(
            next((value for name, value in self.headers if name == REQUEST_ID), None)
        )
        body = b'{"detail": "' + refusal.detail.replace('"', "'").encode("latin-1") + b'"}'
        head = [
            status_line(refusal.status),
            b"content-type: application/json\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\n",
            self.ctx.date_line(),
            b"x-request-id: ",
            request_id,
            b"\r\nconnection: close\r\n\r\n",
        ]
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(b"".join(head) + body)
            self.finish()
        if self.ctx.access_log:
            method = self.parser.get_method().decode("latin-1") if self.parser else "-"
            log_request(
                self.ctx.log,
                method,
                self.url.partition(b"?")[0].decode("latin-1")[:200],
                request_id,
                refusal.status,
                time.perf_counter(),
                error=refusal.detail,
            )

    # Writing (for Exchange)

    async def drain(self) -> None:
        if not self.writing_paused:
            return
        if self.transport is None or self.transport.is_closing():
            raise ClientDisconnected("the client closed the connection")
        waiter = self.write_waiter
        if waiter is None:
            waiter = self.write_waiter = asyncio.get_running_loop().create_future()
        await waiter


def _address(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None


class Exchange:
    """One request and its response, as the ASGI app sees them."""

    __slots__ = (
        "body_sent", "chunked", "complete", "connection", "disconnected", "head", "head_only",
        "keep_alive", "request", "started", "task", "waiter",
    )  # fmt: skip

    def __init__(self, connection: HttpConnection, request: _Request) -> None:
        self.connection = connection
        self.request = request
        self.keep_alive = request.keep_alive
        self.head_only = request.scope["method"] == "HEAD"
        self.started = False  # http.response.start received
        self.head: bytes | None = None  # the response head, until it goes out with the body
        self.chunked = False
        self.complete = False
        self.disconnected = False
        self.body_sent = False
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        connection = self.connection
        try:
            await connection.ctx.app(self.request.scope, self.receive, self.send)
            if not self.started:
                self._log_error("the app returned without a response", None)
                await self._internal_error()
        except (asyncio.CancelledError, ClientDisconnected):
            pass  # the client went away; the cancellation told the app
        except Exception as error:
            self._log_error(repr(error), error)
            if not self.started:
                with contextlib.suppress(ClientDisconnected):
                    await self._internal_error()
        finally:
            if not self.complete:
                # The app ended mid-response, or never answered: the framing cannot be
                # finished, so the client must not take what it got for a whole response.
                self.keep_alive = False
                connection.abort()
            self._wake()
            connection.exchange_done(self)

    def _log_error(self, error: str, exception: BaseException | None) -> None:
        self.connection.ctx.log.event(
            "app_error",
            level="error",
            path=self.request.scope["path"],
            error=error,
            traceback="" if exception is None else "".join(traceback.format_exception(exception)),
        )

    async def _internal_error(self) -> None:
        if self.disconnected:
            return
        body = b'{"detail": "internal error"}'
        await self.send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": body})

    def client_gone(self) -> None:
        """The connection was lost: whatever the app waits for is cancelled."""
        self.disconnected = True
        self._wake()
        task = self.task
        if task is not None and not self.complete and not task.done():
            task.cancel()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> Message:
        if not self.body_sent:
            self.body_sent = True
            return {"type": "http.request", "body": self.request.body, "more_body": False}
        if not (self.disconnected or self.complete):
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return DISCONNECT

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            await self._body(message.get("body", b""), message.get("more_body", False))
        elif kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self.started = True
            self.head = self._build_head(message["status"], message.get("headers", ()))
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    def _build_head(self, status: int, headers: Any) -> bytes:
        parts = [status_line(status)]
        length_given = status in _NO_BODY_STATUSES
        for name, value in headers:
            lowered = name.lower()
            if lowered == _CONTENT_LENGTH:
                length_given = True
            elif lowered == _CONNECTION and b"close" in value.lower():
                self.keep_alive = False
                continue
            parts += (name, b": ", value, b"\r\n")
        connection = self.connection
        if not length_given and not self.head_only:
            if self.request.scope["http_version"] == "1.1":
                self.chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                self.keep_alive = False  # an HTTP/1.0 body without a length ends with the close
        if connection.ctx.shutting_down:
            self.keep_alive = False
        parts.append(connection.ctx.date_line())
        parts.append(b"\r\n" if self.keep_alive else b"connection: close\r\n\r\n")
        return b"".join(parts)

    async def _body(self, body: bytes, more: bool) -> None:
        if self.complete:
            raise RuntimeError("http.response.body after the response was complete")
        head = self.head
        if head is None and not self.started:
            raise RuntimeError("http.response.body before http.response.start")
        connection = self.connection
        transport = connection.transport
        if self.disconnected or transport is None or transport.is_closing():
            raise ClientDisconnected("the client closed the connection")
        if self.head_only:
            body = b""
        elif self.chunked and body:
            body = b"%x\r\n%b\r\n" % (len(body), body)
        if not more:
            self.complete = True
            if self.chunked and not self.head_only:
                body += _CHUNKED_END
        if head is not None:
            self.head = None
            transport.write(head + body if body else head)
        elif body:
            transport.write(body)
        if more:
            await connection.drain()
