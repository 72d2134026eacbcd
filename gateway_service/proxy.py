"""The hot path: `GET /data` (and `HEAD`), proxied round-robin with retries.

A raw ASGI callable rather than a FastAPI route: routing, dependency injection and response
classes cost more CPU than the whole proxying (docs/performance.md). Per request this does one
pass over the headers, a round-robin pick per attempt, one upstream exchange, two ASGI sends and
one log line; counters are plain ints read by /metrics at scrape time.
"""

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from gateway_service.backends import Backend, Balancer
from gateway_service.client_request import CLOSE, HOST, host_and_version_problem
from gateway_service.clock import Clock
from gateway_service.limits import over_limits
from gateway_service.logs import EventLog, log_request
from gateway_service.metrics import ProxyStats
from gateway_service.otel import SpanExporter
from gateway_service.request_id import HEADER as REQUEST_ID
from gateway_service.request_id import accept_or_generate
from gateway_service.responses import send_json
from gateway_service.retry_budget import RetryBudget
from gateway_service.trace_context import HEADER as TRACEPARENT
from gateway_service.trace_context import STATE_HEADER as TRACESTATE
from gateway_service.trace_context import accept_or_start
from gateway_service.upstream import UpstreamError, UpstreamResponse, build_request
from gateway_service.upstream_protocol import Upstream

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the gateway sets itself.
_NOT_FORWARDED = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate",
        b"proxy-authorization", b"te", b"trailer", b"transfer-encoding", b"upgrade",
        b"host", b"content-length", b"expect", REQUEST_ID, TRACEPARENT, TRACESTATE,
    }
)  # fmt: skip
TOO_LARGE = {"detail": "request header fields too large"}
# nginx's status for a request whose client went away before its answer was sent.
CLIENT_CLOSED = 499
# The server adds its own date header (as nginx does, and like nginx no upstream server header
# is passed on); content-length is recomputed.
_NOT_RETURNED = _NOT_FORWARDED | {b"date", b"server"}
# Statuses whose responses have no body, so no content-length either (RFC 9110 8.6).
_NO_BODY = frozenset({204, 304})


# Fields that have one value (RFC 9110 5.3): when a storage service repeats one, the client
# gets the first, as nginx passes them; two values would let a cache and a browser read one
# response two ways (the first Content-Type and the last).
SINGLE_VALUED = frozenset(
    {b"content-type", b"location", b"etag", b"last-modified", b"expires", b"refresh"}
)


def _returned(headers: list[tuple[bytes, bytes]], request_id: bytes) -> list[tuple[bytes, bytes]]:
    """The storage service's end-to-end headers, and the request id."""
    returned = []
    nominated = None
    single: set[bytes] = set()
    for name, value in headers:
        lowered = name.lower()
        if lowered in _NOT_RETURNED:
            if lowered == b"connection":
                nominated = value if nominated is None else nominated + b"," + value
            continue
        if lowered in SINGLE_VALUED:
            if lowered in single:
                continue
            single.add(lowered)
        returned.append((name, value))
    if nominated is not None:
        # Fields the Connection header names are hop-by-hop too (RFC 9110 7.6.1).
        hop = {token.strip().lower() for token in nominated.split(b",")}
        returned = [(name, value) for name, value in returned if name.lower() not in hop]
    returned.append((REQUEST_ID, request_id))
    return returned


