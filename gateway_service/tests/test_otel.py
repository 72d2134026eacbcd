"""OpenTelemetry export: the gateway's span per proxied request, sent as OTLP/JSON to a collector
(here a real HTTP server in the test's event loop), its parent the client's span and itself the
storage service's parent; a collector that fails costs spans, never requests."""

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gateway_service.otel import MAX_QUEUED, SpanExporter, parse_endpoint
from gateway_service.settings import SettingsError, load_settings
from gateway_service.tests.conftest import Stack, StackFactory
from gateway_service.tests.fakes import header
from gateway_service.tests.test_server import gateway, get, wait_until

CLIENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@dataclass
class Collector:
    """An OTLP/HTTP receiver: keeps each request's path and JSON body; answers `status`."""

    status: int = 200
    requests: list[tuple[str, Any]] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        body = await reader.readexactly(length)
        self.requests.append((head.split()[1].decode(), json.loads(body)))
        writer.write(f"HTTP/1.1 {self.status} X\r\ncontent-length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    def spans(self) -> list[dict[str, Any]]:
        return [
            span
            for _, document in self.requests
            for resource in document["resourceSpans"]
            for scope in resource["scopeSpans"]
            for span in scope["spans"]
        ]


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    receiver = Collector()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    async with server:
        yield receiver


def exporting(make_stack: StackFactory, collector: Collector) -> Stack:
    return make_stack(
        otel_exporter_otlp_traces_endpoint=f"http://127.0.0.1:{collector.port}/v1/traces",
        otel_service_name="edge-gateway",
    )


def exporter_of(stack: Stack) -> SpanExporter:
    assert stack.gateway.exporter is not None
    return stack.gateway.exporter


@pytest.mark.anyio
class TestSpans:
    async def test_a_request_with_a_client_span_is_its_child_and_the_storages_parent(
        self, make_stack: StackFactory, collector: Collector
    ) -> None:
        stack = exporting(make_stack, collector)
        await stack.client.get("/data", headers={"traceparent": CLIENT.decode()})
        await exporter_of(stack).flush()
        [(path, document)] = collector.requests
        assert path == "/v1/traces"
        resource = document["resourceSpans"][0]["resource"]
        assert resource["attributes"] == [
            {"key": "service.name", "value": {"stringValue": "edge-gateway"}}
        ]
        [span] = collector.spans()
        assert span["traceId"] == CLIENT[3:35].decode()
        assert span["parentSpanId"] == CLIENT[36:52].decode()
        assert re.fullmatch(r"[0-9a-f]{16}", span["spanId"])
        assert span["spanId"] != span["parentSpanId"]
        assert (span["name"], span["kind"], span["status"]) == ("GET /data", 2, {"code": 0})
        assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"]) > 0
        attributes = {a["key"]: a["value"] for a in span["attributes"]}
        assert attributes["http.response.status_code"] == {"intValue": "200"}
        assert attributes["server.address"] == {"stringValue": "http://storage1:8000"}
        sent = stack.storage("storage1").data_requests[0]
        assert header(sent, b"traceparent") == (CLIENT[:36] + span["spanId"].encode() + CLIENT[52:])

    async def test_a_request_without_one_is_a_root_span(
        self, make_stack: StackFactory, collector: Collector
    ) -> None:
        stack = exporting(make_stack, collector)
        response = await stack.client.get("/data")
        await exporter_of(stack).flush()
        [span] = collector.spans()
        assert "parentSpanId" not in span
        assert span["traceId"] == response.headers["x-request-id"]
        sent = header(stack.storage("storage1").data_requests[0], b"traceparent")
        assert sent == f"00-{span['traceId']}-{span['spanId']}-01".encode()

    async def test_a_failed_request_is_an_error_span(
        self, make_stack: StackFactory, collector: Collector
    ) -> None:
        stack = exporting(make_stack, collector)
        for storage in stack.storages:
            storage.behaviour = 500
        assert (await stack.client.get("/data")).status_code == 503
        await exporter_of(stack).flush()
        [span] = collector.spans()
        assert span["status"] == {"code": 2}

    async def test_a_trace_the_client_does_not_sample_goes_on_untouched_and_unrecorded(
        self, make_stack: StackFactory, collector: Collector
    ) -> None:
        stack = exporting(make_stack, collector)
        unsampled = CLIENT[:-2] + b"00"
        await stack.client.get("/data", headers={"traceparent": unsampled.decode()})
        await exporter_of(stack).flush()
        assert collector.requests == []
        sent = stack.storage("storage1").data_requests[0]
        assert header(sent, b"traceparent") == unsampled

    async def test_many_requests_go_in_one_batch(
        self, make_stack: StackFactory, collector: Collector
    ) -> None:
        stack = exporting(make_stack, collector)
        for _ in range(20):
            await stack.client.get("/data")
        await exporter_of(stack).flush()
        assert len(collector.requests) == 1
        assert len({span["spanId"] for span in collector.spans()}) == 20

    async def test_off_by_default(self, stack: Stack) -> None:
        assert stack.gateway.exporter is None


@pytest.mark.anyio
class TestCollectorTrouble:
    async def test_a_refusing_collector_costs_the_batch_logged_once_never_a_request(
        self, make_stack: StackFactory, collector: Collector
    ) -> None:
        stack = exporting(make_stack, collector)
        collector.status = 503
        for _ in range(3):
            assert (await stack.client.get("/data")).status_code == 200
            await exporter_of(stack).flush()
        stack.gateway.log.flush()
        failures = [line for line in stack.logs.text.splitlines() if "trace_export_failed" in line]
        assert len(failures) == 1
        assert json.loads(failures[0])["error"] == "HTTP 503"

    async def test_a_collector_that_is_not_there(self, make_stack: StackFactory) -> None:
        stack = make_stack(otel_exporter_otlp_traces_endpoint="http://127.0.0.1:9/v1/traces")
        assert (await stack.client.get("/data")).status_code == 200
        await exporter_of(stack).flush()
        stack.gateway.log.flush()
        assert '"event":"trace_export_failed"' in stack.logs.text

    async def test_the_queue_is_bounded(self, make_stack: StackFactory) -> None:
        stack = make_stack(otel_exporter_otlp_traces_endpoint="http://127.0.0.1:9/v1/traces")
        exporter = exporter_of(stack)
        for _ in range(MAX_QUEUED + 5):
            exporter.record((b"a" * 32, b"b" * 16, b"", 1, 2, "GET", 200, ""))
        assert (len(exporter.queued), exporter.dropped) == (MAX_QUEUED, 5)


class TestEndpointSetting:
    @pytest.mark.parametrize(
        "bad",
        ["https://collector:4318/v1/traces", "collector:4318", "http://u:p@c:1/v1", "http://c:x/"],
    )
    def test_a_bad_endpoint_is_one_line(self, bad: str) -> None:
        with pytest.raises(SettingsError) as error:
            load_settings(storage_services="http://a", otel_exporter_otlp_traces_endpoint=bad)
        assert f"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT={bad!r}" in str(error.value)
        assert "\n" not in str(error.value)

    def test_a_good_one(self) -> None:
        assert parse_endpoint("http://collector:4318/v1/traces") == (
            "collector",
            4318,
            "/v1/traces",
        )


class ThreadedCollector:
    """An OTLP/HTTP receiver on a thread, for a gateway run as processes."""

    def __init__(self) -> None:
        self.documents: list[Any] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                collector.documents.append(json.loads(body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def span_count(self) -> int:
        return sum(
            len(scope["spans"])
            for document in self.documents
            for resource in document["resourceSpans"]
            for scope in resource["scopeSpans"]
        )


@pytest.mark.slow
def test_every_worker_exports_its_spans(tmp_path: Path) -> None:
    receiver = ThreadedCollector()
    try:
        with gateway(
            tmp_path,
            workers=3,
            health_interval=0,
            otel_exporter_otlp_traces_endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces",
        ) as gw:
            for _ in range(30):
                assert get(gw.port, "/data")[0] == 200
            wait_until("30 spans exported", lambda: receiver.span_count() == 30, 10)
            assert gw.events("trace_export_failed") == []
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
