"""W3C traceparent: kept when valid, started when absent or invalid, sent to the storage service
and written in the access log line."""

import json
import re

import pytest

from gateway_service.tests.conftest import Stack
from gateway_service.tests.fakes import header
from gateway_service.trace_context import accept_or_start

VALID = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE = b"4bf92f3577b34da6a3ce929d0e0e4736"
STARTED = re.compile(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-01")


class TestAcceptOrStart:
    def test_a_valid_one_goes_on_unchanged(self) -> None:
        assert accept_or_start(VALID, b"rid") == (VALID, TRACE, True)

    def test_a_later_version_is_cut_down_to_its_00_fields(self) -> None:
        later = b"cc" + VALID[2:] + b"-what-comes-later"
        assert accept_or_start(later, b"rid") == (VALID, TRACE, True)

    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param(b"", id="empty"),
            pytest.param(b"ff" + VALID[2:], id="version-ff"),
            pytest.param(VALID + b"-extra", id="version-00-with-more"),
            pytest.param(VALID.upper(), id="uppercase"),
            pytest.param(b"00-" + b"0" * 32 + VALID[35:], id="zero-trace-id"),
            pytest.param(VALID[:36] + b"0" * 16 + b"-01", id="zero-parent-id"),
            pytest.param(VALID[:-1], id="short-flags"),
            pytest.param(VALID.replace(b"-", b"_"), id="separators"),
            pytest.param(b"00-4bf92f-00f067aa0ba902b7-01", id="short-trace-id"),
        ],
    )
    def test_an_invalid_one_is_replaced(self, bad: bytes) -> None:
        traceparent, trace_id, kept = accept_or_start(bad, b"rid")
        assert not kept
        assert STARTED.fullmatch(traceparent)
        assert traceparent[3:35] == trace_id != TRACE

    def test_a_trace_started_here_takes_a_generated_request_id_as_its_trace_id(self) -> None:
        request_id = b"0af7651916cd43dd8448eb211c80319c"
        for generated in (True, False):
            traceparent, trace_id, kept = accept_or_start(None, request_id, generated)
            assert (trace_id, kept) == (request_id, False)
            assert STARTED.fullmatch(traceparent)
        # Made here, its random low half is the span id: nothing else to draw.
        assert accept_or_start(None, request_id, True)[0] == (
            b"00-0af7651916cd43dd8448eb211c80319c-8448eb211c80319c-01"
        )

    def test_a_client_request_id_that_is_no_trace_id_gets_a_random_one(self) -> None:
        ids = {accept_or_start(None, b"order-17")[1] for _ in range(5)}
        assert len(ids) == 5
        assert all(re.fullmatch(rb"[0-9a-f]{32}", trace_id) for trace_id in ids)

    def test_span_ids_differ_per_request(self) -> None:
        spans = {accept_or_start(None, b"rid")[0][36:52] for _ in range(20)}
        assert len(spans) == 20


@pytest.mark.anyio
class TestThroughTheGateway:
    async def test_the_clients_traceparent_and_tracestate_reach_the_storage_service(
        self, stack: Stack
    ) -> None:
        await stack.client.get(
            "/data", headers={"traceparent": VALID.decode(), "tracestate": "a=1"}
        )
        sent = stack.storage("storage1").data_requests[0]
        assert header(sent, b"traceparent") == VALID
        assert header(sent, b"tracestate") == b"a=1"

    async def test_without_one_a_trace_starts_with_the_request_id(self, stack: Stack) -> None:
        response = await stack.client.get("/data")
        sent = stack.storage("storage1").data_requests[0]
        traceparent = header(sent, b"traceparent")
        assert traceparent is not None
        assert STARTED.fullmatch(traceparent)
        assert traceparent[3:35].decode() == response.headers["x-request-id"]

    async def test_an_invalid_one_is_replaced_and_its_tracestate_dropped(
        self, stack: Stack
    ) -> None:
        await stack.client.get("/data", headers={"traceparent": "nonsense", "tracestate": "a=1"})
        sent = stack.storage("storage1").data_requests[0]
        traceparent = header(sent, b"traceparent")
        assert traceparent is not None
        assert STARTED.fullmatch(traceparent)
        assert header(sent, b"tracestate") is None

    async def test_two_traceparent_headers_start_a_trace(self, stack: Stack) -> None:
        await stack.client.get(
            "/data", headers=[("traceparent", VALID.decode()), ("traceparent", VALID.decode())]
        )
        sent = stack.storage("storage1").data_requests[0]
        assert sent.count(b"traceparent:") == 1
        assert TRACE not in sent

    async def test_the_access_line_carries_the_trace_id(self, stack: Stack) -> None:
        await stack.client.get("/data", headers={"traceparent": VALID.decode()})
        stack.storage("storage2").behaviour = 500
        await stack.client.get("/data", headers={"traceparent": VALID.decode()})  # a retry
        stack.gateway.log.flush()
        lines = [json.loads(line) for line in stack.logs.text.splitlines()]
        requests = [line for line in lines if line["event"] == "request"]
        assert [line["trace_id"] for line in requests] == [TRACE.decode()] * 2
        assert "failed" in requests[1]