def _content_length(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    # llhttp has checked it is one decimal number.
    return next((value for name, value in headers if name.lower() == b"content-length"), None)


async def _client_gone(receive: Receive) -> None:
    """Returns when the client disconnects (or the response ends)."""
    while (await receive())["type"] != "http.disconnect":
        pass


# trace id, the gateway's span id, its parent's (b"": a root), its start (ns since the epoch).
_OpenSpan = tuple[bytes, bytes, bytes, int]


def _span_of(traceparent: bytes, continued: bool) -> tuple[bytes, _OpenSpan | None]:
    """With export on: the traceparent to forward, naming the gateway's span as the parent, and
    that span; a client's trace it must not sample (flags without bit 0) goes on untouched."""
    trace_id = traceparent[3:35]
    if not continued:
        return traceparent, (trace_id, traceparent[36:52], b"", time.time_ns())
    if not int(traceparent[53:55], 16) & 1:
        return traceparent, None
    span_id = secrets.token_hex(8).encode()
    forwarded = traceparent[:36] + span_id + traceparent[52:]
    return forwarded, (trace_id, span_id, traceparent[36:52], time.time_ns())


class Proxy:
    def __init__(
        self,
        balancer: Balancer,
        upstreams: dict[Backend, Upstream],
        stats: ProxyStats,
        log: EventLog,
        *,
        connect_timeout: float,
        read_timeout: float,
        client_timeout: float,
        retry_after: int,
        access_log: bool,
        clock: Clock = time.monotonic,
        retry_budget: RetryBudget | None = None,
        exporter: SpanExporter | None = None,
    ) -> None:
        self.balancer = balancer
        self.upstreams = upstreams  # kept current by the gateway as discovery changes backends
        self.stats = stats
        self.log = log
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.client_timeout = client_timeout
        self.retry_after = str(retry_after).encode()
        self.access_log = access_log
        self.clock = clock
        self.retry_budget = retry_budget  # None: retries unbounded (RETRY_BUDGET_PERCENT=100)
        # BALANCING=least_request, and the admin API's drain, count each attempt in flight from
        # pick() until it is over.
        self._counts_in_flight = balancer.counts_in_flight
        self.exporter = exporter  # None: no span recorded (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        client_id = None
        traceparent = None
        tracestate = []
        forwarded = []
        size = 0
        hosts = 0
        nominated = None
        headers = scope["headers"]
        for name, value in headers:
            size += len(name) + len(value)
            if name in _NOT_FORWARDED:
                if name == REQUEST_ID:
                    client_id = value
                elif name == HOST:
                    hosts += 1
                elif name == b"connection":
                    nominated = value if nominated is None else nominated + b"," + value
                elif name == TRACEPARENT:
                    # Two are one invalid header: a trace starts here.
                    traceparent = value if traceparent is None else b""
                elif name == TRACESTATE:
                    tracestate.append((name, value))
                continue
            forwarded.append((name, value))
        if nominated is not None:
            # Fields the client's Connection header names are hop-by-hop (RFC 9110 7.6.1).
            hop = {token.strip().lower() for token in nominated.split(b",")}
            forwarded = [(name, value) for name, value in forwarded if name not in hop]
        request_id = accept_or_generate(client_id)
        traceparent, trace_id, continued = accept_or_start(
            traceparent, request_id, request_id is not client_id
        )
        span = None
        if self.exporter is not None:
            traceparent, span = _span_of(traceparent, continued)
        if (problem := host_and_version_problem(hosts, scope["http_version"])) is not None:
            status, detail = problem
            await send_json(send, status, {"detail": detail}, [CLOSE, (REQUEST_ID, request_id)])
            self._finish(scope, request_id, trace_id, status, None, [], started, span)
            return
        if over_limits(len(headers), size):
            await send_json(send, 431, TOO_LARGE, [(REQUEST_ID, request_id)])
            self._finish(scope, request_id, trace_id, 431, None, [], started, span)
            return
        forwarded.append((REQUEST_ID, request_id))
        forwarded.append((TRACEPARENT, traceparent))
        if continued and tracestate:
            forwarded += tracestate
        path = scope.get("raw_path") or scope["path"].encode()
        if scope["query_string"]:
            path += b"?" + scope["query_string"]

        failures: list[str] = []
        budget = self.retry_budget
        retried = False
        if budget is not None:
            budget.begin()
        try:
            tried: list[Backend] = []
            while (backend := self.balancer.pick(self.clock(), tried)) is not None:
                try:
                    if tried:
                        if budget is not None and not budget.allows(retried):
                            break  # over the retry budget: answered as if none were left
                        retried = True
                        self.stats.count_retry()
                    upstream = self.upstreams[backend]
                    attempt_started = time.perf_counter()
                    try:
                        response = await upstream.request(
                            build_request(path, backend.host_header, forwarded),
                            self.connect_timeout,
                            self.read_timeout,
                        )
                    except UpstreamError as error:
                        outcome, reason = error.kind, error.detail
                    else:
                        if response.status < 500:
                            self.balancer.record_success(backend, self.clock())
                            if response.stream is None:
                                backend.observe("success", time.perf_counter() - attempt_started)
                                await self._send_whole(send, response, request_id)
                            else:
                                await self._send_streamed(
                                    scope, receive, send, response, request_id, backend,
                                    attempt_started,
                                )  # fmt: skip
                            self._finish(
                                scope, request_id, trace_id, response.status, backend, failures,
                                started, span,
                            )  # fmt: skip
                            return
                        if response.stream is not None:
                            response.stream.close()  # an error page is not worth reading
                        outcome, reason = "http_5xx", f"HTTP {response.status}"
                    backend.observe(outcome, time.perf_counter() - attempt_started)
                    self.balancer.record_failure(backend, self.clock(), reason)
                    tried.append(backend)
                    failures.append(f"{backend.url}: {reason}")  # clients see names only
                finally:
                    if self._counts_in_flight:
                        self.balancer.done(backend)

            await self._unavailable(send, request_id, failures)
            self._finish(scope, request_id, trace_id, 503, None, failures, started, span)
        except (asyncio.CancelledError, OSError):
            # The client went away (the server cancels a request whose client closed, and
            # raises OSError from send): nothing more is owed to anyone.
            self._finish(scope, request_id, trace_id, CLIENT_CLOSED, None, failures, started, span)
            raise
        finally:
            if budget is not None:
                budget.end(retried)

    async def _send_whole(self, send: Send, response: UpstreamResponse, request_id: bytes) -> None:
        headers = _returned(response.headers, request_id)
        if response.status not in _NO_BODY:
            headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _send_streamed(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        response: UpstreamResponse,
        request_id: bytes,
        backend: Backend,
        attempt_started: float,
    ) -> None:
        """Forward a body too large to buffer as it arrives. Bytes have reached the client, so
        a failure now cannot be retried: the client connection is dropped unfinished (the server
        drops it when the app returns mid-response), never ended as if the body were whole."""
        stream = response.stream
        assert stream is not None
        headers = _returned(response.headers, request_id)
        length = _content_length(response.headers)
        if length is not None:
            headers.append((b"content-length", length))
        # The client may go away mid-body; without this the rest would still be read upstream.
        watcher = asyncio.ensure_future(_client_gone(receive))
        watcher.add_done_callback(lambda _: stream.close())
        outcome = "success"
        try:
            await send(
                {"type": "http.response.start", "status": response.status, "headers": headers}
            )
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return
            chunk = response.body
            while chunk:
                async with asyncio.timeout(self.client_timeout):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                chunk = await stream.read()
            await send({"type": "http.response.body", "body": b""})
        except UpstreamError as error:
            outcome = "aborted"
            if not watcher.done():
                self.balancer.record_failure(backend, self.clock(), error.detail)
                self.log.event(
                    "response_aborted", level="warning", request_id=request_id.decode(),
                    backend=backend.label, reason=f"{error.kind}: {error.detail}",
                )  # fmt: skip
        except TimeoutError:  # before OSError, of which it is a kind
            outcome = "aborted"
            self.log.event(
                "response_aborted", level="warning", request_id=request_id.decode(),
                backend=backend.label, reason=f"client read nothing for {self.client_timeout:g} s",
            )  # fmt: skip
        except OSError:
            outcome = "aborted"  # the client went away; the caller logs it
            raise
        finally:
            watcher.cancel()
            stream.close()
            backend.observe(outcome, time.perf_counter() - attempt_started)

    async def _unavailable(self, send: Send, request_id: bytes, failures: list[str]) -> None:
        if failures:
            detail = f"no storage service could answer: {'; '.join(failures)}"
        else:
            detail = "no storage service is available: health checks hold every one down"
        headers = [(b"retry-after", self.retry_after), (REQUEST_ID, request_id)]
        await send_json(send, 503, {"detail": detail}, headers)

    def _finish(
        self,
        scope: Scope,
        request_id: bytes,
        trace_id: bytes,
        status: int,
        backend: Backend | None,
        failures: list[str],
        started: float,
        span: "_OpenSpan | None" = None,
    ) -> None:
        self.stats.count_response(status)
        if span is not None and self.exporter is not None:
            trace, span_id, parent, start = span
            self.exporter.record(
                (trace, span_id, parent, start, time.time_ns(), scope["method"], status,
                 "" if backend is None else backend.url)
            )  # fmt: skip
        if self.access_log:
            extra: dict[str, Any] = {
                "trace_id": trace_id.decode(),
                "backend": None if backend is None else backend.url,
            }
            if backend is not None and backend.address != backend.storage.host:
                extra["address"] = backend.address
            if failures:
                extra["failed"] = failures
            log_request(
                self.log, scope["method"], scope["path"], request_id, status, started, **extra
            )
