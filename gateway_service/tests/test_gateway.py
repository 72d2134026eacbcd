"""The gateway's behaviour as a client sees it, with storage services faked in-process."""

import asyncio
import json
import secrets
from collections import Counter

import pytest

from gateway_service import __version__
from gateway_service.proxy import _returned
from gateway_service.settings import GatewaySettings
from gateway_service.tests.conftest import Stack, StackFactory
from gateway_service.tests.fakes import eventually, header
from gateway_service.upstream import UpstreamError

pytestmark = pytest.mark.anyio

FAILURES = [
    pytest.param(UpstreamError("connect_refused", "connection refused"), id="refused"),
    pytest.param(
        UpstreamError("connect_timeout", "no connection within 1 s"), id="connect-timeout"
    ),
    pytest.param(UpstreamError("read_timeout", "no response within 5 s"), id="read-timeout"),
    pytest.param(UpstreamError("reset", "connection closed before a response"), id="reset"),
    pytest.param(UpstreamError("protocol_error", "bad response"), id="protocol-error"),
    pytest.param(500, id="http-500"),
    pytest.param(502, id="http-502"),
    pytest.param(503, id="http-503"),
    pytest.param(504, id="http-504"),
]


class TestRoundRobin:
    async def test_thirty_requests_give_exactly_ten_each_in_strict_rotation(
        self, stack: Stack
    ) -> None:
        served = await stack.instances(30)
        assert served == ["storage1", "storage2", "storage3"] * 10

    async def test_an_unavailable_service_is_skipped_and_the_rest_share_evenly(
        self, stack: Stack
    ) -> None:
        stack.gateway.balancer.backends[1].active_up = False
        served = await stack.instances(10)
        assert served == ["storage1", "storage3"] * 5
        assert stack.storage("storage2").data_requests == []

    async def test_body_and_end_to_end_headers_pass_through(self, stack: Stack) -> None:
        response = await stack.client.get("/data")
        assert response.json() == {"instance": "storage1", "items": []}
        assert response.headers["x-storage"] == "kept"
        assert response.headers["content-type"] == "application/json"

    async def test_query_string_and_client_headers_are_forwarded(self, stack: Stack) -> None:
        await stack.client.get("/data?page=2", headers={"accept": "application/json"})
        sent = stack.storage("storage1").data_requests[0]
        assert sent.startswith(b"GET /data?page=2 HTTP/1.1\r\n")
        assert header(sent, b"host") == b"storage1:8000"
        assert header(sent, b"accept") == b"application/json"

    async def test_head_is_proxied(self, stack: Stack) -> None:
        response = await stack.client.head("/data")
        assert response.status_code == 200
        assert stack.storage("storage1").data_requests

    async def test_a_4xx_from_storage_is_passed_through_not_retried(self, stack: Stack) -> None:
        stack.storage("storage1").behaviour = 404
        response = await stack.client.get("/data")
        assert response.status_code == 404
        assert stack.storage("storage2").data_requests == []


class TestRetries:
    @pytest.mark.parametrize("failure", FAILURES)
    async def test_a_failed_attempt_is_retried_on_the_next_service(
        self, stack: Stack, failure: int | UpstreamError
    ) -> None:
        stack.storage("storage1").behaviour = failure
        response = await stack.client.get("/data")
        assert response.status_code == 200
        assert response.json()["instance"] == "storage2"

    @pytest.mark.parametrize("failure", FAILURES)
    async def test_the_failed_service_is_taken_out_of_rotation(
        self, stack: Stack, failure: int | UpstreamError
    ) -> None:
        stack.storage("storage1").behaviour = failure
        await stack.client.get("/data")
        assert await stack.instances(4) == ["storage3", "storage2", "storage3", "storage2"]
        assert len(stack.storage("storage1").data_requests) == 1

    async def test_each_service_is_tried_at_most_once_per_request(self, stack: Stack) -> None:
        for storage in stack.storages:
            storage.behaviour = 500
        response = await stack.client.get("/data")
        assert response.status_code == 503
        assert [len(s.data_requests) for s in stack.storages] == [1, 1, 1]

    async def test_retries_of_a_dying_service_spread_over_all_survivors(self, stack: Stack) -> None:
        dying = stack.storage("storage2")
        dying.gate = asyncio.Event()
        dying.behaviour = UpstreamError("reset", "connection closed before a response")
        burst = [asyncio.create_task(stack.client.get("/data")) for _ in range(30)]
        await eventually(lambda: len(dying.data_requests) == 10)
        dying.gate.set()
        served = Counter([(await request).json()["instance"] for request in burst])
        assert served == {"storage1": 15, "storage3": 15}

    async def test_a_client_never_sees_a_failure_while_one_service_answers(
        self, stack: Stack
    ) -> None:
        stack.storage("storage1").behaviour = UpstreamError("connect_refused", "refused")
        stack.storage("storage2").behaviour = 503
        assert await stack.instances(6) == ["storage3"] * 6


