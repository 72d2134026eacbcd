"""The hot path: `GET /data` (and `HEAD`), proxied round-robin with retries.

A raw ASGI callable rather than a FastAPI route: routing, dependency injection and response
classes cost more CPU than the whole proxying (docs/performance.md). Per request this does one
pass over the headers, a round-robin pick per attempt, one upstream exchange, two ASGI sends and
one log line; counters are plain ints read by /metrics at scrape time.
"""

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from gateway_service.backends import Backend, Balancer
from gateway_service.clock import Clock
from gateway_service.limits import over_limits
from gateway_service.logs import EventLog
from gateway_service.metrics import ProxyStats
from gateway_service.request_id import HEADER as REQUEST_ID
from gateway_service.request_id import accept_or_generate
from gateway_service.responses import send_json
from gateway_service.upstream import UpstreamError, build_request
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
        b"host", b"content-length", b"expect", REQUEST_ID,
    }
)  # fmt: skip
TOO_LARGE = {"detail": "request header fields too large"}
# uvicorn adds its own date and server headers; content-length is recomputed.
_NOT_RETURNED = _NOT_FORWARDED | {b"date", b"server"}


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
        retry_after: int,
        access_log: bool,
        clock: Clock = time.monotonic,
    ) -> None:
        self.balancer = balancer
        self.targets = {
            backend: (upstream, backend.storage.host_header.encode())
            for backend, upstream in upstreams.items()
        }
        self.stats = stats
        self.log = log
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry_after = str(retry_after).encode()
        self.access_log = access_log
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        client_id = None
        forwarded = []
        size = 0
        headers = scope["headers"]
        for name, value in headers:
            size += len(name) + len(value)
            if name in _NOT_FORWARDED:
                if name == REQUEST_ID:
                    client_id = value
                continue
            forwarded.append((name, value))
        request_id = accept_or_generate(client_id)
        if over_limits(len(headers), size):
            await send_json(send, 431, TOO_LARGE, [(REQUEST_ID, request_id)])
            self._finish(scope, request_id, 431, None, [], started)
            return
        forwarded.append((REQUEST_ID, request_id))
        path = scope.get("raw_path") or scope["path"].encode()
        if scope["query_string"]:
            path += b"?" + scope["query_string"]

        failures: list[str] = []
        tried: list[Backend] = []
        while (backend := self.balancer.pick(self.clock(), tried)) is not None:
            upstream, host = self.targets[backend]
            if tried:
                self.stats.retries += 1
            attempt_started = time.perf_counter()
            try:
                response = await upstream.request(
                    build_request(path, host, forwarded), self.connect_timeout, self.read_timeout
                )
            except UpstreamError as error:
                outcome, reason = error.kind, error.detail
            else:
                if response.status < 500:
                    backend.observe("success", time.perf_counter() - attempt_started)
                    self.balancer.record_success(backend)
                    returned = [
                        (name, value)
                        for name, value in response.headers
                        if name.lower() not in _NOT_RETURNED
                    ]
                    returned.append((b"content-length", str(len(response.body)).encode()))
                    returned.append((REQUEST_ID, request_id))
                    await send(
                        {
                            "type": "http.response.start",
                            "status": response.status,
                            "headers": returned,
                        }
                    )
                    await send({"type": "http.response.body", "body": response.body})
                    self._finish(scope, request_id, response.status, backend, failures, started)
                    return
                outcome, reason = "http_5xx", f"HTTP {response.status}"
            backend.observe(outcome, time.perf_counter() - attempt_started)
            self.balancer.record_failure(backend, self.clock(), reason)
            tried.append(backend)
            failures.append(f"{backend.url}: {reason}")

        await self._unavailable(send, request_id, failures)
        self._finish(scope, request_id, 503, None, failures, started)

    async def _unavailable(self, send: Send, request_id: bytes, failures: list[str]) -> None:
        if failures:
            detail = f"no storage service could answer: {'; '.join(failures)}"
        else:
            total = len(self.balancer.backends)
            detail = f"no storage service available: all {total} are out of rotation"
        headers = [(b"retry-after", self.retry_after), (REQUEST_ID, request_id)]
        await send_json(send, 503, {"detail": detail}, headers)

    def _finish(
        self,
        scope: Scope,
        request_id: bytes,
        status: int,
        backend: Backend | None,
        failures: list[str],
        started: float,
    ) -> None:
        self.stats.count_response(status)
        if self.access_log:
            extra: dict[str, Any] = {"backend": backend.url if backend is not None else None}
            if failures:
                extra["failed"] = failures
            log_request(self.log, scope, request_id, status, started, **extra)


def log_request(
    log: EventLog, scope: Scope, request_id: bytes, status: int, started: float, **extra: Any
) -> None:
    """The one access line per request, for proxied and non-proxied requests alike."""
    log.event(
        "request",
        request_id=request_id.decode(),
        method=scope["method"],
        path=scope["path"],
        status=status,
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        **extra,
    )
