"""The plain-ASGI baselines' shared app, driven with a fake upstream client (no network)."""

import asyncio
from typing import Any

from bench.baselines.asgi_proxy import (
    Headers,
    Message,
    UpstreamConnectionError,
    proxy_app,
    returned_headers,
    storage_services,
)

BACKENDS = ["http://s1", "http://s2", "http://s3"]


class FakeClient:
    def __init__(self, down: set[str] | None = None, broken: set[str] | None = None) -> None:
        self.down = down or set()
        self.broken = broken or set()
        self.asked: list[str] = []
        self.started = self.closed = False

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def get(self, url: str) -> tuple[int, Headers, bytes]:
        self.asked.append(url)
        backend = url.split("/data")[0]
        if backend in self.down:
            raise UpstreamConnectionError("refused")
        if backend in self.broken:
            raise ValueError("bad response")
        headers = [
            (b"Content-Type", b"application/json"),
            (b"Connection", b"keep-alive"),
            (b"Content-Length", b"999"),
            (b"Date", b"x"),
            (b"X-Instance", backend.encode()),
        ]
        return 200, headers, b'{"from": "' + backend.encode() + b'"}'


def call(
    client: FakeClient, path: str = "/data", query: bytes = b"", times: int = 1
) -> list[Message]:
    """`times` requests to one app (its round-robin turn carries over); every message sent."""
    app = proxy_app(client, BACKENDS)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> None:
        for _ in range(times):
            scope: dict[str, Any] = {"type": "http", "path": path, "query_string": query}
            await app(scope, receive, send)

    asyncio.run(run())
    return sent


def test_requests_go_round_robin_with_the_query_string() -> None:
    client = FakeClient()
    call(client, query=b"a=1", times=4)
    assert client.asked == [f"{b}/data?a=1" for b in [*BACKENDS, BACKENDS[0]]]


def test_status_headers_and_body_are_copied_without_hop_by_hop_headers() -> None:
    start, body = call(FakeClient())
    assert start["status"] == 200
    assert start["headers"] == [
        (b"content-type", b"application/json"),
        (b"x-instance", b"http://s1"),
        (b"content-length", str(len(body["body"])).encode()),
    ]
    assert body["body"] == b'{"from": "http://s1"}'


def test_a_connection_error_is_retried_once_on_the_next_service() -> None:
    client = FakeClient(down={"http://s1"})
    _, body = call(client)
    assert client.asked == ["http://s1/data", "http://s2/data"]
    assert body["body"] == b'{"from": "http://s2"}'


def test_two_connection_errors_give_a_503_without_a_third_attempt() -> None:
    client = FakeClient(down={"http://s1", "http://s2"})
    start, _ = call(client)
    assert start["status"] == 503
    assert len(client.asked) == 2


def test_another_error_is_not_retried() -> None:
    client = FakeClient(broken={"http://s1"})
    start, _ = call(client)
    assert start["status"] == 503
    assert client.asked == ["http://s1/data"]


def test_health_is_answered_locally_and_other_paths_are_404() -> None:
    client = FakeClient()
    assert call(client, "/health")[0]["status"] == 200
    assert call(client, "/status")[0]["status"] == 404
    assert client.asked == []


def test_the_lifespan_starts_and_closes_the_client() -> None:
    client = FakeClient()
    app = proxy_app(client, BACKENDS)
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[Message] = []

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> None:
        await app({"type": "lifespan"}, receive, send)

    asyncio.run(run())
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert client.started
    assert client.closed


def test_storage_services_are_read_from_the_environment() -> None:
    environ = {"STORAGE_SERVICES": "http://a:1/, http://b:2,,"}
    assert storage_services(environ) == ["http://a:1", "http://b:2"]


def test_returned_headers_lowercase_names_and_recompute_the_length() -> None:
    assert returned_headers([(b"Server", b"x"), (b"ETag", b"1")], 7) == [
        (b"etag", b"1"),
        (b"content-length", b"7"),
    ]