class TestAllDown:
    async def test_503_with_json_detail_and_retry_after(self, make_stack: StackFactory) -> None:
        stack = make_stack(retry_after=7)
        for storage in stack.storages:
            storage.behaviour = UpstreamError("connect_refused", "connection refused")
        response = await stack.client.get("/data")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/json"
        assert response.headers["retry-after"] == "7"
        detail = response.json()["detail"]
        assert "http://storage1:8000: connection refused" in detail
        assert "http://storage3:8000: connection refused" in detail

    async def test_every_service_is_tried_anyway_when_none_is_in_rotation(
        self, stack: Stack
    ) -> None:
        """Panic mode: passive bans say all are down, but one answers, so the client gets it."""
        for backend in stack.gateway.balancer.backends:
            backend.banned_until = stack.clock() + 10
        stack.storage("storage1").behaviour = UpstreamError("connect_refused", "refused")
        response = await stack.client.get("/data")
        assert response.status_code == 200
        assert response.json()["instance"] == "storage2"

    async def test_services_the_checker_holds_down_are_not_tried_until_a_probe_passes(
        self, stack: Stack
    ) -> None:
        """A full outage the checker has seen answers 503 at once, without waiting out a
        connect timeout per service; the first to pass a probe serves the next request."""
        for backend in stack.gateway.balancer.backends:
            backend.active_up = False
        response = await stack.client.get("/data")
        assert response.status_code == 503
        assert "health checks hold every one down" in response.json()["detail"]
        assert all(storage.data_requests == [] for storage in stack.storages)
        await stack.gateway.health.probe(stack.gateway.balancer.backends[1])
        response = await stack.client.get("/data")
        assert response.status_code == 200
        assert response.json()["instance"] == "storage2"

    async def test_a_service_that_recovers_while_all_are_banned_serves_at_once(
        self, stack: Stack
    ) -> None:
        for storage in stack.storages:
            storage.behaviour = 500
        response = await stack.client.get("/data")
        assert response.status_code == 503
        assert all(len(s.data_requests) == 1 for s in stack.storages)
        for storage in stack.storages:
            storage.behaviour = 200
        # No time passes: the passive bans of FAIL_TIMEOUT are all still running.
        assert (await stack.client.get("/data")).status_code == 200
        status = (await stack.client.get("/status")).json()
        assert status["available"] == 1

    async def test_banned_services_stay_out_while_another_is_in_rotation(
        self, stack: Stack
    ) -> None:
        stack.storage("storage1").behaviour = 500
        stack.storage("storage2").behaviour = 500
        await stack.instances(2)  # each fails once, is banned, and the request goes on
        stack.storage("storage1").behaviour = 200
        stack.storage("storage2").behaviour = 200
        assert await stack.instances(4) == ["storage3"] * 4


class TestRequestId:
    async def test_a_valid_client_id_is_forwarded_and_echoed(self, stack: Stack) -> None:
        response = await stack.client.get("/data", headers={"x-request-id": "abc-123.x:y_z"})
        assert response.headers["x-request-id"] == "abc-123.x:y_z"
        sent = stack.storage("storage1").data_requests[0]
        assert header(sent, b"x-request-id") == b"abc-123.x:y_z"

    @pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "semi;colon", 'quote"'])
    async def test_an_invalid_client_id_is_replaced(self, stack: Stack, bad: str) -> None:
        response = await stack.client.get("/data", headers={"x-request-id": bad})
        generated = response.headers["x-request-id"]
        assert generated != bad
        assert len(generated) == 32
        assert header(stack.storage("storage1").data_requests[0], b"x-request-id") == (
            generated.encode()
        )

    async def test_ids_are_generated_uniquely_when_absent(self, stack: Stack) -> None:
        ids = {(await stack.client.get("/data")).headers["x-request-id"] for _ in range(5)}
        assert len(ids) == 5

    async def test_other_endpoints_echo_the_id_too(self, stack: Stack) -> None:
        response = await stack.client.get("/status", headers={"x-request-id": "s-1"})
        assert response.headers["x-request-id"] == "s-1"

    async def test_the_503_carries_the_id(self, stack: Stack) -> None:
        for storage in stack.storages:
            storage.behaviour = UpstreamError("connect_refused", "refused")
        response = await stack.client.get("/data", headers={"x-request-id": "down-1"})
        assert response.status_code == 503
        assert response.headers["x-request-id"] == "down-1"


