"""OpenTelemetry export of spans: off unless OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.

With an endpoint set, each proxied request is a server span of the gateway: its parent is the
client's span when the request came with a valid, sampled `traceparent`, and the storage
service gets the gateway's span as its parent (gateway_service/trace_context.py). Spans are
kept as tuples while requests run and sent once a second by each worker, as OTLP/HTTP with a
JSON body (the encoding every OpenTelemetry Collector's `otlphttp` receiver takes), to the
endpoint as written (`http://collector:4318/v1/traces`).

Written here rather than with the OpenTelemetry SDK: the SDK's span objects, processors and
exporter cost several microseconds of Python per span, a large share of the 40 us a proxied
request costs in all; a tuple per request and one hand-formatted JSON document per second cost
about a microsecond (docs/admin-api.md has the figures). A collector that is down or slow costs
the batch (logged once a minute, with how many spans were dropped), never a request: a worker
holds at most `MAX_QUEUED` spans.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable
from json.encoder import encode_basestring_ascii as _string
from urllib.parse import urlsplit

from gateway_service import __version__
from gateway_service.logs import EventLog

MAX_QUEUED = 8192
EXPORT_INTERVAL_SECONDS = 1.0
EXPORT_TIMEOUT_SECONDS = 2.0
FAILURE_LOG_SECONDS = 60.0
SPAN_KIND_SERVER = 2
STATUS_UNSET = 0
STATUS_ERROR = 2

# trace id, span id, parent span id (b"" for a root), start and end (ns since the epoch),
# method, status, the backend that answered ("" for none).
Span = tuple[bytes, bytes, bytes, int, int, str, int, str]


def parse_endpoint(url: str) -> tuple[str, int, str]:
    """(host, port, path) of an `http://host:port/path` endpoint; ValueError saying why not."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{url!r} must be http://host[:port]/path (plain HTTP)")
    if parts.username is not None or parts.query or parts.fragment:
        raise ValueError(f"{url!r} must carry no credentials, query or fragment")
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError(f"{url!r} has an invalid port") from None
    return parts.hostname, port, parts.path or "/"


class SpanExporter:
    """A worker's spans, queued and sent in batches."""

    def __init__(
        self,
        endpoint: str,
        service_name: str,
        log: EventLog,
        *,
        interval: float = EXPORT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.port, self.path = parse_endpoint(endpoint)
        self.endpoint = endpoint
        self.log = log
        self.interval = interval
        self.clock = clock
        self.queued: list[Span] = []
        self.dropped = 0  # spans lost since the last failure was logged
        self.exported = 0
        self._failure_logged_at = -FAILURE_LOG_SECONDS
        self._task: asyncio.Task[None] | None = None
        self._resource = (
            '{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":'
            f'{_string(service_name)}}}}}]}},"scopeSpans":[{{"scope":{{"name":"gateway_service",'
            f'"version":{_string(__version__)}}},"spans":['
        )

    def record(self, span: Span) -> None:
        if len(self.queued) < MAX_QUEUED:
            self.queued.append(span)
        else:
            self.dropped += 1

    def body(self, spans: list[Span]) -> bytes:
        """The OTLP/JSON document for `spans`."""
        parts = []
        for trace_id, span_id, parent, start, end, method, status, backend in spans:
            parent_field = f'"parentSpanId":"{parent.decode()}",' if parent else ""
            backend_field = (
                f',{{"key":"server.address","value":{{"stringValue":{_string(backend)}}}}}'
                if backend
                else ""
            )
            parts.append(
                f'{{"traceId":"{trace_id.decode()}","spanId":"{span_id.decode()}",{parent_field}'
                f'"name":"{method} /data","kind":{SPAN_KIND_SERVER},'
                f'"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","attributes":['
                f'{{"key":"http.request.method","value":{{"stringValue":"{method}"}}}},'
                f'{{"key":"http.route","value":{{"stringValue":"/data"}}}},'
                f'{{"key":"http.response.status_code","value":{{"intValue":"{status}"}}}}'
                f'{backend_field}],"status":{{"code":'
                f"{STATUS_ERROR if status >= 500 else STATUS_UNSET}}}}}"
            )
        return ('{"resourceSpans":[' + self._resource + ",".join(parts) + "]}]}]}").encode()

    async def flush(self) -> None:
        """Send what is queued, in one request; on failure, drop it and say so (rarely)."""
        spans, self.queued = self.queued, []
        if not spans:
            return
        try:
            async with asyncio.timeout(EXPORT_TIMEOUT_SECONDS):
                status = await self._post(self.body(spans))
        except (OSError, TimeoutError, ValueError) as error:
            self._failed(len(spans), str(error) or type(error).__name__)
            return
        if 200 <= status < 300:
            self.exported += len(spans)
        else:
            self._failed(len(spans), f"HTTP {status}")

    async def _post(self, body: bytes) -> int:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(
                f"POST {self.path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
                f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
                "connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            line = await reader.readline()
            fields = line.split()
            if len(fields) < 2 or not fields[1].isdigit():
                raise ValueError(f"not an HTTP status line: {line[:80]!r}")
            return int(fields[1])
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _failed(self, count: int, reason: str) -> None:
        self.dropped += count
        now = self.clock()
        if now - self._failure_logged_at >= FAILURE_LOG_SECONDS:
            self._failure_logged_at = now
            self.log.event(
                "trace_export_failed",
                level="warning",
                endpoint=self.endpoint,
                error=reason,
                spans_dropped=self.dropped,
            )
            self.dropped = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="trace export")

    async def stop(self) -> None:
        """Stop, sending what is left once."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()
