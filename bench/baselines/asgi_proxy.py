"""What the plain-ASGI baselines share: everything but the upstream HTTP client.

`asgi_aiohttp` and `asgi_pyreqwest` differ only in the `UpstreamClient` they pass to
`proxy_app`, so the benchmark's figures for them compare the clients (and our gateway's own,
gateway_service/upstream.py) rather than two ways of writing a proxy. The app is as bare as a
proxy gets: a raw ASGI callable, round robin over STORAGE_SERVICES, one retry on the next service
after a connection error, the upstream's status, headers and body copied; no health checks,
metrics or logs. `GET /health` answers locally; anything else but `/data` is a 404.
"""

import itertools
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 5.0
# Keep-alive connections per storage service (like the httpx baseline's limits).
POOL_SIZE = 256
# Below the storage services' uvicorn keep-alive (75 s), like nginx's keepalive_timeout.
IDLE_TIMEOUT_S = 60.0

# Hop-by-hop headers, the length (recomputed) and what uvicorn adds itself.
NOT_RETURNED = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
        b"transfer-encoding", b"upgrade", b"content-length", b"date", b"server",
    }
)  # fmt: skip


class UpstreamConnectionError(Exception):
    """No connection, or it was lost before a response: worth one retry on the next service."""


class UpstreamClient(Protocol):
    async def start(self) -> None:
        """Create the shared client (inside the event loop uvicorn runs)."""

    async def close(self) -> None: ...

    async def get(self, url: str) -> tuple[int, Headers, bytes]:
        """GET `url`: status, headers (names in any case), whole body.

        Raises UpstreamConnectionError for a connection error, any other exception otherwise.
        """
        ...


def storage_services(environ: MutableMapping[str, str] | None = None) -> list[str]:
    value = (os.environ if environ is None else environ).get("STORAGE_SERVICES", "")
    return [url.strip().rstrip("/") for url in value.split(",") if url.strip()]


def returned_headers(upstream: Headers, body_length: int) -> Headers:
    """The upstream's end-to-end headers, lower-cased, with the body's length."""
    headers = [
        (name.lower(), value) for name, value in upstream if name.lower() not in NOT_RETURNED
    ]
    headers.append((b"content-length", str(body_length).encode()))
    return headers


async def _send(send: Send, status: int, headers: Headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, status: int, payload: dict[str, str]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await _send(send, status, headers, body)


async def _lifespan(client: UpstreamClient, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await client.start()
            except Exception as error:
                await send({"type": "lifespan.startup.failed", "message": repr(error)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await client.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


def proxy_app(client: UpstreamClient, backends: list[str]) -> App:
    """The ASGI app: `/data` proxied round robin through `client`."""
    turn = itertools.count()
    attempts = min(2, len(backends))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(client, receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/health":
            await _send_json(send, 200, {"status": "ok"})
            return
        if path != "/data":
            await _send_json(send, 404, {"detail": "Not Found"})
            return
        query = scope["query_string"]
        target = "/data?" + query.decode("latin-1") if query else "/data"
        start = next(turn)
        for step in range(attempts):
            url = backends[(start + step) % len(backends)] + target
            try:
                status, headers, body = await client.get(url)
            except UpstreamConnectionError:
                continue
            except Exception:
                break
            await _send(send, status, returned_headers(headers, len(body)), body)
            return
        await _send_json(send, 503, {"detail": "no storage service could answer"})

    return app