class TestAccessLog:
    async def test_one_json_line_per_request_with_id_backend_outcome_latency(
        self, stack: Stack
    ) -> None:
        stack.storage("storage1").behaviour = 500
        await stack.client.get("/data", headers={"x-request-id": "log-1"})
        stack.gateway.log.flush()
        lines = [json.loads(line) for line in stack.logs.text.splitlines()]
        requests = [line for line in lines if line["event"] == "request"]
        assert len(requests) == 1
        (line,) = requests
        assert line["request_id"] == "log-1"
        assert line["status"] == 200
        assert line["backend"] == "http://storage2:8000"
        assert line["failed"] == ["http://storage1:8000: HTTP 500"]
        assert line["latency_ms"] >= 0

    async def test_backend_state_changes_are_logged(self, stack: Stack) -> None:
        stack.storage("storage1").behaviour = 500
        await stack.client.get("/data")
        stack.gateway.log.flush()
        events = [json.loads(line) for line in stack.logs.text.splitlines()]
        down = [e for e in events if e["event"] == "backend_down"]
        assert down == [
            {
                **down[0],
                "backend": "http://storage1:8000",
                "address": "10.0.0.1",
                "reason": "passive: HTTP 500",
            }
        ]

    async def test_access_log_can_be_turned_off(self, make_stack: StackFactory) -> None:
        stack = make_stack(access_log=False)
        await stack.client.get("/data")
        stack.gateway.log.flush()
        assert '"event":"request"' not in stack.logs.text


class TestOwnEndpoints:
    async def test_health_is_ok_even_when_every_storage_is_down(self, stack: Stack) -> None:
        for backend in stack.gateway.balancer.backends:
            backend.active_up = False
        response = await stack.client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "version": __version__}

    @pytest.mark.parametrize("path", ["/health", "/status"])
    async def test_own_state_is_never_cached(self, stack: Stack, path: str) -> None:
        """A cache that kept /health or /status would report a past state as the present."""
        response = await stack.client.get(path)
        assert response.headers["cache-control"] == "no-store"

    async def test_status_lists_every_service_with_its_state(self, stack: Stack) -> None:
        await stack.instances(2)
        stack.storage("storage3").behaviour = 500
        await stack.client.get("/data")
        health = stack.gateway.health
        await health.probe(stack.gateway.balancer.backends[0])
        response = await stack.client.get("/status")
        assert response.status_code == 200
        document = response.json()
        assert document["available"] == 2
        assert document["total"] == 3
        first, second, third = document["services"]
        assert first["url"] == "http://storage1:8000"
        assert first["name"] == "storage1"
        assert first["address"] == "10.0.0.1:8000"
        assert first["status"] == "available"
        assert first["last_checked"] == "2026-11-24T06:00:00.000Z"
        assert first["last_check_latency_ms"] == 0.0
        assert first["requests_served"] == 2
        assert second["last_checked"] is None
        assert second["last_check_latency_ms"] is None
        assert third["status"] == "unavailable"
        assert third["consecutive_failures"] == 1

    async def test_status_shows_the_settings_in_effect(self, make_stack: StackFactory) -> None:
        token = secrets.token_urlsafe(24)
        stack = make_stack(health_interval=7, admin_port=9001, admin_token=token)
        response = await stack.client.get("/status")
        settings = response.json()["settings"]
        assert settings["HEALTH_INTERVAL"] == 7
        assert settings["DISCOVERY_INTERVAL"] == 5
        assert settings["STORAGE_SERVICES"] == [f"http://storage{i}:8000" for i in (1, 2, 3)]
        assert settings["ADMIN_PORT"] == 9001
        # Every setting but the admin token, which the public port never shows.
        assert set(settings) == {name.upper() for name in GatewaySettings.model_fields} - {
            "ADMIN_TOKEN"
        }
        assert token not in response.text

    async def test_metrics_count_requests_by_backend_and_outcome(self, stack: Stack) -> None:
        stack.storage("storage1").behaviour = 500
        await stack.instances(3)
        text = (await stack.client.get("/metrics")).text
        one, two, three = (
            f'address="10.0.0.{i}",backend="http://storage{i}:8000"' for i in (1, 2, 3)
        )
        assert f'gateway_upstream_requests_total{{{one},outcome="http_5xx"}} 1.0' in text
        assert f'gateway_upstream_requests_total{{{two},outcome="success"}} 2.0' in text
        assert 'gateway_responses_total{code="200"} 3.0' in text
        assert "gateway_retries_total 1.0" in text
        assert f"gateway_backend_up{{{one}}} 0.0" in text
        assert f"gateway_upstream_latency_seconds_count{{{three}}} 1.0" in text

    async def test_other_methods_on_data_get_405(self, stack: Stack) -> None:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            response = await stack.client.request(method, "/data")
            assert response.status_code == 405
            assert response.json() == {"detail": "Method Not Allowed"}
        assert all(s.data_requests == [] for s in stack.storages)

    async def test_unknown_paths_get_404(self, stack: Stack) -> None:
        response = await stack.client.get("/nope")
        assert response.status_code == 404
        assert response.json() == {"detail": "Not Found"}


class TestHeaderLimits:
    @pytest.mark.parametrize("path", ["/data", "/status"])
    async def test_a_huge_header_gets_431_and_is_not_forwarded(
        self, stack: Stack, path: str
    ) -> None:
        response = await stack.client.get(path, headers={"x-big": "a" * 65536})
        assert response.status_code == 431
        assert response.json() == {"detail": "request header fields too large"}
        assert all(s.data_requests == [] for s in stack.storages)

    async def test_too_many_headers_get_431(self, stack: Stack) -> None:
        headers = [(f"x-h{i}", "v") for i in range(150)]
        response = await stack.client.get("/data", headers=headers)
        assert response.status_code == 431
        assert all(s.data_requests == [] for s in stack.storages)

    async def test_ordinary_requests_after_a_rejected_one_still_work(self, stack: Stack) -> None:
        await stack.client.get("/data", headers={"x-big": "a" * 65536})
        assert (await stack.client.get("/data")).status_code == 200


class TestTrailingSlash:
    @pytest.mark.parametrize("path", ["/data/", "/status/", "/health/", "/metrics/"])
    async def test_a_trailing_slash_is_404_json_not_a_redirect(
        self, stack: Stack, path: str
    ) -> None:
        response = await stack.client.get(path, headers={"host": "attacker.example"})
        assert response.status_code == 404
        assert response.json() == {"detail": "Not Found"}
        assert "location" not in response.headers
        assert all(s.data_requests == [] for s in stack.storages)


class TestOpenAPI:
    async def test_data_is_documented_as_the_proxy_answers_it(self, stack: Stack) -> None:
        document = (await stack.client.get("/openapi.json")).json()
        data = document["paths"]["/data"]
        assert list(data) == ["get"]
        responses = data["get"]["responses"]
        assert set(responses) >= {"200", "400", "431", "503"}
        body = responses["200"]["content"]["application/json"]["schema"]
        assert body["properties"]["instance"] == {"type": "string"}
        assert body["properties"]["items"]["type"] == "array"
        assert set(body["required"]) == {"instance", "items"}
        unavailable = responses["503"]
        assert "Retry-After" in unavailable["headers"]
        detail = unavailable["content"]["application/json"]["schema"]
        assert detail["properties"] == {"detail": {"type": "string"}}
        for status in ("400", "431"):
            assert responses[status]["content"]["application/json"]["schema"] == detail

    async def test_the_other_paths_are_still_documented(self, stack: Stack) -> None:
        first = (await stack.client.get("/openapi.json")).json()
        again = (await stack.client.get("/openapi.json")).json()
        assert first == again
        assert set(first["paths"]) == {"/data", "/health", "/status", "/metrics"}

    async def test_metrics_is_documented_as_text(self, stack: Stack) -> None:
        document = (await stack.client.get("/openapi.json")).json()
        content = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
        assert list(content) == ["text/plain"]
        response = await stack.client.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain")

    async def test_documenting_data_changed_nothing_about_serving_it(self, stack: Stack) -> None:
        assert (await stack.client.get("/data")).json()["instance"] == "storage1"
        assert stack.storage("storage1").data_requests
        assert (await stack.client.post("/data")).status_code == 405


class TestReturnedHeaders:
    def test_fields_named_by_connection_are_hop_by_hop_and_dropped(self) -> None:
        headers = [
            (b"Connection", b"X-Hop, keep-alive"),
            (b"connection", b"x-other"),
            (b"X-Hop", b"1"),
            (b"x-other", b"2"),
            (b"Keep-Alive", b"timeout=5"),
            (b"Transfer-Encoding", b"chunked"),
            (b"x-kept", b"3"),
        ]
        assert _returned(headers, b"rid") == [(b"x-kept", b"3"), (b"x-request-id", b"rid")]
